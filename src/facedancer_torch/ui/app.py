"""The web UI (``facedancer ui``): image and video swap in a browser, built with gradio.

A thin layer over :class:`~facedancer_torch.swap.pipeline.Swapper`: every result is written by
the same code as ``facedancer swap`` (``swap_image_file`` / ``swap_video_file``), so it carries
the provenance tag and the invisible watermark, and the file the browser downloads is that file,
byte for byte (gradio serves returned paths as they are).

Offline by design: gradio's analytics are switched off before it is imported, the default theme
uses fonts bundled with gradio (no font CDN), and there is no share link. The server binds to
127.0.0.1 unless told otherwise, refuses uploads over ``max_upload_mb`` (HTTP 413) and prints a
warning when it listens on a non-loopback address, since it has no authentication.

``build_app`` takes a ``swapper_factory`` ((model value, detector value) -> Swapper) so that
tests run the real app with a tiny random model.
"""

from __future__ import annotations

import os

# Before gradio is imported anywhere: no usage statistics, no version check over the network.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import atexit  # noqa: E402
import ipaddress  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

from ..errors import FacedancerError, ModelError  # noqa: E402
from ..io.provenance import read_provenance  # noqa: E402
from ..models.catalogue import CATALOGUE, ModelKind  # noqa: E402
from ..models.store import ModelStore, model_kind  # noqa: E402
from ..swap.options import DEFAULT_MASK, SwapOptions, clip_time  # noqa: E402

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
DEFAULT_MAX_UPLOAD_MB = 50.0
OUTPUT_MAX_AGE_S = 3600.0  # results older than this are deleted (as gradio's own cache is)
PASSWORD_ENV = "FACEDANCER_UI_PASSWORD"  # user "facedancer"; an environment variable, since
# a password given as an option would show in `ps` and in the shell history
TITLE = "FaceDancer face swap"

PROVENANCE_NOTE = (
    "**Every result is synthetic media and is labelled as such.** Images and videos made here "
    "carry a provenance tag in their metadata (tool, model, *synthetic media*, the SHA-256 of "
    "the source photos) and an invisible watermark that `facedancer verify FILE` detects. "
    "Only swap faces of people who consented; do not use results to deceive.")

SwapperFactory = Callable[[str, str], object]
# The embedded detector (RetinaFace-MobileNet0.25), what `facedancer swap --detector` defaults to.
DEFAULT_DETECTOR = "retinaface"


@dataclass(frozen=True)
class ModelChoice:
    """One entry of the model or detector picker: ``value`` is what ``swapper_factory``
    receives."""

    label: str
    value: str


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


def host_warning(host: str, password: bool = False) -> str | None:
    """The warning printed when the UI listens beyond this machine without a password (None
    on loopback or with one)."""
    if is_loopback(host) or password:
        return None
    return (f"warning: the UI listens on {host}, so anyone who can reach this machine can "
            f"upload photos and make face swaps with it; set {PASSWORD_ENV} to require a "
            f"password, or use --host {DEFAULT_HOST}")


def _people(reference, picked: str | None) -> list[str]:
    """The --reference photos of a swap: the person picked in the target photo or a previewed
    frame (``PICTURE@N``) when there is one, else the uploaded photos."""
    return [picked] if picked else _paths(reference)


def _picked(picture: str | Path, number: int, where: str) -> tuple[str, str]:
    """A people picker's click on the ``number``-th face from the left of ``picture`` (the
    target photo, or a previewed frame ``where`` says which): the ``--reference`` it stands
    for (``PICTURE@N``) and the note shown under the picker."""
    return f"{picture}@{number}", (f"Only the person picked is swapped: face {number} from the "
                                   f"left{where} (the reference photos are not used while a "
                                   "person is picked).")


def _picking(options: SwapOptions, reference, picked: str | None) -> SwapOptions:
    """``options`` with the swap's --reference photos (:func:`_people`); a person picked is
    swapped whoever is largest (``faces`` all: with "largest", a pick of anyone else would
    swap no one)."""
    options = options.replace(reference=_people(reference, picked))
    return options.replace(faces="all") if picked else options


def _downloads(output: Path, matte: Path | None) -> list[str]:
    """The files a result offers for download: the output, and its matte when one was made."""
    return [str(output)] + ([str(matte)] if matte is not None and matte.is_file() else [])


def frame_people(swapper, target: str | Path, seconds: float, output_dir: Path,
                 options: SwapOptions | None = None) -> tuple[Path, list]:
    """The video frame shown at ``seconds`` (the one ``--at`` swaps) written as it is (a PNG
    in ``output_dir``), and the people picker's gallery of its faces (:func:`people_gallery`,
    the video's rules), whose N-th entry is ``FRAME@N`` as a --reference photo (the same
    detector finds the same faces in the same pixels)."""
    from ..io.images import write_image
    from ..swap.preview import frame_shown_at

    rgb = frame_shown_at(target, seconds).rgb  # the frame the preview swapped
    frame = new_output(output_dir, "-frame.png")
    write_image(frame, rgb)  # untouched: no provenance tag, nothing in it is synthetic
    return frame, people_gallery(swapper, rgb, options, video=True)


def image_people(swapper, target: str | Path, options: SwapOptions | None = None) -> list:
    """The image tab's people picker: the target photo's faces (:func:`people_gallery`, a
    photo's rules), whose N-th entry is ``TARGET@N`` as a --reference photo."""
    from ..io.images import read_image

    return people_gallery(swapper, read_image(target), options, video=False)


def people_gallery(swapper, rgb, options: SwapOptions | None, video: bool) -> list:
    """Per face of ``rgb``, left to right, ``(crop, caption)``. A face the swap's rules leave
    alone (``options``: smaller than the minimum face size, a profile, cut by the edge) is
    captioned so: picking it would swap no one (``swap/face_list.py``, as `facedancer faces`
    lists them)."""
    import numpy as np

    from ..swap.face_list import list_faces

    crops = []
    height, width = rgb.shape[:2]
    where = " in a video" if video else ""
    for face in list_faces(swapper.detector, rgb, options, video=video):
        x0, y0, x1, y1 = face.box
        cx, cy, half = (x0 + x1) / 2, (y0 + y1) / 2, 0.65 * max(x1 - x0, y1 - y0)
        box = [int(max(0, cx - half)), int(max(0, cy - half)), int(min(width, cx + half)),
               int(min(height, cy + half))]
        caption = f"{face.number} from the left" + (
            "" if face.left is None else f": not swapped{where}, {face.left}")
        crops.append((np.ascontiguousarray(rgb[box[1]:box[3], box[0]:box[2]]), caption))
    return crops


def new_output(output_dir: Path, suffix: str, max_age_s: float = OUTPUT_MAX_AGE_S) -> Path:
    """A fresh result path in ``output_dir``, after deleting results older than ``max_age_s``
    (a server that runs for weeks must not fill the disk; a browser fetches a result within
    seconds of it being made)."""
    cutoff = time.time() - max_age_s
    for old in output_dir.glob("swap-*"):
        try:
            if old.is_file() and old.stat().st_mtime < cutoff:
                old.unlink()
        except OSError:
            pass  # another request removed it first
    return output_dir / f"swap-{uuid.uuid4().hex[:12]}{suffix}"


def _store_choices(kind: ModelKind, extra: Sequence[str | Path],
                   builtin: Sequence[ModelChoice] = ()) -> list[ModelChoice]:
    """``extra`` (directories or names, first), then ``builtin``, then every catalogue or
    ``models add`` model of ``kind`` present in the local store (embedded catalogue entries
    only when ``builtin`` is empty: otherwise ``builtin`` stands for them)."""
    choices: list[ModelChoice] = []
    seen: set[str] = set()

    def add(label: str, value: str) -> None:
        if value not in seen:
            seen.add(value)
            choices.append(ModelChoice(label, value))

    for item in extra:
        path = Path(item).expanduser()
        if path.is_dir():
            add(f"{path.name} ({path})", str(path))
        else:
            add(str(item), str(item))
    for choice in builtin:
        add(choice.label, choice.value)
    store = ModelStore()
    for entry in CATALOGUE:
        if entry.kind == kind and not (builtin and entry.is_embedded) \
                and store.status(entry).present:
            add(f"{entry.name}: {entry.description}", entry.name)
    try:
        custom = store.custom_names()
    except (OSError, ValueError):
        custom = []
    for name in custom:
        if model_kind(name, store) == kind:
            add(name, name)
    return choices


def available_models(extra: Sequence[str | Path] = ()) -> list[ModelChoice]:
    """Generators usable here: ``extra`` (directories or names, first), then the embedded demo
    model and every catalogue or ``models add`` generator present in the local store."""
    return _store_choices(ModelKind.GENERATOR, extra)


def available_detectors(extra: Sequence[str | Path] = ()) -> list[ModelChoice]:
    """Face detectors usable here: ``extra`` (converted detector folders or names, first), then
    the embedded RetinaFace-MobileNet0.25 (``retinaface``), then every converted detector in
    the local store (the catalogue's ``retinaface-r50`` once fetched and converted, and any
    RetinaFace-Res50 registered with ``models add``); detectors that are not present are not
    offered."""
    embedded = ModelChoice("retinaface: RetinaFace-MobileNet0.25 (embedded)", DEFAULT_DETECTOR)
    return _store_choices(ModelKind.DETECTOR, extra, [embedded])


class SwapperCache:
    """Load each model and detector pair once (``factory(model, detector)``) and reuse it;
    thread-safe."""

    def __init__(self, factory: SwapperFactory) -> None:
        self._factory = factory
        self._swappers: dict[str, object] = {}
        self._lock = threading.Lock()

    def get(self, model: str, detector: str = DEFAULT_DETECTOR):
        with self._lock:
            swapper = self._swappers.get((model, detector))
            if swapper is None:
                swapper = self._factory(model, detector)
                self._swappers[(model, detector)] = swapper
            return swapper


def _paths(files) -> list[str]:
    """gradio file values (paths, or objects with ``.name``/``.path``) -> paths."""
    if files is None:
        return []
    if not isinstance(files, (list, tuple)):
        files = [files]
    out = []
    for item in files:
        path = getattr(item, "path", None) or getattr(item, "name", None) or item
        if path:
            out.append(str(path))
    return out


def _options(faces: str, mask_blur: float, mask_padding: float, color_match: str | bool,
             max_frames: float | None = None, mask: str | None = None,
             detail: float | None = None, pixel_boost: float | None = None,
             blinks: bool | None = None, identity_strength: float | None = None,
             exposure: bool | None = None, start: str | None = None, end: str | None = None,
             detail_follow: bool | None = None, clip: str | None = None):
    """The SwapOptions of the UI's fields (``clip``: the target video, whose frame rate and
    start timecode a timecode in "Swap from" / "Swap until" counts by)."""
    frames = int(max_frames) if max_frames else None
    return SwapOptions(faces=faces or "all", mask_blur=float(mask_blur),
                       mask_padding=float(mask_padding),
                       color_match=color_match if isinstance(color_match, str) else
                       bool(color_match), mask=mask or DEFAULT_MASK,
                       detail=1.0 if detail is None else float(detail),
                       detail_follow=bool(detail_follow),
                       pixel_boost=int(pixel_boost or 1),
                       blinks=True if blinks is None else bool(blinks),
                       exposure=True if exposure is None else bool(exposure),
                       identity_strength=_strength(identity_strength),
                       overwrite=True, max_frames=frames if frames and frames > 0 else None,
                       start=clip_time(start.strip() if start else None, "Swap from", clip),
                       end=clip_time(end.strip() if end else None, "Swap until", clip))


MODEL_STRENGTH = "model's"  # the identity-strength choice that defers to the model's card


def _strength(value) -> float | None:
    """The identity-strength picker's value as SwapOptions takes it (None = the model's)."""
    if value is None or value == MODEL_STRENGTH or value == "":
        return None
    return float(value)


def _left(report, video: bool = False) -> str:
    """The faces a swap left as they were and why, as a status sentence (empty when none; a
    video counts them over its frames)."""
    parts = [f"{report.profiles} turned to a profile" if report.profiles else "",
             f"{report.cut} cut deeply by the picture's edge" if report.cut else ""]
    parts = [part for part in parts if part]
    where = " (counted over frames)" if video else ""
    return f" Left as they are{where}: {'; '.join(parts)}." if parts else ""


def _notes(plan) -> str:
    """The source identity's notes (a group photo's face chosen by size) as status lines."""
    notes = plan.source.notes if plan.source is not None else ()
    return "".join(f"\n\nNote: {note}." for note in notes)


def provenance_summary(path: str | Path) -> str:
    """One Markdown line with the provenance tag found in an output file."""
    tag = read_provenance(path) or {}
    if not tag:
        return "No provenance tag found in the output (this should not happen)."
    keys = ("content", "tool", "tool_version", "model", "identity_encoder", "created")
    parts = [f"{k}: `{tag[k]}`" for k in keys if tag.get(k)]
    return "Provenance tag written into the file: " + " · ".join(parts)


def build_app(swapper_factory: SwapperFactory, models: Sequence[ModelChoice] | None = None, *,
              default_model: str | None = None, output_dir: str | Path | None = None,
              title: str = TITLE, detectors: Sequence[ModelChoice] | None = None):
    """The gradio ``Blocks`` app (not launched; see :func:`launch_app`).

    Args:
        swapper_factory: ``(model, detector) -> Swapper`` for a model picker value and a
            detector picker value (called once per pair, lazily, on the first swap with it).
        models: the model picker's entries (default: :func:`available_models`); at least one.
        default_model: the value selected at start (default: the first entry).
        detectors: the detector picker's entries (default: :func:`available_detectors`); the
            first is selected at start.
        output_dir: where results are written (default: a new temporary folder removed at
            exit). Results are served from there.

    Raises:
        ModelError: no model to offer.
    """
    models = list(available_models() if models is None else models)
    if not models:
        raise ModelError("no model is available for the web UI: pass --model DIR (a trained, "
                         "converted or exported model folder) or --model NAME (see "
                         "`facedancer models list`)")
    import gradio as gr  # here: gradio is the optional [ui] extra
    values = [m.value for m in models]
    default_model = default_model if default_model in values else values[0]
    if output_dir is None:
        output_dir = Path(tempfile.mkdtemp(prefix="facedancer-ui-"))
        atexit.register(shutil.rmtree, output_dir, True)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    detectors = list(available_detectors() if detectors is None else detectors) or \
        [ModelChoice(DEFAULT_DETECTOR, DEFAULT_DETECTOR)]
    default_detector = detectors[0].value
    swappers = SwapperCache(swapper_factory)

    def load(model: str, detector: str | None = None):
        try:
            return swappers.get(model or default_model, detector or default_detector)
        except FacedancerError as exc:
            raise gr.Error(str(exc)) from exc

    def given(sources, target, what: str) -> list[str]:
        """The source photos' paths; a readable error in the page for a missing upload."""
        sources = _paths(sources)
        if not sources:
            raise gr.Error("Upload at least one photo of the source face.")
        if not target:
            raise gr.Error(f"Upload a target {what}.")
        return sources

    def swap_image(sources, target, model, detector, faces, mask_blur, mask_padding,
                   color_match, mask, detail, pixel_boost, blinks, identity_strength,
                   exposure, detail_follow=False, matte=False, reference=None, picked=None):
        sources = given(sources, target, "image")
        swapper = load(model, detector)
        output = new_output(output_dir, ".png")
        matte_path = output.with_name(output.stem + "-matte.png") if matte else None
        try:
            options = _options(faces, mask_blur, mask_padding, color_match, mask=mask,
                               detail=detail, pixel_boost=pixel_boost, blinks=blinks,
                               identity_strength=identity_strength, exposure=exposure,
                               detail_follow=detail_follow).replace(matte=matte_path)
            options = _picking(options, reference, picked)
            plan = swapper.plan(sources, options)
            report = swapper.swap_image_file(target, output, plan, options)
        except FacedancerError as exc:
            raise gr.Error(str(exc)) from exc
        if report.changed:
            status = (f"Swapped {report.swapped} of {report.detected} face(s).{_left(report)}"
                      + _notes(plan) + "\n\n" + provenance_summary(output))
        else:
            status = (f"Nothing was swapped ({report.unswapped_reason()}): the output is the "
                      "target unchanged, without the synthetic-media tag and watermark.")
        return str(output), (str(target), str(output)), status, _downloads(output, matte_path)

    def swap_video(sources, target, model, detector, faces, mask_blur, mask_padding,
                   color_match, mask, detail, pixel_boost, blinks, identity_strength,
                   exposure, detail_follow, matte, max_frames, start, end, reference=None,
                   picked=None, progress=gr.Progress(track_tqdm=True)):
        sources = given(sources, target, "video")
        progress(0, desc="loading the model")
        swapper = load(model, detector)
        output = new_output(output_dir, ".mp4")
        matte_path = output.with_name(output.stem + "-matte.mp4") if matte else None
        try:
            options = _options(faces, mask_blur, mask_padding, color_match, max_frames, mask,
                               detail, pixel_boost, blinks, identity_strength, exposure,
                               start, end, detail_follow, clip=target).replace(
                                   matte=matte_path)
            options = _picking(options, reference, picked)
            progress(0, desc="swapping frames")
            # swap_video_file reports frames through tqdm; gr.Progress(track_tqdm) shows it.
            plan = swapper.plan(sources, options)
            report = swapper.swap_video_file(target, output, plan, options, progress=True)
        except FacedancerError as exc:
            raise gr.Error(str(exc)) from exc
        if report.changed:
            cuts = (f" {report.cuts} shot cut{'s' if report.cuts != 1 else ''}: faces "
                    "tracked afresh after each." if report.cuts else "")
            span = f" Faces swapped only {report.span}." if report.span else ""
            status = (f"{report.frames_swapped} of {report.frames} frames with a swapped face "
                      f"({report.frames - report.frames_swapped} without)." + span + cuts
                      + _left(report, video=True)
                      + _notes(plan) + "\n\n" + provenance_summary(output))
        else:
            status = (f"No face was swapped in any frame ({report.unswapped_reason()}): the "
                      "output is the target video unchanged, without the synthetic-media tag "
                      "and watermark.")
        return str(output), status, _downloads(output, matte_path)

    def preview_frame(sources, target, model, detector, faces, mask_blur, mask_padding,
                      color_match, mask, detail, pixel_boost, blinks, identity_strength,
                      exposure, detail_follow, matte, at, reference=None, picked=None):
        """One frame of the video, swapped as the whole video's swap shows it (--at), and
        the faces of that frame as it is, for the people picker."""
        sources = given(sources, target, "video")
        swapper = load(model, detector)
        output = new_output(output_dir, ".png")
        try:
            seconds = clip_time((at or "").strip() or "0", "Preview the frame at", target)
            options = _options(faces, mask_blur, mask_padding, color_match, mask=mask,
                               detail=detail, pixel_boost=pixel_boost, blinks=blinks,
                               identity_strength=identity_strength, exposure=exposure,
                               detail_follow=detail_follow)
            options = _picking(options, reference, picked)
            plan = swapper.plan(sources, options)
            report = swapper.swap_clip_frame(target, output, plan, seconds, options)
            frame, people = frame_people(swapper, target, seconds, output_dir, options)
        except FacedancerError as exc:
            raise gr.Error(str(exc)) from exc
        status = (f"Preview of {report.span}: swapped {report.swapped} of {report.detected} "
                  "face(s)." if report.changed else
                  f"Preview of {report.span}: nothing swapped ({report.unswapped_reason()}).")
        return str(output), status, people, (str(frame), report.span)

    def target_people(target, model, detector):
        """The faces of an uploaded target photo, for the image tab's people picker (and
        no person picked: the last photo's pick names no one in this one)."""
        if not target:
            return [], None, ""
        try:
            people = image_people(load(model, detector), target)
        except FacedancerError as exc:
            raise gr.Error(str(exc)) from exc
        return people, None, ""

    def pick_in_photo(target, event: gr.SelectData):
        """A face clicked in the image tab's picker: only that person is swapped."""
        return _picked(target, int(event.index) + 1, "") if target else (None, "")

    def pick(shown, event: gr.SelectData):
        """A face clicked in the people picker: only that person is swapped from now on."""
        if not shown:
            return None, ""
        frame, span = shown
        return _picked(frame, int(event.index) + 1, f" in {span}")

    # gradio hands the click over to a parameter annotated gr.SelectData; this module's
    # annotations are strings (from __future__ import annotations) and gr is imported in this
    # function, so gradio cannot resolve that one: it is given as the class itself.
    pick.__annotations__["event"] = gr.SelectData
    pick_in_photo.__annotations__["event"] = gr.SelectData

    def _picker(label: str, prefix: str):
        """A people picker's gallery, its note and its "Swap everyone again" button (element
        ids ``{prefix}people``, ``{prefix}picked-note``, ``{prefix}unpick``)."""
        gallery = gr.Gallery(label=label, columns=8, height="auto", allow_preview=False,
                             interactive=False, elem_id=f"{prefix}people")
        with gr.Row():
            note = gr.Markdown(elem_id=f"{prefix}picked-note")
            undo = gr.Button("Swap everyone again", size="sm", elem_id=f"{prefix}unpick")
        return gallery, note, undo

    with gr.Blocks(title=title, analytics_enabled=False, delete_cache=(3600, 3600)) as app:
        gr.Markdown(f"# {title}")
        gr.Markdown(PROVENANCE_NOTE, elem_id="provenance-note")
        with gr.Row():
            model = gr.Dropdown([(m.label, m.value) for m in models], value=default_model,
                                label="Model", elem_id="model", scale=3,
                                info="Installed generators (add one with `facedancer ui "
                                "--model DIR`, or `facedancer models fetch/add`).")
            detector = gr.Dropdown([(d.label, d.value) for d in detectors],
                                   value=default_detector, label="Face detector",
                                   elem_id="detector", scale=2,
                                   info="retinaface (embedded) or a converted RetinaFace-Res50, "
                                   "the authors' detector (`facedancer convert`).")
            faces = gr.Radio(["all", "largest"], value="all", label="Faces to swap",
                             elem_id="faces", scale=1)
        with gr.Row():
            mask_blur = gr.Slider(0.0, 20.0, value=7.0, step=0.5, label="Mask blur",
                                  info="Gaussian sigma, pixels of a 256 crop (7 = reference)",
                                  elem_id="mask-blur")
            mask_padding = gr.Slider(-0.25, 0.5, value=0.0, step=0.01, label="Mask padding",
                                     info="grow (>0) or shrink (<0) the blend box",
                                     elem_id="mask-padding")
            color_match = gr.Dropdown(["local", "global", "none"], value="local",
                                      label="Colour correction",
                                      info="local: no colour casts; global: mean/std only",
                                      elem_id="color-match")
        with gr.Row():
            mask = gr.Dropdown(["box+hull+occlusion", "box+hull+occlusion+mouth",
                                "box+hull+occlusion+eyes", "box+hull", "box+segment+occlusion",
                                "box"], value="box+hull+occlusion", label="Mask",
                               info="box = the reference; hull = face outline; occlusion = "
                               "keep hands, microphones, glasses; mouth / eyes = keep the "
                               "target's own (lip sync, gaze)", elem_id="mask")
            detail = gr.Slider(0.0, 1.0, value=1.0, step=0.05, label="Detail from the target",
                               info="sharpness above the model's resolution (0 = model only)",
                               elem_id="detail")
            detail_follow = gr.Checkbox(value=False, label="Detail follows the swap's features",
                                        info="the target's detail is moved onto the swap's "
                                        "eyes, brows and mouth: no double lid creases or "
                                        "brows, a little softer", elem_id="detail-follow")
            pixel_boost = gr.Slider(1, 4, value=1, step=1, label="Pixel boost",
                                    info="N x N model runs on sub-pixel samplings of a large "
                                    "face (1 = off; N^2 times the model's time)",
                                    elem_id="pixel-boost")
            blinks = gr.Checkbox(value=True, label="Keep blinks",
                                 info="an eye the target closes further than the model's "
                                 "comes from the target (needs 'hull' in the mask)",
                                 elem_id="blinks")
            exposure = gr.Checkbox(value=True, label="Show the model dark and coloured-lit "
                                   "faces as it was trained",
                                   info="a face darker than the model's training faces, or "
                                   "under coloured light, is swapped brightened or "
                                   "white-balanced and given its light back (dim rooms, "
                                   "night, stage lights)",
                                   elem_id="exposure")
            identity_strength = gr.Dropdown([MODEL_STRENGTH, "0", "0.2", "0.35", "0.5",
                                             "0.75", "1"], value=MODEL_STRENGTH,
                                            label="Identity strength",
                                            info="push the identity away from the target's "
                                            "own (0 = the source as it is; model's: the demo "
                                            "model 0.2)", elem_id="identity-strength")
            matte = gr.Checkbox(value=False, label="Also make the matte",
                                info="a grey image or clip of how much of each pixel the "
                                "swap replaced, to download with the result (for "
                                "compositing or grading in an editor)", elem_id="matte")
        with gr.Tabs():
            with gr.Tab("Image swap", id="image"):
                with gr.Row():
                    with gr.Column():
                        sources = gr.File(file_count="multiple", file_types=["image"],
                                          label="Source face photo(s): one person, several "
                                          "photos are averaged", elem_id="sources")
                        target = gr.Image(type="filepath", image_mode=None,
                                          sources=["upload", "clipboard"], label="Target image",
                                          elem_id="target")
                        reference = gr.File(file_count="multiple", file_types=["image"],
                                            label="Only swap this person (optional): "
                                            "photo(s) of them; the others keep their faces",
                                            elem_id="reference")
                        photo_people, photo_picked_note, photo_unpick = _picker(
                            "People in the target: click one to swap only them", "photo-")
                        photo_picked = gr.State(None)  # TARGET@N: the person picked, or None
                        run = gr.Button("Swap", variant="primary", elem_id="swap-button")
                    with gr.Column():
                        with gr.Tabs():
                            with gr.Tab("Result", id="result-tab"):
                                result = gr.Image(type="filepath", label="Result",
                                                  interactive=False, elem_id="result",
                                                  buttons=["download", "fullscreen"])
                            with gr.Tab("Compare", id="compare-tab"):
                                compare = gr.ImageSlider(type="filepath", interactive=False,
                                                         label="Target | result (drag)",
                                                         elem_id="compare")
                        status = gr.Markdown(elem_id="status")
                        download = gr.File(label="Download (PNG with provenance tag; the "
                                           "matte when asked)", file_count="multiple",
                                           interactive=False, elem_id="download")
            with gr.Tab("Video swap", id="video"):
                with gr.Row():
                    with gr.Column():
                        video_sources = gr.File(file_count="multiple", file_types=["image"],
                                                label="Source face photo(s)",
                                                elem_id="video-sources")
                        video_target = gr.Video(sources=["upload"], label="Target video",
                                                elem_id="video-target")
                        video_reference = gr.File(file_count="multiple", file_types=["image"],
                                                  label="Only swap this person (optional): "
                                                  "photo(s) of them; the others keep their "
                                                  "faces", elem_id="video-reference")
                        max_frames = gr.Number(0, precision=0, minimum=0,
                                               label="Max frames (0 = whole video)",
                                               elem_id="max-frames")
                        with gr.Row():
                            # The rest of the clip passes through: it keeps its length.
                            span_start = gr.Textbox("", label="Swap from (s, MM:SS or "
                                                    "HH:MM:SS:FF; empty = start)",
                                                    elem_id="span-start")
                            span_end = gr.Textbox("", label="Swap until (s, MM:SS or "
                                                  "HH:MM:SS:FF; empty = end)", elem_id="span-end")
                        with gr.Row():
                            preview_at = gr.Textbox("", label="Preview the frame at (s, "
                                                    "MM:SS or HH:MM:SS:FF; empty = "
                                                    "the first)",
                                                    elem_id="preview-at")
                            preview_run = gr.Button("Preview frame", elem_id="preview-button")
                        video_run = gr.Button("Swap video", variant="primary",
                                              elem_id="video-swap-button")
                    with gr.Column():
                        video_result = gr.Video(label="Result", interactive=False,
                                                elem_id="video-result")
                        preview_image = gr.Image(type="filepath", label="Preview: one frame, "
                                                 "as the video's swap shows it",
                                                 interactive=False, elem_id="preview-result")
                        people, picked_note, unpick = _picker(
                            "People in the previewed frame: click one to swap only them", "")
                        shown = gr.State(None)  # (the previewed frame's PNG, which frame)
                        picked = gr.State(None)  # FRAME@N: the person picked, or None
                        video_status = gr.Markdown(elem_id="video-status")
                        video_download = gr.File(label="Download (MP4 with provenance tag; the "
                                                 "matte when asked)", file_count="multiple",
                                                 interactive=False, elem_id="video-download")
            from .anonymize import anonymize_tab  # here: anonymize.py imports this module

            anonymize_tab(load, output_dir, model, faces, mask_blur, mask_padding, color_match,
                          detector=detector)
            with gr.Tab("Live", id="live"):
                from .live import live_tab  # here: live.py imports this module

                live_tab(load, model, faces, default_model,
                         blend=[mask_blur, mask_padding, color_match], detector=detector)
        gr.Markdown("Runs locally: photos and videos stay on this machine. Results are "
                    "kept in a temporary folder until the server stops.",
                    elem_id="footer-note")
        options = [model, detector, faces, mask_blur, mask_padding, color_match, mask, detail,
                   pixel_boost, blinks, identity_strength, exposure, detail_follow, matte]
        # One swap at a time across both tabs: a Swapper is not meant for concurrent calls and
        # the CPU/GPU is saturated by one job anyway; others wait in gradio's queue.
        run.click(swap_image, [sources, target, *options, reference, photo_picked],
                  [result, compare, status, download], concurrency_limit=1,
                  concurrency_id="swap")
        # Another target photo: its faces, and a person picked in the last one is no one here.
        target.change(target_people, [target, model, detector],
                      [photo_people, photo_picked, photo_picked_note], concurrency_limit=1,
                      concurrency_id="swap")
        photo_people.select(pick_in_photo, [target], [photo_picked, photo_picked_note])
        photo_unpick.click(lambda: (None, ""), None, [photo_picked, photo_picked_note])
        video_run.click(swap_video, [video_sources, video_target, *options, max_frames,
                                     span_start, span_end, video_reference, picked],
                        [video_result, video_status, video_download], concurrency_limit=1,
                        concurrency_id="swap")
        preview_run.click(preview_frame, [video_sources, video_target, *options, preview_at,
                                          video_reference, picked],
                          [preview_image, video_status, people, shown], concurrency_limit=1,
                          concurrency_id="swap")
        people.select(pick, [shown], [picked, picked_note])
        unpick.click(lambda: (None, ""), None, [picked, picked_note])
        # Another video: a person picked in the last one is no one in it.
        video_target.change(lambda: (None, "", None, []), None,
                            [picked, picked_note, shown, people])
    app.facedancer_output_dir = output_dir  # launch_app lets gradio serve results from here
    app.facedancer_detectors = detectors  # the detector picker's entries, as offered
    return app


def launch_app(app, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
               max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB, block: bool = True,
               quiet: bool = False, password: str | None = None) -> str:
    """Serve ``app`` on ``host:port``; returns the local URL (when ``block`` is False).

    Uploads larger than ``max_upload_mb`` are refused (HTTP 413, an error in the page). A
    non-loopback ``host`` prints :func:`host_warning` to stderr. No share link, no SSR server,
    no analytics.
    """
    if max_upload_mb <= 0:
        raise FacedancerError(f"--max-upload-mb must be > 0, got {max_upload_mb}")
    if not 0 < int(port) < 65536:
        raise FacedancerError(f"--port must be in 1..65535, got {port}")
    warning = host_warning(host, password=bool(password))
    if warning:
        print(warning, file=sys.stderr)
    allowed = [str(app.facedancer_output_dir)] if hasattr(app, "facedancer_output_dir") else []
    app.queue(default_concurrency_limit=1)
    try:
        # gradio's own banner suggests share=True, which this tool does not offer: ours instead.
        _, local_url, _ = app.launch(
            server_name=host, server_port=int(port), share=False, inbrowser=False,
            prevent_thread_lock=True, show_error=True, quiet=True,
            max_file_size=int(max_upload_mb * 1024 * 1024), allowed_paths=allowed,
            ssr_mode=False, pwa=False, mcp_server=False, enable_monitoring=False,
            auth=("facedancer", password) if password else None)
    except OSError as exc:
        raise FacedancerError(f"cannot serve on {host}:{port} ({' '.join(str(exc).split())}); "
                              "pass another --port or --host") from exc
    if not quiet:
        browse = local_url if is_loopback(host) else f"http://127.0.0.1:{int(port)}/"
        print(f"FaceDancer web UI: open {browse} in a browser (listening on {host}:{int(port)}, "
              f"uploads up to {max_upload_mb:g} MB; Ctrl-C to stop)", flush=True)
    if block:
        app.block_thread()
    return local_url
