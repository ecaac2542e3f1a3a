"""Grain: the photo's noise, put back where the swap's pixels replaced the photo's.

A swapped face is the generator's picture below the detail split and, above it, the target's
own finest band wherever swap and target agree in structure
(:func:`facedancer_torch.swap.compose.detail_change`). The photo's grain (sensor noise of a dark
room, film grain, the dots of a printed picture) is in every band: it survives in the target's
kept finest band, and is gone from the rest, since the generator paints no noise. In a grainy
photo the face then looks smoothed next to its surroundings: wholly where the grain is coarse
enough to lie below the split (a face about the model's size, where a pixel of grain is a
large part of the crop), and in patches where the gate gave the finest band to the swap (eyes,
brows, nostrils, lips).

This module makes grain for what is missing, per band of the detail split:

- **Grain, not texture.** A band's grain level is its robust level (1.4826 median absolute
  deviations) on the face where the target's finest band is kept, at most its
  :func:`noise_floor`: the level in the crop's plainest blocks. Noise is everywhere in a
  photo; pores, hair and edges are not, and a clean photo's plain cheek or wall has next to no
  band at all, so a clean photo gets next to no grain.
- **Only what is missing.** Independent grains add in variance: per band, what the swap's own
  band lacks against the target's grain, ``sqrt(T^2 - S^2)``; in the finest band per pixel, as
  the gate ``g`` kept ``g`` of the target's (:func:`missing_grain`).
- **Of the photo's own kind.** The field is *random-phase noise* of the target's band where it
  is kept: its Fourier amplitudes with random phases, one phase field for the three channels.
  It has the sample's power spectrum (grain size, the regular dots of a print) and colour
  correlation (grey grain, chroma speckle) and none of its structure.
- Seeded by the target's pixels: the same input gives the same output; a video's next frame
  other grain, as a camera's.
"""

from __future__ import annotations

import zlib

import cv2
import numpy as np

from ..faces import masks

# How much of the missing grain is put back (0 = off).
GRAIN: float = 1.0
# Grain is made in the bands above this frequency (cycles per pixel of the work crop, about the
# frame's pixels): wavelengths up to 8 pixels. Below it lies shading and the face's shape.
GRAIN_LOWEST: float = 0.125
# The target's band counts as kept (a sample of its grain) where the gate is at least this and
# the face mask at least GRAIN_MASK.
GRAIN_OPEN: float = 0.9
GRAIN_MASK: float = 0.5
# The grain field is made on a tile of at most this many pixels and repeated; statistics of
# larger crops are taken on a grid of about GRAIN_STATS points across.
GRAIN_TILE: int = 256
GRAIN_STATS: int = 64
# Too few such pixels (a share of the work crop) to measure the grain: none is made.
GRAIN_MIN_SHARE: float = 0.04
# The sample is clipped at this many robust deviations before its spectrum is taken: a hair or
# an eyelash edge that the gate let through would otherwise give the field its orientation.
GRAIN_CLIP: float = 2.5
# Levels are taken softly (grey levels; a level L counts as sqrt(L^2 - M^2), nothing under M),
# so that a video whose noise hovers about a threshold gets no grain switching on and off: the
# finest band's grain level by GRAIN_MIN_LEVEL, the other bands' missing deviation by
# GRAIN_SWAP_BAND_MIN. Those bands are where a clean photo's skin texture lies (pores at the
# noise floor of a face that fills the crop): grain made there at that level lowered dlib's
# identity gain on 7 of 17 clean photos (docs/swap.md "Grain"), while a noisy photo's lack
# several levels.
GRAIN_MIN_LEVEL: float = 1.25
GRAIN_SWAP_BAND_MIN: float = 1.5
# Grain of a smaller deviation than this (grey levels, after the soft threshold) is not made:
# it would round away, for the cost of the field (20 ms a face of a compressed video).
GRAIN_MIN_ADD: float = 0.5
# A track (a video's face, a live stream's) that got no grain is measured again only every
# GRAIN_RECHECK frames (compose.py): the bands' noise floors that tell a clean clip cost 3 ms
# a face of the 512 px talking clip, for nothing on a clean clip, where grain is rarely wanted;
# a clip that turns grainy gets it within that many frames.
GRAIN_RECHECK: int = 10
# The noise floor (noise_floor): the band's level per block of this many pixels of the work
# crop, the given percentile over the blocks, leaving out those this close to black or white
# (clipped: no noise left there).
GRAIN_BLOCK: int = 16
GRAIN_FLOOR_PERCENTILE: float = 20.0
GRAIN_CLIPPED: float = 8.0

_MAD_TO_SIGMA = 1.4826  # a Gaussian's standard deviation per median absolute deviation
_MEAN_TO_SIGMA = 1.2533  # ... per mean absolute deviation (sqrt(pi / 2))


def robust_level(band: np.ndarray, where: np.ndarray) -> np.ndarray:
    """Per channel, the Gaussian-equivalent deviation of ``band`` over ``where`` (bool):
    1.4826 times the median absolute deviation from the median."""
    values = band[where]
    centred = values - np.median(values, axis=0)
    return _MAD_TO_SIGMA * np.median(np.abs(centred), axis=0)


def noise_floor(band: np.ndarray, image: np.ndarray) -> np.ndarray:
    """Per channel, the level of ``band`` (float32 ``(W, W, 3)``) in the crop's plainest
    places: its mean absolute value per block of :data:`GRAIN_BLOCK` pixels (as a Gaussian's
    deviation), the :data:`GRAIN_FLOOR_PERCENTILE` percentile over the blocks that are not
    clipped black or white in ``image``. Noise is everywhere in a photo, skin texture, hair and
    edges only in places: a clean photo's plain cheek, wall or sky has next to none."""
    work = band.shape[0]
    cells = max(4, work // GRAIN_BLOCK)
    deviation = cv2.resize(np.abs(band), (cells, cells), interpolation=cv2.INTER_AREA)
    brightness = cv2.resize(image.astype(np.float32), (cells, cells),
                            interpolation=cv2.INTER_AREA).mean(axis=2)
    usable = (brightness > GRAIN_CLIPPED) & (brightness < 255 - GRAIN_CLIPPED)
    if int(np.count_nonzero(usable)) < 4:
        return np.zeros(band.shape[2], np.float32)
    return _MEAN_TO_SIGMA * np.percentile(deviation[usable], GRAIN_FLOOR_PERCENTILE, axis=0)


def random_phase_spectrum(sample: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The spectrum of random-phase noise of ``sample`` (float32 ``(H, W, C)``; ``rfft2``
    layout): its per-channel Fourier coefficients with the phases of white noise added (one
    phase field for all channels, which keeps the cross-channel spectra)."""
    height, width = sample.shape[:2]
    spectrum = np.fft.rfft2(sample - sample.mean(axis=(0, 1)), axes=(0, 1))
    phase = np.fft.rfft2(rng.standard_normal((height, width)))
    phase /= np.maximum(np.abs(phase), 1e-12)
    return spectrum * phase[..., None]


def seed_of(image: np.ndarray) -> int:
    """A seed from ``image``'s pixels: the same input makes the same grain (reruns, resumed
    folders and tests give the same output), a video's next frame other grain, as a camera's."""
    return zlib.crc32(np.ascontiguousarray(image[::5, ::5]).tobytes())


def _soft(level: np.ndarray, threshold: float) -> np.ndarray:
    """``level`` less ``threshold`` in variance: ``sqrt(max(0, level^2 - threshold^2))``."""
    return np.sqrt(np.maximum(np.square(level) - threshold * threshold, 0.0)).astype(np.float32)


def missing_grain(target: np.ndarray, swap: np.ndarray, gate: np.ndarray, mask: np.ndarray,
                  coarse: int, fine: int, strength: float = GRAIN) -> np.ndarray | None:
    """The grain to add to the detailed swap, float32 ``(W, W, 3)`` in grey levels, or None
    where there is none to add.

    ``target``, ``swap``: the target and the colour-corrected swap at the work size (uint8
    ``(W, W, 3)``); ``gate``: the share ``g`` of the target's finest band the detail pass kept
    per pixel (``(W, W)``, 0..1); ``mask``: the paste mask at the work size; ``coarse``,
    ``fine``: the detail split's band edges as low-pass sizes in pixels (equal for two bands).

    The bands: the swap's below ``coarse`` (from :data:`GRAIN_LOWEST` up), the swap's between
    ``coarse`` and ``fine`` (three bands, a large face), the finest above ``fine``, gated. Per
    band, ``T`` is the target's grain level (robust level where the finest band is kept, at
    most the band's :func:`noise_floor`) and ``S`` the swap's own band's level there. The
    swap's bands get ``sqrt(T^2 - S^2)`` everywhere; the finest ``sqrt(T^2 (1 - (1 - g)^2) -
    S^2 (1 - g)^2)`` per pixel, as the detailed swap's finest band is ``g`` of the target's and
    ``1 - g`` of the swap's (``S`` measured where ``g`` is under :data:`GRAIN_OPEN`). Levels
    are taken softly (:data:`GRAIN_MIN_LEVEL`, :data:`GRAIN_SWAP_BAND_MIN`).

    The field is made on a tile of at most :data:`GRAIN_TILE` pixels (the window with the
    most of the kept band) and repeated: random-phase noise is periodic, so the tile repeats
    without seams, and a face 7 times the model's crop costs a tenth of a whole-crop field.
    """
    work = target.shape[0]
    lowest = max(2, int(round(2.0 * work * GRAIN_LOWEST)))
    if strength <= 0 or lowest >= work:
        return None
    face = mask >= GRAIN_MASK
    where = (gate >= GRAIN_OPEN) & face
    count = int(np.count_nonzero(where))
    if count < GRAIN_MIN_SHARE * gate.size or count < 64:
        return None
    # Statistics on every step-th pixel of every step-th row: medians over a whole work crop
    # cost more than the rest of the face.
    step = max(1, work // GRAIN_STATS)
    sparse = (slice(None, None, step), slice(None, None, step))
    # The band edges as low-pass sizes, from the lowest grain up; a band is (low, high) with
    # high = None for the finest (up to the crop's resolution).
    edges = sorted({size for size in (lowest, coarse, fine) if lowest <= size < work})
    bands = list(zip(edges, [*edges[1:], None], strict=True))
    target_f = target.astype(np.float32)
    lows = {size: masks.low_pass(target_f, size) for size in edges}
    target_bands = [target_f - lows[low] if high is None else lows[high] - lows[low]
                    for low, high in bands]
    # The floors first (whole-crop resizes): a clean picture, most video, stops here.
    floors = [noise_floor(band, target) for band in target_bands]
    gated = [high is None and low >= fine for low, high in bands]  # the finest, if gated
    wanted = [float((_soft(floor, GRAIN_MIN_LEVEL) if is_gated else floor).max()) >
              (GRAIN_MIN_ADD if is_gated else GRAIN_SWAP_BAND_MIN)
              for floor, is_gated in zip(floors, gated, strict=True)]
    if not any(wanted):
        return None
    swap_f = swap.astype(np.float32)
    swap_lows = {size: masks.low_pass(swap_f, size) for size in edges}
    partly = (gate < GRAIN_OPEN) & face
    closed = np.clip(1.0 - gate, 0.0, 1.0)[..., None]
    deviations: list = []
    for index, ((low, high), is_gated) in enumerate(zip(bands, gated, strict=True)):
        if not wanted[index]:
            deviations.append(None)
            continue
        swap_band = swap_f - swap_lows[low] if high is None else swap_lows[high] - swap_lows[low]
        level = np.minimum(robust_level(target_bands[index][sparse], where[sparse]),
                           floors[index])
        if is_gated:
            level = _soft(level, GRAIN_MIN_LEVEL)
            own = robust_level(swap_band[sparse], partly[sparse]) \
                if np.count_nonzero(partly[sparse]) >= 64 else np.zeros(3, np.float32)
            variance = np.square(level) * (1.0 - np.square(1.0 - closed)) - \
                np.square(own) * np.square(closed)
            deviation = np.sqrt(np.maximum(variance, 0.0)).astype(np.float32)
        else:
            own = robust_level(swap_band[sparse], where[sparse])
            deviation = _soft(np.sqrt(np.maximum(np.square(level) - np.square(own), 0.0)),
                              GRAIN_SWAP_BAND_MIN)
        deviations.append(deviation if float(deviation.max()) >= GRAIN_MIN_ADD else None)
    if all(d is None for d in deviations):
        return None
    sample = target_f - lows[lowest]
    parts = _fields(sample, where, target, [band if d is not None else None
                                            for band, d in zip(bands, deviations,
                                                               strict=True)])
    out = np.zeros_like(target_f)
    for part, deviation in zip(parts, deviations, strict=True):
        if part is not None:
            out += part * deviation
    return out * np.float32(strength)


def _fields(sample: np.ndarray, where: np.ndarray, target: np.ndarray,
            bands: list) -> list:
    """The random-phase field of the target's ``sample`` band where it is kept (clipped at
    :data:`GRAIN_CLIP` robust deviations; seeded by the target's pixels), one part per band
    (``(low, high)`` low-pass sizes, ``high`` None for the finest; None: not wanted), split in
    frequency at ``size / 2W`` cycles per pixel; each part of unit deviation per channel, at
    the work size."""
    work = sample.shape[0]
    tile = min(work, GRAIN_TILE)
    top, left = _best_window(where, tile)
    window = (slice(top, top + tile), slice(left, left + tile))
    kept = where[window]
    limit = GRAIN_CLIP * np.maximum(robust_level(sample[window], kept), 1e-3)
    clipped = np.where(kept[..., None], np.clip(sample[window], -limit, limit), 0.0)
    rng = np.random.default_rng(seed_of(target))
    spectrum = random_phase_spectrum(clipped.astype(np.float32), rng)
    radius = np.hypot(np.fft.fftfreq(tile)[:, None], np.fft.rfftfreq(tile)[None, :])
    shift = rng.integers(0, tile, size=2)  # where the repeated tile starts
    rows = (np.arange(work) + shift[0]) % tile
    cols = (np.arange(work) + shift[1]) % tile
    parts = []
    for band in bands:
        if band is None:
            parts.append(None)
            continue
        low, high = band
        keep = (radius > low / (2.0 * work)) & \
            (radius <= (0.5 if high is None else high / (2.0 * work)) + 1e-9)
        field = np.fft.irfft2(spectrum * keep[..., None], s=(tile, tile), axes=(0, 1))
        field = (field / np.maximum(field.std(axis=(0, 1)), 1e-6)).astype(np.float32)
        parts.append(field if tile == work else np.ascontiguousarray(field[rows][:, cols]))
    return parts


def _best_window(where: np.ndarray, tile: int) -> tuple[int, int]:
    """The top-left corner (on a grid of a quarter tile) of the ``tile``-sized window of the
    crop holding the most ``where`` pixels."""
    work = where.shape[0]
    if tile >= work:
        return 0, 0
    total = cv2.integral(where.astype(np.uint8))
    stride = max(1, tile // 4)
    corners = list(range(0, work - tile + 1, stride))
    if corners[-1] != work - tile:
        corners.append(work - tile)
    best, place = -1, (0, 0)
    for top in corners:
        for left in corners:
            inside = total[top + tile, left + tile] - total[top, left + tile] - \
                total[top + tile, left] + total[top, left]
            if inside > best:
                best, place = int(inside), (top, left)
    return place


def due(memory: dict | None) -> bool:
    """Whether a face is measured for grain on this frame: always for a still image (no
    ``memory``); for a track, unless it rests (:func:`rest`), counting its rest down."""
    if memory is None:
        return True
    resting = int(memory.get("grain_rest", 0))
    if resting > 0:
        memory["grain_rest"] = resting - 1
        return False
    return True


def rest(memory: dict | None) -> None:
    """A track's face got no grain: measure it again in :data:`GRAIN_RECHECK` frames."""
    if memory is not None:
        memory["grain_rest"] = GRAIN_RECHECK - 1
