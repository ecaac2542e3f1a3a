"""IFSR margin calibration (``facedancer calibrate-ifsr``; FaceDancer §3.3, docs/reference.md §5).

The reference's margins are, per tapped block b of the identity encoder E, the mean cosine
distance ``1 - cos(flat E_b(target), flat E_b(swap))`` over swaps made by an existing face
swapper; the authors never published the tool. Margins belong to one encoder, so every encoder
needs its own. Pairs (target, swap) come from

- a folder ``DIR/target/NAME`` + ``DIR/swap/NAME`` (``change/`` is accepted for ``swap/``, the
  reference's name) of swaps made by any swapper;
- a FaceDancer generator run over aligned faces (targets and sources of different identities);
- the built-in **blend swap** proxy, for an encoder with no swapper yet: the source's inner
  face (eyes, nose, mouth: the template region shared by all aligned crops) colour-matched and
  feathered into the target, the classic pre-GAN swap. It changes exactly the identity-bearing
  region and keeps pose, background, hair and lighting, i.e. what IFSR must preserve.

:func:`distance_report` also measures contrasting pair kinds (the same identity in another
photo, adjacent frames of one video, different identities) to show which blocks carry
attributes rather than identity.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ..data.folder import IMAGE_SUFFIXES
from ..data.pairs import FaceIndex, decode_face, load_faces
from ..errors import FacedancerError, InputError, ModelError
from ..io.atomic import atomic_write_text
from ..losses.ifsr import REFERENCE_IFSR_SCALE, block_cosine_distances

PAIR_KINDS = ("swap", "same_identity", "adjacent", "different_identity")

# ArcFace 112 template (docs/reference.md §1): eyes at y 51.6, mouth at y 92.3, nose at (56, 71.7).
_BLEND_CENTRE = (56.0 / 112, 72.0 / 112)  # (x, y) as fractions of the crop side
_BLEND_AXES = (31.0 / 112, 40.0 / 112)  # ellipse semi-axes: brows to chin, cheek to cheek
_BLEND_FEATHER = 0.25  # fraction of the radius over which the mask falls from 1 to 0


@dataclass
class CalibrationResult:
    """Per-pair block distances and the margins (their means) for one encoder."""

    encoder: str
    blocks: list[str]
    distances: dict[str, np.ndarray]
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def n_pairs(self) -> int:
        return len(next(iter(self.distances.values()))) if self.distances else 0

    @property
    def margins(self) -> dict[str, float]:
        return {b: float(np.mean(self.distances[b])) for b in self.blocks}

    def statistics(self) -> dict[str, dict[str, float]]:
        return {b: summarise(self.distances[b]) for b in self.blocks}


def summarise(values: np.ndarray) -> dict[str, float]:
    """mean, std and the 10/50/90 percentiles, rounded for JSON and tables."""
    v = np.asarray(values, dtype=np.float64)
    return {"mean": round(float(v.mean()), 6), "std": round(float(v.std()), 6),
            "p10": round(float(np.percentile(v, 10)), 6),
            "p50": round(float(np.percentile(v, 50)), 6),
            "p90": round(float(np.percentile(v, 90)), 6)}


def blend_mask(size: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """(1, 1, size, size) soft elliptical mask of the inner face of an ArcFace-aligned crop."""
    coords = (torch.arange(size, dtype=torch.float32, device=device) + 0.5) / size
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    r = torch.sqrt(((xx - _BLEND_CENTRE[0]) / _BLEND_AXES[0]) ** 2
                   + ((yy - _BLEND_CENTRE[1]) / _BLEND_AXES[1]) ** 2)
    return ((1 - r) / _BLEND_FEATHER).clamp(0, 1)[None, None]


def blend_swap(target: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    """Proxy face swap of aligned crops (B, 3, S, S) in [-1, 1]: the source's inner face with
    its per-channel mean/std matched to the target's inside the mask, feathered into the target.
    """
    mask = blend_mask(target.shape[-1], target.device)
    weight = mask / mask.sum()

    def stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean = (x * weight).sum(dim=(2, 3), keepdim=True)
        std = (((x - mean) ** 2) * weight).sum(dim=(2, 3), keepdim=True).sqrt()
        return mean, std

    t_mean, t_std = stats(target)
    s_mean, s_std = stats(source)
    matched = ((source - s_mean) / (s_std + 1e-6) * t_std + t_mean).clamp(-1, 1)
    return mask * matched + (1 - mask) * target


def sample_pairs(index: FaceIndex, kind: str, count: int, seed: int = 0
                 ) -> tuple[np.ndarray, np.ndarray]:
    """``count`` (first, second) item pairs of a pair kind (at most as many as exist).

    ``swap`` and ``different_identity``: two different identities; ``same_identity``: two
    different images of one identity; ``adjacent``: consecutive images (in name order, e.g.
    frames of one video) of one identity.
    """
    rng = np.random.default_rng([seed, 23, PAIR_KINDS.index(kind)])
    firsts, seconds = [], []
    if kind in ("swap", "different_identity"):
        if index.num_identities < 2:
            raise InputError(f"'{kind}' pairs need at least two identities in {index.description}")
        for t in rng.permutation(len(index))[:count]:
            others = np.flatnonzero(index.identity != index.identity[t])
            firsts.append(t)
            seconds.append(rng.choice(others))
    else:
        candidates = []
        for ident in np.unique(index.identity):
            items = np.flatnonzero(index.identity == ident)
            items = items[np.argsort([index.names[i] for i in items])]
            if kind == "adjacent":
                candidates += list(zip(items[:-1], items[1:], strict=True))
            else:
                candidates += [(a, b) for i, a in enumerate(items) for b in items[i + 1:]]
        if not candidates:
            raise InputError(f"'{kind}' pairs need identities with two or more images in "
                             f"{index.description}")
        for j in rng.permutation(len(candidates))[:count]:
            firsts.append(candidates[j][0])
            seconds.append(candidates[j][1])
    return np.asarray(firsts, dtype=np.int64), np.asarray(seconds, dtype=np.int64)


@torch.no_grad()
def pair_distances(encoder, pairs: Iterable[tuple[torch.Tensor, torch.Tensor]],
                   blocks: list[str], crop_shrink: float = 1.0, total: int | None = None,
                   progress: bool = True) -> dict[str, np.ndarray]:
    """Per-pair cosine distance of each block over batches of (targets, swaps) in [-1, 1]."""
    device = next(encoder.parameters()).device
    out: dict[str, list[np.ndarray]] = {b: [] for b in blocks}
    with tqdm(total=total, unit="pair", desc="calibrate", disable=not progress,
              file=sys.stderr) as bar:
        for targets, swaps in pairs:
            f_t = encoder.features(targets.to(device), blocks, crop_shrink=crop_shrink)
            f_s = encoder.features(swaps.to(device), blocks, crop_shrink=crop_shrink)
            for b, d in block_cosine_distances(f_t, f_s, blocks).items():
                out[b].append(d.float().cpu().numpy())
            bar.update(len(targets))
    if not out[blocks[0]]:
        raise InputError("no pairs to calibrate on")
    return {b: np.concatenate(v) for b, v in out.items()}


def _batches(n: int, batch_size: int) -> Iterator[slice]:
    for start in range(0, n, batch_size):
        yield slice(start, min(n, start + batch_size))


def index_pairs(index: FaceIndex, kind: str, count: int, image_size: int, seed: int = 0,
                batch_size: int = 16, generator=None, encoder=None, crop_shrink: float = 1.0
                ) -> tuple[Iterator[tuple[torch.Tensor, torch.Tensor]], int]:
    """(batches of (target, second image), number of pairs) for a pair kind over ``index``.

    For ``swap`` the second image is a swap of the target with the sampled source: by
    ``generator`` (fed ``encoder.embed(source)``) when given, else :func:`blend_swap`.
    """
    firsts, seconds = sample_pairs(index, kind, count, seed)

    def gen() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for sl in _batches(len(firsts), batch_size):
            a = load_faces(index, firsts[sl], image_size)
            b = load_faces(index, seconds[sl], image_size)
            if kind == "swap":
                if generator is not None:
                    device = next(generator.parameters()).device
                    with torch.no_grad():
                        z = encoder.embed(b.to(device), crop_shrink=crop_shrink)
                        b = generator(a.to(device), z).float().clamp(-1, 1).cpu()
                else:
                    b = blend_swap(a, b)
            yield a, b

    return gen(), len(firsts)


def folder_pairs(pairs_dir: str | Path, image_size: int, batch_size: int = 16
                 ) -> tuple[Iterator[tuple[torch.Tensor, torch.Tensor]], int]:
    """Batches of (target, swap) from ``DIR/target/NAME`` and ``DIR/swap/NAME`` (or
    ``DIR/change/NAME``), matched by file name."""
    root = Path(pairs_dir)
    target_dir = root / "target"
    swap_dir = next((root / n for n in ("swap", "change") if (root / n).is_dir()), None)
    if not target_dir.is_dir() or swap_dir is None:
        raise InputError("expected sub-folders target/ and swap/ (or change/) of aligned crops "
                         "with matching file names", root)
    names = sorted(p.name for p in target_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    missing = [n for n in names if not (swap_dir / n).is_file()]
    if missing:
        raise InputError(f"{len(missing)} target(s) have no swap with the same name "
                         f"(e.g. {missing[0]})", swap_dir)
    if not names:
        raise InputError("no images in target/", root)

    def load(folder: Path, batch: list[str]) -> torch.Tensor:
        arrays = [decode_face((folder / n).read_bytes(), image_size, str(folder / n))
                  for n in batch]
        return (torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() - 127.5) / 127.5

    def gen() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for sl in _batches(len(names), batch_size):
            yield load(target_dir, names[sl]), load(swap_dir, names[sl])

    return gen(), len(names)


def distance_report(encoder, index: FaceIndex, kinds: Iterable[str] = PAIR_KINDS,
                    count: int = 200, image_size: int = 160, blocks: list[str] | None = None,
                    seed: int = 0, batch_size: int = 16, crop_shrink: float = 1.0,
                    progress: bool = False) -> dict[str, dict[str, np.ndarray]]:
    """Per-pair block distances for several pair kinds (kinds with no pairs are skipped)."""
    blocks = list(blocks or encoder.contract.feature_blocks)
    report = {}
    for kind in kinds:
        try:
            pairs, n = index_pairs(index, kind, count, image_size, seed, batch_size)
        except InputError:
            continue
        report[kind] = pair_distances(encoder, pairs, blocks, crop_shrink, n, progress)
    return report


def calibrate(encoder, pairs: Iterable[tuple[torch.Tensor, torch.Tensor]],
              blocks: list[str] | None = None, crop_shrink: float = 1.0,
              total: int | None = None, provenance: dict[str, Any] | None = None,
              progress: bool = True) -> CalibrationResult:
    """Margins = mean target-to-swap distance per block (default: the contract's IFSR blocks)."""
    blocks = list(blocks or encoder.contract.ifsr_blocks)
    unknown = [b for b in blocks if b not in encoder.contract.feature_blocks]
    if unknown:
        raise ModelError(f"encoder '{encoder.contract.name}' has no block(s) "
                         f"{', '.join(unknown)}")
    distances = pair_distances(encoder, pairs, blocks, crop_shrink, total, progress)
    for b, d in distances.items():
        if not np.isfinite(d).all():
            raise FacedancerError(f"non-finite distances in block {b} (blank images?)")
    return CalibrationResult(encoder.contract.name, blocks, distances, dict(provenance or {}))


def margins_document(result: CalibrationResult, scale: float = REFERENCE_IFSR_SCALE
                     ) -> dict[str, Any]:
    """The JSON written for an encoder: ``{"encoder", "margins", "scale", "data"}``."""
    data = dict(result.provenance)
    data.setdefault("created", time.strftime("%Y-%m-%d"))
    data["pairs"] = result.n_pairs
    data["distributions"] = result.statistics()
    return {"encoder": result.encoder,
            "margins": {b: round(m, 6) for b, m in result.margins.items()},
            "scale": scale, "data": data}


def write_margins(result: CalibrationResult, encoder, out: str | Path | None = None,
                  scale: float = REFERENCE_IFSR_SCALE,
                  encoder_dir: str | Path | None = None) -> Path:
    """Write the margins into the encoder's configuration (or ``out``).

    Named encoders read ``contract.margins_file`` (e.g. ``assets/ifsr_margins/facenet.json``);
    a converted encoder directory keeps them in its ``config.json`` (``ifsr_margins``, with
    ``ifsr_margins_data`` recording how they were obtained).
    """
    document = margins_document(result, scale)
    if out is not None:
        path = Path(out)
        if path.is_dir() and (path / "config.json").is_file():
            return _write_into_config(path / "config.json", document)
        atomic_write_text(path, json.dumps(document, indent=2) + "\n")
        return path
    if encoder.contract.margins_file:
        path = Path(encoder.contract.margins_file)
        atomic_write_text(path, json.dumps(document, indent=2) + "\n")
        return path
    if encoder_dir is not None and (Path(encoder_dir) / "config.json").is_file():
        return _write_into_config(Path(encoder_dir) / "config.json", document)
    raise FacedancerError(f"encoder '{encoder.contract.name}' has no margins file of its own; "
                          "pass --out FILE.json (or the encoder's model directory)")


def _write_into_config(config_path: Path, document: dict[str, Any]) -> Path:
    try:
        config = json.loads(config_path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read encoder config ({exc})", config_path) from exc
    config["ifsr_margins"] = document["margins"]
    config["ifsr_margins_data"] = {"scale": document["scale"], **document["data"]}
    atomic_write_text(config_path, json.dumps(config, indent=2) + "\n")
    return config_path


def format_table(report: dict[str, dict[str, np.ndarray]], blocks: list[str]) -> str:
    """A text table: one row per block, ``mean ± std`` per pair kind."""
    kinds = list(report)
    width = max(len(b) for b in blocks)
    lines = [f"{'block':<{width}}  " + "  ".join(f"{k:>20}" for k in kinds)]
    for b in blocks:
        cells = []
        for k in kinds:
            v = report[k][b]
            cells.append(f"{v.mean():9.4f} ± {v.std():<8.4f}")
        lines.append(f"{b:<{width}}  " + "  ".join(f"{c:>20}" for c in cells))
    counts = ", ".join(f"{k}: {len(next(iter(report[k].values())))}" for k in kinds)
    lines.append(f"(pairs per kind: {counts})")
    return "\n".join(lines)

