"""Trainer: one process or torchrun/DDP, checkpoints, logging."""
