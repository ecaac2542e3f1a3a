"""Provenance tags in images and videos (io/provenance.py) and ``facedancer verify``."""

from __future__ import annotations

import datetime as dt
import io
import json
import subprocess
import sys

import numpy as np
import pytest

from facedancer_torch import __version__
from facedancer_torch.errors import InputError
from facedancer_torch.io import provenance as prov


def _verify(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "facedancer_torch", "verify", *map(str, args)],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def tag(photos_dir):
    when = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    return prov.provenance_tag("tiny-test-model", sources=[photos_dir / "df_img1.jpg"],
                               timestamp=when)


@pytest.fixture(scope="module")
def photo(photos_dir):
    from facedancer_torch.io.images import read_image

    return read_image(photos_dir / "df_img2.jpg")


def test_tag_contents(tag, photos_dir):
    assert tag["content"] == "synthetic media"
    assert tag["tool"] == "facedancer-torch" and tag["tool_version"] == __version__
    assert tag["model"] == "tiny-test-model"
    assert tag["created"] == "2026-01-02T03:04:05Z"
    assert tag["digital_source_type"].endswith("trainedAlgorithmicMedia")
    assert tag["source_sha256"] == prov.sha256_file(photos_dir / "df_img1.jpg")
    assert len(tag["source_sha256"]) == 64
    meta = prov.provenance_metadata(tag)
    assert set(meta) == {"comment", "description"}
    assert meta["comment"].startswith("Synthetic media: face swap made with facedancer-torch")
    assert "tiny-test-model" in meta["comment"]
    assert json.loads(meta["description"]) == tag
    assert json.loads(meta["comment"][meta["comment"].index("{"):]) == tag
    assert prov.parse_provenance({"comment": meta["comment"]}) == tag  # MOV keeps only this


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp", ".tif"])
def test_image_round_trip(tmp_path, tag, photo, suffix):
    out = tmp_path / f"swapped{suffix}"
    prov.write_image_with_provenance(out, photo, tag)
    assert prov.read_provenance(out) == tag


def test_unmarked_files_have_no_tag(photos_dir, videos_dir):
    assert prov.read_provenance(photos_dir / "df_img2.jpg") is None
    assert prov.read_provenance(photos_dir / "fr_32bit.png") is None
    assert prov.read_provenance(videos_dir / "talking_a.mp4") is None


def test_parse_accepts_flat_tags(tag):
    assert prov.parse_provenance(tag) == tag  # keys stored one by one (PNG chunks, MKV tags)
    assert prov.parse_provenance({"comment": json.dumps(tag)}) == tag
    assert prov.parse_provenance({"comment": "hello", "description": "{not json"}) is None


@pytest.mark.parametrize("suffix", [".mp4", ".mov", ".mkv", ".webm", ".gif", ".webp"])
def test_video_round_trip(tmp_path, tag, suffix):
    from facedancer_torch.io.video import VideoWriter

    out = tmp_path / f"clip{suffix}"
    rng = np.random.default_rng(0)
    with VideoWriter(out, 25, metadata=prov.provenance_metadata(tag),
                     preset="ultrafast") as writer:
        for _ in range(3):
            writer.write(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
    assert prov.read_provenance(out) == tag


def test_bad_file_raises(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8 truncated nonsense")
    with pytest.raises(InputError, match="bad.jpg"):
        prov.read_provenance(bad)
    with pytest.raises(InputError, match="nope.mp4"):
        prov.read_provenance(tmp_path / "nope.mp4")


# ------------------------------------------------------------------------- verify


def test_verify_image_tag_and_watermark(tmp_path, tag, photo):
    from PIL import Image

    from facedancer_torch.io.watermark import embed_watermark

    marked = tmp_path / "swapped.jpg"
    prov.write_image_with_provenance(marked, embed_watermark(photo), tag, quality=90)
    out = _verify(marked)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "provenance tag : found" in out.stdout and "tiny-test-model" in out.stdout
    assert "watermark      : found" in out.stdout
    assert "SYNTHETIC MEDIA" in out.stdout

    # metadata stripped by a re-save at JPEG q75: the watermark alone still tells
    stripped = tmp_path / "reshared.jpg"
    Image.open(marked).convert("RGB").save(stripped, "JPEG", quality=75)
    assert prov.read_provenance(stripped) is None
    out = _verify(stripped, "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    report = json.loads(out.stdout)
    assert report["synthetic"] and report["provenance"] is None
    assert report["watermark"]["found"] and report["watermark"]["payload"] == "46445402"
    assert report["watermark"]["version"] == 2


def test_verify_unmarked_and_unreadable(tmp_path, photos_dir, videos_dir):
    out = _verify(photos_dir / "df_img3.jpg")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "not found" in out.stdout and "SYNTHETIC" not in out.stdout
    out = _verify(videos_dir / "crowd_720p.mp4", "--frames", "3")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "3 frames" in out.stdout
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"nothing to see" * 100)
    out = _verify(junk)
    assert out.returncode == 2
    assert out.stderr.startswith("error: ") and "junk.mp4" in out.stderr
    assert "Traceback" not in out.stderr
    assert _verify(tmp_path / "missing.png").returncode == 2


def test_verify_video_after_reencode(tmp_path, videos_dir, tag):
    """A tagged, watermarked clip re-encoded once at x264's default crf 23 without its
    metadata: verify still finds the watermark."""
    from facedancer_torch.io.video import VideoWriter, read_frames
    from facedancer_torch.io.watermark import embed_watermark

    source = videos_dir / "talking_b.mp4"
    first = tmp_path / "swapped.mp4"
    frames = [f.rgb for f in read_frames(source, max_frames=12)]
    with VideoWriter(first, 25, metadata=prov.provenance_metadata(tag), audio_from=source,
                     preset="ultrafast") as writer:
        for f in frames:
            writer.write(embed_watermark(f))
    assert _verify(first).returncode == 0
    second = tmp_path / "reencoded.mp4"
    with VideoWriter(second, 25, crf=23, preset="medium") as writer:
        for f in read_frames(first):
            writer.write(f.rgb)
    assert prov.read_provenance(second) is None
    out = _verify(second, "--frames", "4")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "provenance tag : not found" in out.stdout
    assert "watermark      : found" in out.stdout


def test_format_verification_text(tmp_path, tag, photo):
    from facedancer_torch.cli.verify import format_verification

    out = tmp_path / "tagged.png"
    prov.write_image_with_provenance(out, photo, tag)
    result = prov.verify_file(out)
    assert result.kind == "image" and result.synthetic
    assert result.watermark is not None and not result.watermark.found
    text = format_verification(result)
    assert "(tag)" in text and "tiny-test-model" in text
    assert io.StringIO(text).readline().strip() == str(out)


def test_verify_a_frame_sequence_frame_by_frame(tmp_path, tag, photo):
    """Frames of a sequence are labelled one by one (only where a face was swapped): verify
    counts them; no frame matching is one error line."""
    from facedancer_torch.io.images import write_image
    from facedancer_torch.io.watermark import embed_watermark

    small = np.ascontiguousarray(photo[:256, :256])
    write_image(tmp_path / "f_0001.png", small)
    for number in (2, 3):
        prov.write_image_with_provenance(tmp_path / f"f_{number:04d}.png",
                                         embed_watermark(small), tag)
    out = _verify(tmp_path / "f_%04d.png")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "3 frames" in out.stdout
    assert "synthetic      : 2 (f_0002.png .. f_0003.png" in out.stdout
    assert "in 2 of 3 frames" in out.stdout
    report = json.loads(_verify(tmp_path / "f_%04d.png", "--json").stdout)
    assert [frame["synthetic"] for frame in report["frames"]] == [False, True, True]
    assert _verify(tmp_path / "f_%02d.png").returncode == 2  # nothing has two digits
