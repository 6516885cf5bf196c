"""Cold-start recommendation on user tasks: a global model, per-user fine-tuning, and MeLU.

Chapter: Applications (cold-start recommendation).
"""

from companion.recommend.evaluation import summarise, user_episodes, user_scores
from companion.recommend.finetune import FineTuneRecommender
from companion.recommend.global_model import GlobalRecommender, pooled_ratings
from companion.recommend.melu import MeLU, MeLUConfig
from companion.recommend.metrics import check_episode, rating_metrics
from companion.recommend.model import (
    DECISION,
    RatingModel,
    SideInformationEmbedding,
    decision_parameter_names,
)

__all__ = [
    "DECISION",
    "FineTuneRecommender",
    "GlobalRecommender",
    "MeLU",
    "MeLUConfig",
    "RatingModel",
    "SideInformationEmbedding",
    "check_episode",
    "decision_parameter_names",
    "pooled_ratings",
    "rating_metrics",
    "summarise",
    "user_episodes",
    "user_scores",
]
