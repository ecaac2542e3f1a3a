"""Shot cuts: where an edited video jumps from one shot to the next.

A face tracker links faces by where they are. At a cut from one speaker to the next framed
the same way (an interview, a news edit), the second person's face lands where the first one's
was and would continue the first one's track: its ``--reference`` / ``--map`` decision (made
on a track's first views), its smoothed landmarks and what the compositor eases along the
track. Measured on two shared clips joined by a cut (docs/swap.md "Videos"): with
``--reference`` set to the first person both people were swapped, set to the second person
neither. At a cut the tracker therefore starts afresh, and the whole frame is searched for
faces instead of the places where the last shot's faces were.

A cut is a jump of the whole picture between two consecutive frames: of a 64 x 64 thumbnail,
the mean absolute grey difference or the total variation of the 8 x 8 x 8 colour histograms.
On the shared clips (682 consecutive frame pairs, talking heads and a walking crowd) the grey
difference is at most 8.3 but for three jumps in ``talking_1face_512.mp4`` where frames of the
same person were edited out (13-15.5; with the camera's move fitted, below, under 12: no cut),
the histograms' at most 0.068; between the first and last frames of different clips at least
54 and 0.59.

The camera moves the whole picture too: a pan, a zoom or a handheld shake changes the
thumbnail's grey levels by as much as a cut (the shared clips panned and zoomed at 2-3 % of the
frame per frame, or shaken, synthetically: up to 44 grey levels between consecutive frames of
one shot, so that nearly every frame counted as a cut; each cut ends every track, a new track
waits to be confirmed, and the face blinked between swapped and not swapped). The grey
difference therefore counts what is left after the previous thumbnail is moved to fit the new
one (:func:`fit_move`: an affine fit, ``cv2.findTransformECC``, compared slightly
blurred), unless the fit needs a move no camera makes between two frames. The colour
histograms do not depend on where things are, so they are compared as they are.

A flash (a camera's, a strobe, a dropped frame) jumps away and back within a frame or two: the
frame that comes back to the picture before the jump is no cut, and the jump's cut is taken
back from the count (:data:`SHOT_FLASH_FRAMES`).
"""

from __future__ import annotations

import cv2
import numpy as np

# Thumbnail side in pixels: the frame's layout and colours, none of its detail or noise.
SHOT_THUMBNAIL: int = 64
# A cut where the thumbnail's mean absolute grey difference from the previous frame reaches
# this (0-255)...
SHOT_CUT_GREY: float = 12.0
# ... or the total variation between their colour histograms this (0-1). A false cut in a
# continuous shot costs little: its faces start new tracks and are swapped as before.
SHOT_CUT_HISTOGRAM: float = 0.25
# The grey difference of a jump that reaches SHOT_CUT_GREY is measured again after the previous
# thumbnail is moved (an affine fit) onto the new one, inside a border of this many thumbnail
# pixels (what a move brings in at the edges has no counterpart to compare with)...
SHOT_MOTION_BORDER: int = 6
# ... if the fit moves it by at most this share of the thumbnail and scales it by at most this
# factor either way (a camera between two frames; a larger fit is taken for a cut).
SHOT_MOTION_SHIFT: float = 0.25
SHOT_MOTION_SCALE: float = 1.4
# Both thumbnails are blurred by this sigma (thumbnail pixels) before they are compared: fine
# texture moved by a fraction of a pixel (a crowd, foliage) differs after any interpolation.
# Measured on the shared clips moved synthetically (benchmarks/shots.py): the fitted difference
# of camera moves at most 13.5 unblurred, 7.5 blurred; real cuts between clips at least 42 /
# 36, another clip's face pasted into a frame 21.5 / 18.9 (SHOT_CUT_GREY 12 lies between).
SHOT_MOTION_BLUR: float = 1.0
# False: the grey difference as it is, the camera's move not fitted (before session 22;
# benchmarks/shots.py --camera compares both).
SHOT_MOTION_FIT: bool = True
# A cut after which the picture comes back, within this many frames, to what it was before
# the cut was a flash (a camera flash, a strobe, a dropped or corrupt frame), not a new shot:
# the frame that comes back is no cut, so the faces' tracks that started at the flash go on.
SHOT_FLASH_FRAMES: int = 3


def picture(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What a frame is compared by: its :data:`SHOT_THUMBNAIL` grey thumbnail (float32) and the
    8 x 8 x 8 colour histogram of that thumbnail (summing to 1)."""
    # Every few pixels sampled to 4x the thumbnail, then averaged down: 16 samples per
    # thumbnail pixel (enough against noise) for a fraction of a full-frame average.
    side = 4 * SHOT_THUMBNAIL
    sampled = cv2.resize(rgb, (side, side), interpolation=cv2.INTER_NEAREST) \
        if min(rgb.shape[:2]) > side else rgb
    thumb = cv2.resize(sampled, (SHOT_THUMBNAIL, SHOT_THUMBNAIL), interpolation=cv2.INTER_AREA)
    grey = cv2.cvtColor(thumb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    histogram = cv2.calcHist([thumb], [0, 1, 2], None, [8, 8, 8], [0, 256] * 3).ravel()
    histogram /= max(float(histogram.sum()), 1.0)
    return grey, histogram


def picture_jump(a: tuple, b: tuple) -> tuple[float, float]:
    """``(mean absolute grey difference, histogram total variation)`` between two
    :func:`picture` results."""
    return float(np.abs(a[0] - b[0]).mean()), 0.5 * float(np.abs(a[1] - b[1]).sum())


def fit_move(previous: np.ndarray, current: np.ndarray) -> tuple[float, np.ndarray] | None:
    """The mean absolute grey difference between two :func:`picture` thumbnails after
    ``previous`` is moved to fit ``current`` (affine, coarse to fine: ECC on 32 then 64 px),
    both blurred by :data:`SHOT_MOTION_BLUR`, inside a border of :data:`SHOT_MOTION_BORDER`,
    and the fitted ``(2, 3)`` affine, which maps ``current`` thumbnail pixels to where they
    were in ``previous``; None when no fit within a camera's move is found."""
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 1e-3)
    side = previous.shape[0]
    warp = np.eye(2, 3, dtype=np.float32)
    try:
        half = side // 2
        small = [cv2.resize(x, (half, half), interpolation=cv2.INTER_AREA)
                 for x in (previous, current)]
        _, warp = cv2.findTransformECC(small[1], small[0], warp, cv2.MOTION_AFFINE, criteria,
                                       None, 3)
        warp[:, 2] *= side / half
        _, warp = cv2.findTransformECC(current, previous, warp, cv2.MOTION_AFFINE, criteria,
                                       None, 3)
    except cv2.error:  # no convergence (e.g. a flat picture): nothing explains the change
        return None
    singular = np.linalg.svd(warp[:, :2], compute_uv=False)
    if not np.isfinite(warp).all() or singular.max() > SHOT_MOTION_SCALE \
            or singular.min() < 1.0 / SHOT_MOTION_SCALE \
            or np.abs(warp[:, 2] - (np.eye(2) - warp[:, :2]) @ [side / 2, side / 2]).max() \
            > SHOT_MOTION_SHIFT * side:
        return None
    moved = cv2.warpAffine(previous, warp, (side, side),
                           flags=cv2.INTER_LINEAR + cv2.WARP_INVERSE_MAP,
                           borderMode=cv2.BORDER_REPLICATE)
    if SHOT_MOTION_BLUR > 0:
        moved = cv2.GaussianBlur(moved, (0, 0), SHOT_MOTION_BLUR)
        current = cv2.GaussianBlur(current, (0, 0), SHOT_MOTION_BLUR)
    inner = slice(SHOT_MOTION_BORDER, side - SHOT_MOTION_BORDER)
    return float(np.abs(moved[inner, inner] - current[inner, inner]).mean()), warp


def frame_move(warp: np.ndarray, width: int, height: int, side: int = SHOT_THUMBNAIL
               ) -> np.ndarray:
    """A thumbnail fit of :func:`fit_move` as the ``(2, 3)`` affine that takes a point of the
    previous *frame* (``width`` x ``height`` pixels) to where it is in the current one."""
    scale = np.array([side / width, side / height])
    offset = 0.5 * scale - 0.5  # pixel centres: x_thumb = (x_frame + 0.5) * scale - 0.5
    to_thumb = np.array([[scale[0], 0, offset[0]], [0, scale[1], offset[1]], [0, 0, 1]])
    back = np.vstack([np.asarray(warp, np.float64), [0, 0, 1]])  # current -> previous
    forward = np.linalg.inv(to_thumb) @ np.linalg.inv(back) @ to_thumb
    return forward[:2]


def _fitting(motion: bool | None) -> bool:
    """Whether the camera's move is fitted: ``motion``, else :data:`SHOT_MOTION_FIT`."""
    return SHOT_MOTION_FIT if motion is None else motion


def grey_change(previous: tuple, current: tuple, motion: bool | None = None
                ) -> tuple[float, float, np.ndarray | None]:
    """``(grey difference, histogram variation, fitted move)`` between two :func:`picture`
    results, the grey difference after fitting the camera's move where it reaches
    :data:`SHOT_CUT_GREY` (``motion``: default :data:`SHOT_MOTION_FIT`; infinite where no
    camera's move fits); the move is :func:`fit_move`'s affine, None where none was fitted."""
    grey, histogram = picture_jump(previous, current)
    warp = None
    if grey >= SHOT_CUT_GREY and _fitting(motion):
        fitted = fit_move(previous[0], current[0])
        grey = float("inf") if fitted is None else min(grey, fitted[0])
        warp = None if fitted is None else fitted[1]
    return grey, histogram, warp


class ShotCuts:
    """Call once per frame, in order: True for the first frame of a new shot (never for the
    first frame of a stream).

    With the camera's move fitted (``motion``), a grey jump is a cut only after a step that
    was not one: a cut ends a shot, and the next shot's own first frames do not (jumps in a
    row are movement the fit leaves, e.g. a person filling a close-up turning while the camera
    zooms; on ``talking_1face_512.mp4`` zoomed, compared unblurred, three in a row at an edit
    ended the new track twice more before it was confirmed, and two frames went unswapped). A
    jump of the colour histograms is a cut wherever it comes."""

    def __init__(self, motion: bool | None = None) -> None:
        self._previous: tuple[np.ndarray, np.ndarray] | None = None
        self.motion = motion  # see grey_change
        self._jumped = False  # the last step reached SHOT_CUT_GREY (fitted) or was a cut
        # the picture before the last cut, while it is at most SHOT_FLASH_FRAMES frames ago
        self._before_cut: tuple[np.ndarray, np.ndarray] | None = None
        self._since_cut = 0
        self.cuts = 0
        self.flashes = 0
        # True for a frame that took the picture back to where it was before a cut a few
        # frames earlier: that "cut" was a flash (SHOT_FLASH_FRAMES), no new shot.
        self.returned = False
        # Where the camera moved the picture since the last frame, in frame pixels (the
        # ``(2, 3)`` affine of :func:`frame_move`), when the frame jumped and no cut was found;
        # else None (a still or slowly moving camera: boxes overlap as they are).
        self.move: np.ndarray | None = None

    def __call__(self, rgb: np.ndarray) -> bool:
        previous, self._previous = self._previous, picture(rgb)
        self.returned = False
        self.move = None
        if previous is None:
            return False
        grey, histogram, warp = grey_change(previous, self._previous, self.motion)
        jumped = grey >= SHOT_CUT_GREY
        cut = histogram >= SHOT_CUT_HISTOGRAM or \
            (jumped and not (_fitting(self.motion) and self._jumped))
        if cut and self._before_cut is not None:
            back_grey, back_histogram, _ = grey_change(self._before_cut, self._previous,
                                                       self.motion)
            if back_grey < SHOT_CUT_GREY and back_histogram < SHOT_CUT_HISTOGRAM:
                # A camera flash, a strobe, a dropped or corrupt frame: the picture jumped away
                # and came back. The frame that comes back continues the shot (its faces
                # continue the tracks that started at the flash, so the flash's frames are
                # swapped too), and the flash's cut is taken back from the count.
                cut, self.returned = False, True
                self.cuts -= 1
                self.flashes += 1
                self._before_cut = None
        if cut and SHOT_FLASH_FRAMES > 0:  # 0: every jump is a cut, as before session 22
            self._before_cut, self._since_cut = previous, 0
        elif self._before_cut is not None:
            self._since_cut += 1
            if self._since_cut >= SHOT_FLASH_FRAMES:
                self._before_cut = None
        self._jumped = jumped or cut
        self.cuts += cut
        if warp is not None and not cut and not self.returned:
            self.move = frame_move(warp, rgb.shape[1], rgb.shape[0])
        return cut
