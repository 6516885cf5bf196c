"""Transfer learning: supervised pre-training and fine-tuning on a target task."""

from companion.transfer.finetune import SupportSetFineTuner
from companion.transfer.pretrain import train_classifier

__all__ = ["SupportSetFineTuner", "train_classifier"]
