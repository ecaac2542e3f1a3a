"""The web UI's Live tab: the browser's webcam streamed through the swapper and back.

The browser sends a webcam frame every :data:`STREAM_EVERY` seconds (gradio's streaming
image); each is swapped by :class:`~facedancer_torch.swap.live.LiveSwapper` (face tracking
across the stream's frames, one session per browser tab) and returned as a PNG carrying the
visible "synthetic media" label and the invisible watermark. The status line under the result
shows the frames/s and the server-side latency, and the tab repeats the provenance note.

Frames travel over HTTP, so the rate is what the network and one server allow (a few frames per
second in a browser, far less than ``facedancer live`` on the same machine); docs/live.md says
when to use which.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

import numpy as np

from ..errors import FacedancerError
from ..io.watermark import embed_watermark
from ..swap.live import LiveSettings, LiveSwapper, live_options
from .app import _paths

# Seconds between the webcam frames the browser sends (gradio's ``stream_every``).
STREAM_EVERY: float = 0.15
# Browser tabs streaming at once whose trackers are kept (older ones are dropped).
MAX_SESSIONS: int = 4

LIVE_NOTE = (
    "**Live swap of your webcam: synthetic media.** Every frame that comes back carries a "
    "visible *SYNTHETIC MEDIA* label and an invisible watermark. Only show your own face or "
    "the face of someone who consented, and tell the people watching that it is swapped.")


class _Session:
    """One browser tab's stream: its tracker and its rate meter."""

    def __init__(self, live, key: tuple) -> None:
        self.live = live
        self.key = key
        self.times: deque[float] = deque(maxlen=20)
        self.latency: deque[float] = deque(maxlen=20)
        self.lock = threading.Lock()


class LiveSessions:
    """Per-tab :class:`LiveSwapper` instances (keyed by gradio's session hash), rebuilt when the
    model, the detector, the source photos or the face choice change."""

    def __init__(self, load_swapper: Callable[..., object]) -> None:
        self._load = load_swapper
        self._sessions: OrderedDict[str, _Session] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, session: str, model: str, sources: list[str], faces: str,
            blend: tuple = (), detector: str | None = None) -> _Session:
        """``blend``: the page's (mask blur, mask padding, colour match) values; ``detector``
        the detector picker's value (None: the app's default)."""
        key = (model, detector, tuple(sources), faces, tuple(blend))
        with self._lock:
            current = self._sessions.get(session)
            if current is not None and current.key == key:
                self._sessions.move_to_end(session)
                return current
        swapper = self._load(model, detector)
        mask_blur, mask_padding, color_match = (tuple(blend) + (None, None, None))[:3]
        options = live_options(faces=faces or "all", mask_blur=mask_blur,
                               mask_padding=mask_padding,
                               color_match=color_match if isinstance(color_match, str)
                               else ("global" if color_match else None))
        plan = swapper.plan(sources, options)
        # Inline full-frame detection: frames arrive one request at a time, and a request
        # should answer with the faces of its own frame; between detections the ROI tracker
        # follows the face (frames are STREAM_EVERY apart, so a few per second).
        live = LiveSwapper(swapper, plan, options,
                           LiveSettings(detect_every=5, background=False, roi_scale=2.5),
                           fps=1.0 / STREAM_EVERY)
        created = _Session(live, key)
        with self._lock:
            old = self._sessions.pop(session, None)
            self._sessions[session] = created
            while len(self._sessions) > MAX_SESSIONS:
                _, dropped = self._sessions.popitem(last=False)
                dropped.live.close()
        if old is not None:
            old.live.close()
        return created

    def close(self, session: str) -> None:
        with self._lock:
            item = self._sessions.pop(session, None)
        if item is not None:
            item.live.close()


def swap_webcam_frame(sessions: LiveSessions, frame: np.ndarray | None, sources: list[str],
                      model: str, faces: str, session: str, blend: tuple = (),
                      detector: str | None = None) -> tuple[np.ndarray | None, str]:
    """One streamed webcam frame ``(H, W, 3)`` uint8 RGB -> the swapped, labelled and
    watermarked frame and a status line."""
    if frame is None:
        return None, "Waiting for the webcam..."
    if not sources:
        raise FacedancerError("Upload at least one photo of the source face first.")
    item = sessions.get(session, model, sources, faces, blend, detector)
    start = time.perf_counter()
    with item.lock:  # one frame of a tab at a time: the tracker is sequential
        swapped = item.live.swap(np.asarray(frame)[..., :3])
    rgb = embed_watermark(swapped.rgb)
    now = time.perf_counter()
    item.times.append(now)
    item.latency.append(now - start)
    fps = (len(item.times) - 1) / (item.times[-1] - item.times[0]) if len(item.times) > 1 \
        else 0.0
    status = (f"{swapped.faces} face(s) swapped · {fps:.1f} frames/s · server latency "
              f"{1000 * float(np.median(item.latency)):.0f} ms · synthetic media "
              "(labelled and watermarked)")
    return rgb, status


def live_tab(load_swapper: Callable[..., object], model, faces, default_model: str,
             blend: list | None = None, detector=None) -> None:
    """Build the Live tab's components inside the current gradio ``Tab`` context.

    ``load_swapper(model value, detector value) -> Swapper`` (the app's cached loader, raising
    ``gr.Error``), ``model`` and ``faces`` the app's model picker and face-choice components,
    ``blend`` its mask blur, mask padding and colour match components (optional), ``detector``
    its detector picker (optional; None = the app's default detector).
    """
    import gradio as gr  # here: gradio is the optional [ui] extra

    sessions = LiveSessions(load_swapper)
    gr.Markdown(LIVE_NOTE, elem_id="live-note")
    with gr.Row():
        with gr.Column():
            sources = gr.File(file_count="multiple", file_types=["image"],
                              label="Source face photo(s)", elem_id="live-sources")
            webcam = gr.Image(sources=["webcam"], streaming=True, type="numpy",
                              label="Webcam", elem_id="live-webcam")
        with gr.Column():
            result = gr.Image(type="numpy", format="png", interactive=False,
                              label="Swapped (synthetic media)", elem_id="live-result")
            status = gr.Markdown(elem_id="live-status")

    blend = list(blend or [])

    def on_frame(frame, photos, model_value, faces_value, detector_value=None, mask_blur=None,
                 mask_padding=None, color_match=None, request: gr.Request = None):
        session = getattr(request, "session_hash", None) or "default"
        try:
            return swap_webcam_frame(sessions, frame, _paths(photos),
                                     model_value or default_model, faces_value, session,
                                     (mask_blur, mask_padding, color_match), detector_value)
        except FacedancerError as exc:
            raise gr.Error(str(exc)) from exc

    # Without a detector picker, a constant None keeps the blend values in their places.
    picker = detector if detector is not None else gr.State(None)
    webcam.stream(on_frame, [webcam, sources, model, faces, picker, *blend], [result, status],
                  stream_every=STREAM_EVERY, concurrency_limit=1,
                  concurrency_id="live", show_progress="hidden")
