"""FaceDancer losses (docs/reference.md §5): adversarial, identity, reconstruction, cycle,
perceptual and IFSR, each a small function or module with plain-tensor inputs."""

from .adversarial import (REFERENCE_R1_GAMMA, discriminator_adversarial_loss,
                          generator_adversarial_loss, r1_penalty, r1_weight_for_step)
from .cycle import cycle_loss
from .identity import identity_loss
from .ifsr import REFERENCE_IFSR_SCALE, IfsrLoss, block_cosine_distances
from .perceptual import (REFERENCE_FEATURE_SCALE, Vgg16Features, parse_perceptual_spec,
                         perceptual_loss)
from .reconstruction import flag_average, reconstruction_loss

__all__ = [
    "REFERENCE_FEATURE_SCALE", "REFERENCE_IFSR_SCALE", "REFERENCE_R1_GAMMA", "IfsrLoss",
    "Vgg16Features", "block_cosine_distances", "cycle_loss", "discriminator_adversarial_loss",
    "flag_average", "generator_adversarial_loss", "identity_loss", "parse_perceptual_spec",
    "perceptual_loss", "r1_penalty", "r1_weight_for_step", "reconstruction_loss",
]
