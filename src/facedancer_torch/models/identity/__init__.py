"""Identity encoders: one interface, one file per encoder, each with its input contract."""

from .base import EncoderContract, IdentityEncoder
from .registry import available_encoders, load_identity_encoder

__all__ = ["EncoderContract", "IdentityEncoder", "available_encoders", "load_identity_encoder"]
