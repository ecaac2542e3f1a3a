"""LFW verification (evaluate-encoder) on a small balanced subset of the real pairs."""

import json

import pytest

from facedancer_torch.errors import InputError
from facedancer_torch.evaluate.lfw import read_pairs


def test_read_pairs_of_the_standard_file(lfw_dir):
    pairs = read_pairs(lfw_dir / "pairs.txt")
    assert len(pairs) == 6000 and sum(p.same for p in pairs) == 3000
    assert sorted({p.fold for p in pairs}) == list(range(10))
    assert pairs[0].same and pairs[0].left.split("/")[0] == pairs[0].right.split("/")[0]
    assert (lfw_dir / "images" / pairs[0].left).is_file()
    subset = read_pairs(lfw_dir / "pairs.txt", limit=40)
    assert len(subset) == 40
    assert all(sum(p.fold == f and p.same for p in subset) == 2 for f in range(10))


def test_read_pairs_rejects_a_malformed_file(tmp_path):
    bad = tmp_path / "pairs.txt"
    bad.write_text("10\t300\nAaron 1 2\n")
    with pytest.raises(InputError, match="expected 6000 pairs"):
        read_pairs(bad)
    with pytest.raises(InputError, match="does not exist"):
        read_pairs(tmp_path / "missing.txt")


def test_both_encoders_verify_lfw_well_above_chance(lfw_dir, tmp_path):
    pytest.importorskip("dlib", reason="the eval extra (dlib-bin) is not installed")
    from typer.testing import CliRunner

    from facedancer_torch.cli import app

    out = tmp_path / "lfw.json"
    result = CliRunner().invoke(app, [
        "evaluate-encoder", "--images", str(lfw_dir / "images"), "--pairs",
        str(lfw_dir / "pairs.txt"), "--encoder", "default", "--encoder", "dlib",
        "--limit", "20", "--device", "cpu", "--json", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["n_pairs"] == 20 and data["n_folds"] == 10
    accuracies = {name: v["accuracy"] for name, v in data["encoders"].items()}
    assert set(accuracies) == {"facenet", "dlib"}
    assert data["accuracy"] == accuracies["facenet"]
    for name, accuracy in accuracies.items():
        assert accuracy >= 0.8, f"{name}: {accuracy} (chance is 0.5)"
        values = data["encoders"][name]
        assert values["mean_cosine_same"] > values["mean_cosine_different"]
    assert "facenet:" in result.output and "dlib:" in result.output
