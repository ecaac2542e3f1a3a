"""The trainer on real aligned faces (tiny config, CPU): finite losses that move the weights,
exact resume after an interruption, logs, checkpoints, export, config handling."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from facedancer_torch.errors import FacedancerError
from facedancer_torch.train.checkpoint import list_checkpoints, load_training_state
from facedancer_torch.train.config import CONFIG_DIR, load_config

ROOT = Path(__file__).resolve().parents[1]
IDENTITIES = ("Colin_Powell", "Tony_Blair", "Serena_Williams", "Vladimir_Putin", "Laura_Bush",
              "Hans_Blix")


@pytest.fixture(scope="module")
def aligned_faces(lfw_dir, tmp_path_factory) -> Path:
    """6 identities x 4 LFW photos, detected and aligned to 64 px crops by the align API."""
    from facedancer_torch.data.align_dataset import AlignSettings, align_dataset

    raw = tmp_path_factory.mktemp("raw")
    for name in IDENTITIES:
        (raw / name).mkdir()
        for src in sorted((lfw_dir / "images" / name).iterdir())[:4]:
            shutil.copy(src, raw / name / src.name)
    out = tmp_path_factory.mktemp("aligned")
    counts = align_dataset(raw, out, AlignSettings(im_size=64, min_size=0), progress=False)
    assert counts.aligned == 24
    return out


def _config(data: Path, out: Path, *extra: str):
    return load_config("tiny", [f"data={data}", f"out={out}", *extra])


def _params(trainer) -> dict[str, torch.Tensor]:
    return {f"{n}.{k}": v.detach().clone() for n, m in
            (("g", trainer.generator), ("d", trainer.discriminator))
            for k, v in m.state_dict().items()}


@pytest.fixture(scope="module")
def straight_run(aligned_faces, tmp_path_factory):
    """3 uninterrupted steps: (trainer, parameters before training)."""
    from facedancer_torch.train.trainer import Trainer

    out = tmp_path_factory.mktemp("run") / "straight"
    trainer = Trainer(_config(aligned_faces, out), progress=False, record_history=True)
    before = _params(trainer)
    trainer.run()
    return trainer, before


def test_three_steps_give_finite_losses_and_move_the_weights(straight_run):
    trainer, before = straight_run
    assert len(trainer.history) == 3
    for stats in trainer.history:
        assert all(torch.isfinite(torch.tensor(v)) for v in stats.values())
        assert stats["g/identity"] > 0 and stats["d/r1"] > 0 and stats["g/ifsr"] >= 0
    after = _params(trainer)
    for prefix in ("g.", "d."):
        moved = [k for k in after if k.startswith(prefix) and not torch.equal(after[k], before[k])]
        assert len(moved) > 0.9 * sum(k.startswith(prefix) for k in after)
    assert trainer.generator.config.identity_encoder == trainer.encoder.contract.name


def test_fp16_skips_the_overflowing_first_steps_instead_of_calling_them_divergence(
        aligned_faces, tmp_path):
    """Under amp=fp16 R1 at step 0 is computed on logits scaled by 65536 and overflows: the
    GradScaler skips that update and lowers its scale. This stopped every fp16 run on the H200
    at step 1 as "diverged"; now the skipped steps are counted and training goes on."""
    from facedancer_torch.train.trainer import SKIPPED, Trainer

    with pytest.warns(UserWarning, match="amp=fp16 on the CPU is several times slower"):
        trainer = Trainer(_config(aligned_faces, tmp_path / "f16", "amp=fp16", "steps=6",
                                  "schedule.log_every=2"), progress=False, record_history=True)
    before = _params(trainer)
    trainer.run()
    assert trainer.step == 6
    skipped = [bool(s[SKIPPED]) for s in trainer.history]
    assert skipped[0]  # R1 at the initial scale
    assert not all(skipped)
    for stats in trainer.history:  # a step the scaler kept has finite losses
        if not stats[SKIPPED]:
            assert all(torch.isfinite(torch.tensor(v)) for v in stats.values())
    records = [json.loads(line) for line in (trainer.run_dir / "stats.jsonl").open()]
    train = [r for r in records if r["kind"] == "train"]
    assert sum(r[SKIPPED] for r in train) == sum(skipped)
    assert all(torch.isfinite(torch.tensor(r["g/total"])) for r in train if "g/total" in r)
    after = _params(trainer)
    assert any(not torch.equal(after[k], before[k]) for k in after if k.startswith("g."))


def test_fp16_that_overflows_every_step_is_divergence(aligned_faces, tmp_path, monkeypatch):
    from facedancer_torch.train import trainer as trainer_module

    # one skipped step is tolerated and the second in a row stops the run (few steps: an
    # fp16 step costs ~3 s on a CPU, its convolutions have no fast half-precision kernel)
    monkeypatch.setattr(trainer_module, "MAX_SKIPPED_IN_A_ROW", 1)
    monkeypatch.setattr(trainer_module, "r1_penalty",
                        lambda logits, *a, **k: logits.float().sum() * float("nan"))
    with pytest.warns(UserWarning, match="amp=fp16 on the CPU"):
        trainer = trainer_module.Trainer(
            _config(aligned_faces, tmp_path / "nan", "amp=fp16", "steps=6",
                    "loss.r1_interval=1"), progress=False)
    with pytest.raises(FacedancerError, match="overflowed 2 steps in a row"):
        trainer.run()


def test_logs_checkpoints_and_images(straight_run):
    trainer, _ = straight_run
    run = trainer.run_dir
    records = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    train = [r for r in records if r["kind"] == "train"]
    assert [r["step"] for r in train] == [1, 2, 3]
    assert all(r["it_per_s"] > 0 and "g/total" in r and "lr" in r for r in train)
    val = [r for r in records if r["kind"] == "val"]
    assert [r["step"] for r in val] == [2, 3]
    for r in val:  # held-out identities: swap vs source and target, IFSR block distances
        assert -1 <= r["id_cos_to_source"] <= 1 and -1 <= r["id_cos_to_target"] <= 1
        assert r["ifsr_distance_mean"] > 0
    grids = [r["path"] for r in records if r["kind"] == "image"]
    assert all((run / p).is_file() for p in grids) and len(grids) == 3
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    # keep_checkpoints = 2: steps 2 and 3, complete, nothing half-written
    assert [s for s, _ in list_checkpoints(run)] == [2, 3]
    ckpt = list_checkpoints(run)[-1][1]
    assert {p.name for p in ckpt.iterdir()} == {"generator", "discriminator", "state.json",
                                               "state.safetensors", "meta.json"}
    state = load_training_state(ckpt)
    assert state["step"] == 3 and state["data"]["batch"] == 3
    assert load_config("tiny", []).to_dict().keys() == state["config"].keys()


def test_resume_after_a_kill_continues_the_same_curve(straight_run, aligned_faces, tmp_path):
    from facedancer_torch.train.trainer import Trainer

    straight, _ = straight_run
    out = tmp_path / "killed"
    shutil.copytree(straight.run_dir, out)
    # As if killed during step 3: its checkpoint never completed (only a temporary directory
    # is left) and its log line was cut.
    ckpt3 = out / "checkpoints" / "step_000000003"
    ckpt3.rename(out / "checkpoints" / ".step_000000003.tmp-1")
    stats = (out / "stats.jsonl").read_text().splitlines()
    kept = [line for line in stats if json.loads(line)["step"] <= 2]
    (out / "stats.jsonl").write_text("\n".join(kept) + '\n{"kind": "train", "step": 3, "g/to')
    with pytest.raises(FacedancerError, match="--resume"):
        Trainer(_config(aligned_faces, out), progress=False)
    resumed = Trainer(_config(aligned_faces, out), resume=True, progress=False,
                      record_history=True)
    assert resumed.step == 2
    resumed.run()
    assert len(resumed.history) == 1
    expected = straight.history[2]
    for key, value in resumed.history[0].items():
        assert value == pytest.approx(expected[key], abs=1e-6), key
    straight_params = _params(straight)
    for key, value in _params(resumed).items():
        assert torch.allclose(value, straight_params[key], atol=1e-6), key
    steps = [json.loads(line)["step"] for line in (out / "stats.jsonl").read_text().splitlines()
             if '"kind": "train"' in line]
    assert steps == [1, 2, 3]
    assert not list((out / "checkpoints").glob(".step_*"))
    assert [s for s, _ in list_checkpoints(out)] == [2, 3]


def test_export_writes_a_generator_model_directory(straight_run, tmp_path):
    from facedancer_torch.models.generator import load_generator
    from facedancer_torch.train.export import export_generator

    trainer, _ = straight_run
    out = export_generator(trainer.run_dir, tmp_path / "model")
    config = json.loads((out / "config.json").read_text())
    assert config["kind"] == "facedancer-generator"
    assert config["identity_encoder"] == "facenet" and "step_000000003" in config["source"]
    model = load_generator(out)
    x, z = torch.rand(1, 3, 64, 64) * 2 - 1, torch.randn(1, 512)
    with torch.no_grad():
        assert torch.equal(model(x, z), trainer.generator.eval()(x, z))
    with pytest.raises(FacedancerError, match="step 7"):
        export_generator(trainer.run_dir, tmp_path / "other", step=7)


def test_config_overrides_dry_run_and_errors(tmp_path):
    from typer.testing import CliRunner

    from facedancer_torch.cli import app

    cfg = load_config("tiny", ["steps=7", "loss.ifsr=0.5", "amp=off", "optim.lr=3e-4",
                               "generator.mapping_depth=0", "loader.val_data=null"])
    assert (cfg.steps, cfg.loss.ifsr, cfg.amp, cfg.optim.lr) == (7, 0.5, "off", 3e-4)
    assert cfg.generator.mapping_depth == 0
    paper = load_config(CONFIG_DIR / "paper.yaml")
    # a source checkout's old path still finds the one (packaged) copy
    assert load_config(ROOT / "configs" / "paper.yaml") == paper
    assert (paper.image_size, paper.batch_size, paper.optim.lr, paper.optim.beta1,
            paper.optim.beta2, paper.optim.eps, paper.optim.lr_decay) == \
        (256, 10, 1e-4, 0.0, 0.99, 1e-7, 0.97)
    assert (paper.loss.reconstruction, paper.loss.identity, paper.loss.cycle,
            paper.loss.perceptual, paper.loss.ifsr, paper.loss.r1_gamma,
            paper.loss.ifsr_scale) == (5, 10, 1, 0.2, 1, 5, 1.2)
    for bad, message in (("loss.nope=1", "unknown config key 'loss.nope'"),
                         ("steps=many", "steps"), ("image_size=48", "image_size"),
                         ("loss=1", "section")):
        with pytest.raises(FacedancerError, match=message):
            load_config("tiny", [bad])
    with pytest.raises(FacedancerError, match="unknown config"):
        load_config("huge")
    result = CliRunner().invoke(app, ["train", "--config", "tiny", "data=/faces", "steps=9",
                                      "--dry-run"])
    assert result.exit_code == 0
    assert "steps: 9" in result.output and "data: /faces" in result.output
    dumped = tmp_path / "cfg.yaml"
    dumped.write_text(result.output)
    assert load_config(dumped).steps == 9  # the dry-run output is itself a valid config
    result = CliRunner().invoke(app, ["train", "--config", "tiny", f"out={tmp_path / 'r'}"])
    assert result.exit_code != 0 and "data=PATH" in str(result.exception)


def test_configs_exist_once_in_the_package():
    assert not list((ROOT / "configs").glob("*.y*ml"))  # only a pointer README at the root
    assert {p.name for p in CONFIG_DIR.glob("*.yaml")} >= {"tiny.yaml", "demo.yaml", "paper.yaml"}
