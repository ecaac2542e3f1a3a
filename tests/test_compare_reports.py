"""facedancer compare-reports: paired differences of evaluation reports on the same pairs."""
import json
import math
import subprocess
import sys

import numpy as np
import pytest

from facedancer_torch.errors import FacedancerError
from facedancer_torch.evaluate.compare import (compare_reports, format_comparison, mcnemar_exact,
                                               paired_difference)


def _report(folder, pose, expr, ranks, cast=None, pairs=None, top1=0.5):
    """A minimal report.json as facedancer evaluate writes it (only what compare reads)."""
    n = len(pose)
    pairs = pairs or [(f"images/t{k}.png", f"images/s{k}.png") for k in range(n)]
    cast = cast if cast is not None else [0.0] * n
    samples = [{"target": t, "source": s, "swap": f"{k:06d}.png", "pose_error_deg": p,
                "expression_error": e, "source_rank": r, "color_cast": c}
               for k, ((t, s), p, e, r, c) in enumerate(zip(pairs, pose, expr, ranks, cast))]
    metrics = {"id_retrieval": {"top1": top1, "top5": 1.0},
               "fd_nonstandard": {"value": 0.2}, "kid_nonstandard": {"mean": 0.05}}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.json").write_text(json.dumps(
        {"swaps": {"model": str(folder)}, "metrics": metrics, "samples": samples}))
    return folder


def test_paired_difference_and_counts():
    d = paired_difference(np.array([1.0, 2.0, 3.0, 4.0]), np.array([0.5, 2.0, 2.0, 4.5]))
    assert d["n"] == 4 and d["lower"] == 2 and d["higher"] == 1
    assert d["mean"] == pytest.approx(-0.25)
    assert d["se"] == pytest.approx(np.std([-0.5, 0.0, -1.0, 0.5], ddof=1) / 2)
    assert d["low"] < d["mean"] < d["high"]
    # Pairs where either model has no value (no face found on the swap) are left out.
    d = paired_difference(np.array([1.0, np.nan, 3.0]), np.array([2.0, 1.0, 5.0]))
    assert d["n"] == 2 and d["mean"] == pytest.approx(1.5)


def test_mcnemar_exact():
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(3, 3) == 1.0
    assert mcnemar_exact(0, 6) == pytest.approx(2 / 64)
    assert mcnemar_exact(7, 1) == pytest.approx(2 * 9 / 256)
    assert mcnemar_exact(1, 7) == mcnemar_exact(7, 1)


def test_compare_reports_pairs_each_sample(tmp_path):
    rng = np.random.default_rng(0)
    pose = rng.uniform(2, 10, 40)
    base = _report(tmp_path / "a", pose, pose / 2, [1] * 30 + [2] * 10)
    # The other model: every pose 0.5 deg lower, two pairs newly retrieved, one lost.
    ranks = [1] * 30 + [2] * 10
    ranks[30], ranks[31], ranks[0] = 1, 1, 3
    other = _report(tmp_path / "b", pose - 0.5, pose / 2, ranks)
    result = compare_reports([base, other / "report.json"])
    assert result["n_pairs"] == 40
    d = result["models"][1]["differences"]
    assert d["pose_error_deg"]["mean"] == pytest.approx(-0.5)
    assert d["pose_error_deg"]["lower"] == 40
    assert d["expression_error"]["mean"] == pytest.approx(0.0)
    assert (d["top1"]["won"], d["top1"]["lost"]) == (2, 1)
    assert (d["top5"]["won"], d["top5"]["lost"]) == (0, 0)
    text = format_comparison(result, ["a", "b"])
    assert "| b | 2 / 1 (1.00) |" in text and "-0.50 ±" in text


def test_compare_refuses_other_pairs(tmp_path):
    base = _report(tmp_path / "a", [1.0, 2.0], [1.0, 1.0], [1, 1])
    swapped = _report(tmp_path / "b", [1.0, 2.0], [1.0, 1.0], [1, 1],
                      pairs=[("images/t0.png", "images/s0.png"),
                             ("images/t1.png", "images/s9.png")])
    with pytest.raises(FacedancerError, match="pair 1"):
        compare_reports([base, swapped])
    shorter = _report(tmp_path / "c", [1.0], [1.0], [1])
    with pytest.raises(FacedancerError, match="1 pairs, the baseline has 2"):
        compare_reports([base, shorter])
    with pytest.raises(FacedancerError, match="at least two"):
        compare_reports([base])


def test_compare_reports_command(tmp_path):
    a = _report(tmp_path / "runs" / "a" / "eval", [3.0, 4.0, 5.0], [5.0, 5.0, 5.0], [1, 1, 2])
    b = _report(tmp_path / "runs" / "b" / "eval", [2.0, 4.0, 4.0], [5.0, 6.0, 5.0], [1, 2, 1])
    run = lambda *args: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "facedancer_torch", "compare-reports", *map(str, args)],
        capture_output=True, text=True, timeout=120)
    out = run(a, b, "--json", tmp_path / "cmp.json", "--plot", tmp_path / "tradeoff.png")
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "tradeoff.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| a/eval |" in out.stdout and "| b/eval | 1 / 1 (1.00) |" in out.stdout
    saved = json.loads((tmp_path / "cmp.json").read_text())
    assert math.isclose(saved["models"][1]["differences"]["pose_error_deg"]["mean"], -2 / 3)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "report.json").write_text("{not json")
    out = run(a, bad)
    assert out.returncode == 2 and out.stderr.startswith("error: ")
    assert "Traceback" not in out.stderr
    assert "report.json: not a readable report.json" in out.stderr
