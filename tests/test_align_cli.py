"""``facedancer align`` end to end on a generated corpus of good, odd and broken files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from facedancer_torch.io.images import read_image, read_image_metadata

EXPECTED = {
    "people/alice/group.jpg": "aligned",
    "people/alice/rgba.png": "aligned",
    "people/alice/sixteen_bit.png": "aligned",
    "people/alice/gray.jpg": "aligned",
    "people/alice/cmyk.jpg": "aligned",
    "people/alice/huge.jpg": "aligned",        # 9000 x 9000
    "people/bob/clip.mp4": "aligned",
    "people/bob/animated.gif": "aligned",      # GIFs are clips
    "people/bob/one_pixel.png": "too_small",   # 1 x 1
    "people/bob/exactly_min.png": "too_small",  # 128 x 300: not strictly above 128
    "people/bob/sweater.jpg": "no_face",
    "people/carol/truncated.jpg": "unreadable",
    "people/carol/zero_bytes.jpg": "unreadable",
    "people/carol/text.png": "unreadable",
    "people/carol/broken.mp4": "unreadable",
    "people/carol/notes.txt": "ignored",
}


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "facedancer_torch", "align", *args],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


def read_report(out: Path) -> dict[str, dict]:
    records = {}
    for path in sorted(out.glob("align_report*.jsonl")):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            assert record["input"] not in records, "an input was processed twice"
            records[record["input"]] = record
    return records


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, photos_dir, videos_dir) -> Path:
    root = tmp_path_factory.mktemp("corpus") / "people"
    alice, bob, carol = (root / n for n in ("alice", "bob", "carol"))
    for folder in (alice, bob, carol):
        folder.mkdir(parents=True)
    face = read_image(photos_dir / "fr_obama.jpg")  # one face, 910 x 1137
    (alice / "group.jpg").symlink_to(photos_dir / "if_t1.jpg")
    rgba = np.dstack([face, np.full(face.shape[:2], 255, np.uint8)])
    rgba[:50] = 0  # a transparent band
    Image.fromarray(rgba, "RGBA").save(alice / "rgba.png")
    cv2.imwrite(str(alice / "sixteen_bit.png"), face[..., ::-1].astype(np.uint16) * 257)
    Image.fromarray(face).convert("L").save(alice / "gray.jpg")
    Image.fromarray(face).convert("CMYK").save(alice / "cmyk.jpg")
    huge = np.zeros((9000, 9000, 3), np.uint8)  # the face scaled 7.9x, aspect kept
    huge[:, :7203] = cv2.resize(face, (7203, 9000), interpolation=cv2.INTER_LINEAR)
    cv2.imwrite(str(alice / "huge.jpg"), huge[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 70])
    del huge
    (bob / "clip.mp4").symlink_to(videos_dir / "talking_1face_512.mp4")
    small = Image.fromarray(face).resize((455, 568))
    small.save(bob / "animated.gif", save_all=True, duration=100,
               append_images=[small.rotate(5), small.rotate(-5)])
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(bob / "one_pixel.png")
    Image.fromarray(face[:300, :128]).save(bob / "exactly_min.png")
    sweater = read_image(photos_dir / "df_img49.jpg")[2000:, ::4]  # no face in it
    Image.fromarray(np.ascontiguousarray(sweater)).save(bob / "sweater.jpg")
    data = (photos_dir / "fr_obama.jpg").read_bytes()
    (carol / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (carol / "zero_bytes.jpg").write_bytes(b"")
    (carol / "text.png").write_text("I am a text file, not a PNG.\n")
    (carol / "broken.mp4").write_bytes(os.urandom(5000))
    (carol / "notes.txt").write_text("nothing to see\n")
    (carol / ".hidden.jpg").write_bytes(b"")  # hidden files are not inputs
    return root


@pytest.fixture(scope="module")
def aligned(corpus, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("aligned")
    result = run_cli(str(corpus.parent), str(out), "--workers", "2", "--video-stride", "60",
                     "--device", "cpu")
    return out, result


def test_bad_corpus_is_reported_not_fatal(aligned):
    out, result = aligned
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    records = read_report(out)
    assert {k: r["status"] for k, r in records.items()} == EXPECTED
    for record in records.values():
        if record["status"] not in ("aligned",):
            assert record["reason"], record
    assert "0 bytes" in records["people/carol/zero_bytes.jpg"]["reason"]
    assert "truncated" in records["people/carol/truncated.jpg"]["reason"]
    assert records["people/alice/huge.jpg"]["width"] == 9000
    assert "read 11, aligned 8 (11 crops), too small 2, no face 1, unreadable 4, ignored 1, " \
           "errors 0" in result.stdout


def test_outputs_mirror_the_input_and_carry_metadata(aligned, corpus):
    out, _ = aligned
    records = read_report(out)
    expected_files = {"people/alice/group.png", "people/alice/rgba.png",
                      "people/alice/sixteen_bit.png", "people/alice/gray.png",
                      "people/alice/cmyk.png", "people/alice/huge.png"}
    expected_files |= {f"people/bob/clip_t{t:06d}.png" for t in (0, 60, 120, 180)}
    expected_files.add("people/bob/animated_t000000.png")
    written = {p.relative_to(out).as_posix() for p in out.rglob("*.png")}
    assert written == expected_files
    assert {o for r in records.values() for o in r["outputs"]} == expected_files
    assert not list(out.rglob(".*part*")), "temporary files left behind"
    crops = {name: read_image(out / name) for name in expected_files}
    for name, crop in crops.items():
        assert crop.shape == (256, 256, 3) and crop.std() > 20, name
    # The same face from differently encoded files gives nearly the same crop (the huge one's
    # 1,200 px face is located on a copy scaled to REFINE_MAX_FACE, the others at their own
    # 150 px: 14.5 grey levels apart).
    reference = crops["people/alice/rgba.png"][60:200, 60:200].astype(float)
    for name in ("sixteen_bit", "cmyk", "huge"):
        other = crops[f"people/alice/{name}.png"][60:200, 60:200].astype(float)
        assert np.abs(other - reference).mean() < (18 if name == "huge" else 12), name
    meta = read_image_metadata(out / "people/bob/clip_t000060.png")
    assert meta["source"] == "people/bob/clip.mp4" and meta["frame"] == "60"
    assert np.array(json.loads(meta["matrix"])).shape == (2, 3)


def test_rerun_resumes_without_redoing_work(aligned, corpus):
    out, _ = aligned
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.png")}
    report_lines = len((out / "align_report.jsonl").read_text().splitlines())
    result = run_cli(str(corpus.parent), str(out), "--video-stride", "60", "--quiet")
    assert result.returncode == 0, result.stderr
    assert "16 resumed" in result.stdout and "aligned 8 (11 crops)" in result.stdout
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.png")} == before
    assert len((out / "align_report.jsonl").read_text().splitlines()) == report_lines
    # Other settings into the same folder are refused instead of mixing crops.
    result = run_cli(str(corpus.parent), str(out), "--video-stride", "5")
    assert result.returncode == 2 and result.stderr.startswith("error: ")
    assert "video_stride" in result.stderr and "Traceback" not in result.stderr


def test_partitions_are_disjoint_and_complete(corpus, tmp_path):
    src = corpus / "carol"  # quick inputs only
    out = tmp_path / "out"
    first = run_cli(str(src), str(out), "--partition", "0/2", "--quiet")
    second = run_cli(str(src), str(out), "--quiet", env={"RANK": "1", "WORLD_SIZE": "2"})
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    part0 = [json.loads(x)["input"] for x in (out / "align_report.0-of-2.jsonl").open()]
    part1 = [json.loads(x)["input"] for x in (out / "align_report.1-of-2.jsonl").open()]
    assert part0 and part1 and not set(part0) & set(part1)
    assert sorted(part0 + part1) == sorted(p.name for p in src.iterdir()
                                           if not p.name.startswith("."))


def test_flat_folder_and_all_faces(photos_dir, tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "group.jpg").symlink_to(photos_dir / "if_t1.jpg")
    (flat / "group.png").symlink_to(photos_dir / "fr_two_people.jpg")  # same stem
    result = run_cli(str(flat), str(tmp_path / "out"), "--faces", "all", "--im-size", "112",
                     "--format", "jpg", "--quiet")
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in (tmp_path / "out").glob("*.jpg"))
    assert names == [f"group_jpg_f{k}.jpg" for k in range(6)] + \
        [f"group_png_f{k}.jpg" for k in range(2)]
    assert read_image(tmp_path / "out" / names[0]).shape == (112, 112, 3)


def test_user_errors_are_one_line(tmp_path):
    result = run_cli(str(tmp_path / "missing"), str(tmp_path / "out"))
    assert result.returncode == 2 and result.stderr.startswith("error: ")
    assert "missing" in result.stderr and "Traceback" not in result.stderr
    for args in (["--partition", "3/2"], ["--faces", "some"], ["--device", "tpu"],
                 ["--shrink-factor", "0"]):
        result = run_cli(str(tmp_path), str(tmp_path / "out2"), *args)
        assert result.returncode == 2 and result.stderr.startswith("error: "), args
        assert "Traceback" not in result.stderr


def test_video_rotation_convention():
    """Align decodes videos with the swap's reader (io.video): its display-matrix rule."""
    from facedancer_torch.errors import FacedancerError
    from facedancer_torch.io.video import rotation_quarter_turns

    def upright(frame, rotation):
        return np.rot90(frame, rotation_quarter_turns(rotation))

    frame = np.zeros((2, 3), np.uint8)
    frame[0, 2] = 1  # top-right corner
    # The display matrix says "rotate 90 degrees counterclockwise": top-right goes top-left.
    assert upright(frame, 90)[0, 0] == 1 and upright(frame, 90).shape == (3, 2)
    assert upright(frame, -90)[2, 1] == 1  # clockwise: top-right goes bottom-right
    assert upright(frame, 180)[1, 0] == 1
    assert (upright(frame, 0) == frame).all()
    with pytest.raises(FacedancerError, match="90 degrees"):
        rotation_quarter_turns(45)  # refused, not rounded to 0 or 90
