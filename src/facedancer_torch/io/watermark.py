"""Invisible watermark for synthetic frames: dithered QIM in the 8x8 block DCT of the luma.

Why this design:

- **8x8 block DCT on the luma** (BT.601 ``Y``), the grid that JPEG and H.264 also use, so a
  re-encode quantises our coefficients on the same basis instead of smearing them.
- **Low/mid-frequency AC coefficients** (zig-zag positions 3..5: ``(0,2) (1,1) (2,0)``):
  low enough to survive JPEG q75 and H.264 crf 23 quantisation, high enough to stay invisible
  (changes of about +/-1 grey level, PSNR 45-48 dB).
- **Dithered quantisation index modulation** (Chen & Wornell 2001): each carrier coefficient is
  moved to the nearest point of one of two interleaved lattices (step ``DELTA``) that encodes
  its bit. A per-carrier pseudo-random dither makes an unmarked image decode to fair coin
  flips, whatever its content (flat or clipped areas included), so there are no false positives.
- **Position-keyed spreading**: carrier ``(block row, block col, coefficient)`` is assigned a
  payload bit and a dither by a hash of its position only, so the image size does not matter
  and every bit is repeated hundreds of times across the frame; detection averages the soft
  decisions (``cos`` of the lattice phase) of all its carriers (and of several video frames).
- **Perceptual masking of the step** (format version 2, ``FDT\x02``): a fixed step put a
  static grain of up to 7 grey levels on dark flat areas (a dark suit in a video: it stays
  while the noise moves). The step of each block is now the larger of a luminance term
  (``DELTA * STEP_FLOOR`` in dark blocks, ``DELTA * FLAT_CEILING`` from mid grey up) and a
  texture term (busy blocks hide a change), see :func:`block_steps`. Both come from DCT coefficients the
  carriers don't touch (the DC and six other low AC ones), so the blind detector recomputes
  the same steps from the received image; it weighs each vote by ``(step / DELTA)^2``, as
  small steps are the first to drown in re-encoding noise. Dark flat blocks change about a
  third as much; robustness stays (table in docs/media.md).
- **Backward compatible**: version 1 (fixed step) marks are still found: the detector runs
  both decoders (independent keys, so one never sees the other's mark) and reports the
  scheme that found the mark (``WatermarkResult.scheme``, payload byte 3 = version).

Detection is blind (no original needed): it reports the decoded 32-bit payload, how many bits
match the expected one, and a z-score of the correlation against the unmarked (random) case.
``found`` needs z >= :data:`Z_THRESHOLD` and at most :data:`MAX_BIT_ERRORS` wrong bits; for an
unmarked image the probability of that is far below 1e-9.

This is a provenance *signal*, not a security feature: anyone who knows the scheme (it is
open source) can remove or forge it. Scaling, cropping off the 8-pixel grid, rotation and
heavy filtering destroy it; metadata tags carry provenance alongside.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from dataclasses import dataclass

import cv2
import numpy as np

PAYLOAD: bytes = b"FDT\x02"  # "FaceDancer-Torch", watermark format version 2 (masked step)
PAYLOAD_V1: bytes = b"FDT\x01"  # version 1 (fixed step), still detected
VERSION: int = 2  # the scheme embed_watermark writes
PAYLOAD_BITS: int = 32
DELTA: float = 24.0  # QIM step in orthonormal-DCT units; distortion ~ DELTA^2/12 per carrier
# Version 2 masks the step per block with what the carriers don't change (block_steps):
# luminance: DELTA * STEP_FLOOR up to DARK_LUMA, rising linearly to DELTA * FLAT_CEILING at
# BRIGHT_LUMA;
# texture: at least DELTA * texture / TEXTURE_FULL, texture being the RMS of the
# TEXTURE coefficients (the six lowest non-carrier AC ones) in orthonormal-DCT units.
STEP_FLOOR: float = 0.3
# The luminance term's ceiling: a flat block gets at most this share of DELTA however bright.
# The full step leaves a faint static grain on light flat backgrounds (talking_a's window
# blinds, 43 % of its blocks: mean 1.18, max 6 grey levels). Measured (docs/media.md): 0.7
# leaves 0.81 / 5 there, a barely visible difference after the H.264 re-encode, for an H.264
# crf 28 margin of z 12 instead of 29 (8 frames); 0.5 lost the mark after crf 28. Kept at 1.
FLAT_CEILING: float = 1.0
DARK_LUMA: float = 32.0
BRIGHT_LUMA: float = 128.0
TEXTURE: tuple[tuple[int, int], ...] = ((0, 1), (1, 0), (0, 3), (1, 2), (2, 1), (3, 0))
TEXTURE_FULL: float = 24.0
WEIGHT_POWER: float = 2.0  # detection weighs a carrier's soft vote by (step / DELTA) ** this
# (row, col) of the carrier coefficients inside each 8x8 block
COEFFICIENTS: tuple[tuple[int, int], ...] = ((0, 2), (1, 1), (2, 0))
Z_THRESHOLD: float = 10.0
MAX_BIT_ERRORS: int = 3
MIN_SIZE: int = 64  # smaller images carry too few carriers for a reliable decision
# fixed key per scheme: every facedancer-torch output carries the same mark; the two schemes
# use independent keys, so one scheme's decoder sees the other's mark as noise
_KEYS = {1: 0x46444E43, 2: 0x46444E32}


@dataclass(frozen=True)
class WatermarkResult:
    """Outcome of :func:`detect_watermark`.

    ``confidence`` is the fraction of payload bits decoded as expected (1.0 all, 0.5 chance);
    ``z`` is the correlation with the expected payload in standard deviations of the
    unmarked case; ``payload`` the decoded 4 bytes (meaningful only when ``found``);
    ``scheme`` the embedding scheme (1 fixed step, 2 luminance-masked step) whose decoder
    gave this result.
    """

    found: bool
    confidence: float
    payload: bytes
    bit_errors: int
    z: float
    carriers: int
    scheme: int = VERSION

    @property
    def version(self) -> int | None:
        """Watermark format version when found."""
        return self.payload[3] if self.found else None


def _dct_matrix(n: int = 8) -> np.ndarray:
    k = np.arange(n)[:, None]
    x = np.arange(n)[None, :]
    m = np.cos(np.pi * (2 * x + 1) * k / (2 * n)) * np.sqrt(2 / n)
    m[0] /= np.sqrt(2)
    return m  # orthonormal DCT-II: coefficients = m @ block @ m.T


_DCT = _dct_matrix()
# basis images of the carrier coefficients, (K, 8, 8): coefficient = sum(block * basis)
_BASIS = np.stack([np.outer(_DCT[u], _DCT[v]) for u, v in COEFFICIENTS]).astype(np.float32)
_BASIS_FLAT = np.ascontiguousarray(_BASIS.reshape(len(COEFFICIENTS), 64))
# the carriers, the texture coefficients and, last, the block's mean luma (DC / 8): one
# matrix product gives them all
_ANALYSIS = np.concatenate([
    _BASIS_FLAT, np.stack([np.outer(_DCT[u], _DCT[v]).ravel() for u, v in TEXTURE]),
    np.full((1, 64), 1 / 64)]).astype(np.float32)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: a fast position hash (uint64 -> uint64)."""
    x = (x + np.uint64(0x9E3779B97F4A7C15)) & np.uint64(0xFFFFFFFFFFFFFFFF)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


@lru_cache(maxsize=16)  # video frames share one grid: hash it once
def _carrier_keys(rows: int, cols: int, row0: int = 0, scheme: int = VERSION
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For block rows ``row0 .. row0 + rows`` and ``cols`` block columns: payload bit index
    (R, C, K), key bit (R, C, K) and dither in [0, 1) (R, C, K), all a function of the
    carrier's position (and the scheme's key) only."""
    r = np.arange(row0, row0 + rows, dtype=np.uint64)[:, None, None]
    c = np.arange(cols, dtype=np.uint64)[None, :, None]
    k = np.arange(len(COEFFICIENTS), dtype=np.uint64)[None, None, :]
    with np.errstate(over="ignore"):
        h = _mix((r << np.uint64(40)) ^ (c << np.uint64(16)) ^ k ^ np.uint64(_KEYS[scheme]))
        h2 = _mix(h)
    bit_index = (h % np.uint64(PAYLOAD_BITS)).astype(np.int64)
    key_bit = ((h >> np.uint64(32)) & np.uint64(1)).astype(np.int64)
    dither = (h2 >> np.uint64(11)).astype(np.float64) / float(1 << 53)
    for array in (bit_index, key_bit, dither):
        array.flags.writeable = False
    return bit_index, key_bit, dither


def _payload_bits(payload: bytes = PAYLOAD) -> np.ndarray:
    return np.unpackbits(np.frombuffer(payload, np.uint8)).astype(np.int64)


def block_steps(mean_luma: np.ndarray, texture: np.ndarray,
                scheme: int = VERSION) -> np.ndarray:
    """QIM step of each block from its mean luma (0..255) and texture (RMS of the
    :data:`TEXTURE` coefficients), arrays of the same shape.

    Scheme 1: :data:`DELTA` everywhere. Scheme 2: perceptual masking, the larger of
    a luminance step (``DELTA * STEP_FLOOR`` up to :data:`DARK_LUMA`, rising linearly to
    ``DELTA * FLAT_CEILING`` at :data:`BRIGHT_LUMA`: a change is most visible in dark areas,
    and visible in flat bright ones too) and a texture
    step (``DELTA * texture / TEXTURE_FULL``: busy blocks hide it), at most ``DELTA``.
    Both inputs are what the carriers leave unchanged (other DCT coefficients), so the
    detector recomputes the same steps from the received image; a re-encode moves them a
    little, which only blurs the soft votes of a few blocks (measured in docs/media.md).
    """
    mean_luma = np.asarray(mean_luma, np.float64)
    if scheme == 1:
        return np.full(mean_luma.shape, DELTA)
    ramp = np.clip((mean_luma - DARK_LUMA) / (BRIGHT_LUMA - DARK_LUMA), 0.0, 1.0)
    luminance = STEP_FLOOR + (FLAT_CEILING - STEP_FLOOR) * ramp
    busy = np.minimum(np.asarray(texture, np.float64) / TEXTURE_FULL, 1.0)
    return DELTA * np.maximum(luminance, busy)


_LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # BT.601, as JPEG and SD video


# Pixels handled at once: the work is per 8x8 block, so the image is processed in bands of
# block rows and memory stays at about 30 bytes per band pixel whatever the image size
# (a 100 Mpx image at once needed several GB of float copies).
BAND_PIXELS: int = 4_000_000


def _bands(rgb: np.ndarray) -> Iterable[tuple[int, int]]:
    """``(first block row, block rows)`` of the bands covering the whole 8x8 blocks."""
    rows, cols = rgb.shape[0] // 8, rgb.shape[1] // 8
    step = max(1, BAND_PIXELS // max(1, cols * 64))
    for row0 in range(0, rows, step):
        yield row0, min(step, rows - row0)


def _carrier_coefficients(rgb: np.ndarray, scheme: int = VERSION
                          ) -> tuple[np.ndarray, np.ndarray]:
    """DCT coefficients (R, C, K) of the carriers and QIM steps (R, C, 1) of every whole
    8x8 luma block (the ragged right/bottom edge carries nothing)."""
    rows, cols = rgb.shape[0] // 8, rgb.shape[1] // 8
    # (OpenCV's per-pixel transform: 1.5 instead of 2.6 ms for numpy's matmul on a 1080p frame)
    y = cv2.transform(rgb[:rows * 8, :cols * 8].astype(np.float32), _LUMA[None])
    blocks = y.reshape(rows, 8, cols, 8).transpose(0, 2, 1, 3).reshape(rows, cols, 64)
    if scheme == 1:
        return (blocks @ _BASIS_FLAT.T).astype(np.float64), np.full((rows, cols, 1), DELTA)
    every = (blocks @ _ANALYSIS.T).astype(np.float64)
    k = len(COEFFICIENTS)
    texture = np.sqrt(np.mean(every[..., k:-1] ** 2, axis=-1, keepdims=True))
    return every[..., :k], block_steps(every[..., -1:], texture, scheme)


def _check(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {rgb.shape} {rgb.dtype}")
    return rgb


def embed_watermark(rgb: np.ndarray, payload: bytes | None = None,
                    strength: float = 1.0, scheme: int = VERSION) -> np.ndarray:
    """Return a copy of ``rgb`` ((H, W, 3) uint8 RGB) carrying the watermark.

    The same luma change is added to R, G and B (so chroma is untouched). Images smaller
    than :data:`MIN_SIZE` on a side are returned unchanged. ``payload`` defaults to the
    scheme's (:data:`PAYLOAD`, or :data:`PAYLOAD_V1` for ``scheme=1``, the old fixed step,
    kept for tests and comparisons). ``strength`` scales the QIM step (1.0 =
    :func:`block_steps`); detection assumes the default.
    """
    rgb = _check(rgb)
    if scheme not in _KEYS:
        raise ValueError(f"unknown watermark scheme {scheme}")
    payload = _default_payload(scheme) if payload is None else payload
    if len(payload) * 8 != PAYLOAD_BITS:
        raise ValueError(f"payload must be {PAYLOAD_BITS // 8} bytes")
    if min(rgb.shape[:2]) < MIN_SIZE:
        return rgb.copy()
    out = rgb.copy()
    cols = rgb.shape[1] // 8
    bits_of_payload = _payload_bits(payload)
    for row0, rows in _bands(rgb):
        band = rgb[row0 * 8:(row0 + rows) * 8, :cols * 8]
        coef, delta = _carrier_coefficients(band, scheme)
        delta *= strength
        bit_index, key_bit, dither = _carrier_keys(rows, cols, row0, scheme)
        bits = bits_of_payload[bit_index] ^ key_bit
        # lattice for bit b: delta * (n + dither + b/2); move each coefficient to its nearest
        offset = delta * (dither + bits * 0.5)
        target = np.round((coef - offset) / delta) * delta + offset
        change = ((target - coef).astype(np.float32) @ _BASIS_FLAT).reshape(rows, cols, 8, 8)
        delta_y = change.transpose(0, 2, 1, 3).reshape(rows * 8, cols * 8)
        out[row0 * 8:(row0 + rows) * 8, :cols * 8] = _added(band, delta_y)
    return out


def _added(band: np.ndarray, delta_y: np.ndarray) -> np.ndarray:
    """``band`` (uint8 RGB) plus the luma change ``delta_y`` (float) on each channel, rounded
    and clipped to 0..255. The pixels are integers, so the change is rounded once and added
    with saturating uint8 arithmetic (its positive and negative parts, never both at one
    pixel): the same as rounding ``band + delta_y`` in floats, four times faster on a frame
    (2 instead of 8 ms at 1080p), which every video frame pays."""
    rounded = np.rint(delta_y).astype(np.int16)
    up = np.clip(rounded, 0, 255).astype(np.uint8)
    down = np.clip(-rounded, 0, 255).astype(np.uint8)
    return cv2.subtract(cv2.add(band, cv2.merge([up, up, up])), cv2.merge([down, down, down]))


def _default_payload(scheme: int) -> bytes:
    return PAYLOAD_V1 if scheme == 1 else PAYLOAD


def _soft_votes(rgb: np.ndarray) -> dict[int, np.ndarray]:
    """Per scheme, (3, payload bits): weighted sum of soft votes (+1 means bit 0), sum of
    the squared weights and carrier count."""
    rgb = _check(rgb)
    cols = rgb.shape[1] // 8
    out = {scheme: np.zeros((3, PAYLOAD_BITS)) for scheme in _KEYS}
    for row0, rows in _bands(rgb):
        band = rgb[row0 * 8:(row0 + rows) * 8]
        for scheme, sums in out.items():
            coef, step = _carrier_coefficients(band, scheme)
            bit_index, key_bit, dither = _carrier_keys(rows, cols, row0, scheme)
            soft = np.cos((coef / step - dither) * 2 * np.pi)  # +1 bit-0, -1 bit-1 lattice
            soft = np.where(key_bit == 1, -soft, soft)  # undo the key: +1 means payload bit 0
            # a small step is nearer the re-encoding noise: its votes count less
            weight = np.broadcast_to((step / DELTA) ** WEIGHT_POWER, soft.shape)
            index = bit_index.ravel()
            sums[0] += np.bincount(index, (soft * weight).ravel(), minlength=PAYLOAD_BITS)
            sums[1] += np.bincount(index, (weight ** 2).ravel(), minlength=PAYLOAD_BITS)
            sums[2] += np.bincount(index, minlength=PAYLOAD_BITS)
    return out


def _decide(sums: np.ndarray, payload: bytes, scheme: int) -> WatermarkResult:
    votes, weight2, counts = sums
    total = int(counts.sum())
    if total == 0:
        return WatermarkResult(False, 0.0, b"\x00" * 4, PAYLOAD_BITS, 0.0, 0, scheme)
    decoded = (votes < 0).astype(np.uint8)  # a negative vote sum means bit 1
    expected = _payload_bits(payload)
    sign = 1.0 - 2.0 * expected  # +1 for expected 0, -1 for expected 1
    # under "no watermark" each soft vote is cos(uniform phase): mean 0, variance 1/2, and
    # the weights depend on the block means only, not on the (keyed) phases
    z = float((votes * sign).sum() / np.sqrt(weight2.sum() / 2.0))
    errors = int((decoded != expected).sum())
    found = z >= Z_THRESHOLD and errors <= MAX_BIT_ERRORS
    return WatermarkResult(found=found, confidence=1.0 - errors / PAYLOAD_BITS,
                           payload=np.packbits(decoded).tobytes(), bit_errors=errors, z=z,
                           carriers=total, scheme=scheme)


def _pooled_votes(frames: Iterable[np.ndarray]) -> dict[int, np.ndarray]:
    pooled = {scheme: np.zeros((3, PAYLOAD_BITS)) for scheme in _KEYS}
    for frame in frames:
        if min(np.asarray(frame).shape[:2]) < MIN_SIZE:
            continue
        for scheme, sums in _soft_votes(frame).items():
            pooled[scheme] += sums
    return pooled


def detect_watermark(rgb: np.ndarray | Iterable[np.ndarray],
                     payload: bytes | None = None) -> WatermarkResult:
    """Look for the watermark in one ``(H, W, 3)`` uint8 RGB image or pool several frames.

    Pooling (pass a list of frames of a video) adds the soft votes of all frames, which is
    much more reliable after lossy video coding than any single frame. Both schemes are
    decoded (version 2, and version 1 for files marked before it), each against its own
    payload (or ``payload`` when given); the result is the found one (higher z if both),
    else the one whose decoded bits are the most certain, whatever payload they spell (an
    other payload's mark is decoded all the same). Two independent tests double the
    false-positive probability, which stays far below 1e-9.
    """
    frames = [rgb] if isinstance(rgb, np.ndarray) else list(rgb)
    ranked = []
    for scheme, sums in _pooled_votes(frames).items():
        result = _decide(sums, _default_payload(scheme) if payload is None else payload,
                         scheme)
        certainty = np.abs(sums[0]).sum() / np.sqrt(max(sums[1].sum(), 1e-12))
        ranked.append(((result.found, result.z if result.found else certainty), result))
    return max(ranked, key=lambda item: item[0])[1]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB between two uint8 images of the same shape."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)
