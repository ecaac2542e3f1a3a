"""Evaluation reports: JSON, a Markdown table in the paper's layout, histograms, example grid.

Files written into the report folder (all atomically):

- ``report.json``: everything (settings, metrics, baselines, one record per pair);
- ``report.md``: the paper's Table (ID retrieval, pose, expression, FID) for this model, the
  identity cosines per encoder, and what each substitute metric measures;
- ``plots/<metric>.png``: per-pair histograms (pose error, expression error, identity cosines
  per encoder, rank of the source identity), each with its target-vs-source baseline;
- ``examples.png``: source | target | swap for the first pairs, labelled as synthetic.
"""

from __future__ import annotations

import io
import json
import math
import re
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from ..io.atomic import atomic_write_bytes, atomic_write_text
from ..io.images import read_image, write_image

SYNTHETIC_LABEL = "synthetic media: swaps made by facedancer-torch"


def format_value(value, digits: int = 2, percent: bool = False) -> str:
    """A number for a report table: ``digits`` decimals (times 100 with " %" when
    ``percent``); "n/a" for None, NaN or infinity."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{100 * value:.{digits}f} %" if percent else f"{value:.{digits}f}"


def markdown_report(report: dict) -> str:
    """The Markdown summary of a report dictionary (see :func:`write_report`)."""
    m = report["metrics"]
    ident, pose, expr = m["id_retrieval"], m["pose_error_deg"], m["expression_error"]
    fd, kid = m["fd_nonstandard"], m["kid_nonstandard"]
    cast = m.get("color_cast")  # reports written before the metric existed have none
    swaps = report.get("swaps", {})
    model = swaps.get("model") or swaps.get("precomputed_swaps") or "?"
    name = Path(str(model)).name or str(model)
    kid_text = "n/a" if kid["mean"] is None else f"{kid['mean']:.4f} ± {kid['std']:.4f}"
    lines = [
        f"# Evaluation of `{name}`",
        "",
        f"Test set: {report['testset']['images']} images of {report['testset']['identities']} "
        f"identities (`{report['testset']['path']}`); {report['pairing']['pairs']} pairs, "
        f"pairing seed {report['pairing']['seed']}. The swaps are {SYNTHETIC_LABEL.split(': ')[0]}.",
        "",
        "| model | ID retrieval top-1 ↑ | top-5 ↑ | pose ↓ (deg) | expression ↓ (% IOD) "
        "| colour cast ↓ (% face px) | FD* ↓ | KID* ↓ |",
        "|---|---|---|---|---|---|---|---|",
        f"| {name} | {format_value(ident['top1'], percent=True)} | {format_value(ident['top5'], percent=True)} "
        f"| {format_value(pose['mean'])} | {format_value(expr['mean'])} "
        f"| {format_value(cast['mean'] if cast else None, 3, percent=True)} "
        f"| {format_value(fd['value'], 4)} | {kid_text} |",
        f"| *baseline: target vs source* | {format_value(ident['chance_top1'], percent=True)} (chance) "
        f"| {format_value(ident['chance_top5'], percent=True)} (chance) "
        f"| {format_value(pose['baseline_target_source']['mean'])} "
        f"| {format_value(expr['baseline_target_source']['mean'])} | | | |",
        "",
        "Paper (FaceForensics++, config C): ID 98.57 %, pose 2.27, expression 7.98, with "
        "HopeNet, a 3D expression network and CosFace; the columns above use the substitutes "
        "below, so compare their numbers with each other, not with the paper's.",
        "",
        f"- **ID retrieval**: the source identity is the nearest (top-1) / among the 5 nearest "
        f"of {ident['identities']} identity centres of the real test images, with "
        f"{ident['network']}'s face descriptor (not used by any generator here). The swap "
        f"retrieves its *target* identity in {format_value(ident['target_top1'], percent=True)} of "
        "the pairs.",
        f"- **Pose**: {pose['method']}; median {format_value(pose['median'])}.",
        f"- **Expression**: {expr['method']}, in {expr['unit']}; median {format_value(expr['median'])}.",
        *([f"- **Colour cast**: {cast['method']}; median "
           f"{format_value(cast['median'], 3, percent=True)}, pairs above 1 %: "
           f"{format_value(cast['pairs_over_1pct'], 1, percent=True)}."] if cast else []),
        f"- **FD\\*, KID\\***: {fd['note']} ({fd['encoder']}, {fd['n_swaps']} swaps vs "
        f"{fd['n_real']} real crops; KID kernel {kid['kernel']}). {m['fid']['note']}.",
        "",
        "## Identity cosine similarity (mean over pairs)",
        "",
        "| encoder | swap → source ↑ | swap → target | source → target (baseline) |",
        "|---|---|---|---|",
    ]
    for encoder, values in m["identity_cosine"].items():
        lines.append(f"| {encoder} | {format_value(values['swap_source'], 3)} "
                     f"| {format_value(values['swap_target'], 3)} | {format_value(values['source_target'], 3)} |")
    lines += ["", "A swap that only reconstructs its target scores high on swap → target and "
              "stays near the baseline on swap → source.", "",
              "## ID retrieval by network", "",
              "| network | top-1 | top-5 | target top-1 |", "|---|---|---|---|"]
    for network, values in ident["by_network"].items():
        lines.append(f"| {network} | {format_value(values['top1'], percent=True)} "
                     f"| {format_value(values['top5'], percent=True)} "
                     f"| {format_value(values['target_top1'], percent=True)} |")
    lines += ["", "Retrieval with the generator's own identity encoder is not independent of "
              "training; the headline number uses dlib.", "",
              "Plots: `plots/`; examples: `examples.png`.", ""]
    return "\n".join(lines)


def save_figure(figure, path: Path) -> None:
    """A matplotlib Figure as PNG, written atomically."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight",
                   metadata={"Software": "facedancer-torch evaluate"})
    atomic_write_bytes(path, buffer.getvalue())


def _histogram(path: Path, title: str, xlabel: str, series: dict[str, np.ndarray]) -> None:
    # The object-oriented API draws with Agg without touching pyplot's global backend; imported
    # here because matplotlib is the optional [eval] extra.
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 4))
    axes = figure.subplots()
    values = np.concatenate([np.asarray(v, dtype=np.float64) for v in series.values()])
    low, high = float(values.min()), float(values.max())
    if high - low < 1e-9:
        low, high = low - 0.5, high + 0.5
    bins = np.linspace(low, high, 31)
    for label, data in series.items():
        axes.hist(data, bins=bins, alpha=0.55, label=f"{label} (mean {np.mean(data):.3g})")
    axes.set_title(title)
    axes.set_xlabel(xlabel)
    axes.set_ylabel("pairs")
    axes.legend(fontsize=8)
    save_figure(figure, path)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def write_plots(report: dict, plots_dir: Path) -> list[Path]:
    """Per-metric histograms of the report's samples; returns the files written."""
    samples = report["samples"]
    written = []

    def column(key):
        return np.array([s[key] for s in samples], dtype=np.float64)

    path = plots_dir / "pose_error.png"
    _histogram(path, "Head-pose error (geodesic)", "degrees",
               {"swap vs target": column("pose_error_deg"),
                "source vs target (baseline)": column("pose_baseline_deg")})
    written.append(path)
    path = plots_dir / "expression_error.png"
    _histogram(path, "Expression error", "% of inter-ocular distance",
               {"swap vs target": column("expression_error"),
                "source vs target (baseline)": column("expression_baseline")})
    written.append(path)
    path = plots_dir / "source_rank.png"
    _histogram(path, f"Rank of the source identity ({report['metrics']['id_retrieval']['network']})",
               "rank (1 = retrieved)", {"source identity": column("source_rank"),
                                        "target identity": column("target_rank")})
    written.append(path)
    for encoder in report["metrics"]["identity_cosine"]:
        values = {key: np.array([s["cosine"][encoder][key] for s in samples])
                  for key in ("swap_source", "swap_target", "source_target")}
        path = plots_dir / f"cosine_{_safe(encoder)}.png"
        _histogram(path, f"Identity cosine similarity ({encoder})", "cosine",
                   {"swap → source": values["swap_source"], "swap → target": values["swap_target"],
                    "source → target (baseline)": values["source_target"]})
        written.append(path)
    return written


def example_grid(rows: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]], tile: int = 160,
                 shrink: float = 0.5, view_shrink: float = 0.75) -> np.ndarray:
    """An RGB grid with one ``source | target | swap`` row per triple of aligned crops.

    Each crop (aligned with ``shrink``) is shown around the face, framed as a crop with
    ``view_shrink``; a header names the columns and a footer labels the swaps as synthetic.
    """
    def view(image: np.ndarray) -> np.ndarray:
        size = image.shape[0]
        side = max(1, round(size * min(1.0, shrink / view_shrink)))
        top = (size - side) // 2
        part = image[top:top + side, top:top + side]
        return cv2.resize(part, (tile, tile), interpolation=cv2.INTER_AREA)

    header = np.full((28, 3 * tile, 3), 255, dtype=np.uint8)
    for column, label in enumerate(("source", "target", "swap")):
        cv2.putText(header, label, (column * tile + 8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6,
                    (0, 0, 0), 1, cv2.LINE_AA)
    body = [np.concatenate([view(s), view(t), view(w)], axis=1) for s, t, w in rows]
    footer = np.full((22, 3 * tile, 3), 255, dtype=np.uint8)
    cv2.putText(footer, SYNTHETIC_LABEL, (6, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (90, 0, 0), 1,
                cv2.LINE_AA)
    return np.concatenate([header, *body, footer], axis=0)


def write_report(report: dict, testset, pairs, out_dir: str | Path, examples: int = 8) -> dict:
    """Write ``report.json``, ``report.md``, ``plots/`` and ``examples.png`` into ``out_dir``.

    ``report["files"]`` is filled with the paths written (relative to ``out_dir``).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = write_plots(report, out_dir / "plots")
    files = {"markdown": "report.md", "plots": [p.relative_to(out_dir).as_posix() for p in plots]}
    if examples > 0:
        rows = [(testset.read(p.source), testset.read(p.target), read_image(p.swap))
                for p in pairs[:examples]]
        grid = example_grid(rows, shrink=testset.shrink)
        write_image(out_dir / "examples.png", grid,
                    metadata={"synthetic": "true", "description": SYNTHETIC_LABEL})
        files["examples"] = "examples.png"
    report["files"] = files
    atomic_write_text(out_dir / "report.md", markdown_report(report))
    atomic_write_text(out_dir / "report.json", json.dumps(report, indent=1) + "\n")
    return report
