"""The swap pipeline (docs/reference.md §7): one :class:`Swapper` for images, videos, folders.

Per face, the four steps of every modern swapper: align the face to the generator's crop with
its 5 landmarks, run the generator with the source identity, map to pixels, and composite it
back (``compose.py``: a face-shaped, occlusion-aware mask, colour correction, the target's
detail above the generator's resolution, depth order between faces).

:class:`Swapper` loads the generator, the identity encoder the model was trained with, and the
face detector once; the command line, the web UI and ``facedancer demo`` all call it:

    swapper = Swapper("path/to/model")
    plan = swapper.plan(["me.jpg"])                      # embed the source once
    out = swapper.swap_image(read_image("group.jpg"), plan)
    swapper.swap_video_file("clip.mp4", "out.mp4", plan)

Precision: the generator runs through ``models/runtime.py``: float16 on CUDA (its convs and
norms are well within fp16 range; the output is clipped to [0, 1] anyway), ONNX Runtime or
the fused float32 graph on the CPU.
"""

from __future__ import annotations

import contextlib
import threading
import time
import warnings
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..device import resolve_device
from ..errors import FacedancerError, ModelError
from ..faces.align import align_face, transform_points
from ..faces.detect import (DETECTOR_EXECUTORS, detector_backend, detector_device,
                             get_detector)
from ..io.provenance import provenance_metadata, provenance_tag
from ..models.generator import load_generator
from ..models.identity.registry import available_encoders, load_identity_encoder
from ..models.runtime import GeneratorRunner, auto_backend
from ..models.store import resolve_model
from . import folder as folder_swap
from . import image as image_swap
from . import preview as preview_swap
from . import video as video_swap
from .checks import check_output, check_target, target_kind  # noqa: F401 - public re-exports
from .boost import boost_crops, boost_factor, interleave
from .compose import Compositor, FaceJob, box_area
from .exposure import apply_gain, face_gain, inverse_gain, is_unit
from .matte import new_coverage
from .options import SwapOptions
from .select import (SelectionPlan, face_extent, min_face_pixels, split_cut, split_profiles,
                     trust_mirrored)
from .source import (Identity, embed_faces, load_identity, same_person_threshold,
                     split_face_choice, steer_identity)
from .threads import apply_thread_budget, plan_threads

# What a generator crop shows beyond the frame's edge (faces.align.align_face): "mirror" (the
# frame reflected at the edge) or "black" (the reference's). See Swapper.align.
CROP_BORDER: str = "mirror"


class StageTimer:
    """Seconds spent per pipeline stage (decode, detect, align, generate, blend, encode...).

    Thread-safe: stages that run in background threads add to the same table. The benchmark
    prints it; nothing else depends on it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seconds: dict[str, float] = defaultdict(float)
        self.counts: dict[str, int] = defaultdict(int)

    @contextlib.contextmanager
    def measure(self, stage: str, count: int = 1) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(stage, time.perf_counter() - start, count)

    def add(self, stage: str, seconds: float, count: int = 1) -> None:
        with self._lock:
            self.seconds[stage] += seconds
            self.counts[stage] += count

    def reset(self) -> None:
        with self._lock:
            self.seconds.clear()
            self.counts.clear()


@dataclass
class SwappedFace:
    """One face that was swapped: where it was and how it was warped.

    Attributes:
        landmarks: ``(5, 2)`` float32 landmarks used for alignment (frame pixels).
        box: ``(4,)`` float32 ``x1, y1, x2, y2``.
        matrix: ``(2, 3)`` float64 OpenCV affine, frame -> generator crop.
        source: the identity the face was swapped to.
    """

    landmarks: np.ndarray
    box: np.ndarray
    matrix: np.ndarray
    source: Identity


@dataclass
class SwapResult:
    """The swapped image and what was done to it.

    Attributes:
        image: the output (the input array itself when nothing was swapped).
        faces: the faces that were swapped.
        detected: faces the detector found.
        too_small: detected faces left alone for being under ``min_face_size``.
        profiles: selected faces left as they are for being turned to a profile (the profile
            fade's weight is 0 there, ``faces/masks.pose_weight``).
        cut: faces left as they are for being cut so deeply by the picture's edge that their
            reading is not to be trusted (``select.split_cut``: such readings are broken).
        coverage: with ``options.matte``, the ``(H, W)`` float32 matte (how much of each pixel
            the faces replaced, ``swap/matte.py``); None without, or with nothing swapped.
        nearest: with ``--reference`` / ``--map``, the smallest identity distance of a
            candidate face to a wanted person (``SelectionPlan.nearest``), else None.
    """

    image: np.ndarray
    faces: list[SwappedFace] = field(default_factory=list)
    detected: int = 0
    too_small: int = 0
    profiles: int = 0
    cut: int = 0
    coverage: np.ndarray | None = None
    nearest: float | None = None

    @property
    def changed(self) -> bool:
        return bool(self.faces)

    def summary(self) -> str:
        """One line for people: how many faces were found and swapped."""
        text = f"{len(self.faces)} of {self.detected} face{'s' if self.detected != 1 else ''} " \
               "swapped"
        if self.too_small:
            text += f" ({self.too_small} under the minimum face size)"
        if self.profiles:
            many = self.profiles > 1
            text += f" ({self.profiles} turned to a profile, left as " \
                    f"{'they are' if many else 'it is'})"
        if self.cut:
            text += f" ({self.cut} cut deeply by the picture's edge, left as " \
                    f"{'they are' if self.cut > 1 else 'it is'})"
        return text


@dataclass
class _Job(FaceJob):
    """One face waiting for the generator: crop, transform, landmarks, box (``FaceJob``) and
    what it is swapped to."""

    face: SwappedFace | None = None
    index: int = -1  # position among the faces of its image or frame
    # The target face's own unit identity when it was already known (--reference / --map
    # selection, a video track's): --identity-strength then needs no encoder pass of its own.
    target_unit: np.ndarray | None = None


def _module_device(module) -> torch.device:
    device = getattr(module, "device", None)
    if isinstance(device, torch.device):
        return device
    if isinstance(module, torch.nn.Module):
        for parameter in module.parameters():
            return parameter.device
    return torch.device("cpu")


class Swapper:
    """Generator + identity encoder + face detector, loaded once, for any number of swaps.

    Args:
        model: a model directory or catalogue name (``models/store.py``); None = the embedded
            demo model. A missing model is a :class:`ModelError` naming it.
        identity_encoder: None = the encoder recorded in the model's config (what it was
            trained with); otherwise a registry name or directory (``default`` = the embedded
            default encoder). A model only works with the encoder it was trained with.
        detector: face detector: ``retinaface`` (embedded), a converted detector folder (the
            authors' RetinaFace-Res50, ``facedancer convert``) or its catalogue name
            (``retinaface-r50``, resolved through the model store).
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        score_threshold: detector confidence threshold (None = the detector's default).
        backend: how the generator runs (``models/runtime.py``): ``auto`` (CUDA: float16;
            CPU: bf16 on CPUs with native bf16, else ONNX Runtime when ``onnx`` is installed,
            else fused), ``fused``, ``bf16``,
            ``eager``, ``onnxruntime``, ``fp16``.
        detector_executor: how the embedded detector runs: ``auto`` (onnxruntime: its CUDA
            provider on a GPU when installed, else the CPU), ``onnxruntime``, or ``torch`` (the
            same graph in torch on ``device``: a GPU without onnxruntime-gpu; the same faces
            to 1e-3 px, speed on a GPU not yet measured, docs/device.md).
    """

    def __init__(self, model: str | Path | None = None, *,
                 identity_encoder: str | Path | None = None, detector: str = "retinaface",
                 device: str | torch.device = "auto", score_threshold: float | None = None,
                 backend: str = "auto", detector_executor: str = "auto") -> None:
        if detector_executor not in ("auto", *DETECTOR_EXECUTORS):
            raise FacedancerError(f"unknown detector executor '{detector_executor}' (use auto, "
                                  f"{' or '.join(DETECTOR_EXECUTORS)})")
        self.device = resolve_device(device)
        self.model_dir = resolve_model_dir(model)
        # Recorded in every output: a catalogue name as typed, a directory by its own name
        # only (a full path would leak the user's folder layout into shared files).
        self.model_name = DEMO_MODEL if model is None else (
            self.model_dir.name if Path(model).expanduser().is_dir() else str(model))
        self.generator, self.runner = _load_generator(self.model_dir, self.device, backend)
        config = self.generator.config
        self.image_size = int(config.image_size)
        # The generator's crop uses the same template shrink it was trained with (section 1).
        self.crop_shrink = float(getattr(config, "shrink_factor",
                                         getattr(config, "crop_shrink", 1.0)) or 1.0)
        # What the model's card recommends for --identity-strength (a usage key of config.json,
        # like "source"; models that say nothing get 0, the reference's conditioning).
        self.identity_strength = recommended_identity_strength(getattr(self.generator, "meta", {}))
        self.encoder_name = _encoder_name(identity_encoder, config, self.model_dir)
        self.encoder = _load_encoder(self.encoder_name, self.device)
        z_dim = int(getattr(config, "z_dim", 0) or 0)
        embedding_dim = int(self.encoder.contract.embedding_dim)
        if z_dim and z_dim != embedding_dim:
            raise ModelError(f"the model expects {z_dim}-d identities but the identity encoder "
                             f"'{self.encoder_name}' gives {embedding_dim}-d ones; pass the "
                             "encoder it was trained with (--identity-encoder)", self.model_dir)
        options = {} if score_threshold is None else {"score_threshold": score_threshold}
        executor = "torch" if detector_executor == "torch" else "onnxruntime"  # auto: ORT
        self.detector = get_detector(detector_location(detector), executor=executor,
                                     device=detector_device(self.device, executor), **options)
        self.timer = StageTimer()
        self.compositor = Compositor(self.crop_shrink, self.timer)
        self._identities: dict[tuple, Identity] = {}

    # -- identities ------------------------------------------------------------------------
    def embed(self, photos: Sequence[str | Path | np.ndarray] | str | Path | np.ndarray,
              role: str = "source") -> Identity:
        """One person from one or several photos (their embeddings averaged, see source.py)."""
        if isinstance(photos, (str, Path, np.ndarray)):
            photos = [photos]
        photos = list(photos)
        key = _photos_key(photos, role)
        if key is not None and key in self._identities:
            return self._identities[key]
        with self.timer.measure("source"):
            identity = load_identity(photos, self.detector, self.encoder, role=role)
        if key is not None:  # the web UI and folder runs reuse the same photos again and again
            if len(self._identities) >= 64:
                self._identities.pop(next(iter(self._identities)))
            self._identities[key] = identity
        return identity

    def plan(self, source=None, options: SwapOptions | None = None) -> SelectionPlan:
        """Resolve the sources, ``--reference`` and ``--map`` photos of a job into embeddings.

        ``source``: a photo path, an RGB array, a list of them (one person, averaged), an
        :class:`Identity`, or None when ``options.mapping`` gives every source. A plan is
        reusable across any number of images and videos.
        """
        options = options or SwapOptions()
        if isinstance(source, SelectionPlan):
            return source
        if source is None or (isinstance(source, (list, tuple)) and not source):
            identity = None
        elif isinstance(source, Identity):
            identity = source
        else:
            identity = self.embed(source)
        if identity is None and not options.mapping:
            raise FacedancerError("give a source face (--source) or a mapping (--map)")
        reference = self.embed(options.reference, role="reference") if options.reference else None
        mapping = [(self.embed([person], role="--map person"),
                    self.embed([photo], role="--map source")) for person, photo in options.mapping]
        threshold = options.threshold
        if threshold is None:
            threshold = same_person_threshold(self.encoder)
        return SelectionPlan(source=identity, faces=options.faces, reference=reference,
                             mapping=mapping, threshold=threshold)

    def identify(self, image: np.ndarray, landmarks: Sequence[np.ndarray]) -> np.ndarray:
        """Unit identity embeddings ``(N, D)`` of faces in ``image`` (--reference, --map)."""
        with self.timer.measure("identify", len(landmarks)):
            raw = embed_faces(image, landmarks, self.encoder)
        return raw / np.maximum(np.linalg.norm(raw, axis=1, keepdims=True), 1e-12)

    # -- the four per-face steps -------------------------------------------------------------
    def align(self, image: np.ndarray, landmarks: np.ndarray, antialias: bool = True
              ) -> tuple[np.ndarray, np.ndarray]:
        """Generator crop ``(S, S, 3)`` uint8 and its ``(2, 3)`` frame->crop affine.

        Antialiased (``faces.align.warp_crop``): a face several times the crop is area-averaged
        instead of sampled bilinearly, so the generator sees a face like the near-native ones it
        was trained on, not aliased hair and skin texture (measured: the talking clips' face
        flicker 0.88 -> 0.84 of the input's, docs/swap.md "Antialiased crops"). ``antialias``
        False gives the reference's bilinear crop.

        Beyond the frame's edge the crop shows the frame mirrored, not black: of a face the
        edge cuts, the face segmenter called the black part's border an occluder and the
        compositor kept a strip of the target along the edge (half of the target's other eye
        beside the swap's on df_img1.jpg cut through the nose), and the generator sees a whole
        face instead of half of one (:data:`CROP_BORDER`; benchmarks/edge_faces.py). Only
        pixels inside the frame are pasted back."""
        return align_face(image, np.asarray(landmarks, dtype=np.float32), self.image_size,
                          shrink_factor=self.crop_shrink, antialias=antialias,
                          border=CROP_BORDER)

    @torch.no_grad()
    def generate(self, crops: np.ndarray, embeddings: np.ndarray, batch_size: int = 8,
                 gains: Sequence | None = None) -> np.ndarray:
        """Swap crops ``(N, S, S, 3)`` uint8 to identities ``(N, D)`` (raw) -> ``(N, S, S, 3)``.

        The generator sees ``(pixel - 127.5) / 127.5`` and its output is mapped to pixels with
        ``(y + 1) / 2`` clipped to [0, 1] (section 2: the generator has no tanh). ``gains``
        (one per crop, :meth:`exposure_gains`): each crop is multiplied by its gain for the
        generator and its swap divided by it after; None = the crops as they are (what
        ``evaluate`` measures: the model itself).
        """
        if gains is not None:
            crops = np.stack([apply_gain(c, g) for c, g in zip(crops, gains)]) \
                if not all(is_unit(g) for g in gains) else crops
        out = np.empty_like(crops)
        for start in range(0, len(crops), max(1, batch_size)):
            stop = min(start + batch_size, len(crops))
            x = torch.from_numpy(np.ascontiguousarray(crops[start:stop]))
            z = torch.from_numpy(np.ascontiguousarray(embeddings[start:stop], dtype=np.float32))
            with self.timer.measure("generate", stop - start):
                y = self._forward(x, z)
            out[start:stop] = y
        if gains is not None:
            for i, gain in enumerate(gains):
                if not is_unit(gain):
                    out[i] = apply_gain(out[i], inverse_gain(gain))
        return out

    def exposure_gains(self, jobs: Sequence[FaceJob], options: SwapOptions) -> list:
        """Per job, the gain that shows its face to the generator at the brightness and colour
        it was trained on (``swap/exposure.py`` ``face_gain``: 1 for a face that is neither
        dark nor under coloured light, or every face with ``options.exposure`` off; one per
        RGB channel for coloured light), also recorded as the job's ``gain`` for the
        compositor."""
        for job in jobs:
            job.gain = face_gain(job.crop, transform_points(job.landmarks, job.matrix)) \
                if options.exposure else 1.0
        return [job.gain for job in jobs]

    def swap_jobs(self, work: Sequence[tuple[np.ndarray, Sequence[_Job]]], options: SwapOptions
                  ) -> list[np.ndarray]:
        """The swapped crop of every job of ``work`` (``(frame, jobs)`` pairs), in order, from
        one batched generator pass: ``(S, S, 3)`` uint8, or ``(k S, k S, 3)`` for a face that
        ``options.pixel_boost`` enlarges by ``k`` (``swap/boost.py``)."""
        size, crops, embeddings, factors, gains = self.image_size, [], [], [], []
        for frame, jobs in work:
            steered = self.steered_identities(frame, jobs, self.identity_strength_for(options))
            for job, z, gain in zip(jobs, steered, self.exposure_gains(jobs, options)):
                k = boost_factor(job.matrix, size, options.pixel_boost)
                crops.append(job.crop[None] if k == 1 else
                             boost_crops(frame, job.matrix, size, k))
                embeddings.append(np.repeat(z[None], k * k, axis=0))
                gains.extend([gain] * (k * k))
                factors.append(k)
        if not factors:
            return []
        out = self.generate(np.concatenate(crops), np.concatenate(embeddings),
                            options.batch_size, gains)
        swapped, start = [], 0
        for k in factors:
            swapped.append(out[start] if k == 1 else interleave(out[start:start + k * k], k))
            start += k * k
        return swapped

    def identity_strength_for(self, options: SwapOptions) -> float:
        """``options.identity_strength``, or the model's recommendation when that is None."""
        return self.identity_strength if options.identity_strength is None \
            else float(options.identity_strength)

    def steered_identities(self, frame: np.ndarray, jobs: Sequence[_Job], strength: float
                           ) -> list[np.ndarray]:
        """The raw identity each job's generator call gets: its source's embedding, or with
        ``strength`` > 0 that embedding pushed away from the target face's own identity
        (``source.steer_identity``): the job's ``target_unit`` where known (a video track's,
        averaged over its first views), else one identity-encoder pass, timed as
        ``identify``."""
        sources = [job.face.source.embedding for job in jobs]
        if strength == 0 or not jobs:
            return sources
        missing = [job for job in jobs if job.target_unit is None]
        fresh = iter(self.identify(frame, [job.landmarks for job in missing]) if missing else ())
        units = [job.target_unit if job.target_unit is not None else next(fresh) for job in jobs]
        return [steer_identity(z, u, strength)[0] for z, u in zip(sources, units)]

    def _forward(self, crops: torch.Tensor, z: torch.Tensor) -> np.ndarray:
        """``(B, S, S, 3)`` uint8 crops + ``(B, D)`` raw identities -> ``(B, S, S, 3)`` uint8."""
        x = crops.to(self.device, non_blocking=True).permute(0, 3, 1, 2).float()
        x = x.div_(127.5).sub_(1.0).contiguous()
        y = self.runner(x, z.to(self.device))
        y = ((y.float() + 1.0) * 127.5).clamp_(0, 255).round_()
        return y.to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()

    def mask(self, options: SwapOptions) -> np.ndarray:
        """The largest mask a face can get, ``(S, S)`` float32 on the generator crop: the box
        when it is one of the mask's parts (the other parts only take away from it), else the
        whole crop. Pixels outside it, warped into the frame, are never changed."""
        if "box" in options.mask.split("+"):
            return self.compositor.box(self.image_size, options)
        return np.ones((self.image_size, self.image_size), np.float32)

    def blend(self, frame: np.ndarray, jobs: Sequence[_Job], swapped: np.ndarray,
              options: SwapOptions, others: Sequence[np.ndarray] = (),
              coverage: np.ndarray | None = None) -> np.ndarray:
        """Composite swapped crops back into ``frame`` (``compose.py``); ``others`` are the boxes
        of detected faces that are not swapped (protected). Pixels outside every mask are the
        input's, bit for bit. ``coverage``: a frame-sized float32 array of zeros, filled in
        with the matte (how much of each pixel was replaced), or None."""
        with self.timer.measure("blend", len(jobs)):
            return self.compositor.composite(frame, jobs, swapped, options, others, coverage)

    # -- images -------------------------------------------------------------------------------
    def detect(self, image: np.ndarray):
        """Faces in one RGB image (timed as ``detect``)."""
        with self.timer.measure("detect"):
            return self.detector.detect(image)

    def jobs_for(self, image: np.ndarray, faces: Sequence, plan: SelectionPlan,
                 units: np.ndarray | None = None, track_ids: Sequence[int | None] | None = None,
                 memories: dict[int, dict] | None = None,
                 beaten: dict[int, set[int]] | None = None) -> list[_Job]:
        """Select the faces to swap in one image and align them (``faces`` have ``.box`` and
        ``.landmarks``; ``units`` are their unit embeddings when already known; ``track_ids``
        the tracker's person ids in a video). ``memories``: a stream's per-track dicts; a face
        with a ``track_id`` gets its track's as ``memory`` (``compose.FaceJob``). ``beaten``:
        a stream's memory of the people each track lost to a nearer face
        (``SelectionPlan.choose``)."""
        if plan.needs_identity and units is None and faces:
            units = self.identify(image, [f.landmarks for f in faces])
        areas = [box_area(f.box) for f in faces]
        jobs = []
        for index, identity in plan.choose(areas, units, track_ids, beaten):
            face = faces[index]
            with self.timer.measure("align"):
                crop, matrix = self.align(image, face.landmarks)
            landmarks = np.asarray(face.landmarks, np.float32)
            box = np.asarray(face.box, np.float32)
            track = getattr(face, "track_id", None)
            memory = memories.setdefault(track, {}) \
                if memories is not None and track is not None and track >= 0 else None
            jobs.append(_Job(crop=crop, matrix=matrix, landmarks=landmarks, box=box,
                             score=float(getattr(face, "score", 1.0)), index=index,
                             face=SwappedFace(landmarks=landmarks, box=box, matrix=matrix,
                                              source=identity),
                             target_unit=None if units is None else units[index], memory=memory))
        return jobs

    def swap_image_detailed(self, image: np.ndarray, source, options: SwapOptions | None = None
                            ) -> SwapResult:
        """Like :meth:`swap_image`, also telling which faces were swapped and how."""
        options = options or SwapOptions()
        plan = self.plan(source, options)
        image = np.ascontiguousarray(image)
        detected = self.detect(image)
        smallest = min_face_pixels(image.shape, options, video=False)
        faces = [f for f in detected if face_extent(f.box) >= smallest]
        too_small = len(detected) - len(faces)
        with self.timer.measure("detect"):
            faces = trust_mirrored(self.detector, image, faces, options)
        faces, cut = split_cut(faces, image.shape, options)
        units = self.identify(image, [f.landmarks for f in faces]) \
            if plan.needs_identity and faces else None
        jobs, turned = split_profiles(self.jobs_for(image, faces, plan, units), options)
        if not jobs:
            return SwapResult(image=image, faces=[], detected=len(detected), too_small=too_small,
                              profiles=len(turned), cut=len(cut), nearest=plan.nearest(units))
        swapped = self.swap_jobs([(image, jobs)], options)
        chosen = {job.index for job in jobs}
        others = [np.asarray(f.box) for i, f in enumerate(faces) if i not in chosen] + \
            [np.asarray(f.box) for f in detected if face_extent(f.box) < smallest] + \
            [np.asarray(f.box) for f in cut]
        coverage = None if options.matte is None else new_coverage(image.shape)
        out = self.blend(image, jobs, swapped, options, others, coverage)
        return SwapResult(image=out, faces=[j.face for j in jobs], detected=len(detected),
                          too_small=too_small, profiles=len(turned), cut=len(cut),
                          coverage=coverage, nearest=plan.nearest(units))

    def swap_image(self, image: np.ndarray, source, options: SwapOptions | None = None
                   ) -> np.ndarray:
        """Swap the selected faces of an ``(H, W, 3)`` uint8 RGB image; returns a new array.

        ``source`` is anything :meth:`plan` takes (a prepared :class:`SelectionPlan` avoids
        re-embedding the source). An image without faces comes back unchanged. No watermark
        is added here (that happens when a file is written).
        """
        return self.swap_image_detailed(image, source, options).image

    # -- files ---------------------------------------------------------------------------------
    def provenance(self, plan: SelectionPlan | None = None, **extra: str) -> dict[str, str]:
        """File metadata for every changed output: the provenance tag (tool, version, model,
        "synthetic media", what was done, SHA-256 of the source photos) as ``io.provenance``
        lays it out."""
        operation = getattr(plan, "operation", None) or SelectionPlan.operation
        return provenance_metadata(provenance_tag(
            self.model_name, sources=_source_files(plan), operation=operation,
            extra={"identity_encoder": Path(self.encoder_name).name,
                   **{k: str(v) for k, v in extra.items()}}))

    def swap_image_file(self, target: str | Path, output: str | Path, source,
                        options: SwapOptions | None = None):
        """Swap an image file into ``output`` (atomic; tagged and watermarked when a face was
        swapped); returns what was done (see image.py)."""
        return image_swap.swap_image_file(self, target, output, source, options or SwapOptions())

    def swap_video_file(self, target: str | Path, output: str | Path, source,
                        options: SwapOptions | None = None, progress: bool = True):
        """Swap a video file into ``output`` (.mp4/.mov/.mkv/.gif/.webp...); see video.py.
        Returns the :class:`~facedancer_torch.swap.report.FileReport`.

        Decoding, detection, generation and encoding run at once in their own threads; each
        library gets a thread budget (``threads.py``) instead of every core, so they do not
        fight over them (benchmarks/swap_video.py: 5.9-9.2x faster on a busy 2-core machine).
        """
        with apply_thread_budget(self, plan_threads()):
            return video_swap.swap_video_file(self, target, output, source,
                                              options or SwapOptions(), progress=progress)

    def swap_clip_frame(self, target: str | Path, output: str | Path, source, at: float,
                        options: SwapOptions | None = None):
        """Swap the frame of a clip shown at ``at`` seconds as the whole clip's swap would, into
        the image ``output`` (``--at``; see preview.py). Returns the FileReport."""
        with apply_thread_budget(self, plan_threads()):
            return preview_swap.swap_clip_frame(self, target, output, source,
                                                options or SwapOptions(), at)

    def swap_folder(self, target: str | Path, output: str | Path, source,
                    options: SwapOptions | None = None, progress: bool = True):
        """Swap every image and video of a folder into a mirrored output folder (resumable)."""
        return folder_swap.swap_folder(self, target, output, source, options or SwapOptions(),
                           progress=progress)

    def swap_path(self, target: str | Path, output: str | Path, source,
                  options: SwapOptions | None = None, progress: bool = True):
        """Dispatch on the target: a folder, a video or an image file."""
        kind = target_kind(target)
        if kind == "folder":
            return self.swap_folder(target, output, source, options, progress=progress)
        if kind == "video":
            return self.swap_video_file(target, output, source, options, progress=progress)
        return self.swap_image_file(target, output, source, options)


def _photos_key(photos: list, role: str) -> tuple | None:
    """Cache key of photo files (path, size, mtime); None when an array is among them."""
    key = [role]
    for photo in photos:
        if isinstance(photo, np.ndarray):
            return None
        photo, choice = split_face_choice(photo)  # PHOTO@N: its N-th face from the left
        path = Path(photo)
        try:
            stat = path.stat()
        except OSError:
            return None  # let load_identity raise the proper error
        key.append((str(path.resolve()), stat.st_size, stat.st_mtime_ns, choice))
    return tuple(key)


# The catalogue name of the generator shipped in assets/demo_generator (models/catalogue.py).
DEMO_MODEL: str = "facedancer-demo"


def recommended_identity_strength(meta: dict) -> float:
    """The ``identity_strength`` a model's ``config.json`` metadata recommends (0 if none)."""
    value = meta.get("identity_strength")
    if value is None:
        return 0.0
    SwapOptions(identity_strength=value)  # a bad value is one line naming the option
    return float(value)


def resolve_model_dir(model: str | Path | None) -> Path:
    """A model directory from a path, a catalogue name, or None (the embedded demo model).

    Raises :class:`ModelError` (one line, naming the model) when it cannot be found.
    """
    if model is None or not str(model).strip():
        try:
            return Path(resolve_model(DEMO_MODEL))
        except ModelError as exc:
            raise ModelError("no --model given and the embedded demo model is not available "
                             f"({exc}); pass --model DIR (a converted, trained or exported "
                             "model directory) or a catalogue name") from exc
    return Path(resolve_model(model))


def _load_generator(model_dir: Path, device: torch.device, backend: str = "auto"):
    """The generator (float32, CPU, eval mode) and the runner that does its inference on
    ``device``: :class:`~facedancer_torch.models.runtime.GeneratorRunner` (float16 on CUDA;
    on the CPU bf16, ONNX Runtime or the fused graph: ``models.runtime.auto_backend``)."""
    try:
        generator = load_generator(model_dir, device="cpu")
    except FacedancerError:
        raise
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ModelError(f"cannot load the generator ({' '.join(str(exc).split())})",
                         model_dir) from exc
    generator.eval()
    try:
        return generator, GeneratorRunner(generator, backend=backend, device=device)
    except FacedancerError:
        raise
    except Exception as exc:
        if backend != "auto":
            raise ModelError(f"cannot run the generator with backend '{backend}' "
                             f"({' '.join(str(exc).split())[:200]})", model_dir) from exc
        # What auto picked (bf16, fp16 or ONNX Runtime) failed: the fused PyTorch graph
        # computes the same function, only slower; say so once and carry on.
        chosen = auto_backend(device, generator.config.image_size)
        if chosen == "fused":
            raise ModelError(f"cannot run the generator ({' '.join(str(exc).split())[:200]})",
                             model_dir) from exc
        warnings.warn(f"generator backend '{chosen}' (picked by --backend auto) failed "
                      f"({type(exc).__name__}: {' '.join(str(exc).split())[:160]}); using "
                      "'fused'", stacklevel=3)
        return generator, GeneratorRunner(generator, backend="fused", device=device)


def _encoder_name(override: str | Path | None, config, model_dir: Path) -> str:
    if override is not None and str(override).strip():
        return str(override)
    recorded = getattr(config, "identity_encoder", None) or "default"
    # A relative encoder directory recorded by training is relative to the model directory.
    candidate = model_dir / str(recorded)
    if str(recorded) != "default" and candidate.is_dir():
        return str(candidate)
    return str(recorded)


def _load_encoder(name: str, device: torch.device):
    """An identity encoder by registry name or directory; a catalogue name (e.g.
    ``arcface-res50``, what converted official models record) goes through the model store."""
    known = name.lower() in available_encoders() or Path(name).expanduser().is_dir()
    if not known:
        try:
            name = str(resolve_model(name))
        except ModelError as exc:
            raise ModelError(f"the identity encoder '{name}' the model needs is not available "
                             f"({exc}); pass --identity-encoder NAME|DIR") from exc
    encoder = load_identity_encoder(name, device=str(device))
    if isinstance(encoder, torch.nn.Module):
        encoder.eval()
    return encoder


def detector_location(detector: str | Path) -> str:
    """What :func:`get_detector` takes for a ``--detector`` value: the embedded detector's
    name as it is; anything else a folder, or a catalogue name looked up in the model store.
    A one-line ModelError when it is not there or is not a face detector (checked without
    loading weights, so the web UI can check its choices before it starts)."""
    name = str(detector)
    if name == "retinaface":
        return name
    try:
        location = name if Path(name).expanduser().is_dir() else str(resolve_model(name))
        detector_backend(location)
    except FacedancerError as exc:
        raise ModelError(f"face detector '{name}' is not available ({exc}); give "
                         "'retinaface' or a converted detector folder") from exc
    return location


def _source_files(plan: SelectionPlan | None) -> list[Path]:
    """The photo files behind a plan's identities, in order, each once."""
    if plan is None:
        return []
    identities = [plan.source] + [source for _, source in plan.mapping]
    files: list[Path] = []
    for identity in identities:
        for name in (identity.files if identity is not None else ()):
            path = Path(name)
            if path.is_file() and path not in files:
                files.append(path)
    return files
