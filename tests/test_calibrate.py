"""IFSR calibration (``facedancer calibrate-ifsr``) with the real default encoder."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from facedancer_torch.errors import FacedancerError
from facedancer_torch.evaluate.calibrate import (blend_mask, blend_swap, calibrate,
                                                 distance_report, folder_pairs, margins_document,
                                                 write_margins)
from test_train import aligned_faces  # noqa: F401 (module fixture: 24 aligned LFW faces)


@pytest.fixture(scope="module")
def encoder():
    from facedancer_torch.models.identity.registry import load_identity_encoder

    return load_identity_encoder("default")


def test_identical_pairs_give_zero_margins(aligned_faces, encoder, tmp_path):  # noqa: F811
    faces = sorted(aligned_faces.rglob("*.png"))[:6]
    for sub in ("target", "swap"):
        (tmp_path / sub).mkdir()
        for i, face in enumerate(faces):
            shutil.copy(face, tmp_path / sub / f"{i}.png")
    pairs, total = folder_pairs(tmp_path, 64, batch_size=4)
    result = calibrate(encoder, pairs, total=total, progress=False)
    assert result.n_pairs == 6 and result.blocks == list(encoder.contract.ifsr_blocks)
    assert all(abs(m) < 1e-5 for m in result.margins.values())


def test_blend_swap_keeps_the_target_outside_the_inner_face():
    target = torch.rand(2, 3, 64, 64) * 2 - 1
    source = torch.rand(2, 3, 64, 64) * 2 - 1
    mask = blend_mask(64)[0, 0]
    swap = blend_swap(target, source)
    outside = mask == 0
    assert outside[0, 0] and mask[40, 32] == 1  # corner kept, nose region replaced
    assert torch.equal(swap[..., outside], target[..., outside])
    assert not torch.allclose(swap[..., 40, 32], target[..., 40, 32])


def test_blend_swaps_change_tapped_blocks_less_than_another_photo(aligned_faces,  # noqa: F811
                                                                  encoder):
    from facedancer_torch.data.pairs import folder_index

    index = folder_index(aligned_faces)
    blocks = list(encoder.contract.ifsr_blocks)
    report = distance_report(encoder, index, ["swap", "same_identity"], count=8, image_size=64,
                             blocks=blocks, seed=0)
    for b in blocks:  # IFSR blocks carry pose / lighting more than identity
        assert 0 < report["swap"][b].mean() < report["same_identity"][b].mean(), b


def test_margins_are_written_in_the_shared_format(encoder, tmp_path):
    from facedancer_torch.models.identity.base import load_margins_file

    blocks = list(encoder.contract.ifsr_blocks)
    rng = np.random.default_rng(0)
    from facedancer_torch.evaluate.calibrate import CalibrationResult

    result = CalibrationResult("facenet", blocks, {b: rng.uniform(0.1, 0.2, 5) for b in blocks},
                               {"method": "test"})
    path = write_margins(result, encoder, out=tmp_path / "m.json")
    doc = json.loads(path.read_text())
    assert set(doc) == {"encoder", "margins", "scale", "data"}
    assert doc["scale"] == 1.2 and doc["data"]["pairs"] == 5 and doc["data"]["method"] == "test"
    assert load_margins_file(path, blocks) == pytest.approx(result.margins, abs=1e-6)
    # an encoder directory keeps them in its config.json
    (tmp_path / "enc").mkdir()
    (tmp_path / "enc" / "config.json").write_text(json.dumps({"architecture": "x"}))
    write_margins(result, encoder, out=tmp_path / "enc")
    config = json.loads((tmp_path / "enc" / "config.json").read_text())
    assert config["ifsr_margins"] == margins_document(result)["margins"]
    assert config["ifsr_margins_data"]["method"] == "test"


def test_shipped_facenet_margins_are_loaded_by_the_encoder(encoder):
    path = encoder.contract.margins_file
    doc = json.loads(open(path).read())
    assert doc["encoder"] == "facenet" and doc["scale"] == 1.2
    assert list(doc["margins"]) == list(encoder.contract.ifsr_blocks)
    assert encoder.contract.ifsr_margins == pytest.approx(doc["margins"])
    assert all(0 < m < 0.5 for m in doc["margins"].values())
    assert doc["data"]["pairs"] >= 200 and "blend-swap" in doc["data"]["method"]


def test_calibrate_command(aligned_faces, tmp_path):  # noqa: F811
    from typer.testing import CliRunner

    from facedancer_torch.cli import app

    runner = CliRunner()
    out = tmp_path / "margins.json"
    result = runner.invoke(app, ["calibrate-ifsr", "--data", str(aligned_faces), "--count", "4",
                                 "--image-size", "64", "--out", str(out)])
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert doc["data"]["pairs"] == 4 and doc["data"]["data_identities"] == 6
    result = runner.invoke(app, ["calibrate-ifsr", "--out", str(out)])
    assert isinstance(result.exception, FacedancerError)
