"""Grain (swap/grain.py): a swap of a grainy photo gets the photo's grain back where the swap's
band replaced the target's, a clean photo next to none; with the shipped demo model on real
photos (benchmarks/quality.py --noise measures the numbers)."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
# The shipped demo model (module-scoped) and one torch thread, as in test_compose.py.
from test_compose import SOURCE, _one_thread, demo  # noqa: E402, F401

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _noisy(image: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    """Grain of ``sigma`` levels a pixel or two across, as a phone's sensor noise."""
    rng = np.random.default_rng(seed)
    noise = cv2.GaussianBlur(rng.standard_normal(image.shape).astype(np.float32), (0, 0), 0.7)
    noise *= sigma / noise.std()
    return np.clip(np.rint(image + noise), 0, 255).astype(np.uint8)


def _face_crop(photos_dir, name: str, size: int = 256) -> np.ndarray:
    from facedancer_torch.faces.align import align_face
    from facedancer_torch.faces.detect import get_detector
    from facedancer_torch.io.images import read_image

    image = read_image(photos_dir / name)
    face = get_detector().detect(image)[0]
    return align_face(image, face.landmarks, size, antialias=True)[0]


def test_random_phase_keeps_the_spectrum_not_the_picture(photos_dir):
    from facedancer_torch.swap.grain import random_phase_spectrum

    crop = _face_crop(photos_dir, "fr_obama.jpg").astype(np.float32)
    sample = crop - cv2.GaussianBlur(crop, (0, 0), 2.0)
    spectrum = random_phase_spectrum(sample, np.random.default_rng(1))
    field = np.fft.irfft2(spectrum, s=sample.shape[:2], axes=(0, 1))
    centred = sample - sample.mean(axis=(0, 1))
    for channel in range(3):
        np.testing.assert_allclose(np.abs(np.fft.rfft2(field[..., channel])),
                                   np.abs(np.fft.rfft2(centred[..., channel])),
                                   rtol=1e-3, atol=1e-2)
        # none of the face's structure: the field does not correlate with the sample
        corr = np.corrcoef(field[..., channel].ravel(), centred[..., channel].ravel())[0, 1]
        assert abs(corr) < 0.1
    # the channels keep their correlation (a grey grain stays grey, chroma blotches chroma)
    want = np.corrcoef(centred[..., 0].ravel(), centred[..., 2].ravel())[0, 1]
    got = np.corrcoef(field[..., 0].ravel(), field[..., 2].ravel())[0, 1]
    assert abs(got - want) < 0.05, (got, want)


def test_the_noise_floor_tells_grain_from_texture(photos_dir):
    from facedancer_torch.swap.grain import noise_floor

    crop = _face_crop(photos_dir, "df_img1.jpg")

    def band(image):
        data = image.astype(np.float32)
        return data - cv2.resize(cv2.resize(data, (112, 112), interpolation=cv2.INTER_AREA),
                                 (256, 256), interpolation=cv2.INTER_CUBIC)

    clean = noise_floor(band(crop), crop)
    noisy = noise_floor(band(_noisy(crop, 10.0)), crop)
    assert clean.max() < 3.0, clean  # skin texture and edges are not the floor
    assert noisy.min() > 5.0, noisy  # grain is everywhere
    flat = np.full_like(crop, 128)
    assert noise_floor(band(flat), flat).max() < 0.1


@pytest.mark.parametrize("name", ["df_img45.jpg", "fr_obama.jpg"])
def test_a_grainy_photo_gets_its_grain_back_where_the_swap_took_it(demo, photos_dir, name,
                                                                   monkeypatch):
    """df_img45: a face about the model's size (two bands: grain where the gate closed);
    fr_obama: three times it (the middle band too). Measured as benchmarks/quality.py does:
    the robust level of the grey high-pass in the face's features, swap / photo."""
    sys.path.insert(0, str(BENCHMARKS))
    import quality

    from facedancer_torch.io.images import read_image
    from facedancer_torch.swap import grain
    from facedancer_torch.swap.options import SwapOptions

    plan = demo.plan([SOURCE])
    photo = read_image(photos_dir / name)
    regions = quality.face_regions(demo, photo)
    inner = quality.region_mask(regions, photo.shape)
    features = (quality.eye_mask(regions, photo.shape) |
                quality.mouth_mask(regions, photo.shape)) & inner
    # Blinks off: the grain is measured where the swap's pixels replaced the photo's, and since
    # session 31 fr_obama's smiling eyes (aspect ratio about 0.22) are the target's own, grainy
    # with the grain pass or without it (docs/swap.md "Blinks").
    options = SwapOptions(watermark=False, blinks=False)

    def ratios(image):
        out = {}
        for strength in (0.0, 1.0):
            monkeypatch.setattr(grain, "GRAIN", strength)
            swapped = demo.swap_image(image, plan, options)
            out[strength] = (quality.grain_level(swapped, features) /
                             quality.grain_level(image, features), swapped)
        return out

    noisy = ratios(_noisy(photo, 12.0))
    assert noisy[1.0][0] > noisy[0.0][0] + 0.02, (noisy[0.0][0], noisy[1.0][0])
    assert noisy[1.0][0] < 1.1  # not grainier than the photo
    again = demo.swap_image(_noisy(photo, 12.0), plan, options)  # GRAIN is 1 here
    np.testing.assert_array_equal(again, noisy[1.0][1])  # the same input, the same grain

    clean = ratios(photo)
    change = np.abs(clean[1.0][1].astype(int) - clean[0.0][1])[inner].mean()
    assert change < 1.0, change  # a clean photo: next to none


def test_a_clean_track_is_measured_again_every_few_frames():
    """A video's face that got no grain rests GRAIN_RECHECK - 1 frames before it is measured
    again; a still image (no track memory) is measured every time."""
    from facedancer_torch.swap import grain

    assert all(grain.due(None) for _ in range(3))
    memory: dict = {}
    assert grain.due(memory)
    grain.rest(memory)
    resting = [grain.due(memory) for _ in range(grain.GRAIN_RECHECK)]
    assert resting == [False] * (grain.GRAIN_RECHECK - 1) + [True]
