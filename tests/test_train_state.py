"""The resumable training state survives a new machine: a checkpoint folder copied alone (as a
fresh clone of the repository has it: no logs, no tensorboard, another absolute path) resumes
bit-exactly, EMA included; the state is safetensors + JSON, never a pickle."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from facedancer_torch.train.checkpoint import latest_checkpoint, load_training_state
from facedancer_torch.train.config import load_config

IDENTITIES = ("Colin_Powell", "Tony_Blair", "Serena_Williams", "Vladimir_Putin", "Laura_Bush",
              "Hans_Blix")


@pytest.fixture(scope="module")
def faces(lfw_dir, tmp_path_factory) -> Path:
    """6 identities x 3 LFW photos aligned to 64 px by the align API."""
    from facedancer_torch.data.align_dataset import AlignSettings, align_dataset

    raw = tmp_path_factory.mktemp("raw")
    for name in IDENTITIES:
        (raw / name).mkdir()
        for src in sorted((lfw_dir / "images" / name).iterdir())[:3]:
            shutil.copy(src, raw / name / src.name)
    out = tmp_path_factory.mktemp("aligned")
    assert align_dataset(raw, out, AlignSettings(im_size=64, min_size=0),
                         progress=False).aligned == 18
    return out


def _trainer(faces: Path, out: Path, steps: int, resume: bool = False, *extra: str):
    from facedancer_torch.train.trainer import Trainer

    cfg = load_config("tiny", [f"data={faces}", f"out={out}", f"steps={steps}",
                               "optim.ema_decay=0.9", "schedule.checkpoint_every=4",
                               "schedule.keep_checkpoints=1", *extra])
    return Trainer(cfg, resume=resume, progress=False, tensorboard=False, record_history=True)


def _weights(trainer) -> dict[str, torch.Tensor]:
    return {f"{n}.{k}": v.detach().clone() for n, m in
            (("g", trainer.generator), ("d", trainer.discriminator),
             ("ema", trainer.generator_ema)) for k, v in m.state_dict().items()}


# Occluded, rotated and scaled targets (docs/training.md "Occluded and rotated targets").
ROBUST = ("loader.occlude_prob=0.7", "loader.rotate_deg=15", "loader.scale_jitter=0.1")


@pytest.mark.parametrize("extra", [(), ROBUST], ids=["plain", "robust"])
def test_state_copied_to_a_fresh_clone_resumes_bit_exactly(faces, tmp_path, extra):
    straight = _trainer(faces, tmp_path / "straight", 6, False, *extra)
    straight.run()
    assert straight.data_loader().dataset.targets.enabled == bool(extra)

    first = _trainer(faces, tmp_path / "machine_a" / "training" / "runs" / "x", 4, False, *extra)
    first.run()
    # what a fresh clone holds: the config and the one kept checkpoint, nothing else
    clone = tmp_path / "machine_b" / "training" / "runs" / "x"
    checkpoint = latest_checkpoint(first.run_dir)
    assert checkpoint.name == "step_000000004"
    shutil.copytree(checkpoint, clone / "checkpoints" / checkpoint.name)
    names = {p.relative_to(checkpoint).as_posix() for p in checkpoint.rglob("*") if p.is_file()}
    assert not [n for n in names if not n.endswith((".json", ".safetensors"))], names
    assert {"state.json", "state.safetensors", "generator_ema/model.safetensors"} <= names

    resumed = _trainer(faces, clone, 6, True, *extra)
    assert resumed.step == 4
    resumed.run()
    assert len(resumed.history) == 2
    for got, want in zip(resumed.history, straight.history[4:]):
        assert got == want  # every logged loss term, exactly
    want = _weights(straight)
    got = _weights(resumed)
    assert got.keys() == want.keys()
    for key in want:
        assert torch.equal(got[key], want[key]), key
    for opt in ("opt_g", "opt_d"):
        a = getattr(straight, opt).state_dict()["state"]
        b = getattr(resumed, opt).state_dict()["state"]
        assert all(torch.equal(a[i][k], b[i][k]) for i in a for k in a[i])
    # the EMA (which export ships) lags the raw generator weights
    ema_keys = [k for k in got if k.startswith("ema.") and got[k].is_floating_point()]
    assert any(not torch.equal(got[k], got["g." + k[4:]]) for k in ema_keys)


def test_state_round_trips_types_and_refuses_garbage(faces, tmp_path):
    from facedancer_torch.errors import FacedancerError
    from facedancer_torch.train.checkpoint import write_training_state

    state = {"step": 7, "opt": {"state": {0: {"step": torch.tensor(3.0),
                                              "exp_avg": torch.randn(2, 3)}},
                                "param_groups": [{"lr": 1e-4 / 3, "betas": (0.0, 0.99)}]},
             "python": (3, tuple(range(5)), None), "empty": {}}
    write_training_state(tmp_path, state)
    back = load_training_state(tmp_path)
    assert back["step"] == 7 and back["python"] == state["python"] and back["empty"] == {}
    assert list(back["opt"]["state"]) == [0]  # integer keys stay integers
    assert torch.equal(back["opt"]["state"][0]["exp_avg"], state["opt"]["state"][0]["exp_avg"])
    assert back["opt"]["param_groups"][0] == {"lr": 1e-4 / 3, "betas": (0.0, 0.99)}
    json.loads((tmp_path / "state.json").read_text())
    (tmp_path / "state.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(FacedancerError, match="cannot read training state"):
        load_training_state(tmp_path)


def test_init_generator_starts_a_run_and_is_ignored_on_resume(faces, tmp_path):
    from facedancer_torch.errors import ModelError
    from facedancer_torch.train.export import export_generator

    first = _trainer(faces, tmp_path / "a", 4)
    first.run()
    model = export_generator(first.run_dir, tmp_path / "model", half=True)
    tuned = _trainer(faces, tmp_path / "b", 0, False, f"init_generator={model}")
    for key, value in tuned.generator.state_dict().items():  # fp16 weights, read as float32
        want = first.generator_ema.state_dict()[key]
        assert torch.equal(value, want.half().float() if want.is_floating_point() else want), key
    # a resumed run does not need the model it started from
    resumed = _trainer(faces, first.run_dir, 6, True, f"init_generator={tmp_path / 'gone'}")
    assert resumed.step == 4
    with pytest.raises(ModelError):
        _trainer(faces, tmp_path / "c", 1, False, f"init_generator={tmp_path / 'gone'}")


def test_colour_ablation_switches_train(faces, tmp_path):
    """Grey encoder input and the chroma loss give finite losses; chroma is logged."""
    trainer = _trainer(faces, tmp_path / "gray", 1, False, "loss.encoder_input=gray",
                       "loss.chroma=10")
    trainer.run()
    (stats,) = trainer.history
    assert stats["g/chroma"] > 0 and all(torch.isfinite(torch.tensor(v)) for v in stats.values())


def test_robust_targets_give_the_discriminator_augmented_reals(faces, tmp_path):
    """With occluded targets the D step takes the batch's ``real`` (augmented sources); the
    G step is the same whatever ``real`` holds."""
    a = _trainer(faces, tmp_path / "a", 1, False, *ROBUST)
    b = _trainer(faces, tmp_path / "b", 1, False, *ROBUST)
    batch = next(iter(a.data_loader()))
    assert batch["target_occluder"].shape == batch["target"][:, 0].shape
    plain = {k: v for k, v in batch.items() if k != "real"}
    got, want = a.train_step(batch), b.train_step(plain)
    assert all(torch.equal(got[k], want[k]) for k in got if k.startswith("g/"))
    assert not torch.equal(got["d/real"], want["d/real"])
