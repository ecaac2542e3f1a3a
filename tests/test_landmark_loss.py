"""The landmark-consistency loss (losses/landmarks.py) on real faces, and its training switch."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from facedancer_torch.errors import FacedancerError
from facedancer_torch.io.images import read_image, write_image
from facedancer_torch.losses.landmarks import LandmarkConsistencyLoss
from facedancer_torch.train.config import load_config

PEOPLE = ("Colin_Powell", "Tony_Blair", "Serena_Williams", "Laura_Bush")


@pytest.fixture(scope="module")
def loss() -> LandmarkConsistencyLoss:
    return LandmarkConsistencyLoss()


def _crop(lfw_dir: Path, name: str, dx: int = 0, dy: int = 0, side: int = 128) -> np.ndarray:
    """A ``side`` px window of an LFW photo (250 px, the face centred), moved by dx, dy: the
    face as the generator's aligned crops hold it, and the same face moved."""
    image = read_image(sorted((lfw_dir / "images" / name).iterdir())[0])
    top, left = 125 - 64 + dy, 125 - 64 + dx
    return cv2.resize(image[top:top + 128, left:left + 128], (side, side),
                      interpolation=cv2.INTER_AREA)


def _tensor(images: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def test_zero_for_the_target_itself_and_no_trainable_weights(lfw_dir, loss):
    target = _tensor([_crop(lfw_dir, name) for name in PEOPLE])
    face, _ = loss.regressions(target)
    assert (face.max(1).values > 0.99).all(), "each crop must be a clear face to the detector"
    assert loss(target, target.clone()) == 0
    assert not list(loss.parameters()) and not loss.state_dict()
    loss.train()
    assert not loss.detector.training  # a frozen instrument stays in eval mode


def test_a_moved_face_costs_more_the_further_it_moves_and_has_a_gradient(lfw_dir, loss):
    target = _tensor([_crop(lfw_dir, name) for name in PEOPLE])
    values = []
    for shift in (2, 8):
        swap = _tensor([_crop(lfw_dir, name, dx=shift, dy=shift // 2) for name in PEOPLE])
        swap.requires_grad_(True)
        value = loss(target, swap)
        value.backward()
        assert torch.isfinite(swap.grad).all() and swap.grad.abs().max() > 0
        values.append(float(value.detach()))
    assert 0 < values[0] < values[1]
    # a move of 8 px in 128 is 6 % of the side; the landmarks follow it roughly
    assert 0.01 < values[1] < 0.12


def test_another_persons_face_costs_more_than_the_same_face_recompressed(lfw_dir, loss):
    """What the loss sees is geometry: a JPEG round trip (same landmarks) is nearly free,
    another person in another pose is not."""
    target = _tensor([_crop(lfw_dir, name) for name in PEOPLE])
    recoded = [cv2.imdecode(cv2.imencode(".jpg", _crop(lfw_dir, name),
                                         [cv2.IMWRITE_JPEG_QUALITY, 70])[1], cv2.IMREAD_COLOR)
               for name in PEOPLE]
    other = _tensor([_crop(lfw_dir, name) for name in PEOPLE[1:] + PEOPLE[:1]])
    assert float(loss(target, _tensor(recoded))) < 0.5 * float(loss(target, other))


def test_the_trainer_logs_the_weighted_term(lfw_dir, tmp_path):
    from facedancer_torch.train.trainer import Trainer

    data = tmp_path / "faces"
    for name in PEOPLE + ("Hans_Blix", "Vladimir_Putin"):
        (data / name).mkdir(parents=True)
        for k, photo in enumerate(sorted((lfw_dir / "images" / name).iterdir())[:2]):
            write_image(data / name / f"{name}_{k}.jpg", cv2.resize(
                read_image(photo)[61:189, 61:189], (64, 64), interpolation=cv2.INTER_AREA))
    overrides = [f"data={data}", f"out={tmp_path / 'run'}", "steps=1", "loss.landmarks=100"]
    trainer = Trainer(load_config("tiny", overrides), progress=False, tensorboard=False,
                      record_history=True)
    trainer.run()
    (stats,) = trainer.history
    assert stats["g/landmarks"] > 0 and np.isfinite(stats["g/landmarks"])
    # no landmark detector (and no term) when the weight is 0, the default
    off = Trainer(load_config("tiny", [f"data={data}", f"out={tmp_path / 'off'}", "steps=0"]),
                  progress=False, tensorboard=False)
    assert off.landmark_loss is None
    with pytest.raises(FacedancerError, match="loss.landmarks"):
        load_config("tiny", ["loss.landmarks=-1"])
