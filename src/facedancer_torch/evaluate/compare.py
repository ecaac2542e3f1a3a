"""Paired comparison of evaluation reports made on the same pairs (docs/evaluation.md, "Comparing
two models").

Two models evaluated with one test set, ``--pairs`` and ``--seed`` swap the same (target, source)
pairs, so their per-pair errors can be subtracted: the paired difference has a far smaller
standard error than the difference of two means read off two report tables (on the model card's
120 pairs, pose error means differ by +-0.5 deg between runs of similar models, while the paired
difference's standard error is about 0.1 deg). ID retrieval is a yes/no per pair; the pairs where
the two models disagree decide it (McNemar's exact test: under "no difference" each such pair is
a fair coin flip).

Inputs are ``report.json`` files of ``facedancer evaluate`` (their ``samples`` list). The first
report is the baseline; differences are "other minus baseline", so negative is better for the
errors and positive for identity.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import FacedancerError
from .report import format_value as fmt
from .report import save_figure

# Per-pair errors (lower is better), as report samples name them: pose (deg), expression
# (% IOD), colour cast (fraction of face pixels; shown in %).
ERRORS: tuple[str, ...] = ("pose_error_deg", "expression_error", "color_cast")
# The cast is stored as a fraction; shown in percent like the report.
_SCALE = {"color_cast": 100.0}
# 95 % two-sided normal quantile: with 100+ pairs the t quantile differs in the second decimal.
_Z95 = 1.959964


def read_report(path: str | Path) -> dict[str, Any]:
    """A report.json (or the folder holding it) of ``facedancer evaluate``."""
    path = Path(path)
    file = path / "report.json" if path.is_dir() else path
    try:
        report = json.loads(file.read_text())
    except FileNotFoundError:
        raise FacedancerError(f"{file}: no such report (run facedancer evaluate --out first)")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FacedancerError(f"{file}: not a readable report.json ({exc})") from exc
    if not isinstance(report, dict) or not isinstance(report.get("samples"), list) \
            or not report["samples"] or not isinstance(report.get("metrics"), dict):
        raise FacedancerError(f"{file}: not a facedancer evaluate report (no samples)")
    report["_path"] = str(file)
    return report


def _pairs(report: dict[str, Any]) -> list[tuple[str, str]]:
    return [(s.get("target"), s.get("source")) for s in report["samples"]]


def _values(report: dict[str, Any], key: str) -> np.ndarray:
    out = []
    for sample in report["samples"]:
        value = sample.get(key)
        out.append(np.nan if value is None else float(value))
    return np.asarray(out, np.float64) * _SCALE.get(key, 1.0)


def mcnemar_exact(won: int, lost: int) -> float:
    """Two-sided exact McNemar p-value for ``won`` / ``lost`` discordant pairs (binomial with
    p = 1/2 on ``won + lost`` trials; 1.0 when there are none)."""
    n = won + lost
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(won, lost) + 1)) / 2.0 ** n
    return min(1.0, 2.0 * tail)


def paired_difference(base: np.ndarray, other: np.ndarray) -> dict[str, float]:
    """Mean of ``other - base`` over the pairs where both are finite, its standard error, the
    95 % interval and how many pairs got lower / higher."""
    ok = np.isfinite(base) & np.isfinite(other)
    diff = other[ok] - base[ok]
    n = int(diff.size)
    if n == 0:
        return {"n": 0, "mean": math.nan, "se": math.nan, "low": math.nan, "high": math.nan,
                "lower": 0, "higher": 0}
    se = float(diff.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    mean = float(diff.mean())
    return {"n": n, "mean": mean, "se": se, "low": mean - _Z95 * se, "high": mean + _Z95 * se,
            "lower": int((diff < 0).sum()), "higher": int((diff > 0).sum())}


def compare_reports(paths: list[str | Path]) -> dict[str, Any]:
    """Compare each report with the first (the baseline); see the module doc. Raises
    FacedancerError when a report's pairs are not the baseline's."""
    if len(paths) < 2:
        raise FacedancerError("compare needs at least two reports (the first is the baseline)")
    reports = [read_report(p) for p in paths]
    base = reports[0]
    base_pairs = _pairs(base)
    for report in reports[1:]:
        pairs = _pairs(report)
        if len(pairs) != len(base_pairs):
            raise FacedancerError(
                f"{report['_path']}: {len(pairs)} pairs, the baseline has {len(base_pairs)}: "
                "compare reports made with the same test set, --pairs and --seed")
        for k, (a, b) in enumerate(zip(base_pairs, pairs)):
            if a != b:
                raise FacedancerError(
                    f"{report['_path']}: pair {k} is {b[0]} <- {b[1]}, the baseline's is "
                    f"{a[0]} <- {a[1]}: compare reports made with the same test set, --pairs "
                    "and --seed")
    models = []
    base_rank = _values(base, "source_rank")
    for report in reports:
        m = report["metrics"]
        entry: dict[str, Any] = {
            "report": report["_path"],
            "model": report["swaps"].get("model") if isinstance(report.get("swaps"), dict)
            else None,
            "top1": m.get("id_retrieval", {}).get("top1"),
            "top5": m.get("id_retrieval", {}).get("top5"),
            "fd": (m.get("fd_nonstandard") or {}).get("value"),
            "kid": (m.get("kid_nonstandard") or {}).get("mean"),
            "means": {key: float(np.nanmean(_values(report, key))) for key in ERRORS},
        }
        if report is not base:
            rank = _values(report, "source_rank")
            differences = {key: paired_difference(_values(base, key), _values(report, key))
                           for key in ERRORS}
            for k in (1, 5):
                b_hit, o_hit = base_rank <= k, rank <= k
                won, lost = int((o_hit & ~b_hit).sum()), int((b_hit & ~o_hit).sum())
                differences[f"top{k}"] = {"won": won, "lost": lost,
                                          "p": mcnemar_exact(won, lost)}
            entry["differences"] = differences
        models.append(entry)
    return {"n_pairs": len(base_pairs), "baseline": models[0]["report"], "models": models}


def format_comparison(result: dict[str, Any], names: list[str] | None = None) -> str:
    """Markdown: the reports' own numbers, then the paired differences from the baseline."""
    models = result["models"]
    names = names or [m["report"] for m in models]
    lines = [f"{result['n_pairs']} pairs, baseline: {names[0]}", "",
             "| report | ID top-1 | top-5 | pose (deg) | expression (% IOD) | colour cast (%) "
             "| FD* | KID* |", "|---|---|---|---|---|---|---|---|"]
    for name, m in zip(names, models):
        means = m["means"]
        lines.append(f"| {name} | {fmt(m['top1'], percent=True)} | "
                     f"{fmt(m['top5'], percent=True)} | {fmt(means['pose_error_deg'])} | "
                     f"{fmt(means['expression_error'])} | {fmt(means['color_cast'], 3)} | "
                     f"{fmt(m['fd'], 3)} | {fmt(m['kid'], 3)} |")
    lines += ["", "Paired differences from the baseline (other minus baseline, mean ± standard "
              "error [95 % interval], pairs lower / higher; top-1 / top-5: pairs won / lost, "
              "exact McNemar p):", "",
              "| report | top-1 won / lost (p) | top-5 won / lost (p) | pose | expression "
              "| colour cast |", "|---|---|---|---|---|---|"]
    for name, m in zip(names[1:], models[1:]):
        d = m["differences"]
        cells = [f"{d[k]['won']} / {d[k]['lost']} ({d[k]['p']:.2f})" for k in ("top1", "top5")]
        for key in ERRORS:
            x = d[key]
            digits = 3 if key == "color_cast" else 2
            cells.append(f"{x['mean']:+.{digits}f} ± {fmt(x['se'], digits)} "
                         f"[{x['low']:+.{digits}f}, {x['high']:+.{digits}f}], "
                         f"{x['lower']} / {x['higher']}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_comparison(result: dict[str, Any], path: str | Path,
                    names: list[str] | None = None) -> Path:
    """The trade-off picture: ID top-1 against pose error (marker area: expression error),
    one labelled point per report, the baseline's lines dashed; written to ``path`` (PNG)."""
    from matplotlib.figure import Figure  # the optional [eval] extra, as the report plots

    models = result["models"]
    names = names or [m["report"] for m in models]
    pose = np.array([m["means"]["pose_error_deg"] for m in models])
    top1 = np.array([100.0 * (m["top1"] if m["top1"] is not None else np.nan) for m in models])
    expr = np.array([m["means"]["expression_error"] for m in models])
    figure = Figure(figsize=(7, 5))
    axes = figure.subplots()
    size = 160.0 * (expr / np.nanmax(expr)) ** 2  # points^2: the largest error 160
    axes.scatter(pose, top1, s=size, c=["tab:red"] + ["tab:blue"] * (len(models) - 1),
                 alpha=0.7)
    # Labels of nearby points go to different sides (right/left, above/below) so that they
    # stay readable; distances in axis fractions.
    span = np.array([np.ptp(pose[np.isfinite(pose)]) or 1.0,
                     np.ptp(top1[np.isfinite(top1)]) or 1.0])
    placed: list[np.ndarray] = []
    sides = [((5, 4), "left"), ((5, -11), "left"), ((-5, 4), "right"), ((-5, -11), "right")]
    for name, x, y in zip(names, pose, top1):
        here = np.array([x, y]) / span
        # A label runs about a quarter of the width to the right of its point.
        crowded = sum(1 for q in placed
                      if abs(q[0] - here[0]) < 0.25 and abs(q[1] - here[1]) < 0.05)
        offset, align = sides[crowded % len(sides)]
        axes.annotate(name, (x, y), textcoords="offset points", xytext=offset, fontsize=7,
                      ha=align)
        placed.append(here)
    axes.axvline(pose[0], color="tab:red", lw=0.8, ls="--")
    axes.axhline(top1[0], color="tab:red", lw=0.8, ls="--")
    axes.set_xlabel("pose error (deg, lower is better)")
    axes.set_ylabel("ID retrieval top-1 (%, higher is better)")
    axes.set_title(f"{result['n_pairs']} pairs; red: baseline; marker area: expression error",
                   fontsize=9)
    axes.grid(alpha=0.3)
    save_figure(figure, Path(path))
    return Path(path)
