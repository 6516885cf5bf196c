"""Multi-task learning: architectures, loss weighting, gradient methods, task relatedness.

* architectures: :class:`HardSharing`, :class:`CrossStitchNetwork`, :class:`L2CoupledTowers`,
  :class:`MMoE` (task outputs keyed by task name);
* per-task gradients as dicts: :func:`task_gradients`, :func:`combine_gradients`,
  :func:`write_gradients`;
* loss weighting: :class:`EqualWeighting`, :class:`UncertaintyWeighting`,
  :class:`DynamicWeightAverage`, :class:`GradNorm`;
* gradient methods: :class:`PCGrad`, :class:`MGDA` (and :func:`min_norm_weights`);
* the learner: :func:`multitask_learner` with a :class:`MultiTaskConfig`;
* relatedness: :func:`gradient_cosine`, :func:`lookahead_affinity`,
  :func:`transfer_gain_matrix`.

Chapter: Multi-task learning.
"""

from companion.data.multitask_batch import MultiTaskBatch, MultiTaskSampler
from companion.multitask.affinity import lookahead_affinity
from companion.multitask.config import GRADIENT_METHODS, LOSS_METHODS, MultiTaskConfig
from companion.multitask.coupled import L2CoupledTowers
from companion.multitask.cross_stitch import CrossStitchNetwork, CrossStitchUnit
from companion.multitask.dwa import DynamicWeightAverage
from companion.multitask.equal import EqualWeighting
from companion.multitask.factory import multitask_learner
from companion.multitask.gradient_learner import GradientMultiTaskLearner
from companion.multitask.gradients import (
    Gradients,
    TaskGradients,
    combine_gradients,
    gradient_dot,
    gradient_gram,
    task_gradients,
    write_gradients,
)
from companion.multitask.gradnorm import GradNorm
from companion.multitask.hard_sharing import HardSharing
from companion.multitask.learner import MultiTaskLearner
from companion.multitask.method import CombinedGradient, GradientMethod, LossWeighting
from companion.multitask.mgda import MGDA
from companion.multitask.min_norm import min_norm_two, min_norm_weights
from companion.multitask.mmoe import MMoE
from companion.multitask.model import MultiTaskModel, SharedRepresentationModel
from companion.multitask.pcgrad import PCGrad, project_conflicting
from companion.multitask.relatedness import gradient_cosine
from companion.multitask.transfer_gain import TransferGains, transfer_gain_matrix
from companion.multitask.uncertainty import UncertaintyWeighting

__all__ = [
    "GRADIENT_METHODS",
    "LOSS_METHODS",
    "MGDA",
    "CombinedGradient",
    "CrossStitchNetwork",
    "CrossStitchUnit",
    "DynamicWeightAverage",
    "EqualWeighting",
    "GradNorm",
    "GradientMethod",
    "GradientMultiTaskLearner",
    "Gradients",
    "HardSharing",
    "L2CoupledTowers",
    "LossWeighting",
    "MMoE",
    "MultiTaskBatch",
    "MultiTaskConfig",
    "MultiTaskLearner",
    "MultiTaskModel",
    "MultiTaskSampler",
    "PCGrad",
    "SharedRepresentationModel",
    "TaskGradients",
    "TransferGains",
    "UncertaintyWeighting",
    "combine_gradients",
    "gradient_cosine",
    "gradient_dot",
    "gradient_gram",
    "lookahead_affinity",
    "min_norm_two",
    "min_norm_weights",
    "multitask_learner",
    "project_conflicting",
    "task_gradients",
    "transfer_gain_matrix",
    "write_gradients",
]
