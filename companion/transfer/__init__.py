"""Transfer learning: instance-, feature-, parameter- and relation-based transfer, domain
adaptation, and few-shot learning by pre-training and fine-tuning.

Chapter: Transfer learning.
"""

from companion.transfer.a_distance import (
    domain_classifier_error,
    proxy_a_distance,
    proxy_a_distance_from_error,
)
from companion.transfer.adaptation import (
    METHODS,
    DomainAdaptation,
    DomainAdaptationConfig,
    Method,
)
from companion.transfer.baseline import baseline, baseline_classifier
from companion.transfer.batches import DomainBatch, DomainPairSampler
from companion.transfer.classifier import FineTuneClassifier
from companion.transfer.coral import coral_loss, covariance
from companion.transfer.cosine import CosineClassifier, chen_scale, cosine_scores
from companion.transfer.dann import DomainAdversarialLoss, DomainDiscriminator, dann_coefficient
from companion.transfer.finetune import SupportSetFineTuner
from companion.transfer.grl import GradientReversal, GradientReversalFunction, grad_reverse
from companion.transfer.importance import (
    domain_log_odds,
    fit_domain_classifier,
    importance_weights,
)
from companion.transfer.kmm import kernel_mean_matching, project_box_slab
from companion.transfer.l2sp import L2SP
from companion.transfer.layers import (
    STRATEGIES,
    Strategy,
    apply_strategy,
    layers_of,
    layerwise_param_groups,
    set_trainable,
)
from companion.transfer.logistic import fit_logistic_regression
from companion.transfer.lpft import embed, linear_probe, lp_ft_head
from companion.transfer.mmd import (
    MultiKernelMMD,
    gaussian_kernel,
    median_lengthscale,
    mmd2_linear,
    mmd2_unbiased,
)
from companion.transfer.pretrain import train_classifier
from companion.transfer.rkd import RelationalDistillationLoss, rkd_angle_loss, rkd_distance_loss

__all__ = [
    "L2SP",
    "METHODS",
    "STRATEGIES",
    "CosineClassifier",
    "DomainAdaptation",
    "DomainAdaptationConfig",
    "DomainAdversarialLoss",
    "DomainBatch",
    "DomainDiscriminator",
    "DomainPairSampler",
    "FineTuneClassifier",
    "GradientReversal",
    "GradientReversalFunction",
    "Method",
    "MultiKernelMMD",
    "RelationalDistillationLoss",
    "Strategy",
    "SupportSetFineTuner",
    "apply_strategy",
    "baseline",
    "baseline_classifier",
    "chen_scale",
    "coral_loss",
    "cosine_scores",
    "covariance",
    "dann_coefficient",
    "domain_classifier_error",
    "domain_log_odds",
    "embed",
    "fit_domain_classifier",
    "fit_logistic_regression",
    "gaussian_kernel",
    "grad_reverse",
    "importance_weights",
    "kernel_mean_matching",
    "layers_of",
    "layerwise_param_groups",
    "linear_probe",
    "lp_ft_head",
    "median_lengthscale",
    "mmd2_linear",
    "mmd2_unbiased",
    "project_box_slab",
    "proxy_a_distance",
    "proxy_a_distance_from_error",
    "rkd_angle_loss",
    "rkd_distance_loss",
    "set_trainable",
    "train_classifier",
]
