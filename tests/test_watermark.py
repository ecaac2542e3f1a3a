"""The invisible watermark (io/watermark.py) on real photos and video frames: invisible
(PSNR), found after one JPEG or H.264 re-encode, never found in unmarked media."""

from __future__ import annotations

import io

import numpy as np
import pytest

from facedancer_torch.io import watermark as wm

# a spread of real photos: single faces, groups, an old degraded one, a PNG, sizes 250-1500 px
PHOTOS = ["df_img1.jpg", "df_img12.jpg", "df_img22.jpg", "df_img44.jpg", "df_couple.jpg",
          "fnp_multiface.jpg", "fr_obama-240p.jpg", "fr_two_people.jpg", "gfp_00.jpg",
          "if_t1.jpg", "fr_lin-manuel-miranda.png", "df_selfie-many-people.jpg"]


def _jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


@pytest.fixture(scope="module")
def photos(photos_dir):
    from facedancer_torch.io.images import read_image

    return {name: read_image(photos_dir / name) for name in PHOTOS}


def test_invisible_and_found_after_jpeg(photos):
    for name, rgb in list(photos.items())[:6]:
        marked = wm.embed_watermark(rgb)
        assert marked.shape == rgb.shape and marked.dtype == np.uint8
        assert wm.psnr(rgb, marked) > 42.0, name
        assert int(np.abs(marked.astype(int) - rgb).max()) <= 12, name
        direct = wm.detect_watermark(marked)
        assert direct.found and direct.payload == wm.PAYLOAD and direct.bit_errors == 0, name
        assert direct.version == 1
        for quality in (75, 90):
            result = wm.detect_watermark(_jpeg(marked, quality))
            assert result.found, (name, quality, result)
            assert result.payload == wm.PAYLOAD and result.confidence == 1.0


def test_no_false_positive_on_real_photos(photos):
    for name, rgb in photos.items():
        for image in (rgb, _jpeg(rgb, 75)):
            result = wm.detect_watermark(image)
            assert not result.found, (name, result)
            assert abs(result.z) < 5.0, (name, result.z)  # about N(0, 1) when unmarked
            assert result.version is None


def test_survives_one_h264_reencode(videos_dir, tmp_path):
    from facedancer_torch.io.video import VideoWriter, read_frames

    frames = [f.rgb for f in read_frames(videos_dir / "talking_1face_512.mp4", max_frames=16)]
    plain, marked = tmp_path / "plain.mp4", tmp_path / "marked.mp4"
    for path, mark in ((plain, False), (marked, True)):
        with VideoWriter(path, 25, crf=23, preset="medium") as writer:  # x264 defaults
            for f in frames:
                writer.write(wm.embed_watermark(f) if mark else f)
    decoded = [f.rgb for f in read_frames(marked)]
    per_frame = [wm.detect_watermark(f) for f in decoded]
    assert sum(r.found for r in per_frame) >= 14, [round(r.z, 1) for r in per_frame]
    pooled = wm.detect_watermark(decoded[::4])
    assert pooled.found and pooled.bit_errors == 0 and pooled.z > 50
    unmarked = wm.detect_watermark([f.rgb for f in read_frames(plain)][::4])
    assert not unmarked.found and abs(unmarked.z) < 5.0


def test_edge_cases():
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (40, 300, 3), dtype=np.uint8)
    np.testing.assert_array_equal(wm.embed_watermark(small), small)  # too small: unchanged
    assert not wm.detect_watermark(small).found and wm.detect_watermark(small).carriers == 0
    ragged = rng.integers(0, 256, (203, 301, 3), dtype=np.uint8)  # not a multiple of 8
    marked = wm.embed_watermark(ragged)
    np.testing.assert_array_equal(marked[200:], ragged[200:])  # the ragged edge is untouched
    assert wm.detect_watermark(marked).found
    flat = np.full((128, 128, 3), 255, np.uint8)  # all carriers 0: the dither makes votes random
    assert not wm.detect_watermark(flat).found
    with pytest.raises(ValueError):
        wm.embed_watermark(np.zeros((64, 64), np.uint8))
    with pytest.raises(ValueError):
        wm.embed_watermark(ragged, payload=b"toolong")
    assert wm.detect_watermark([]).found is False


def test_other_payload_is_not_ours(photos):
    rgb = photos["df_img1.jpg"]
    other = wm.embed_watermark(rgb, payload=b"XYZ\x07")
    result = wm.detect_watermark(other)
    assert not result.found
    assert result.payload == b"XYZ\x07"  # decoded all the same
    assert wm.detect_watermark(other, payload=b"XYZ\x07").found
