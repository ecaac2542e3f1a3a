"""Align a whole dataset of images and videos into face crops (``facedancer align``).

The reference's ``crop_align`` made robust and scalable: detect (RetinaFace), align each face
to the ArcFace template (docs/reference.md §1) and write ``im_size`` crops, mirroring the input
folder structure (``DATASET/<identity>/<file>`` or a flat folder).

- Never stops on a bad file: each input gets one JSON line in ``OUTPUT/align_report*.jsonl``
  with its status (``aligned``, ``too_small``, ``no_face``, ``unreadable``, ``ignored``,
  ``error``) and the reason.
- Resumable: inputs already in a report are skipped; crops are written atomically and the
  report line only after them, so an interrupted run loses at most the inputs in flight.
- Scales out: ``workers`` processes decode/detect/warp in parallel; ``partition=(i, N)`` (or
  torchrun's ``RANK``/``WORLD_SIZE``) gives each process the disjoint slice ``inputs[i::N]``
  of the sorted input list, each with its own report file.

Output names (relative to OUTPUT, suffix from ``out_format``):
  image, ``faces="largest"``   ``<dir>/<stem>.png``
  image, ``faces="all"``       ``<dir>/<stem>_f<k>.png`` (k = 0, 1, ... by detector score)
  video frame t                ``<dir>/<stem>_t<tttttt>.png`` (+ ``_f<k>`` with ``faces="all"``)
Two inputs with the same stem in one folder (``a.jpg``, ``a.png``) become ``a_jpg``/``a_png``.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from ..errors import FacedancerError, InputError
from ..faces.align import align_face
from ..faces.detect import DEFAULT_SCORE_THRESHOLD, get_detector, largest_face
from ..io.atomic import atomic_write_text, check_writable
from ..io.images import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, read_image, write_image
from ..io.video import VideoReader

REPORT_PREFIX = "align_report"
CONFIG_NAME = "align_config.json"
STATUSES = ("aligned", "too_small", "no_face", "unreadable", "ignored", "error")
OUTPUT_FORMATS = ("png", "jpg", "webp")
_VIDEO_BATCH = 8  # frames per detector call: amortises onnxruntime's per-call overhead
# 4096 px crops are 16x the paper's 1024 HQ faces; 100000 would allocate 30 GB per crop.
MAX_IM_SIZE = 4096


@dataclass(frozen=True)
class AlignSettings:
    """Everything that decides what a crop looks like (saved as ``align_config.json``).

    A rerun into the same OUTPUT must use the same settings, otherwise resumed and new crops
    would silently differ.
    """

    im_size: int = 256
    min_size: int = 128
    shrink_factor: float = 1.0
    faces: str = "largest"  # "largest" or "all"
    video_stride: int = 10
    out_format: str = "png"
    detector: str = "retinaface"
    score_threshold: float | None = None  # None: the detector's default
    max_side: int = 640
    min_face_size: float = 0.0

    def validate(self) -> None:
        # Ranges are written "not inside" so that NaN (which fails every comparison) is refused.
        if not 16 <= self.im_size <= MAX_IM_SIZE:
            raise FacedancerError(f"--im-size must be in 16..{MAX_IM_SIZE}, got {self.im_size}")
        if self.min_size < 0:
            raise FacedancerError(f"--min-size must be >= 0, got {self.min_size}")
        if not 0.0 < self.shrink_factor <= 1.0:
            raise FacedancerError(f"--shrink-factor must be in (0, 1], got {self.shrink_factor}")
        if self.score_threshold is not None and not 0.0 < self.score_threshold < 1.0:
            raise FacedancerError(f"--score-threshold is a confidence in (0, 1), got "
                                  f"{self.score_threshold}")
        if not 32 <= self.max_side <= 16384:
            raise FacedancerError(f"--max-side must be in 32..16384, got {self.max_side}")
        if not (math.isfinite(self.min_face_size) and self.min_face_size >= 0):
            raise FacedancerError(f"--min-face-size must be a size in pixels >= 0, got "
                                  f"{self.min_face_size}")
        if self.faces not in ("largest", "all"):
            raise FacedancerError(f"--faces must be 'largest' or 'all', got '{self.faces}'")
        if self.video_stride < 1:
            raise FacedancerError(f"--video-stride must be >= 1, got {self.video_stride}")
        if self.out_format not in OUTPUT_FORMATS:
            raise FacedancerError(f"--format must be one of {', '.join(OUTPUT_FORMATS)}, got "
                                  f"'{self.out_format}'")


@dataclass
class AlignCounts:
    """Per-input outcome counts of one partition (earlier resumed runs included)."""

    read: int = 0          # decoded successfully (aligned + too_small + no_face)
    aligned: int = 0       # at least one crop written
    too_small: int = 0
    no_face: int = 0
    unreadable: int = 0
    ignored: int = 0       # not an image or video suffix
    error: int = 0         # unexpected failures (bugs): reported, never fatal
    crops: int = 0
    resumed: int = 0       # skipped in this run because an earlier run finished them

    def summary(self) -> str:
        return (f"read {self.read}, aligned {self.aligned} ({self.crops} crops), too small "
                f"{self.too_small}, no face {self.no_face}, unreadable {self.unreadable}, "
                f"ignored {self.ignored}, errors {self.error}; {self.resumed} resumed from "
                "earlier runs")


# -- partitioning ---------------------------------------------------------------------------
def parse_partition(text: str) -> tuple[int, int]:
    """``"i/N"`` -> ``(i, N)`` with ``0 <= i < N``."""
    try:
        index_text, count_text = text.split("/")
        index, count = int(index_text), int(count_text)
    except ValueError:
        raise FacedancerError(f"--partition must look like i/N (e.g. 0/4), got '{text}'") from None
    if count < 1 or not 0 <= index < count:
        raise FacedancerError(f"--partition {text}: need 0 <= i < N")
    return index, count


def partition_from_env() -> tuple[int, int]:
    """``(RANK, WORLD_SIZE)`` as set by torchrun, or ``(0, 1)``."""
    try:
        rank = int(os.environ.get("RANK", "0"))
        world = int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise FacedancerError("RANK and WORLD_SIZE must be integers") from None
    if world < 1 or not 0 <= rank < world:
        raise FacedancerError(f"bad RANK={rank} / WORLD_SIZE={world}")
    return rank, world


def report_path(output_dir: Path, partition: tuple[int, int]) -> Path:
    index, count = partition
    name = f"{REPORT_PREFIX}.jsonl" if count == 1 else f"{REPORT_PREFIX}.{index}-of-{count}.jsonl"
    return Path(output_dir) / name


# -- discovery ------------------------------------------------------------------------------
def discover_inputs(input_dir: Path, output_dir: Path | None = None) -> list[str]:
    """All non-hidden files under ``input_dir`` as sorted POSIX relative paths.

    Sorted so that every process of a partitioned run sees the same order. ``output_dir`` is
    excluded when it lies inside ``input_dir``.
    """
    input_dir = Path(input_dir)
    exclude = Path(output_dir).resolve() if output_dir is not None else None
    found: list[str] = []
    seen: set[Path] = set()  # followed symlinks could form a cycle
    for root, dirs, files in os.walk(input_dir, followlinks=True):
        root_path = Path(root)
        real = root_path.resolve()
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                         and (exclude is None or (root_path / d).resolve() != exclude))
        rel_root = root_path.relative_to(input_dir)
        for name in files:
            if not name.startswith("."):
                found.append((rel_root / name).as_posix())
    found.sort()
    return found


def output_stems(inputs: list[str]) -> dict[str, str]:
    """Relative output stems (no suffix) for inputs whose ``<dir>/<stem>`` is shared.

    Only colliding inputs appear in the result; every other input keeps ``<dir>/<stem>``.
    """
    groups: dict[str, list[str]] = {}
    for rel in inputs:
        path = Path(rel)
        if path.suffix.lower() in IMAGE_EXTENSIONS | VIDEO_EXTENSIONS:
            groups.setdefault(path.with_suffix("").as_posix(), []).append(rel)
    overrides = {}
    for stem, members in groups.items():
        if len(members) > 1:
            for rel in members:
                overrides[rel] = f"{stem}_{Path(rel).suffix[1:].lower()}"
    return overrides


def read_reports(output_dir: Path) -> dict[str, dict]:
    """Every record of every ``align_report*.jsonl`` in ``output_dir``, by input path.

    Lines that do not parse (a crash mid-write) are ignored: their inputs run again.
    """
    records: dict[str, dict] = {}
    for path in sorted(Path(output_dir).glob(f"{REPORT_PREFIX}*.jsonl")):
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict) and isinstance(record.get("input"), str):
                    records[record["input"]] = record
    return records


def _check_config(output_dir: Path, settings: AlignSettings) -> None:
    path = output_dir / CONFIG_NAME
    wanted = asdict(settings)
    if path.exists():
        try:
            existing = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            existing = None
        if isinstance(existing, dict) and existing != wanted:
            changed = sorted(k for k in wanted if existing.get(k) != wanted[k])
            raise FacedancerError(
                f"OUTPUT was aligned with other settings (changed: {', '.join(changed)}); use "
                "the same options to resume, or a new output folder", path)
        if existing == wanted:
            return
    atomic_write_text(path, json.dumps(wanted, indent=2, sort_keys=True) + "\n")


# -- per-input work -------------------------------------------------------------------------
def _reason(exc: BaseException) -> str:
    text = str(exc)
    path = getattr(exc, "path", None)
    if path is not None and text.startswith(f"{path}: "):
        text = text[len(f"{path}: "):]
    return " ".join(text.split()) or type(exc).__name__


class Aligner:
    """Detects, aligns and writes the crops of one input file at a time (one per process)."""

    def __init__(self, input_dir: Path, output_dir: Path, settings: AlignSettings,
                 device: str = "auto", threads: int = 0,
                 stem_overrides: dict[str, str] | None = None):
        self.input_dir = Path(input_dir)
        self.output_dir = Path(output_dir)
        self.settings = settings
        self.stem_overrides = stem_overrides or {}
        threshold = settings.score_threshold
        self.detector = get_detector(
            settings.detector,
            score_threshold=DEFAULT_SCORE_THRESHOLD if threshold is None else threshold,
            max_side=settings.max_side, min_face_size=settings.min_face_size, device=device,
            threads=threads)

    def _big_enough(self, width: int, height: int) -> bool:
        # The reference keeps an image only if both sides are strictly above min_size.
        return width > self.settings.min_size and height > self.settings.min_size

    def _too_small_reason(self, width: int, height: int) -> str:
        return (f"{width}x{height} is not larger than --min-size {self.settings.min_size} on "
                "both sides")

    def _select(self, faces: list) -> list:
        if self.settings.faces == "largest":
            face = largest_face(faces)
            return [] if face is None else [face]
        return list(faces)

    def _write_crops(self, rel: str, image: np.ndarray, faces: list, stem: str,
                     frame: int | None) -> list[str]:
        written = []
        suffix = "." + self.settings.out_format
        for k, face in enumerate(self._select(faces)):
            try:
                crop, matrix = align_face(image, face.landmarks, self.settings.im_size,
                                          self.settings.shrink_factor)
            except ValueError:
                continue  # degenerate landmarks: nothing sensible to crop
            name = stem
            if frame is not None:
                name += f"_t{frame:06d}"
            if self.settings.faces == "all":
                name += f"_f{k}"
            out_rel = name + suffix
            metadata = {
                "source": rel, "face_index": str(k), "score": f"{face.score:.4f}",
                "box": json.dumps([round(float(v), 2) for v in face.box]),
                "landmarks": json.dumps(np.round(face.landmarks, 2).tolist()),
                "matrix": json.dumps(matrix.tolist()),
                "im_size": str(self.settings.im_size),
                "shrink_factor": str(self.settings.shrink_factor),
                "detector": self.settings.detector,
            }
            if frame is not None:
                metadata["frame"] = str(frame)
            write_image(self.output_dir / out_rel, crop, metadata)
            written.append(out_rel)
        return written

    def process(self, rel: str) -> dict:
        """Align one input; returns its report record. Never raises for a bad input."""
        started = time.perf_counter()
        suffix = Path(rel).suffix.lower()
        stem = self.stem_overrides.get(rel, Path(rel).with_suffix("").as_posix())
        try:
            if suffix in IMAGE_EXTENSIONS:
                record = self._process_image(rel, stem)
            elif suffix in VIDEO_EXTENSIONS:
                record = self._process_video(rel, stem)
            else:
                record = {"status": "ignored", "reason": f"'{suffix or rel}' is not an image "
                          "or video suffix"}
        except InputError as exc:
            record = {"status": "unreadable", "reason": _reason(exc)}
        except MemoryError:
            record = {"status": "unreadable", "reason": "not enough memory to decode"}
        except Exception as exc:  # a bug must not end a 3-million-image run; it is reported
            record = {"status": "error", "reason": f"{type(exc).__name__}: {_reason(exc)}"}
        record = {"input": rel, **record}
        record.setdefault("outputs", [])
        record["seconds"] = round(time.perf_counter() - started, 4)
        return record

    def _process_image(self, rel: str, stem: str) -> dict:
        image = read_image(self.input_dir / rel)
        height, width = image.shape[:2]
        info = {"width": width, "height": height}
        if not self._big_enough(width, height):
            return {"status": "too_small", "reason": self._too_small_reason(width, height),
                    **info}
        faces = self.detector.detect(image)
        if not faces:
            return {"status": "no_face", "reason": "no face detected", "faces": 0, **info}
        outputs = self._write_crops(rel, image, faces, stem, frame=None)
        if not outputs:
            return {"status": "no_face", "reason": "faces found but none could be aligned",
                    "faces": len(faces), **info}
        return {"status": "aligned", "faces": len(faces), "outputs": outputs, **info}

    def _frames(self, rel: str) -> Iterator[tuple[int, np.ndarray]]:
        """Every ``video_stride``-th frame, upright RGB uint8, with its index (the swap's
        reader: same rotation rules, same truncation check)."""
        with VideoReader(self.input_dir / rel, stride=self.settings.video_stride,
                         prefetch=2) as reader:
            for frame in reader:
                yield frame.index, frame.rgb

    def _process_video(self, rel: str, stem: str) -> dict:
        outputs: list[str] = []
        sampled = with_face = 0
        info: dict = {}
        reason = None
        pending: list[tuple[int, np.ndarray]] = []

        def flush() -> None:
            nonlocal with_face
            detections = self.detector.detect_batch([image for _, image in pending])
            for (index, image), faces in zip(pending, detections):
                if faces:
                    with_face += 1
                    outputs.extend(self._write_crops(rel, image, faces, stem, frame=index))
            pending.clear()

        frames = self._frames(rel)
        try:
            while True:
                try:
                    item = next(frames, None)
                except Exception as exc:  # decode error mid-stream: keep what was aligned
                    if sampled == 0:
                        if isinstance(exc, InputError):
                            raise
                        raise InputError(f"not a readable video ({_reason(exc)})",
                                         self.input_dir / rel) from exc
                    reason = f"decoding stopped after {sampled} sampled frames: {_reason(exc)}"
                    break
                if item is None:
                    break
                index, image = item
                if not info:
                    height, width = image.shape[:2]
                    info = {"width": width, "height": height}
                    if not self._big_enough(width, height):
                        return {"status": "too_small",
                                "reason": self._too_small_reason(width, height), **info}
                sampled += 1
                pending.append((index, image))
                if len(pending) == _VIDEO_BATCH:
                    flush()
        finally:
            frames.close()
        if pending:
            flush()
        info.update(frames_sampled=sampled, frames_with_face=with_face)
        if sampled == 0:
            return {"status": "unreadable", "reason": "video has no decodable frames", **info}
        if not outputs:
            return {"status": "no_face", "reason": reason or "no face in any sampled frame",
                    **info}
        record = {"status": "aligned", "outputs": outputs, **info}
        if reason:
            record["reason"] = reason
        return record


# -- worker processes -----------------------------------------------------------------------
_WORKER: Aligner | None = None


def _init_worker(args: tuple) -> None:
    global _WORKER
    cv2.setNumThreads(1)  # parallelism comes from the processes
    _WORKER = Aligner(*args)


def _work(rel: str) -> dict:
    assert _WORKER is not None
    return _WORKER.process(rel)


def _iter_records(todo: list[str], aligner: Aligner, aligner_args: tuple,
                  workers: int) -> Iterator[dict]:
    if workers <= 1 or len(todo) <= 1:
        for rel in todo:
            yield aligner.process(rel)
        return

    # spawn: no fork of a process that may hold onnxruntime/OpenMP threads.
    context = multiprocessing.get_context("spawn")
    window = workers * 4  # bounded queue: millions of inputs never sit in memory as futures
    with ProcessPoolExecutor(max_workers=workers, mp_context=context,
                             initializer=_init_worker, initargs=(aligner_args,)) as pool:
        pending: dict = {}
        queue = iter(todo)
        try:
            while True:
                while len(pending) < window:
                    rel = next(queue, None)
                    if rel is None:
                        break
                    pending[pool.submit(_work, rel)] = rel
                if not pending:
                    break
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    pending.pop(future)
                    yield future.result()
        except BrokenProcessPool as exc:
            raise FacedancerError(
                "a worker process died (crash or out of memory) while aligning one of: "
                f"{', '.join(sorted(pending.values())[:5])}; rerun the same command to resume "
                "(finished inputs are skipped), with --workers 1 to find the culprit") from exc


def _available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def count_records(records: list[dict]) -> AlignCounts:
    """Tally report records into :class:`AlignCounts`."""
    counts = AlignCounts()
    tally = Counter(record.get("status") for record in records)
    for status in STATUSES:
        setattr(counts, status, tally.get(status, 0))
    counts.read = counts.aligned + counts.too_small + counts.no_face
    counts.crops = sum(len(record.get("outputs") or []) for record in records)
    return counts


def align_dataset(input_dir: str | Path, output_dir: str | Path,
                  settings: AlignSettings = AlignSettings(), *, workers: int = 1,
                  partition: tuple[int, int] | None = None, device: str = "auto",
                  progress: bool = True) -> AlignCounts:
    """Align every image and video under ``input_dir`` into ``output_dir`` (see module doc).

    Args:
        partition: ``(i, N)``: process only ``inputs[i::N]``; default torchrun's
            ``(RANK, WORLD_SIZE)`` or ``(0, 1)``.
        workers: parallel processes (each runs its own detector with ``cores / workers``
            threads).
        progress: show a progress bar (inputs/s) on stderr.

    Returns:
        Counts over this partition's inputs, including those finished by earlier runs.
    """
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    settings.validate()
    if not input_dir.is_dir():
        raise FacedancerError("input folder does not exist or is not a folder", input_dir)
    if input_dir.resolve() == output_dir.resolve():
        raise FacedancerError("OUTPUT must differ from INPUT", output_dir)
    if workers < 1:
        raise FacedancerError(f"--workers must be >= 1, got {workers}")
    partition = partition or partition_from_env()
    check_writable(output_dir, folder=True)
    inputs = discover_inputs(input_dir, output_dir)
    if not inputs:
        raise FacedancerError("no files to align in this folder", input_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    _check_config(output_dir, settings)

    mine = inputs[partition[0]::partition[1]]
    done = read_reports(output_dir)
    todo = [rel for rel in mine if rel not in done]
    resumed = len(mine) - len(todo)
    overrides = output_stems(inputs)

    threads = max(1, _available_cores() // workers) if workers > 1 else 0
    aligner_args = (input_dir, output_dir, settings, device, threads, overrides)
    # Built here even when the workers build their own: a bad option (device, detector)
    # fails now, as one line, not inside a worker process.
    local = Aligner(*aligner_args)

    records = [done[rel] for rel in mine if rel in done]
    with open(report_path(output_dir, partition), "a", encoding="utf-8") as report, \
            tqdm(total=len(todo), unit="img", desc="align", disable=not progress,
                 dynamic_ncols=True, smoothing=0.05) as bar:
        live = Counter()
        for record in _iter_records(todo, local, aligner_args, workers):
            # The crops are on disk already; the report line marks the input as finished.
            report.write(json.dumps(record, ensure_ascii=False) + "\n")
            report.flush()
            records.append(record)
            live[record["status"]] += 1
            live["crops"] += len(record["outputs"])
            bar.update(1)
            bar.set_postfix(crops=live["crops"], no_face=live["no_face"],
                            bad=live["unreadable"] + live["error"], refresh=False)
    counts = count_records(records)
    counts.resumed = resumed
    return counts
