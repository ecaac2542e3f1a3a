"""Colour correction of a swapped crop against its target crop, before it is pasted back.

A small generator shifts colours in two ways, and each needs its own fix:

- **Globally** (the whole face a little too pink or too grey): :func:`fit_colour`, Reinhard
  et al. 2001 colour transfer restricted to the face (per CIE-Lab channel, the mask-weighted
  mean and standard deviation moved to the target's).
- **Locally** (teal eyebrows, purple eye rims, a green shadow under the nose while the cheeks are
  fine): no global transform can fix a cast that covers 2 % of the face. With ``local_sigma``,
  :func:`fit_colour` also moves the swap's *chroma* (Lab a*, b*) towards the target's at every
  pixel, averaged over a small neighbourhood (a masked, normalised Gaussian of ``sigma``
  pixels), and leaves the swap's lightness alone. Lightness carries the face's shape and
  identity; chroma carries skin tone, lighting colour and make-up, which the output should take
  from the scene anyway. Where the swap's features moved relative to the target's by less than
  ``sigma``, the correction is a smooth field and does not copy the target's features. With
  ``similar``, the chroma comes from target pixels nearby of about the swap pixel's lightness
  (:func:`similar_lightness_chroma`), so a lid or brow the generator made lighter than the
  target's dark make-up or brows takes the chroma of skin of its lightness, not of the
  make-up. With ``carry``, the chroma contrast the correction takes from a dark feature goes
  into its lightness (:func:`carried_lightness`): the demo generator paints brows mostly as a
  cool colour on warm skin, with little darkening, and once they take the skin's chroma they
  all but vanish. :func:`eye_darkness` does the same for an eye the generator painted without
  its dark core (a grey iris with no pupil, the eyeliner gone): the target's darkness comes
  back there, and only there; :func:`eye_whites` brings back the light of an eye painted dull
  (a grey white, no catch light). :func:`cast_shadows` gives an evenly lit swap the target's
  hard shadows (hair over the eyes), told from features by their size. :func:`shading_chroma`
  gives skin the generator shades darker than the target the chroma the target's own skin has
  at that lightness (a flash-lit source's grey nose tip on a warm face).

All functions take ``(S, S, 3)`` uint8 RGB and a ``(S, S)`` float weight in ``[0, 1]`` that
says where the statistics may be taken from (the blend mask times the part of the crop that lies
inside the frame: alignment fills the rest with black).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from .masks import (blur_reach, brow_zone, eye_zone, gaussian_blur, opening_feather, skin_zone,
                    soft_opening)


def _check_pair(swapped: np.ndarray, target: np.ndarray) -> None:
    if swapped.shape != target.shape or swapped.ndim != 3 or swapped.shape[2] != 3:
        raise ValueError(f"swapped {swapped.shape} and target {target.shape} must both be "
                         "(S, S, 3)")


def to_lab(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB -> float32 CIE-Lab (L 0..100)."""
    return cv2.cvtColor(np.asarray(rgb).astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)


def from_lab(lab: np.ndarray) -> np.ndarray:
    """float32 CIE-Lab -> uint8 RGB (L clipped to 0..100, RGB to 0..255)."""
    lab = lab.astype(np.float32, copy=True)
    lab[..., 0] = np.clip(lab[..., 0], 0.0, 100.0)
    rgb = cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


@dataclass
class ColourTransfer:
    """A colour correction fitted on small crops, applied to the same face at any size.

    Lab ``lab * scale + offset`` per channel (the global transfer), plus ``chroma``: an
    ``(s, s, 2)`` float32 a*/b* correction field on the crop it was fitted on, or None (global
    only), and ``lightness``: an ``(s, s)`` L* change (the chroma contrast carried into
    lightness, :func:`carried_lightness`), or None. All are smooth, so fitting at the
    generator's resolution and applying at the work crop's gives the work-size result for a
    fraction of the cost (see :meth:`apply_resized`).
    """

    scale: np.ndarray
    offset: np.ndarray
    chroma: np.ndarray | None = None
    lightness: np.ndarray | None = None  # (s, s) float32 L* change (``carry``), or None

    @property
    def is_identity(self) -> bool:
        return self.chroma is None and self.lightness is None and \
            bool(np.all(self.scale == 1.0)) and bool(np.all(self.offset == 0.0))

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        """``(H, W, 3)`` uint8 RGB corrected (one Lab round trip; the identity returns a copy)."""
        return self.apply_rows(rgb, slice(None))

    def apply_rows(self, rgb: np.ndarray, rows: slice) -> np.ndarray:
        """``rows`` of ``apply(rgb)``, computed on those rows alone (the correction is per
        pixel; the fields resized to the whole of ``rgb`` first)."""
        rgb = np.asarray(rgb)
        if self.is_identity:
            return rgb[rows].copy()
        lab = to_lab(rgb[rows])
        lab *= self.scale
        lab += self.offset
        if self.chroma is not None:
            lab[..., 1:] += _fitted_to(self.chroma, rgb)[rows]
        if self.lightness is not None:
            lab[..., 0] += _fitted_to(self.lightness, rgb)[rows]
        return from_lab(lab)

    def apply_resized(self, small: np.ndarray, large: np.ndarray) -> np.ndarray:
        """Correct ``large``, a resized copy of the crop ``small``: the change :meth:`apply`
        makes to ``small`` (a smooth field: colour statistics and a blurred chroma correction),
        resized and added. No Lab conversion at the large size; within a grey level of
        ``apply(large)`` where ``large`` has no detail of its own beyond ``small``."""
        if self.is_identity:
            return np.asarray(large).copy()
        if small.shape == large.shape:
            return self.apply(large)
        change = self.apply(small).astype(np.float32) - small.astype(np.float32)
        change = cv2.resize(change, (large.shape[1], large.shape[0]),
                            interpolation=cv2.INTER_LINEAR)
        # uint8 + float32 -> uint8, rounded (ties to even) and saturated by OpenCV: the same
        # pixels as np.clip(np.rint(large + change), 0, 255) without two float copies.
        return cv2.add(np.asarray(large, np.uint8), change, dtype=cv2.CV_8U)


def _fitted_to(field: np.ndarray, image: np.ndarray) -> np.ndarray:
    """A correction field fitted on the crop, resized (bilinear) to ``image``'s size."""
    height, width = image.shape[:2]
    if field.shape[:2] == (height, width):
        return field
    return cv2.resize(field, (width, height), interpolation=cv2.INTER_LINEAR)


def identity_transfer() -> ColourTransfer:
    """The correction that changes nothing."""
    return ColourTransfer(np.ones(3, np.float32), np.zeros(3, np.float32))


# Lightness levels the similar-lightness chroma is computed at (and interpolated between):
# every 100 / 13 = 7.7 L units, finer than the range it is used with (12).
LIGHTNESS_LEVELS: int = 14


def similar_lightness_chroma(lightness: np.ndarray, lab_target: np.ndarray,
                             weights: np.ndarray, sigma: float, lightness_range: float
                             ) -> tuple[np.ndarray, np.ndarray]:
    """For each pixel of lightness ``lightness`` (``(S, S)``, the swap's), the chroma of the
    target pixels near it (a Gaussian of ``sigma`` pixels) that have about its lightness (a
    Gaussian of ``lightness_range`` L units): a joint bilateral filter of the target's a*, b*
    guided by the swap's L, computed at :data:`LIGHTNESS_LEVELS` levels and interpolated.
    Returns ``(chroma (S, S, 2), confidence (S, S))``: confidence 1 where the target has
    enough such pixels nearby (a twentieth of the plain neighbourhood's weight), less where it
    has few. Computed on a copy of about 64 px (the result is a smooth field: 2 instead of 6.5
    ms for a 128 px crop) and resized back."""
    full = lightness.shape
    factor = max(1, min(full) // 64)
    if factor == 1:
        return _similar_lightness_chroma(lightness, lab_target, weights, sigma, lightness_range)
    small = (full[1] // factor, full[0] // factor)
    chroma, confidence = _similar_lightness_chroma(
        cv2.resize(lightness, small, interpolation=cv2.INTER_AREA),
        cv2.resize(lab_target, small, interpolation=cv2.INTER_AREA),
        cv2.resize(np.asarray(weights, np.float32), small, interpolation=cv2.INTER_AREA),
        sigma / factor, lightness_range)
    size = (full[1], full[0])
    return (cv2.resize(chroma, size, interpolation=cv2.INTER_LINEAR),
            cv2.resize(confidence, size, interpolation=cv2.INTER_LINEAR))


def _similar_lightness_chroma(lightness: np.ndarray, lab_target: np.ndarray,
                              weights: np.ndarray, sigma: float, lightness_range: float
                              ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`similar_lightness_chroma` at the given size."""
    light_t = lab_target[..., 0]
    levels = np.linspace(0.0, 100.0, LIGHTNESS_LEVELS, dtype=np.float32)
    step = float(levels[1] - levels[0])
    size = lightness.shape
    sums = np.empty((LIGHTNESS_LEVELS, *size, 2), np.float32)
    norms = np.empty((LIGHTNESS_LEVELS, *size), np.float32)
    for k, level in enumerate(levels):
        near = np.exp(-0.5 * np.square((light_t - level) / lightness_range)) * weights
        near = near.astype(np.float32)
        norms[k] = gaussian_blur(near, sigma)
        sums[k] = gaussian_blur(lab_target[..., 1:] * near[..., None], sigma)
    position = np.clip(lightness / step, 0.0, LIGHTNESS_LEVELS - 1.001)
    low = np.floor(position).astype(np.int64)
    frac = (position - low).astype(np.float32)
    rows, cols = np.indices(size)
    norm = norms[low, rows, cols] * (1.0 - frac) + norms[low + 1, rows, cols] * frac
    total = sums[low, rows, cols] * (1.0 - frac)[..., None] + \
        sums[low + 1, rows, cols] * frac[..., None]
    chroma = total / np.maximum(norm, 1e-6)[..., None]
    plain = gaussian_blur(np.asarray(weights, np.float32), sigma)
    confidence = np.clip(norm / np.maximum(plain, 1e-6) / 0.05, 0.0, 1.0)
    return chroma.astype(np.float32), confidence.astype(np.float32)


# A pixel counts fully as a dark feature (a brow, a lash line) once it is this many L* units
# darker than its neighbourhood's mean, not at all when it is as light (:func:`carried_lightness`).
CARRY_DARKER: float = 4.0


def _distance(chroma: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Per-pixel a*b* distance of two ``(S, S, 2)`` chroma images."""
    difference = np.asarray(chroma, np.float32) - mean
    return cv2.magnitude(np.ascontiguousarray(difference[..., 0]),
                         np.ascontiguousarray(difference[..., 1]))


def carried_lightness(lightness: np.ndarray, chroma_before: np.ndarray,
                      chroma_after: np.ndarray, weights: np.ndarray, amount: float,
                      sigma: float) -> np.ndarray:
    """The L* change ``(S, S)`` that gives the chroma contrast a correction took from dark
    features back as darkness.

    Contrast is a pixel's chroma distance from its neighbourhood's mean chroma (a
    ``weights``-weighted, normalised Gaussian of ``sigma`` pixels), before
    (``chroma_before``, ``(S, S, 2)``) and after the correction; where it shrank, the pixel is
    darkened by ``amount`` times the loss, in proportion to how much darker than its
    neighbourhood it already is (fully from :data:`CARRY_DARKER` L* units darker;
    ``lightness`` is the swap's, after the global transfer). A grey-blue brow on warm skin that
    took the skin's chroma stays a brow; skin, whose chroma contrast the correction does not
    change, and lighter features are left alone.
    """
    weights = np.asarray(weights, np.float32)
    height, width = weights.shape
    # The five weighted channels and the weight in one blur (one pass instead of six).
    stack = np.empty((height, width, 6), np.float32)
    np.multiply(chroma_before, weights[..., None], out=stack[..., 0:2])
    np.multiply(chroma_after, weights[..., None], out=stack[..., 2:4])
    np.multiply(lightness, weights, out=stack[..., 4])
    stack[..., 5] = weights
    if min(height, width) >= 96 and sigma >= 2.0:
        # The means are smooth: blurred on a half-size copy (a third of the time at 128 px).
        half = cv2.resize(stack, (width // 2, height // 2), interpolation=cv2.INTER_AREA)
        sums = cv2.resize(gaussian_blur(half, sigma / 2.0), (width, height),
                          interpolation=cv2.INTER_LINEAR)
    else:
        sums = gaussian_blur(stack, sigma)
    norm = sums[..., 5]
    inverse = np.divide(1.0, norm, out=np.zeros_like(norm), where=norm > 1e-3)
    sums *= inverse[..., None]  # the local means (0 where no weight is near)
    before = _distance(chroma_before, sums[..., 0:2])
    after = _distance(chroma_after, sums[..., 2:4])
    lost = np.maximum(before - after, 0.0)
    darker = np.clip((sums[..., 4] - lightness) * (1.0 / CARRY_DARKER), 0.0, 1.0)
    return (-float(amount) * lost * darker).astype(np.float32)


def fit_colour(swapped: np.ndarray, target: np.ndarray, mask: np.ndarray, *,
               local_sigma: float | None = None, strength: float = 1.0,
               max_gain: float = 2.0, similar: tuple[float, float] | None = None,
               keep_plain: np.ndarray | None = None,
               carry: tuple[float, float] | None = None,
               carry_where: np.ndarray | None = None,
               similar_sources: np.ndarray | None = None,
               similar_where: np.ndarray | None = None,
               similar_darker: tuple[float, float] | None = None,
               similar_lighter: tuple[float, float] | None = None) -> ColourTransfer:
    """Fit the correction of a swapped crop towards its target crop inside ``mask``.

    Global (Reinhard et al. 2001): per CIE-Lab channel, the mask-weighted mean and standard
    deviation of ``swapped`` are moved to those of ``target``; ``max_gain`` bounds the std ratio,
    so a flat crop cannot blow up the contrast. Local (``local_sigma`` pixels, see the module
    docstring): after the global transfer, the remaining chroma difference ``target -
    swapped`` averaged over a mask-weighted, normalised Gaussian neighbourhood, so pixels
    without weight (the black border of an alignment that left the frame) neither contribute
    nor receive a jump. ``strength`` 0 gives the identity, 1 the full correction; so does an
    empty mask.

    ``similar`` ``(sigma, lightness_range)`` (with ``local_sigma``): each pixel's chroma goes
    to that of the target pixels near it *with about its lightness*
    (:func:`similar_lightness_chroma`) instead of the target's chroma at its place. Where the
    generator made a feature lighter than the target's (the target's dark make-up or brows
    under a lighter swapped lid or brow), the plain field gave the lighter pixels the dark
    feature's chroma, which reads as a purple lid or a grey-blue brow next to warm skin.
    ``keep_plain``: an ``(S, S)`` weight where the plain field is kept (the eyes: an iris has
    about the skin's lightness and would take the skin's colour). ``similar_sources``: an
    ``(S, S)`` weight of the target pixels whose chroma that filter may give (times
    ``mask``; all of the mask when None), e.g. not the lips and nostrils, whose red a dark
    moustache of their lightness would take. ``similar_where``: an ``(S, S)`` weight where
    the filter acts (the plain field elsewhere; everywhere when None), and with
    ``similar_darker`` ``(start, ramp)`` also wherever the swap is darker than the target by
    more than ``start`` L* units (fully from ``start + ramp``), and with ``similar_lighter``
    wherever it is lighter (a dark shadow painted lighter, whose own chroma reads as mauve).

    ``carry`` ``(amount, sigma)`` (with ``local_sigma``): the chroma contrast the local field
    takes from dark features goes into their lightness (:func:`carried_lightness`), weighted
    by ``carry_where`` (an ``(S, S)`` weight, e.g. the brows; everywhere when None) and not
    where ``keep_plain`` keeps the plain field.
    """
    swapped = np.asarray(swapped)
    target = np.asarray(target)
    _check_pair(swapped, target)
    weights = np.asarray(mask, np.float32).reshape(swapped.shape[:2])
    total = float(weights.sum())
    if total < 1.0 or strength <= 0:
        return identity_transfer()
    lab_s, lab_t = to_lab(swapped), to_lab(target)
    # Weighted sums as one matrix product per statistic (pixels x channels): numpy's
    # sum over the two pixel axes of an (S, S, 3) product is several times slower.
    w = (weights / total).reshape(-1)
    flat_s, flat_t = lab_s.reshape(-1, 3), lab_t.reshape(-1, 3)
    mean_s, mean_t = w @ flat_s, w @ flat_t
    std_s = np.sqrt(w @ np.square(flat_s - mean_s))
    std_t = np.sqrt(w @ np.square(flat_t - mean_t))
    gain = np.clip(std_t / np.maximum(std_s, 1e-3), 1.0 / max_gain, max_gain)
    # (lab - mean_s) * gain + mean_t, moved only ``strength`` of the way from lab
    scale = 1.0 + float(strength) * (gain - 1.0)
    offset = float(strength) * (mean_t - mean_s * gain)
    transfer = ColourTransfer(scale.astype(np.float32), offset.astype(np.float32))
    if local_sigma is None:
        return transfer
    matched = lab_s[..., 1:] * transfer.scale[1:] + transfer.offset[1:]
    norm = gaussian_blur(weights, local_sigma)
    valid = norm > 1e-3
    # Both chroma channels blurred in one call (OpenCV blurs each channel alike).
    difference = gaussian_blur((lab_t[..., 1:] - matched) * weights[..., None], local_sigma)
    field = np.where(valid[..., None], difference / np.maximum(norm, 1e-3)[..., None], 0.0)
    light = lab_s[..., 0] * transfer.scale[0] + transfer.offset[0]
    if similar is not None:
        sources = weights if similar_sources is None else \
            weights * np.asarray(similar_sources, np.float32).reshape(weights.shape)
        chroma, confidence = similar_lightness_chroma(light, lab_t, sources, *similar)
        if keep_plain is not None:
            confidence = confidence * (1.0 - np.asarray(keep_plain, np.float32))
        if similar_where is not None:
            where = np.asarray(similar_where, np.float32)
            if similar_darker is not None or similar_lighter is not None:
                # How much darker the swap is than the target around each pixel (the local
                # field's neighbourhood): a feature the generator added, not a shading.
                darker = gaussian_blur(lab_t[..., 0] - light, local_sigma)
            if similar_darker is not None:
                where = np.maximum(where, np.clip((darker - similar_darker[0]) /
                                                  similar_darker[1], 0.0, 1.0))
            if similar_lighter is not None:
                where = np.maximum(where, np.clip((-darker - similar_lighter[0]) /
                                                  similar_lighter[1], 0.0, 1.0))
            confidence = confidence * where
        confidence = confidence[..., None]
        field = confidence * (chroma - matched) + (1.0 - confidence) * field
    transfer.chroma = (field * strength).astype(np.float32)
    if carry is not None and carry[0] > 0:
        change = carried_lightness(light, matched, matched + field, weights, *carry)
        if carry_where is not None:
            change *= np.asarray(carry_where, np.float32)
        if keep_plain is not None:
            change *= 1.0 - np.asarray(keep_plain, np.float32)
        transfer.lightness = (change * strength).astype(np.float32)
    return transfer


def eye_darkness(transfer: ColourTransfer, swapped: np.ndarray, target: np.ndarray,
                 eyes: list[tuple[np.ndarray, np.ndarray]], gate: tuple[float, float],
                 margin: float, amount: float = 1.0, smooth=None,
                 paired: bool = False) -> ColourTransfer:
    """``transfer`` with the target's dark eye features carried into the swap's lightness.

    A small generator paints some eyes without their dark core: a grey iris with no pupil, a
    washed-out eye behind a lens, the eyeliner and lash line gone, and the colour correction
    cannot bring back darkness it never changes. ``eyes`` holds, per eye, its opening (a bool
    ``(S, S)`` mask: iris, pupil and white) and a soft zone around it (lids and lash line).
    An eye is judged by the darkest tenth of its opening: where the corrected swap's is
    lighter than the target's by ``gate[0]`` L* units it starts to take, and from ``gate[1]``
    fully takes, the target's darkness inside its zone: each pixel darker in the target than
    in the corrected swap by more than ``margin`` is brought down to within ``margin`` of it
    (times ``amount``). Lighter pixels keep the swap's lightness, and an eye whose core is as
    dark as the target's is left alone, so healthy eyes (and their identity) stay the swap's.
    ``swapped`` and ``target`` are the ``(S, S, 3)`` uint8 RGB crops ``transfer`` was fitted
    on; the transfer is changed in place and returned. ``smooth`` (optional) maps the eyes'
    gate weights, an array with NaN for an eye too small to judge, to the ones used (a video
    eases them from frame to frame). ``paired``: the two eyes of ``eyes`` are one face's, and
    an eye that lost some of its darkness too (more than ``margin``) takes as much of the
    target's inside its opening as the other does: a person's two irises look alike, and a
    pale grey iris beside one given back its darkness reads as two eye colours.
    """
    return _feature_lightness(transfer, swapped, target, eyes, gate, margin, amount, smooth,
                              lighter=False, paired=paired)


def eye_whites(transfer: ColourTransfer, swapped: np.ndarray, target: np.ndarray,
               eyes: list[tuple[np.ndarray, np.ndarray]], gate: tuple[float, float],
               margin: float, amount: float = 1.0, smooth=None,
               paired: bool = False) -> ColourTransfer:
    """``transfer`` with the target's light eye features carried into the swap's lightness:
    :func:`eye_darkness` the other way round.

    The demo generator paints many eyes dull: the white a mid grey, the catch light gone, at
    worst a dark almond without a white at all (with one source photo the brightest tenth of
    the eye opening is 10-30 L* units darker than the target's on 89 of the 226 eyes of the
    shared photos), and such an eye looks dead next to the photo. Judged by the brightest
    tenth of each eye's opening, corrected swap minus target: from ``gate[0]`` L* units darker
    in part and from ``gate[1]`` fully, each pixel of the eye's zone (here: the opening
    itself, softly) lighter in the target than in the swap by more than ``margin`` is brought
    up to within ``margin`` of it (times ``amount``). Darker pixels (iris, pupil, lash line)
    keep the swap's lightness, and an eye as bright as the target's is left alone. Arguments
    as for :func:`eye_darkness`.
    """
    return _feature_lightness(transfer, swapped, target, eyes, gate, margin, amount, smooth,
                              lighter=True, paired=paired)


def eye_irises(transfer: ColourTransfer, swapped: np.ndarray, target: np.ndarray,
               eyes: list[tuple[np.ndarray, np.ndarray]], gate: tuple[float, float],
               margin: float, amount: float = 1.0, smooth=None,
               paired: bool = False) -> ColourTransfer:
    """``transfer`` with the target's iris carried into an eye whose opening the swap painted
    over: :func:`eye_darkness` judged by the opening's median instead of its darkest tenth.

    With some source photos (heavy, hooded lids) the demo generator paints the lid lower over
    the target's open eye, or the iris a pale smear, while the lash line stays dark: the
    darkest tenth of the opening is about the target's, its median 15-27 L* lighter, and the
    eye looks half shut or blind. Judged by the median of each opening, corrected swap minus
    target: from ``gate[0]`` L* lighter in part and from ``gate[1]`` fully, each pixel of the
    eye's zone (here the opening, softly) darker in the target by more than ``margin`` is
    brought down to within it (times ``amount``); lighter pixels (the whites, a catch light)
    and an eye about as dark as the target's keep the swap's. Arguments as for
    :func:`eye_darkness`."""
    return _feature_lightness(transfer, swapped, target, eyes, gate, margin, amount, smooth,
                              lighter=False, paired=paired, percentiles=(50.0,))


def nostril_darkness(transfer: ColourTransfer, swapped: np.ndarray, target: np.ndarray,
                     zone: tuple[np.ndarray, np.ndarray], gate: tuple[float, float],
                     margin: float, amount: float = 1.0, smooth=None,
                     percentiles: tuple[float, ...] = (10.0,)) -> ColourTransfer:
    """``transfer`` with the target's dark nostrils carried into the swap's lightness.

    With some source photos the demo generator paints the nose without its nostrils, a pale
    nose whose wings the finest detail band then outlines (with ``df_img25.jpg`` as the source
    the darkest tenth of the nostrils' zone is 22 L* lighter than the target's on the median
    face of benchmarks/nostrils.py). ``zone``: the hard ``(S, S)`` mask the nose is judged on
    and the soft one the darkness is taken in (``masks.nostril_zone``); ``percentiles``: the
    zone's L* percentiles judged, the largest gap counting (the darkest tenth: the nostrils;
    the median: the shadow under the nose); otherwise as :func:`eye_darkness` for one eye:
    from ``gate[0]`` L* lighter in part, from ``gate[1]`` fully, every pixel darker in the
    target by more than ``margin`` is brought down to within it."""
    return _feature_lightness(transfer, swapped, target, [zone], gate, margin, amount, smooth,
                              lighter=False, percentiles=percentiles)


def lip_darkness(transfer: ColourTransfer, swapped: np.ndarray, target: np.ndarray,
                 lips: tuple[np.ndarray, np.ndarray], gate: tuple[float, float],
                 margin: float, amount: float = 1.0, smooth=None) -> ColourTransfer:
    """``transfer`` with the target's darker lips carried into the swap's lightness.

    The demo generator paints most lips at about the same lightness (L* 55-58) whatever the
    target's, so a dark or red lipstick comes out a pale pink while its chroma, which the
    colour correction keeps, is right. ``lips``: the hard ``(S, S)`` lip ring the lips are
    judged on and the soft one they are changed in (``masks.lip_ring``). Judged by the larger
    gap of the ring's median and 75th percentile of L* (an open mouth's lower lip can be half
    the swap's lighter lip), corrected swap minus target: from ``gate[0]`` lighter in part
    and from ``gate[1]`` fully, every pixel darker in the target by more than ``margin`` is
    brought down to within it (times ``amount``), as :func:`nostril_darkness` does for a
    nose. Lips as dark as the target's, or darker, are left alone. ``smooth`` as for
    :func:`eye_darkness` (one value)."""
    return _feature_lightness(transfer, swapped, target, [lips], gate, margin, amount, smooth,
                              lighter=False, percentiles=(50.0, 75.0))


def forehead_darkness(transfer: ColourTransfer, swapped: np.ndarray, target: np.ndarray,
                      zone: tuple[np.ndarray, np.ndarray], gate: tuple[float, float],
                      margin: float, amount: float = 1.0, smooth=None) -> ColourTransfer:
    """``transfer`` with the target's dark band above the brows carried into the swap.

    The demo generator paints the forehead evenly lit up to the blend mask's top: where a
    cap's or a beret's brim, its shade or a fringe crosses the forehead just above the brows,
    the swap had a pale strip of skin there (its edge moved up by a few pixels, the shade
    under it gone). ``zone``: the hard ``(S, S)`` mask judged and the soft one changed
    (``masks.forehead_zone``). Judged by the darkest quarter of L* (corrected swap minus
    target; the darkest tenth is often the hat itself, dark in both): from ``gate[0]`` L*
    lighter in part and from ``gate[1]`` fully, every pixel darker in the target by more
    than ``margin`` is brought down to within it (times ``amount``), as :func:`lip_darkness`
    does for lips. A bare forehead, about as light in the swap as in the target, is left
    alone. ``smooth`` as for :func:`eye_darkness` (one value)."""
    return _feature_lightness(transfer, swapped, target, [zone], gate, margin, amount, smooth,
                              lighter=False, percentiles=(25.0,))


def _rows_reached(pairs: list[tuple[np.ndarray, np.ndarray]], height: int, reach: int
                  ) -> slice | None:
    """The band of rows that any mask of ``pairs`` (pairs of ``(S, S)`` masks, nonzero where
    a pass looks or changes) reaches, grown by ``reach`` rows each way within ``height``; None
    where no mask reaches any row. The per-pixel passes work in this band alone."""
    used = np.zeros(height, bool)
    for pair in pairs:
        for mask in pair:
            used |= np.asarray(mask).any(axis=1)
    if not used.any():
        return None
    found = np.flatnonzero(used)
    return slice(max(int(found[0]) - reach, 0), min(int(found[-1]) + 1 + reach, height))


def _feature_lightness(transfer: ColourTransfer, swapped: np.ndarray, target: np.ndarray,
                       eyes: list[tuple[np.ndarray, np.ndarray]], gate: tuple[float, float],
                       margin: float, amount: float, smooth, lighter: bool,
                       paired: bool = False, percentiles: tuple[float, ...] = (10.0,)
                       ) -> ColourTransfer:
    """:func:`eye_darkness` (``lighter`` False: the darkest tenth judged, darker target pixels
    carried; :func:`eye_irises` the median), :func:`nostril_darkness`, :func:`lip_darkness`
    and :func:`forehead_darkness` (the same on one zone) and :func:`eye_whites` (True: the
    brightest tenth, lighter pixels): each feature judged in its hard mask (``eyes`` is named
    for the first users: ``(opening, around)`` pairs) and changed in its soft one.
    ``percentiles``: judged at each of these (of the darkness; 100 minus them for the light),
    the largest gap counting."""
    if amount <= 0 or not eyes:
        return transfer
    # Only the rows the zones reach (with what soft_opening's feathering adds): every step
    # below is per pixel, so the band gives those rows' numbers exactly, for a fraction of a
    # whole crop's Lab round trip.
    rows = _rows_reached(eyes, swapped.shape[0], blur_reach(opening_feather(swapped.shape[0])) + 1)
    if rows is None:
        return transfer
    corrected = to_lab(transfer.apply_rows(swapped, rows))[..., 0]
    reference = to_lab(target[rows])[..., 0]
    # "Lost" is positive: how much lighter (darkness) or darker (whites) the swap's eye is.
    sign = -1.0 if lighter else 1.0
    judged = [100.0 - p if lighter else p for p in percentiles]
    low, high = gate
    weights = np.full(len(eyes), np.nan)
    gaps = np.full(len(eyes), np.nan)
    for index, (opening, _) in enumerate(eyes):
        if int(np.count_nonzero(opening)) < 4:  # an eye a few pixels across: nothing to judge
            continue
        opening = opening[rows]
        gap = sign * float(np.max(np.percentile(corrected[opening], judged) -
                                  np.percentile(reference[opening], judged)))
        gaps[index] = gap
        weights[index] = float(gap >= low) if high <= low else \
            float(np.clip((gap - low) / (high - low), 0.0, 1.0))
    if smooth is not None:
        weights = smooth(weights)
    # Paired: an eye that lost its core too, by more than the margin, is lent its partner's
    # higher weight (after the easing, so a video's two eyes follow their eased weights), but
    # only inside its opening: the iris is what reads as a second eye colour, and the target's
    # eyeliner and lids carried along cost two to ten times the identity (docs/swap.md "Two
    # eyes alike").
    lent = np.zeros(len(eyes))
    if paired and len(eyes) == 2:
        for eye, other in ((0, 1), (1, 0)):
            if gaps[eye] > margin and weights[other] > weights[eye]:
                lent[eye] = weights[other]
    zone = None
    for weight, extra, (opening, around) in zip(weights, lent, eyes):
        parts = [weight * around] if weight > 0.0 else []  # False for NaN
        if extra > 0.0:
            parts.append(extra * soft_opening(opening))
        for part in parts:
            zone = part if zone is None else np.maximum(zone, part)
    if zone is None:
        return transfer
    change = np.zeros(swapped.shape[:2], np.float32)
    change[rows] = -sign * float(amount) * zone[rows] * np.maximum(
        sign * (corrected - reference) - float(margin), 0.0)
    return _add_lightness(transfer, change)


def _brow_darkness(transfer: ColourTransfer, swapped: np.ndarray, target: np.ndarray,
                   first: int, stop: int, radius: float):
    """``(band, corrected, swap_dark, target_dark)`` for the brow passes: the rows ``first`` to
    ``stop`` (exclusive) grown by what a closing and its blur reach (2 radius + the blur's
    kernel), so that inside them the darkness is that of the whole crop, for a fraction of
    the pixels; the corrected swap's L* there, and the darkness (L* below the closing of
    :func:`_shading`) of it and of ``target``."""
    reach = int(math.ceil(2.5 * radius)) + 2
    band = slice(max(first - reach, 0), min(stop + reach, swapped.shape[0]))
    corrected = _corrected_lightness(transfer, swapped, band)
    reference = to_lab(target[band])[..., 0]
    return (band, corrected, feature_darkness(corrected, radius),
            feature_darkness(reference, radius))


def brow_depth(transfer: ColourTransfer, swapped: np.ndarray, target: np.ndarray,
               brows: list[tuple[np.ndarray, np.ndarray]], radius: float, margin: float,
               max_gain: float, amount: float = 1.0, share: float = 1.0, smooth=None,
               own: list[tuple[np.ndarray, np.ndarray]] | None = None) -> ColourTransfer:
    """``transfer`` with the swap's own brows deepened towards the target's brows' depth.

    The demo generator paints the brows of many faces pale: a grey or blue-grey band barely
    darker than the skin (once corrected, the colour field takes the cast away and leaves the
    band), where the photo's brows are dark. Taking the target's brows would paste their shape
    (its identity); this pass keeps the swap's shape and gives it the target's depth. A brow's
    *darkness* is how much darker a pixel is than the skin around it: the lightness with every
    dark feature narrower than a disc of ``radius`` pixels filled (a grey-level closing, as in
    :func:`cast_shadows`) minus the lightness. ``brows`` holds, per brow, the bool zone it is
    judged in and the soft zone it is changed in; a brow's depth is the 90th percentile of its
    darkness over its zone. Where ``share`` of the target brow's depth is deeper than the
    corrected swap's by more than ``margin`` L* units (in full from twice that), the swap's
    darkness there is multiplied by the ratio of the two, at most ``max_gain`` (times
    ``amount``), and no pixel is made darker than that share of the target's depth. Skin keeps its
    lightness (no darkness to multiply), and a brow as deep as the target's is left alone.
    ``smooth`` (optional) maps the brows' gains, NaN for a brow too small to judge, to the ones
    used (a video eases them from frame to frame). ``own`` (optional): per brow, the swap's
    own brow line as a ``(judged, soft)`` pair (from the swap's landmarks): its depth is judged
    and deepened there instead, where the generator put the source's brow, while the target's
    depth is judged on ``brows``; without it both are judged on ``brows``. Arguments otherwise
    as for :func:`eye_darkness`.
    """
    if amount <= 0 or radius < 1 or not brows:
        return transfer
    height, width = swapped.shape[:2]
    # Only the band of rows around the brows (a third of the crop's pixels).
    if own is None:
        own = brows
    zones = [around for _, around in brows] + [around for _, around in own]
    rows = np.flatnonzero(np.any(np.stack(zones) > 0, axis=(0, 2)))
    if rows.size == 0:
        return transfer
    band, _, swap_dark, target_dark = _brow_darkness(transfer, swapped, target, int(rows[0]),
                                                     int(rows[-1]) + 1, radius)
    theirs = [zone[band] for zone, _ in brows]
    brows = [(zone[band], around[band]) for zone, around in own]
    gains = np.full(len(brows), np.nan)
    depths = np.zeros(len(brows))
    for index, ((zone, _), their_zone) in enumerate(zip(brows, theirs)):
        if min(int(np.count_nonzero(zone)), int(np.count_nonzero(their_zone))) < 4:
            continue  # a brow a few pixels across: nothing to judge
        swap_depth = float(np.percentile(swap_dark[zone], 90))
        target_depth = float(share) * float(np.percentile(target_dark[their_zone], 90))
        weight = float(np.clip((target_depth - swap_depth - margin) / max(margin, 1e-3),
                               0.0, 1.0))
        ratio = min(target_depth / max(swap_depth, 1e-3), float(max_gain))
        depths[index] = target_depth
        gains[index] = 1.0 + weight * max(ratio - 1.0, 0.0)
    if smooth is not None:
        gains = smooth(gains)
    extra = None
    for gain, depth, (_, around) in zip(gains, depths, brows):
        if gain > 1.0:  # False for NaN
            # Never deeper than the target's brow: an eye socket's or a temple's shadow that
            # reaches into the zone, already dark, is not multiplied into a blot.
            part = np.minimum((gain - 1.0) * swap_dark, np.maximum(depth - swap_dark, 0.0))
            part *= around
            extra = part if extra is None else np.maximum(extra, part)
    if extra is None:
        return transfer
    change = np.zeros((height, width), np.float32)
    change[band] = -float(amount) * extra
    return _add_lightness(transfer, change)


def brow_shelves(transfer: ColourTransfer, swapped: np.ndarray, target: np.ndarray,
                 brows: list[tuple[tuple[slice, slice], np.ndarray, float, float]],
                 radius: float, core: float, amount: float = 1.0,
                 own: list[np.ndarray] | None = None) -> ColourTransfer:
    """``transfer`` with the pale shelf the generator paints beside a brow lifted to the skin.

    Where the source's brow lies lower (or higher) than the target's, the demo generator paints
    the swap's brow dark and, at the target's brow line, a pale grey band joined to it: one
    two-tone brow twice as thick, whose pale half reads as a second brow (talking_b.mp4 with
    if_Tom_Hanks_54745.png as the source). ``brows`` holds per brow its ``(rows, columns)``
    window of the crop, its line (a soft ``(S, S)`` zone: where the core is looked for and
    pixels may change), how far from the core a pixel is the brow's own edge and how far the
    lift looks for the skin (pixels). Darkness is measured as in :func:`brow_depth` (against a
    closing with a disc of ``radius``), on the corrected swap and on ``target``. Column by
    column, the brow's *core* is where the darkness on the line is at least ``core`` times
    that column's most, in the columns whose most is itself at least ``core`` of the brow's
    depth (the 95th percentile on its line; a brow's fading ends keep their darkness). A pixel
    of the line farther from the core than its edge is lifted to the lightest pixel within the
    lift's reach on the side away from the core, times ``amount``, and only where the target
    has its brow (its darkness there from ``core`` / 2 of the target brow's depth, in full from
    ``core``: the band is the target's brow painted faintly, while a brow the source has thick
    where the target has skin is the source's) and where the pixel is shallower than the core
    (a pixel as dark as the core is brow wherever it lies). A brow without a shelf has nothing
    darker there to lift. ``own`` (optional): per brow, the swap's own brow line (a soft
    ``(S, S)`` zone, from the swap's landmarks): the core is looked for there and not on the
    target's line, and a pixel off it is no brow however dark (the generator's faint copy of
    the target's brow beside a source brow it puts lower is as dark as half that brow).
    """
    if amount <= 0 or radius < 1 or not brows:
        return transfer
    height, width = swapped.shape[:2]
    rows = [window[0] for window, _, _, _ in brows if window[0].stop > window[0].start]
    if not rows:
        return transfer
    band, corrected, dark, target_dark = _brow_darkness(
        transfer, swapped, target, min(r.start for r in rows), max(r.stop for r in rows), radius)
    top = band.start
    change = np.zeros((height, width), np.float32)
    for index, ((window_rows, columns), zone, near_reach, lift_reach) in enumerate(brows):
        local = slice(window_rows.start - top, window_rows.stop - top)
        darkness = dark[local, columns]
        inside = zone[window_rows, columns]
        mine = inside if own is None else own[index][window_rows, columns]
        on_line = mine > 0.1
        if darkness.shape[0] < 3 or darkness.shape[1] < 3 or not on_line.any():
            continue
        lightness = corrected[local, columns]
        # The core is looked for on the brow's line only: a lid crease or lashes at the
        # window's foot, darker than the brow, would make the brow itself a shelf.
        judged = np.where(on_line, darkness, 0.0)
        depth = float(np.percentile(judged[on_line], 95))
        if depth <= 1.0:  # no brow to speak of
            continue
        most = judged.max(axis=0)
        # Columns with a brow in them, softly (a hard cut would flicker at a brow's tail).
        strong = np.clip((most / depth - (core - 0.1)) / 0.2, 0.0, 1.0)[None, :]
        # The run of such pixels around the column's darkest is its core; another run, apart
        # from it by lighter pixels, is a second (fainter) brow line, not the brow's body.
        is_core = (judged >= core * most[None, :]) & on_line
        runs = np.cumsum(~is_core, axis=0)
        darkest = judged.argmax(axis=0)
        is_core &= runs == runs[darkest, np.arange(runs.shape[1])][None, :]
        near = max(1, int(round(near_reach)))
        kept = cv2.dilate(is_core.astype(np.uint8), np.ones((2 * near + 1, 1), np.uint8))
        kept = gaussian_blur(kept.astype(np.float32), 0.7)
        # The lightest pixel within the lift's reach on the side away from the core.
        span = max(1, int(round(lift_reach)))
        column = np.ones((span + 1, 1), np.uint8)
        from_above = cv2.dilate(lightness, column, anchor=(0, span),
                                borderType=cv2.BORDER_REPLICATE)
        from_below = cv2.dilate(lightness, column, anchor=(0, 0),
                                borderType=cv2.BORDER_REPLICATE)
        above = np.cumsum(is_core, axis=0) == 0
        below = np.cumsum(is_core[::-1], axis=0)[::-1] == 0
        lighter = np.where(above, from_above, np.where(below, from_below, lightness))
        lift = np.maximum(lighter - lightness, 0.0) * (1.0 - kept) * strong
        # Only where the target has its brow: the shelf is the target's brow painted faintly;
        # the soft edge a generator gives its own brow elsewhere is the swap's.
        theirs = target_dark[local, columns]
        their_depth = float(np.percentile(theirs, 95))
        if their_depth <= 1.0:
            continue
        lift *= np.clip((theirs / their_depth - 0.5 * core) / (0.5 * core), 0.0, 1.0)
        # A shelf is shallow: a pixel as dark as the brow's core is brow, wherever it lies.
        shallow = np.clip((core * depth - darkness) / (0.25 * core * depth), 0.0, 1.0)
        if own is not None:  # off the swap's own brow line a dark pixel is no brow of its own
            shallow = 1.0 - mine * (1.0 - shallow)
        lift *= shallow
        lift *= inside
        change[window_rows, columns] = np.maximum(change[window_rows, columns], lift)
    if not change.any():
        return transfer
    return _add_lightness(transfer, float(amount) * change)


# The darkness :func:`cast_shadows` carries is opened with a disc of this fraction of its
# radius: 0.5 left a side light's darker eye socket, which came and went from frame to frame
# around one eye of talking_a.mp4 (a flickering smudge); 1.0 also took the edge of the child's
# shadow in fr_obama_and_biden.jpg off (a lit band left over one eye).
SHADOW_OPENING: float = 0.75


def cast_shadows(transfer: ColourTransfer, swapped: np.ndarray, target: np.ndarray,
                 weights: np.ndarray, radius: float, margin: float,
                 amount: float = 1.0, opening: float = SHADOW_OPENING) -> ColourTransfer:
    """The target's cast shadows (hair over the brow, a hat's brim, a hand's shadow) carried
    into the corrected swap, which the generator paints evenly lit.

    Shading is told from features by size: a grey-level closing with a disc of ``radius``
    pixels fills every dark feature narrower than the disc (brows, eyes, lids, nostrils, lip
    lines) with the skin around it, in the target and in the corrected swap alike, and keeps
    dark regions larger than it with their edges (a blur would smear a hard shadow's edge and
    carry a closed lid's darkness around the eye). Where the target's shading is darker than the
    swap's by more than ``margin`` L*, the swap takes the difference (in full from twice the
    margin), times ``amount`` and ``weights`` (``(S, S)``, where the crop lies in the frame),
    where the darker patch is wider than ``opening`` of the disc (:data:`SHADOW_OPENING`).
    Only darker: the swap's own light is not taken away.
    """
    if amount <= 0 or radius < 1:
        return transfer
    corrected = _corrected_lightness(transfer, swapped)
    reference = to_lab(target)[..., 0]
    # On a half-size copy from 96 px up: the same regions, the change a smooth field (two
    # closings and an opening on 64 px instead of 128: 0.4 instead of 1.3 ms per face).
    height, width = corrected.shape
    factor = 2 if min(height, width) >= 96 and radius >= 8 else 1
    if factor > 1:
        half = (width // factor, height // factor)
        corrected = cv2.resize(corrected, half, interpolation=cv2.INTER_AREA)
        reference = cv2.resize(reference, half, interpolation=cv2.INTER_AREA)
    radius = radius / factor
    gap = _shading(corrected, radius) - _shading(reference, radius)  # > 0: target in shadow
    darkness = np.clip((gap - margin) / max(margin, 1e-3), 0.0, 1.0) * gap
    # Where two dark features nearly touch (an eye's inner corner by the nose), the disc does
    # not fit between them and a dark sliver is left, and a side light darkens one eye's
    # socket a little beyond the disc: an opening (``opening`` of the radius) takes away every
    # patch of darkness narrower than that and keeps a shadow's area and its edge.
    reach = max(1, int(round(opening * radius)))
    darkness = cv2.morphologyEx(darkness, cv2.MORPH_OPEN, cv2.getStructuringElement(
        cv2.MORPH_ELLIPSE, (2 * reach + 1,) * 2))
    darkness = gaussian_blur(darkness, max(0.5, radius / 8.0))
    if factor > 1:
        darkness = cv2.resize(darkness, (width, height), interpolation=cv2.INTER_LINEAR)
    change = -float(amount) * darkness * np.asarray(weights, np.float32)
    if not np.any(change < -0.5):
        return transfer
    return _add_lightness(transfer, change)


def under_eye_lightness(transfer: ColourTransfer, swapped: np.ndarray, target: np.ndarray,
                        eyes: list[tuple[np.ndarray, np.ndarray]], sigma: float,
                        gate: tuple[float, float], margin: float, amount: float = 1.0,
                        smooth=None) -> ColourTransfer:
    """``transfer`` with the skin under the eyes brought up to the target's lightness where
    the swap paints dark rings there that the target does not have.

    A source with dark skin under the eyes (common on darker skin, and the shading of deep-set
    eyes) gives the generator's face dark rings there, which the colour correction moves to
    the target's skin tone but keeps as deep: on a lighter target they read as bruised or
    tired eyes the target never had. ``eyes`` holds, per eye, the soft ``(S, S)`` zone
    under it and a hard strip of cheek below (``masks.under_eye_zone``). On the difference
    corrected swap minus target, blurred by ``sigma`` pixels (the skin's shading, not its
    texture), each eye's cheek strip sets the level (its median: how the swap's skin
    compares with the target's there), and the excess is how far the zone lies below it. The
    face is judged by the larger of its eyes' 90th percentiles of the excess over the zone's
    core (a ring fills a part of the zone): from ``gate[0]`` L* in part and from ``gate[1]``
    fully, wherever the excess is over ``margin`` the zone is lifted by the rest (times
    ``amount`` and the zone's weight). A face whose rings are about as deep as the target's
    is left alone, so the swap's own shading there (and the identity it carries) stays; only
    lighter, and the swap's lashes, wrinkles and texture ride on a smooth change. ``smooth``
    (optional) maps the face's gate weight, a one-element array (NaN: not judged), to the one
    used (a video eases it from frame to frame)."""
    if amount <= 0 or not eyes:
        return transfer
    # The blur needs its reach of rows beyond the masks' (the same numbers as the whole crop's).
    rows = _rows_reached(eyes, swapped.shape[0], blur_reach(sigma) + 1)
    if rows is None:
        return transfer
    gap = gaussian_blur(_corrected_lightness(transfer, swapped, rows) -
                        to_lab(target[rows])[..., 0], sigma)
    excesses, judged = [], []
    for zone, cheek in eyes:
        strip, core = cheek[rows], zone[rows] > 0.5
        if int(np.count_nonzero(strip)) < 4 or int(np.count_nonzero(core)) < 4:
            continue  # no cheek to compare with (a profile's far side), or no eye
        excess = float(np.median(gap[strip])) - gap
        excesses.append((zone, excess))
        judged.append(float(np.percentile(excess[core], 90)))
    low, high = gate
    weight = np.array([np.nan if not judged else
                       float(np.clip((max(judged) - low) / max(high - low, 1e-6), 0.0, 1.0))])
    if smooth is not None:
        weight = smooth(weight)
    if not excesses or not float(weight[0]) > 0.0:  # False for NaN
        return transfer
    change = np.zeros(swapped.shape[:2], np.float32)
    for zone, excess in excesses:
        lift = float(amount) * float(weight[0]) * zone[rows] * np.maximum(excess - margin, 0.0)
        np.maximum(change[rows], lift, out=change[rows])
    if not np.any(change > 0.5):
        return transfer
    return _add_lightness(transfer, change)


# The target skin's chroma-by-lightness curve (:func:`shading_chroma`) is binned every this many
# L* units (tent-weighted into the two nearest bins), and a bin counts once it holds this share
# of the skin's weight: an empty or nearly empty bin is interpolated from its neighbours.
SKIN_CURVE_STEP: float = 5.0
SKIN_CURVE_MIN_SHARE: float = 0.01


def skin_curve(lab: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """How a face's skin colour goes with its lightness: the ``weights``-weighted mean a*, b*
    of ``lab`` (``(S, S, 3)``) at lightness levels every :data:`SKIN_CURVE_STEP` L* units.
    Returns ``(levels (K,), chroma (K, 2))`` over the levels that hold skin (at least two),
    or None."""
    light = lab[..., 0].reshape(-1)
    w = np.asarray(weights, np.float32).reshape(-1)
    count = int(round(100.0 / SKIN_CURVE_STEP)) + 1
    position = np.clip(light / SKIN_CURVE_STEP, 0.0, count - 1.001)
    low = np.floor(position).astype(np.int64)
    frac = (position - low).astype(np.float32)
    sums = np.zeros((count, 3), np.float64)
    for index, share in ((low, w * (1.0 - frac)), (low + 1, w * frac)):
        sums[:, 0] += np.bincount(index, share, count)
        sums[:, 1] += np.bincount(index, share * lab[..., 1].reshape(-1), count)
        sums[:, 2] += np.bincount(index, share * lab[..., 2].reshape(-1), count)
    total = float(sums[:, 0].sum())
    held = sums[:, 0] >= SKIN_CURVE_MIN_SHARE * max(total, 1e-6)
    if total < 1.0 or held.sum() < 2:
        return None
    levels = np.arange(count, dtype=np.float32)[held] * SKIN_CURVE_STEP
    return levels, (sums[held, 1:] / sums[held, :1]).astype(np.float32)


def on_skin_curve(curve: tuple[np.ndarray, np.ndarray], lightness: np.ndarray) -> np.ndarray:
    """The curve's chroma ``(..., 2)`` at each ``lightness`` (linear between its levels, its
    end values beyond them)."""
    levels, chroma = curve
    return np.stack([np.interp(lightness, levels, chroma[:, c]).astype(np.float32)
                     for c in (0, 1)], axis=-1)


def shading_chroma(transfer: ColourTransfer, swapped: np.ndarray, target: np.ndarray,
                   skin: np.ndarray, where: np.ndarray, sigma: float,
                   amount: float = 1.0) -> ColourTransfer:
    """Skin chroma that follows the swap's shading where it is darker than the target's.

    The local field gives each pixel the target's chroma at its place, which belongs to the
    target's lightness there. Where the generator shades the face darker than the target is
    lit (a source lit by a flash: a grey nose tip, shaded cheeks), the darker skin keeps the
    lighter skin's chroma and reads grey against the warm skin around it. There the chroma
    grows by what the target's own skin gains between the two lightnesses: ``|curve(L swap)|
    - |curve(L target)|`` C* (never less), in the hue of the target's skin there, both
    lightnesses averaged over ``sigma`` pixels (the local field's neighbourhood), the curve
    (:func:`skin_curve`) measured on the target's ``skin`` weights. Applied times ``where``
    (``(S, S)``: the skin, softly) and ``amount``."""
    if amount <= 0:
        return transfer
    lab_t = to_lab(target)
    curve = skin_curve(lab_t, skin)
    if curve is None:
        return transfer
    weights = np.asarray(skin, np.float32)
    height, width = weights.shape
    # The weight and the four weighted channels in one blur, on a half-size copy from 96 px
    # up (smooth fields: a quarter of the time).
    stack = np.empty((height, width, 5), np.float32)
    stack[..., 0] = weights
    np.multiply(_corrected_lightness(transfer, swapped), weights, out=stack[..., 1])
    np.multiply(lab_t, weights[..., None], out=stack[..., 2:5])
    factor = 2 if min(height, width) >= 96 and sigma >= 2.0 else 1
    if factor > 1:
        stack = cv2.resize(stack, (width // factor, height // factor),
                           interpolation=cv2.INTER_AREA)
    sums = gaussian_blur(stack, sigma / factor)
    sums /= np.maximum(sums[..., :1], 1e-3)  # local means; 0 where no skin is near
    light_s, light_t, local = sums[..., 1], sums[..., 2], sums[..., 3:5]
    # Darker only: the top of a skin's curve is its specular shine, nearly neutral, and a swap
    # lit brighter than the target (diffuse skin, not shine) took that ashy chroma (Obama's
    # nose bridge and forehead in fr_obama.jpg). More chroma only: where the curve loses
    # chroma towards its dark end, it holds hair or a cool shade at the face's edge, and a
    # child's cheek the swap shaded darker went grey (gfp_Blake_Lively.jpg). And in the hue the
    # target has there: under a coloured light from one side (df_img27.jpg, magenta on one
    # cheek) the curve's dark end is that side's colour, which the other side must not take.
    gain = np.linalg.norm(on_skin_curve(curve, np.minimum(light_s, light_t)), axis=-1) - \
        np.linalg.norm(on_skin_curve(curve, light_t), axis=-1)
    hue = local / np.maximum(np.linalg.norm(local, axis=-1), 1.0)[..., None]
    change = np.maximum(gain, 0.0)[..., None] * hue
    if factor > 1:
        change = cv2.resize(change, (width, height), interpolation=cv2.INTER_LINEAR)
    change *= (float(amount) * np.asarray(where, np.float32))[..., None]
    transfer.chroma = change if transfer.chroma is None else transfer.chroma + change
    return transfer


def _add_lightness(transfer: ColourTransfer, change: np.ndarray) -> ColourTransfer:
    """``transfer`` (changed in place) with the ``(S, S)`` L* ``change`` added to its
    lightness field: how each pass after the colour fit hands its change on."""
    transfer.lightness = (change if transfer.lightness is None
                          else transfer.lightness + change).astype(np.float32)
    return transfer


def _corrected_lightness(transfer: ColourTransfer, swapped: np.ndarray,
                         rows: slice = slice(None)) -> np.ndarray:
    """The corrected swap's L* (of ``rows`` of it) without the RGB round trip of
    ``transfer.apply``: the same but where the correction leaves the RGB gamut, which a
    closing and a blur do not see."""
    corrected = to_lab(swapped[rows])[..., 0] * transfer.scale[0] + transfer.offset[0]
    if transfer.lightness is not None:
        corrected += _fitted_to(transfer.lightness, swapped[..., 0])[rows]
    return corrected


def eye_shadow_weight(target: np.ndarray, landmarks68: np.ndarray, grow: float,
                      chroma: tuple[float, float], saturation: float, dark: float
                      ) -> np.ndarray | None:
    """Where a face wears coloured eye shadow: an ``(S, S)`` float32 weight 0-1 on the
    target's ``(S, S, 3)`` uint8 RGB crop (``landmarks68`` its 68 points there), or None when
    the crop shows too little bare skin to compare with.

    Eye shadow is colour the skin does not have: on the lids (each eye's outline grown by
    ``grow`` eye widths, less the eye itself and the brows), the pixels whose a*b* lie from
    ``chroma[0]`` (in part) to ``chroma[1]`` (fully) a*b* units from the median of the face's
    bare skin (masks.skin_zone), whose chroma is at least ``saturation`` times the skin's
    (in part from 0.2 less: a grey or bluish shadow under the eyes, a dark socket are duller
    than the skin, not made up) and whose L* is at most ``dark`` below the skin's median
    (fully from 10 less: eyeliner and lashes are darker). Lilac, green, gold and
    coral shadow pass; bare lids, however shaded, mostly do not; a reddened lid can."""
    size = target.shape[0]
    skin = skin_zone(landmarks68, size)
    if int(skin.sum()) < 20:
        return None
    lab = to_lab(target)
    skin_a, skin_b = (float(np.median(lab[..., channel][skin])) for channel in (1, 2))
    skin_light = float(np.median(lab[..., 0][skin]))
    lids = eye_zone(landmarks68, size, grow=grow) & ~eye_zone(landmarks68, size, grow=0.0) & \
        ~(brow_zone(landmarks68, size) > 0.3)
    weight = np.zeros((size, size), np.float32)
    rows = np.flatnonzero(lids.any(axis=1))
    if rows.size == 0:
        return weight
    # Per pixel only in the lids' rows: a few tenths of the crop.
    band = slice(int(rows[0]), int(rows[-1]) + 1)
    light, a, b = lab[band, :, 0], lab[band, :, 1], lab[band, :, 2]
    low, high = chroma
    apart = np.hypot(a - skin_a, b - skin_b)
    share = np.hypot(a, b) / max(math.hypot(skin_a, skin_b), 1.0)
    weight[band] = np.clip((apart - low) / (high - low), 0.0, 1.0) * \
        np.clip((share - saturation + 0.2) / 0.2, 0.0, 1.0) * \
        np.clip((light - (skin_light - dark)) / 10.0, 0.0, 1.0) * lids[band]
    return weight


def feature_darkness(lightness: np.ndarray, radius: float) -> np.ndarray:
    """How much darker than the skin around it each pixel of ``lightness`` (L*) is: the
    lightness with every dark feature narrower than a disc of ``radius`` pixels filled (a brow,
    a lash line) minus the lightness, at least 0."""
    return np.maximum(_shading(lightness, radius) - lightness, 0.0)


def _shading(lightness: np.ndarray, radius: float) -> np.ndarray:
    """``lightness`` with every dark feature narrower than a disc of ``radius`` pixels filled
    (a grey-level closing), its stepped plateau edges softened by an eighth of the radius."""
    size = max(1, int(round(radius)))
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * size + 1,) * 2)
    return gaussian_blur(cv2.morphologyEx(lightness, cv2.MORPH_CLOSE, disc),
                         max(0.5, radius / 8.0))


def color_match(swapped: np.ndarray, target: np.ndarray, mask: np.ndarray,
                strength: float = 1.0, local_sigma: float | None = None) -> np.ndarray:
    """:func:`fit_colour` applied to the same crop: ``(S, S, 3)`` uint8 RGB."""
    return fit_colour(swapped, target, mask, local_sigma=local_sigma,
                      strength=strength).apply(swapped)
