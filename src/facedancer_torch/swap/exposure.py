"""Dark faces, and faces under coloured light, are shown to the generator as it was trained.

The demo generator learned from LFW, where the lit part of the inner face (cheeks, nose,
mouth: the 90th percentile of its luma) is at 109 in the darkest 1 % of faces and 173 in the
middle one. Given a face darker than that (a dim room, a night shot, an underexposed video),
it does not keep the exposure: it paints a brightly lit skin with black, teal-rimmed eye
sockets, and the compositing's colour correction can only turn that into brown blotches over
the eyes (docs/swap.md, "Dark faces"). A gain is nearly what a darker exposure did to the
photo (sRGB values scale almost with the light), so the crop is multiplied by ``g`` before
the generator and its swap divided by ``g`` after: the generator sees a face of its training
brightness, and the output keeps the target's exposure. Faces at or above the floor are not
touched (bit for bit). The identity encoder's crops get the same gain (``source.py``): a
source photo taken in the dark then gives the identity its lit photo gives.

Coloured light is the same problem in colour: under a stage's magenta light the generator
paints maroon brows, cyan eyes and red blotches. A light of one colour multiplies each
channel by about its own factor, so a face whose lit skin is far from the training photos'
skin colours is balanced back towards them by per-channel gains (:func:`white_balance`) and
its swap divided by them after (:func:`face_gain` combines both; docs/swap.md "Coloured
light").
"""
from __future__ import annotations

import cv2
import numpy as np

# How bright a face is: this percentile of the inner face's luma (BT.601, 0-255), its lit
# part. Not the median: a face half in deep shadow under a strong side light (the child in
# fr_obama_and_biden.jpg: median 38) is lit, not underexposed, and brightening it by its
# median clipped its lit cheek's red and painted the cheek grey-green.
EXPOSURE_PERCENTILE: float = 90.0
# A face whose lit part is darker than this is brightened to it: the 2.5th percentile of
# 1,500 LFW training faces measured the same way (docs/swap.md "Dark faces"), so the faces of
# all but the darkest photos of the training set go through bit for bit (and 81 of the 82
# shared photos). 0 turns it off.
EXPOSURE_FLOOR: float = 120.0
# At most this gain: a face darker than a quarter of the floor is mostly sensor noise and
# quantisation, which a larger gain would only amplify.
EXPOSURE_MAX_GAIN: float = 4.0
# ... and never so much that the brightest 1 % of the inner face's channels would pass this
# level: a clipped channel changes the skin's hue, and the colour correction fitted at the
# generator's brightness would carry that hue back.
EXPOSURE_PEAK: float = 250.0
# The colour of lit skin (skin_chroma: log R/G, log B/G) in the generator's training photos:
# mean and covariance over 1,500 LFW faces (python benchmarks/skin_colour.py), and the
# Mahalanobis distance from that mean beyond which a face is under coloured light (a stage, a
# club, a sunset, a badly white-balanced camera) and is balanced back to it for the generator
# (white_balance). LFW's faces: median 1.04, 99th percentile 3.82; the shared photos at most
# 2.22 (fr_johnsnow_test1.jpg's grey-green grade), so all of them go through bit for bit. 0
# turns it off.
SKIN_MEAN: tuple[float, float] = (0.2867, -0.1947)
SKIN_COVARIANCE: tuple[tuple[float, float], tuple[float, float]] = (
    (0.01103, -0.00453), (-0.00453, 0.01574))
SKIN_DISTANCE: float = 3.0
# The inner face: an ellipse around the mean of the five landmarks, its half-axes these
# multiples of the eye distance (across, down): cheeks, nose, mouth, not hair or background.
EXPOSURE_REGION: tuple[float, float] = (0.9, 1.0)


def _ellipse(points: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Centre and half-axes (across, down) of the inner-face ellipse of five landmarks."""
    points = np.asarray(points, np.float32).reshape(5, 2)
    eyes = float(np.hypot(*(points[1] - points[0])))
    across, down = (max(1.0, eyes * r) for r in EXPOSURE_REGION)
    return points.mean(axis=0), across, down


def _inside(points: np.ndarray, rows: slice, cols: slice) -> np.ndarray:
    """Boolean map of the pixels ``rows`` x ``cols`` inside the inner-face ellipse."""
    centre, across, down = _ellipse(points)
    yy, xx = np.ogrid[rows, cols]
    return ((xx - centre[0]) / across) ** 2 + ((yy - centre[1]) / down) ** 2 <= 1.0


def inner_face(shape: tuple[int, int], points: np.ndarray) -> np.ndarray:
    """Boolean ``(H, W)`` map of the inner-face ellipse of five landmarks ``points`` (crop
    pixels: left eye, right eye, nose, left and right mouth corner)."""
    return _inside(points, slice(0, shape[0]), slice(0, shape[1]))


def _inner_box(crop: np.ndarray, points: np.ndarray, least: int = 1
               ) -> tuple[np.ndarray, np.ndarray] | None:
    """``(box, region)``: the part of ``crop`` around the inner-face ellipse and the ellipse's
    pixels in it (bool), or None where fewer than ``least`` pixels of it lie in the crop.
    Measuring on the box only costs a third of a ms per 128 px crop."""
    centre, across, down = _ellipse(points)
    height, width = crop.shape[:2]
    x0, x1 = max(0, int(centre[0] - across)), min(width, int(centre[0] + across) + 2)
    y0, y1 = max(0, int(centre[1] - down)), min(height, int(centre[1] + down) + 2)
    if x1 <= x0 or y1 <= y0:
        return None
    region = _inside(points, slice(y0, y1), slice(x0, x1))
    if int(np.count_nonzero(region)) < least:
        return None
    return np.ascontiguousarray(crop[y0:y1, x0:x1]), region


def face_brightness(crop: np.ndarray, points: np.ndarray) -> tuple[float, float]:
    """``(lit, peak)`` of ``crop``'s inner face (``crop`` RGB uint8, ``points`` in its
    pixels): the :data:`EXPOSURE_PERCENTILE` of its luma, and the 99th percentile of its
    brightest channel (NaN, NaN for an empty region)."""
    found = _inner_box(crop, points)
    if found is None:
        return float("nan"), float("nan")
    box, region = found
    luma = cv2.cvtColor(box, cv2.COLOR_RGB2GRAY)[region]  # BT.601, rounded
    return (float(np.percentile(luma, EXPOSURE_PERCENTILE)),
            float(np.percentile(box.max(axis=2)[region], 99)))


def exposure_gain(crop: np.ndarray, points: np.ndarray, floor: float | None = None) -> float:
    """The gain that brings the lit part of ``crop``'s inner face up to the floor: 1 for a
    face as bright as that or brighter (or an empty face region), at most
    :data:`EXPOSURE_MAX_GAIN` and never past :data:`EXPOSURE_PEAK` for the brightest
    channels."""
    floor = EXPOSURE_FLOOR if floor is None else floor
    if floor <= 0:
        return 1.0
    lit, peak = face_brightness(crop, points)
    if not np.isfinite(lit) or lit >= floor:
        return 1.0
    gain = min(EXPOSURE_MAX_GAIN, floor / max(lit, 1.0), EXPOSURE_PEAK / max(peak, 1.0))
    return float(max(gain, 1.0))


def is_unit(gain) -> bool:
    """Whether ``gain`` (a number, or one per RGB channel) changes nothing."""
    return bool(np.all(np.asarray(gain, np.float64) == 1.0))


def apply_gain(images: np.ndarray, gain) -> np.ndarray:
    """``images`` (uint8, RGB last) times ``gain`` (a number, or one per channel), rounded and
    clipped to uint8; the same array back for a gain of 1."""
    if is_unit(gain):
        return images
    factor = np.asarray(gain, np.float32)
    return np.clip(np.rint(images.astype(np.float32) * factor), 0, 255).astype(np.uint8)


def inverse_gain(gain):
    """The gain that undoes ``gain`` (a number, or one per channel)."""
    return 1.0 / gain if np.ndim(gain) == 0 else 1.0 / np.asarray(gain, np.float64)


def skin_chroma(crop: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The colour of ``crop``'s lit skin as log-chromaticity ``(log R/G, log B/G)``: the mean
    RGB of the inner-face ellipse's pixels between the 50th and 95th percentile of luma (the
    lit skin, not shadows, nostrils or highlights); NaN for an empty region."""
    found = _inner_box(crop, points, least=16)
    if found is None:
        return np.full(2, np.nan)
    box, region = found
    luma = cv2.cvtColor(box, cv2.COLOR_RGB2GRAY).astype(np.float32)
    low, high = np.percentile(luma[region], (50, 95))
    lit = region & (luma >= low) & (luma <= high)
    red, green, blue = (np.maximum(box[..., c][lit].astype(np.float64).mean(), 1.0)
                        for c in range(3))
    return np.array([np.log(red / green), np.log(blue / green)])


def white_balance(crop: np.ndarray, points: np.ndarray) -> np.ndarray | None:
    """Per-channel gains (RGB, ``(3,)``) that bring the colour of ``crop``'s lit skin
    (:func:`skin_chroma`) back within :data:`SKIN_DISTANCE` of the training photos' skin
    (Mahalanobis distance in log-chromaticity from :data:`SKIN_MEAN`), keeping its luma; None
    for skin within it (every shared photo), a grey crop or an empty face region. The skin is
    moved along the straight line to the mean, to the limit: a face under coloured light keeps
    as much of the light's colour as the training photos' most strongly tinted faces had.
    Never so far that the brightest 1 % of the inner face's channels would pass
    :data:`EXPOSURE_PEAK`, and no channel by more than :data:`EXPOSURE_MAX_GAIN`."""
    if SKIN_DISTANCE <= 0:
        return None
    chroma = skin_chroma(crop, points)
    if not np.all(np.isfinite(chroma)) or float(np.abs(chroma).max()) < 1e-3:
        return None  # no face region, or a grey picture (swap/monochrome.py greys the swap)
    mean = np.asarray(SKIN_MEAN, np.float64)
    inverse = np.linalg.inv(np.asarray(SKIN_COVARIANCE, np.float64))
    offset = chroma - mean
    distance = float(np.sqrt(offset @ inverse @ offset))
    if distance <= SKIN_DISTANCE:
        return None
    moved = mean + offset * (SKIN_DISTANCE / distance)
    ratio = np.exp(moved - chroma)  # R and B against G
    gains = np.array([ratio[0], 1.0, ratio[1]])
    # the lit skin's luma kept: its mean colour is (R, G, B) = G (e^c0, 1, e^c1)
    colour = np.array([np.exp(chroma[0]), 1.0, np.exp(chroma[1])])
    weights = np.array([0.299, 0.587, 0.114])
    gains *= float(weights @ colour) / float(weights @ (colour * gains))
    gains = np.minimum(gains, EXPOSURE_MAX_GAIN)
    _, peak = face_brightness(apply_gain(crop, gains), points)
    if np.isfinite(peak) and peak > EXPOSURE_PEAK:
        gains *= EXPOSURE_PEAK / peak
    return gains


def face_gain(crop: np.ndarray, points: np.ndarray):
    """What ``crop`` is multiplied by for the generator (and its swap divided by after): the
    white balance (:func:`white_balance`) times the exposure gain (:func:`exposure_gain`) of
    the balanced crop; a number (1 for most faces) or one per RGB channel."""
    balance = white_balance(crop, points)
    if balance is None:
        return exposure_gain(crop, points)
    return balance * exposure_gain(apply_gain(crop, balance), points)
