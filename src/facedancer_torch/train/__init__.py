"""Trainer: one process or torchrun data parallel, checkpoints, logging, export."""

from .config import TrainConfig, available_configs, load_config
from .export import export_generator
from .trainer import Trainer

__all__ = ["TrainConfig", "Trainer", "available_configs", "export_generator", "load_config"]
