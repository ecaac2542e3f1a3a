"""The web UI's "Anonymize" tab: every face of an image or video replaced by a synthetic one.

Built inside :func:`~facedancer_torch.ui.app.build_app`'s tabs; the work is
:func:`~facedancer_torch.swap.anonymize.anonymize_plan` plus the same file writers as the other
tabs, so results carry the provenance tag (operation ``anonymize``) and the watermark.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

from ..errors import FacedancerError
from ..io.images import is_video_path
from ..io.provenance import read_provenance
from ..swap.anonymize import DEFAULT_STRENGTH, anonymize_options, anonymize_plan
from .app import provenance_summary


def anonymize_file(swapper, target: str | Path, output_dir: Path, strength: float,
                   seed: float | None, faces: str, mask_blur: float, mask_padding: float,
                   color_match: str | bool, max_frames: float | None = None
                   ) -> tuple[Path, int | None]:
    """Anonymize one uploaded image or video into ``output_dir``; returns the output path and
    the number of faces replaced (None for a video)."""
    video = is_video_path(Path(target))
    output = output_dir / f"anonymized-{uuid.uuid4().hex[:12]}.{'mp4' if video else 'png'}"
    frames = int(max_frames) if max_frames else 0
    options = anonymize_options(faces=faces or "all", mask_blur=float(mask_blur),
                                mask_padding=float(mask_padding),
                                color_match=color_match if isinstance(color_match, str)
                                else bool(color_match),
                                overwrite=True,
                                max_frames=frames if video and frames > 0 else None)
    plan = anonymize_plan(swapper, strength=float(strength),
                          seed=None if seed is None or seed < 0 else int(seed),
                          faces=faces or "all")
    if video:
        swapper.swap_video_file(target, output, plan, options, progress=True)
        return output, None
    swapper.swap_image_file(target, output, plan, options)
    return output, int((read_provenance(output) or {}).get("faces_swapped", "0") or 0)


def anonymize_tab(load: Callable[..., object], output_dir: Path, model, faces, mask_blur,
                  mask_padding, color_match, detector=None) -> None:
    """Add the tab to the enclosing ``gr.Tabs`` and wire its button; ``load(model value,
    detector value)`` returns a Swapper, the other arguments are the app's shared option
    components (``detector``: the detector picker, None = the app's default detector)."""
    import gradio as gr  # here: gradio is the optional [ui] extra

    def run(target, strength, seed, max_frames, model_value, faces_value, blur, padding, colour,
            detector_value=None, progress=gr.Progress(track_tqdm=True)):
        if not target:
            raise gr.Error("Upload an image or a video to anonymize.")
        target = getattr(target, "path", None) or getattr(target, "name", None) or target
        progress(0, desc="loading the model")
        swapper = load(model_value, detector_value)
        try:
            output, replaced = anonymize_file(swapper, target, output_dir, strength,
                                              seed, faces_value, blur, padding, colour,
                                              max_frames)
        except FacedancerError as exc:
            raise gr.Error(str(exc)) from exc
        if replaced is None:
            status = f"Anonymized video written ({output.name})."
        elif replaced:
            status = f"Replaced {replaced} face(s) with synthetic identities."
        else:
            status = "No face was found: the output is the input unchanged (still tagged)."
        status += "\n\n" + provenance_summary(output)
        image = str(output) if replaced is not None else None
        video = str(output) if replaced is None else None
        return image, video, status, str(output)

    with gr.Tab("Anonymize", id="anonymize"):
        gr.Markdown("Every face becomes a person who does not exist; no source photo is "
                    "needed. In a video each person keeps one synthetic identity. Leave the "
                    "seed at -1 for new identities on every run (results of separate runs "
                    "cannot be linked), or fix it to reproduce a result.",
                    elem_id="anonymize-note")
        with gr.Row():
            with gr.Column():
                target = gr.File(file_types=["image", "video"], label="Image or video",
                                 elem_id="anonymize-target")
                strength = gr.Slider(0.0, 1.0, value=DEFAULT_STRENGTH, step=0.05,
                                     label="Strength", elem_id="anonymize-strength",
                                     info="how far each face moves from its own identity")
                seed = gr.Number(-1, precision=0, label="Seed (-1 = random)",
                                 elem_id="anonymize-seed")
                max_frames = gr.Number(0, precision=0, minimum=0,
                                       label="Max frames of a video (0 = whole video)",
                                       elem_id="anonymize-max-frames")
                button = gr.Button("Anonymize", variant="primary", elem_id="anonymize-button")
            with gr.Column():
                image = gr.Image(type="filepath", label="Result", interactive=False,
                                 elem_id="anonymize-image")
                video = gr.Video(label="Result", interactive=False, elem_id="anonymize-video")
                status = gr.Markdown(elem_id="anonymize-status")
                download = gr.File(label="Download (with provenance tag)", interactive=False,
                                   elem_id="anonymize-download")
    button.click(run, [target, strength, seed, max_frames, model, faces, mask_blur,
                       mask_padding, color_match, *([detector] if detector else [])],
                 [image, video, status, download],
                 concurrency_limit=1, concurrency_id="swap")
