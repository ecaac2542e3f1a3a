"""Shared test fixtures: real data from ../shared (skipped with a reason when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from facedancer_torch.testing import shared_path
from swaputil import save_tiny_generator

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never touch the network

# The suite runs on pytest-xdist workers, one per core (pyproject's addopts). Each keeps to one
# core: torch, and the `facedancer` subprocesses its tests start, would otherwise each take all
# of them, and two workers would slow each other down more than they gain (measured on 2
# cores: 643 s in one process, 529 s on two workers with default threads).
if os.environ.get("PYTEST_XDIST_WORKER"):
    import torch

    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)


def _require(*parts: str) -> Path:
    path = shared_path(*parts)
    if path is None:
        pytest.skip(f"shared data '{'/'.join(parts)}' is absent (expected beside the checkout "
                    "in ../shared, or in $FACEDANCER_SHARED)")
    return path


@pytest.fixture(scope="session", autouse=True)
def _session_cache(tmp_path_factory):
    """One ONNX cache for the whole run, in tmp: the default backend exports the generator and
    the face segmenter there on first use (about 9 s for the demo model), and every test and
    every `facedancer` subprocess after it reuses the files (keyed by a hash of the weights),
    instead of exporting again per test or writing into the user's ~/.cache. A test about the
    cache itself sets its own folder."""
    old = os.environ.get("FACEDANCER_CACHE")
    os.environ["FACEDANCER_CACHE"] = str(tmp_path_factory.mktemp("onnx-cache"))
    yield
    if old is None:
        os.environ.pop("FACEDANCER_CACHE", None)
    else:
        os.environ["FACEDANCER_CACHE"] = old


@pytest.fixture(scope="session")
def photos_dir() -> Path:
    return _require("data", "photos")


@pytest.fixture(scope="session")
def videos_dir() -> Path:
    return _require("data", "videos")


@pytest.fixture(scope="session")
def lfw_dir() -> Path:
    return _require("data", "lfw")


@pytest.fixture(scope="session")
def keras_fixture_dir() -> Path:
    return _require("fixtures", "keras-facedancer")


@pytest.fixture(autouse=True)
def _seed():
    import random

    import numpy as np
    import torch

    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    yield


# A tiny random generator (seeded) and a Swapper on it, shared by the swap, demo and error
# tests of one module.
@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return save_tiny_generator(tmp_path_factory.mktemp("tiny_generator"))


@pytest.fixture(scope="module")
def swapper(tiny_model):
    from facedancer_torch.swap.pipeline import Swapper

    return Swapper(tiny_model, device="cpu", backend="fused")


@pytest.fixture(scope="module")
def plan(swapper, photos_dir):
    """That swapper's plan with df_img1.jpg as the source."""
    return swapper.plan(photos_dir / "df_img1.jpg")
