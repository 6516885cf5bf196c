"""Models: the Conv-4 backbone, an MLP, and normalisation safe under ``torch.func``."""

from companion.models.conv4 import Conv4, conv_block, load_state_dict_by_position
from companion.models.init import init_from_seed
from companion.models.mlp import MLP
from companion.models.norm import BatchStatNorm2d, make_norm2d

__all__ = ["MLP", "BatchStatNorm2d", "Conv4", "conv_block", "init_from_seed",
           "load_state_dict_by_position", "make_norm2d"]
