"""A corpus of bad and unusual inputs run through every command (docs/failures.md).

Each case builds its inputs in a fresh folder, runs the real CLI entry point in this process
and checks the failure contract: exit code 2 (or 0 / 1 where the input is valid), exactly one
line ``error: ...`` naming the file (or option) at fault, no traceback, nothing left behind
in the folder, and every input byte-for-byte unchanged.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import math
import resource
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from swaputil import single_thread


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    with single_thread():
        yield


@pytest.fixture(autouse=True)
def _private_dirs(tmp_path, monkeypatch):
    # model store and hub downloads stay inside the test's folder (the ONNX cache is the
    # run's, in tmp: conftest _session_cache)
    monkeypatch.setenv("FACEDANCER_HOME", str(tmp_path / "home"))


@dataclass
class Work:
    """The folder a case builds its inputs in, and the shared real data it may copy from."""

    root: Path
    photos: Path
    videos: Path
    model: Path  # a tiny random generator (tests/swaputil.py)

    @property
    def face(self) -> Path:
        return self.photos / "df_img1.jpg"

    def write(self, name: str, data: bytes | str) -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return path

    def image(self, name: str, size: tuple[int, int] = (64, 48)) -> Path:
        from PIL import Image

        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(0)
        Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path)
        return path

    def copy(self, source: Path, name: str | None = None, cut: float = 1.0) -> Path:
        data = source.read_bytes()
        return self.write(name or source.name, data[:int(len(data) * cut)])

    def video(self, name: str, cut: float = 1.0, rotation: float | None = None) -> Path:
        """A real clip remuxed with its index first (MP4 "faststart"), optionally cut to a
        fraction of its bytes or given a display rotation of ``rotation`` degrees."""
        import av

        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with av.open(str(self.videos / "talking_b.mp4")) as src, \
                av.open(str(path), "w", options={"movflags": "faststart"}) as dst:
            stream = dst.add_stream_from_template(src.streams.video[0])
            for packet in src.demux(src.streams.video[0]):
                if packet.dts is not None:
                    packet.stream = stream
                    dst.mux(packet)
        data = bytearray(path.read_bytes())
        if rotation is not None:
            data[:] = _with_display_rotation(bytes(data), rotation)
        path.write_bytes(bytes(data[:int(len(data) * cut)]))
        return path

    def folder(self, name: str) -> Path:
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def swap(self, *args) -> list:
        # the box mask alone: the other mask parts load extra models the cases do not need
        return ["swap", "--mask", "box", *args, "--model", self.model, "--device", "cpu",
                "--backend", "fused", "--quiet"]


@dataclass
class Case:
    build: Callable[[Work], list]  # returns the argv; may create inputs under work.root
    code: int = 2
    names: tuple[str, ...] = ()  # must appear in the error line
    new: tuple[str, ...] = ()  # globs (relative to the root) a valid run may create
    disk_limit: int | None = None  # bytes: RLIMIT_FSIZE simulates a full disk
    chatter: tuple[str, ...] = ()  # prefixes of progress lines allowed before the error


CASES: dict[str, Case] = {}


def case(name: str, code: int = 2, names: tuple[str, ...] = (), new: tuple[str, ...] = (),
         disk_limit: int | None = None, chatter: tuple[str, ...] = ()):
    def register(build):
        assert name not in CASES, name
        CASES[name] = Case(build, code, names, new, disk_limit, chatter)
        return build
    return register


def _with_display_rotation(mp4: bytes, degrees: float) -> bytes:
    """``mp4`` with the display matrix of its (first) track header set to ``degrees``."""
    import struct

    at = mp4.find(b"tkhd")
    version = mp4[at + 4]
    # version/flags, times, track id, reserved, duration, reserved, layer, group, volume
    offset = at + 8 + (8 if version == 0 else 16) + 8 + (4 if version == 0 else 8) + 16
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    fixed = [c, s, 0, -s, c, 0, 0, 0]  # 16.16 fixed point; the last entry is 2.30
    matrix = b"".join(struct.pack(">i", round(v * 65536)) for v in fixed) + \
        struct.pack(">i", 1 << 30)
    return mp4[:offset] + matrix + mp4[offset + 36:]


def _png_header_bomb(width: int, height: int) -> bytes:
    """A PNG that declares ``width x height`` pixels but holds almost no data."""
    import struct
    import zlib

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (struct.pack(">I", len(payload)) + kind + payload
                + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


# ---------------------------------------------------------------- swap: inputs
case("swap-target-missing", names=("nothing.jpg",))(
    lambda w: w.swap("-s", w.face, "-t", w.root / "nothing.jpg", "-o", w.root / "out.png"))
case("swap-target-empty-jpg", names=("empty.jpg",))(
    lambda w: w.swap("-s", w.face, "-t", w.write("empty.jpg", b""), "-o", w.root / "out.png"))
case("swap-target-garbage-jpg", names=("garbage.jpg",))(
    lambda w: w.swap("-s", w.face, "-t", w.write("garbage.jpg", b"\xff\xd8\xffnot a jpeg" * 9),
                     "-o", w.root / "out.png"))
case("swap-target-truncated-jpg", names=("cut.jpg",))(
    lambda w: w.swap("-s", w.face, "-t", w.copy(w.face, "cut.jpg", cut=0.4),
                     "-o", w.root / "out.png"))
case("swap-target-text-suffix", names=("notes.txt",))(
    lambda w: w.swap("-s", w.face, "-t", w.write("notes.txt", "hello"), "-o", w.root / "o.png"))
case("swap-target-no-suffix", names=("photo",))(
    lambda w: w.swap("-s", w.face, "-t", w.copy(w.face, "photo"), "-o", w.root / "o.png"))
case("swap-target-png-named-jpg-garbage", names=("wrong.png",))(
    lambda w: w.swap("-s", w.face, "-t", w.write("wrong.png", "GIF89a" + "x" * 50),
                     "-o", w.root / "o.png"))
case("swap-target-pixel-bomb", names=("bomb.png",))(
    lambda w: w.swap("-s", w.face, "-t", w.write("bomb.png", _png_header_bomb(60000, 60000)),
                     "-o", w.root / "o.png"))
case("swap-source-missing", names=("ghost.jpg",))(
    lambda w: w.swap("-s", w.root / "ghost.jpg", "-t", w.copy(w.face, "t.jpg"),
                     "-o", w.root / "o.png"))
case("swap-source-garbage", names=("src.jpg",))(
    lambda w: w.swap("-s", w.write("src.jpg", b"\x00" * 100), "-t", w.copy(w.face, "t.jpg"),
                     "-o", w.root / "o.png"))
case("swap-source-no-face", names=("noise.png",))(
    lambda w: w.swap("-s", w.image("noise.png", (200, 200)), "-t", w.copy(w.face, "t.jpg"),
                     "-o", w.root / "o.png"))
case("swap-source-is-folder", names=("srcdir",))(
    lambda w: w.swap("-s", w.folder("srcdir"), "-t", w.copy(w.face, "t.jpg"),
                     "-o", w.root / "o.png"))
case("swap-reference-garbage", names=("ref.jpg",))(
    lambda w: w.swap("-s", w.face, "--reference", w.write("ref.jpg", "nope"),
                     "-t", w.copy(w.face, "t.jpg"), "-o", w.root / "o.png"))
case("swap-map-malformed", names=("--map",))(
    lambda w: w.swap("--map", "alice.jpg", "-t", w.copy(w.face, "t.jpg"),
                     "-o", w.root / "o.png"))
case("swap-no-source", names=("--source",))(
    lambda w: w.swap("-t", w.copy(w.face, "t.jpg"), "-o", w.root / "o.png"))
case("swap-target-video-garbage", names=("clip.mp4",))(
    lambda w: w.swap("-s", w.face, "-t", w.write("clip.mp4", b"\x00\x00\x00\x18ftypmp42" + b"x" * 500),
                     "-o", w.root / "o.mp4"))
case("swap-target-video-truncated", names=("cut.mp4", "truncated"))(
    lambda w: w.swap("-s", w.face, "-t", w.video("cut.mp4", cut=1 / 3), "-o", w.root / "o.mp4"))
case("swap-target-video-rotated-45", names=("tilted.mp4", "90 degrees"))(
    lambda w: w.swap("-s", w.face, "-t", w.video("tilted.mp4", rotation=45),
                     "-o", w.root / "o.mp4"))
case("swap-valid-video-rotated-90", code=0, new=("o.mp4",))(
    lambda w: w.swap("-s", w.face, "-t", w.video("turned.mp4", rotation=90),
                     "-o", w.root / "o.mp4", "--max-frames", "3"))
case("swap-target-video-empty", names=("empty.mp4",))(
    lambda w: w.swap("-s", w.face, "-t", w.write("empty.mp4", b""), "-o", w.root / "o.mp4"))

# ---------------------------------------------------------------- swap: options
for _option, _value in [("--mask-blur", "nan"), ("--mask-blur", "1e9"), ("--mask-blur", "-1"),
                        ("--mask-blur", "inf"), ("--mask-padding", "nan"),
                        ("--threshold", "nan"), ("--threshold", "5"), ("--crf", "99"),
                        ("--batch-size", "0"), ("--batch-size", "100000000"),
                        ("--max-frames", "0"), ("--faces", "some"), ("--mask", "oval")]:
    case(f"swap-option{_option}={_value}", names=(_option,))(
        lambda w, o=_option, v=_value: w.swap("-s", w.face, "-t", w.copy(w.face, "t.jpg"),
                                              "-o", w.root / "o.png", o, v))

# ---------------------------------------------------------------- swap: outputs
@case("swap-model-nan-weights", names=("nanmodel", "NaN"))
def _(w):
    import shutil

    from safetensors.torch import load_file, save_file

    model = w.root / "nanmodel"
    shutil.copytree(w.model, model)
    weights = load_file(str(model / "model.safetensors"))
    name = next(k for k, v in weights.items() if v.is_floating_point() and v.numel() > 1)
    weights[name][0] = float("nan")
    save_file(weights, str(model / "model.safetensors"))
    return [*w.swap("-s", w.face, "-t", w.copy(w.face, "t.jpg"), "-o", w.root / "o.png"),
            "--model", model]


case("swap-output-exists", names=("o.png",))(
    lambda w: w.swap("-s", w.face, "-t", w.copy(w.face, "t.jpg"), "-o", w.image("o.png")))
case("swap-output-is-target", names=("t.jpg",))(
    lambda w: w.swap("-s", w.face, "-t", w.copy(w.face, "t.jpg"), "-o", w.root / "t.jpg",
                     "--overwrite"))
case("swap-output-is-directory", names=("outdir",))(
    lambda w: w.swap("-s", w.face, "-t", w.copy(w.face, "t.jpg"), "-o", w.folder("outdir"),
                     "--overwrite"))
case("swap-output-bad-suffix", names=("o.xyz",))(
    lambda w: w.swap("-s", w.face, "-t", w.copy(w.face, "t.jpg"), "-o", w.root / "o.xyz"))
case("swap-output-parent-is-file", names=("afile",))(
    lambda w: w.swap("-s", w.face, "-t", w.copy(w.face, "t.jpg"),
                     "-o", w.write("afile", "x") / "o.png"))
case("swap-output-disk-full", names=("o.png",), disk_limit=64 * 1024)(
    lambda w: w.swap("-s", w.face, "-t", w.copy(w.face, "t.jpg"), "-o", w.root / "o.png"))
case("swap-folder-output-is-file", names=("out.png",))(
    lambda w: w.swap("-s", w.face, "-t", w.folder("photos"), "-o", w.image("out.png")))
@case("swap-valid-avif-target", code=0, new=("o.png",))
def _(w):
    from PIL import Image

    Image.open(w.face).save(w.root / "t.avif")
    return w.swap("-s", w.face, "-t", w.root / "t.avif", "-o", w.root / "o.png")


@case("align-valid-avif", code=0, new=("out", "out/*", "out/*/*"))
def _(w):
    from PIL import Image

    Image.open(w.face).save(w.folder("in") / "face.avif")
    return ["align", w.root / "in", w.root / "out", "--quiet", "--device", "cpu"]


case("swap-valid-image", code=0, new=("o.png",))(
    lambda w: w.swap("-s", w.face, "-t", w.copy(w.face, "t.jpg"), "-o", w.root / "o.png"))

# ---------------------------------------------------------------- verify
case("verify-missing", names=("none.png",))(lambda w: ["verify", w.root / "none.png"])
case("verify-empty", names=("empty.png",))(lambda w: ["verify", w.write("empty.png", b"")])
case("verify-garbage", names=("junk.jpg",))(lambda w: ["verify", w.write("junk.jpg", "junk")])
case("verify-folder", names=("adir",))(lambda w: ["verify", w.folder("adir")])
case("verify-text-file", names=("a.txt",))(lambda w: ["verify", w.write("a.txt", "text")])
case("verify-video-garbage", names=("v.mp4",))(lambda w: ["verify", w.write("v.mp4", b"\0" * 99)])
case("verify-truncated-video", names=("cut.mp4",))(
    lambda w: ["verify", w.copy(w.videos / "talking_b.mp4", "cut.mp4", cut=0.3)])
case("verify-pixel-bomb", names=("bomb.png",))(
    lambda w: ["verify", w.write("bomb.png", _png_header_bomb(60000, 60000))])
case("verify-unmarked-photo", code=1)(lambda w: ["verify", w.copy(w.face)])

case("swap-timecode-frames-past-the-rate", names=("--at", "00:00:01:25"))(
    lambda w: w.swap("-s", w.face, "-t", w.video("v.mp4"), "-o", w.root / "o.png", "--at",
                     "00:00:01:25"))
case("swap-timecode-for-a-photo", names=("df_img1.jpg", "--start", "timecode"))(
    lambda w: w.swap("-s", w.face, "-t", w.copy(w.face), "-o", w.root / "o.png", "--start",
                     "00:00:01:00"))
case("swap-drop-frame-timecode-at-25", names=("--end", "drop-frame"))(
    lambda w: w.swap("-s", w.face, "-t", w.video("v.mp4"), "-o", w.root / "o.mp4", "--end",
                     "00:00:01;10"))

# ---------------------------------------------------------------- faces
case("faces-missing", names=("none.png",))(lambda w: ["faces", w.root / "none.png"])
case("faces-garbage", names=("junk.jpg",))(lambda w: ["faces", w.write("junk.jpg", "junk")])
case("faces-folder", names=("adir",))(lambda w: ["faces", w.folder("adir")])
case("faces-at-on-a-photo", names=("df_img1.jpg", "--at"))(
    lambda w: ["faces", w.copy(w.face), "--at", "1"])
case("faces-frame-of-a-photo", names=("df_img1.jpg", "--frame"))(
    lambda w: ["faces", w.copy(w.face), "--frame", w.root / "f.png"])
case("faces-at-past-the-end", names=("v.mp4", "--at"))(
    lambda w: ["faces", w.video("v.mp4"), "--at", "9:00"])
case("faces-at-negative", names=("v.mp4", "--at", "0 or later"))(
    lambda w: ["faces", w.video("v.mp4"), "--at", "-1"])
case("swap-at-negative", names=("v.mp4", "--at", "0 or later"))(
    lambda w: w.swap("-s", w.face, "-t", w.video("v.mp4"), "-o", w.root / "o.png", "--at", "-2"))
case("faces-reference-missing", names=("nobody.jpg",))(
    lambda w: ["faces", w.copy(w.face), "--reference", w.root / "nobody.jpg", "--model",
               w.model])
case("faces-output-not-a-picture", names=("o.gif", "--output"))(
    lambda w: ["faces", w.copy(w.face), "-o", w.root / "o.gif"])
case("faces-output-exists", names=("o.png",))(
    lambda w: ["faces", w.copy(w.face), "-o", w.image("o.png")])
case("faces-output-is-the-frame", names=("o.png",))(
    lambda w: ["faces", w.video("v.mp4"), "-o", w.root / "o.png", "--frame", w.root / "o.png"])
case("faces-valid-clip", code=0, new=("v.mp4", "f.png", "o.png"))(
    lambda w: ["faces", w.video("v.mp4"), "--at", "0.5", "--frame", w.root / "f.png", "-o",
               w.root / "o.png"])

# ---------------------------------------------------------------- align
case("align-input-missing", names=("nowhere",))(
    lambda w: ["align", w.root / "nowhere", w.root / "out", "--quiet"])
case("align-input-is-file", names=("f.jpg",))(
    lambda w: ["align", w.copy(w.face, "f.jpg"), w.root / "out", "--quiet"])
case("align-input-empty", names=("empty",))(
    lambda w: ["align", w.folder("empty"), w.root / "out", "--quiet"])
@case("align-every-input-fails", names=("bad",), new=("out", "out/*"))
def _(w):
    w.write("bad/a.jpg", "x")
    w.write("bad/b.png", b"")
    return ["align", w.root / "bad", w.root / "out", "--quiet", "--device", "cpu"]
@case("align-only-video-rotated-45", names=("in",), new=("out", "out/*"))
def _(w):
    w.video("in/tilted.mp4", rotation=45)
    return ["align", w.root / "in", w.root / "out", "--quiet", "--device", "cpu"]


case("align-output-is-file", names=("out.txt",))(
    lambda w: ["align", w.copy(w.face, "in/a.jpg").parent, w.write("out.txt", "x"), "--quiet"])
for _option, _value in [("--im-size", "100000"), ("--im-size", "0"), ("--im-size", "-3"),
                        ("--shrink-factor", "nan"), ("--shrink-factor", "0"),
                        ("--score-threshold", "nan"), ("--score-threshold", "2"),
                        ("--video-stride", "0"), ("--workers", "0"), ("--partition", "3/2"),
                        ("--partition", "x"), ("--format", "gif"), ("--faces", "two"),
                        ("--max-side", "0"), ("--min-face-size", "nan"), ("--min-size", "-1")]:
    case(f"align-option{_option}={_value}", names=(_option,))(
        lambda w, o=_option, v=_value: ["align", w.copy(w.face, "in/a.jpg").parent,
                                        w.root / "out", "--quiet", o, v])

def _aligned(w: Work, corrupt: str | None = None) -> Path:
    """A folder of 2 identities x 2 noise "faces" (and one corrupt file when asked)."""
    for person in ("p1", "p2"):
        for i in range(2):
            w.image(f"al/{person}/{i}.png", (128, 128))
    if corrupt:
        w.write(f"al/{corrupt}", b"\x89PNG\r\n\x1a\n junk")
    return w.root / "al"


# ---------------------------------------------------------------- shard
case("shard-input-missing", names=("nowhere",))(
    lambda w: ["shard", w.root / "nowhere", w.root / "s", "--name", "x", "--quiet"])
case("shard-input-empty", names=("empty",))(
    lambda w: ["shard", w.folder("empty"), w.root / "s", "--name", "x", "--quiet"])
@case("shard-corrupt-image", names=("broken.png",))
def _(w):
    w.image("al/p1/a.png")
    w.write("al/p1/broken.png", b"\x89PNG\r\n\x1a\n junk")
    w.image("al/p2/b.png")
    return ["shard", w.root / "al", w.root / "s", "--name", "x", "--quiet",
            "--val-identities", "0"]
case("shard-output-is-file", names=("s.txt",))(
    lambda w: ["shard", w.image("al/p1/a.png").parent.parent, w.write("s.txt", "x"),
               "--name", "x", "--quiet", "--val-identities", "0"])
for _option, _value in [("--val-identities", "nan"), ("--val-identities", "1.5"),
                        ("--val-identities", "-0.1"), ("--per-shard", "0"),
                        ("--name", "bad/name"), ("--split", "")]:
    case(f"shard-option{_option}={_value}", names=(_option,))(
        lambda w, o=_option, v=_value: ["shard", _aligned(w), w.root / "s", "--name", "x",
                                        "--quiet", o, v])

# ---------------------------------------------------------------- train / export
case("train-config-missing", names=("nope.yaml",))(
    lambda w: ["train", "--config", w.root / "nope.yaml"])
case("train-config-garbage", names=("bad.yaml",))(
    lambda w: ["train", "--config", w.write("bad.yaml", "steps: [1, 2\n  - :")])
case("train-data-missing", names=("nodata",))(
    lambda w: ["train", "--config", "tiny", f"data={w.root / 'nodata'}",
               f"out={w.root / 'run'}", "--quiet"])
case("train-out-is-file", names=("run.txt",))(
    lambda w: ["train", "--config", "tiny", f"data={_aligned(w)}",
               f"out={w.write('run.txt', 'x')}", "--quiet"])
case("train-resume-without-checkpoint", names=("run",))(
    lambda w: ["train", "--config", "tiny", f"data={_aligned(w)}", f"out={w.root / 'run'}",
               "--resume", "--quiet"])
case("train-corrupt-image-up-front", names=("broken.png",))(
    lambda w: ["train", "--config", "tiny", f"data={_aligned(w, corrupt='p1/broken.png')}",
               f"out={w.root / 'run'}", "--quiet"])
for _override in ["optim.lr=nan", "optim.lr=inf", "optim.lr=-1", "steps=-5", "steps=abc",
                  "no.such.key=1", "batch_size=0", "loss.ifsr=nan"]:
    case(f"train-override-{_override}", names=(_override.split("=")[0].split(".")[0],))(
        lambda w, o=_override: ["train", "--config", "tiny", f"data={_aligned(w)}",
                                f"out={w.root / 'run'}", o, "--quiet"])
case("export-run-missing", names=("norun",))(
    lambda w: ["export", w.root / "norun", w.root / "m"])
case("export-run-without-checkpoint", names=("emptyrun",))(
    lambda w: ["export", w.folder("emptyrun"), w.root / "m"])

# ---------------------------------------------------------------- convert / models
case("convert-missing", names=("none.h5",))(
    lambda w: ["convert", w.root / "none.h5", w.root / "m"])
case("convert-directory", names=("adir", "folder"))(
    lambda w: ["convert", w.folder("adir"), w.root / "m"])
case("convert-garbage", names=("junk.h5",))(
    lambda w: ["convert", w.write("junk.h5", "not hdf5"), w.root / "m"])
case("convert-empty", names=("empty.h5",))(
    lambda w: ["convert", w.write("empty.h5", b""), w.root / "m"])
def _keras_fixture(w: Work, name: str) -> Path:
    from facedancer_torch.testing import shared_path

    source = shared_path("fixtures", "keras-facedancer", "ref_default.h5")
    if source is None:
        pytest.skip("shared fixture keras-facedancer/ref_default.h5 is absent")
    return w.copy(source, name)


case("convert-output-parent-is-file", names=("afile",))(
    lambda w: ["convert", _keras_fixture(w, "g.h5"), w.write("afile", "x") / "m"])
case("convert-disk-full", names=("m",), disk_limit=200 * 1024)(
    lambda w: ["convert", _keras_fixture(w, "g.h5"), w.root / "m"])
case("export-onnx-output-parent-is-file", names=("afile",))(
    lambda w: ["export-onnx", w.model, w.write("afile", "x") / "m.onnx"])
case("train-disk-full", names=("run",), disk_limit=64 * 1024, chatter=("training ",),
     new=("run", "run/*", "run/*/*"))(  # the run's logs so far stay, as after any stop
    lambda w: ["train", "--config", "tiny", f"data={_aligned(w)}", f"out={w.root / 'run'}",
               "steps=1", "--quiet"])
case("export-onnx-model-missing", names=("nomodel",))(
    lambda w: ["export-onnx", w.root / "nomodel", w.root / "m.onnx"])
@case("export-onnx-model-garbage", names=("config.json",))
def _(w):
    w.write("gm/model.safetensors", b"x")
    return ["export-onnx", w.write("gm/config.json", "{nope").parent, w.root / "m.onnx"]
case("models-add-missing", names=("none.h5",))(lambda w: ["models", "add", w.root / "none.h5"])
case("models-add-garbage", names=("junk.h5",))(
    lambda w: ["models", "add", w.write("junk.h5", "not hdf5"), "--name", "mine"])
case("models-add-garbage-official-name", names=("junk.h5",))(
    lambda w: ["models", "add", w.write("junk.h5", "not hdf5"), "--name", "facedancer-c-hq"])
@case("models-add-nan-weights", names=("FaceDancer_config_a.h5", "NaN"))
def _(w):
    import h5py

    path = _keras_fixture(w, "FaceDancer_config_a.h5")
    with h5py.File(path, "r+") as handle:
        names = []
        handle.visititems(lambda n, obj: names.append(n)
                          if isinstance(obj, h5py.Dataset) and obj.ndim == 4 else None)
        data = handle[names[0]][...]
        data.flat[0] = np.nan
        handle[names[0]][...] = data
    return ["models", "add", path]


case("models-verify-unknown", names=("no-such-model",))(
    lambda w: ["models", "verify", "no-such-model"])
case("models-list-empty-store", code=0)(lambda w: ["models", "list"])

# ---------------------------------------------------------------- evaluation tools, demo
case("demo-output-exists", names=("d.png",))(
    lambda w: ["demo", "-o", w.image("d.png"), "--model", w.model, "--backend", "fused"])
case("demo-output-bad-suffix", names=("d.xyz",))(
    lambda w: ["demo", "-o", w.root / "d.xyz", "--model", w.model, "--backend", "fused"])
case("demo-source-garbage", names=("s.jpg",))(
    lambda w: ["demo", "-o", w.root / "d.png", "-s", w.write("s.jpg", "x"), "--model", w.model,
               "--backend", "fused"])
case("make-testset-input-missing", names=("nothing",))(
    lambda w: ["make-testset", w.root / "nothing", w.root / "ts", "--quiet"])
case("make-testset-input-empty", names=("empty",))(
    lambda w: ["make-testset", w.folder("empty"), w.root / "ts", "--quiet"])
case("evaluate-testset-missing", names=("nots",))(
    lambda w: ["evaluate", "--testset", w.root / "nots", "--out", w.root / "rep",
               "--model", w.model, "--quiet"])
case("evaluate-encoder-pairs-missing", names=("pairs.txt",))(
    lambda w: ["evaluate-encoder", "--images", w.folder("lfw"), "--pairs",
               w.root / "pairs.txt"])
case("evaluate-encoder-pairs-garbage", names=("pairs.txt",))(
    lambda w: ["evaluate-encoder", "--images", w.folder("lfw"), "--pairs",
               w.write("pairs.txt", "garbage\nlines\n")])
case("calibrate-pairs-missing", names=("nopairs",))(
    lambda w: ["calibrate-ifsr", "--pairs", w.root / "nopairs", "--dry-run"])


# ---------------------------------------------------------------- the contract
def _snapshot(root: Path) -> dict[str, str]:
    """Every path under ``root`` -> sha256 of its bytes ('dir' for folders)."""
    found = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        found[rel] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def _run_cli(argv: list, capsys, disk_limit: int | None) -> tuple[int, str]:
    from facedancer_torch.cli import main

    saved_argv, saved_limit = sys.argv, resource.getrlimit(resource.RLIMIT_FSIZE)
    saved_handler = signal.getsignal(signal.SIGXFSZ)
    sys.argv = ["facedancer", *map(str, argv)]
    try:
        if disk_limit is not None:
            # a write past the limit fails with EFBIG, as a write to a full disk fails
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (disk_limit, saved_limit[1]))
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException as exc:  # noqa: BLE001 - an escaped exception is a traceback
            import traceback

            pytest.fail("traceback:\n" + "".join(traceback.format_exception(exc)))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, saved_limit)
        signal.signal(signal.SIGXFSZ, saved_handler)
        sys.argv = saved_argv
    return code, capsys.readouterr().err


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(name, tmp_path, photos_dir, videos_dir, tiny_model, capsys):
    spec = CASES[name]
    work = Work(tmp_path / "work", photos_dir, videos_dir, tiny_model)
    work.root.mkdir()
    argv = spec.build(work)
    before = _snapshot(work.root)
    code, stderr = _run_cli(argv, capsys, spec.disk_limit)
    after = _snapshot(work.root)

    assert code == spec.code, f"exit {code}, expected {spec.code}; stderr:\n{stderr}"
    assert "Traceback" not in stderr, stderr
    if spec.code == 2:
        lines = [line for line in stderr.splitlines()
                 if line.strip() and not line.startswith(spec.chatter or "\0")]
        assert len(lines) == 1 and lines[0].startswith("error: "), stderr
        for text in spec.names:
            assert text in lines[0], f"'{text}' not named in: {lines[0]}"
    changed = {p for p in before if after.get(p) != before[p]}
    assert not changed, f"inputs changed or removed: {sorted(changed)}"
    created = [p for p in after if p not in before
               and not any(fnmatch.fnmatch(p, pattern) for pattern in spec.new)]
    assert not created, f"left behind: {created}"


# ---------------------------------------------------------------- resuming a training run
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """Two steps of the tiny config on noise faces, a checkpoint after each."""
    root = tmp_path_factory.mktemp("tiny_run")
    work = Work(root, Path(), Path(), Path())
    data = _aligned(work)
    argv = ["train", "--config", "tiny", f"data={data}", f"out={root / 'run'}", "steps=2",
            "schedule.checkpoint_every=1", "schedule.keep_checkpoints=2", "--quiet"]
    from facedancer_torch.cli import main

    saved, sys.argv = sys.argv, ["facedancer", *map(str, argv)]
    try:
        main()
    except SystemExit as exc:
        assert not exc.code, exc.code
    finally:
        sys.argv = saved
    return root


def _copy_run(tiny_run: Path, tmp_path: Path) -> tuple[Path, Path]:
    import shutil

    shutil.copytree(tiny_run, tmp_path / "w", symlinks=True)
    return tmp_path / "w" / "al", tmp_path / "w" / "run"


def _state_files(checkpoint: Path) -> list[Path]:
    return [p for p in checkpoint.iterdir() if p.name.startswith("state.")]


def test_resume_skips_a_corrupt_checkpoint_and_says_so(tiny_run, tmp_path, capsys):
    from facedancer_torch.train.checkpoint import list_checkpoints

    data, run = _copy_run(tiny_run, tmp_path)
    (step1, _), (step2, newest) = list_checkpoints(run)
    assert (step1, step2) == (1, 2)
    for state in _state_files(newest):  # a disk error: the bytes of the state are garbage
        state.write_bytes(b"\x80\x04corrupt" + bytes(range(256)) * 4)
    code, stderr = _run_cli(["train", "--config", "tiny", f"data={data}", f"out={run}",
                             "steps=3", "schedule.checkpoint_every=1",
                             "schedule.keep_checkpoints=2", "--resume", "--quiet"], capsys, None)
    assert code == 0, stderr
    assert "Traceback" not in stderr and "weights_only" not in stderr
    warning = [line for line in stderr.splitlines() if line.startswith("warning: ")]
    assert any(newest.name in line and "falling back" in line for line in warning), stderr
    assert "from step 1 to 3" in stderr  # resumed from the checkpoint before the corrupt one
    assert [step for step, _ in list_checkpoints(run)][-1] == 3


@pytest.mark.parametrize("steps, message", [("1", "past steps=1"), ("2", None)])
def test_resume_to_fewer_steps_than_done(tiny_run, tmp_path, capsys, steps, message):
    data, run = _copy_run(tiny_run, tmp_path)
    before = _snapshot(run)
    code, stderr = _run_cli(["train", "--config", "tiny", f"data={data}", f"out={run}",
                             f"steps={steps}", "--resume", "--quiet"], capsys, None)
    if message:  # asked for fewer steps than done: an error, not "from step 2 to 1"
        errors = [line for line in stderr.splitlines() if not line.startswith("warning: ")]
        assert code == 2 and len(errors) == 1 and message in errors[0], stderr
        assert errors[0].startswith(f"error: {run}: ")
    else:  # already there: nothing to do, and nothing is wrong
        assert code == 0, stderr
    assert {k: v for k, v in _snapshot(run).items() if k.startswith("checkpoints")} == \
        {k: v for k, v in before.items() if k.startswith("checkpoints")}


def test_verify_a_large_image_prints_no_library_warning(tmp_path, capsys):
    """95 Mpx is within our limit but above Pillow's own default: no raw Pillow warning."""
    from PIL import Image

    path = tmp_path / "large.png"
    Image.new("RGB", (10000, 9500), (90, 120, 150)).save(path, compress_level=1)
    code, stderr = _run_cli(["verify", path], capsys, None)
    assert code == 1 and stderr == "", stderr  # readable, unmarked, and nothing else said


# ---------------------------------------------------------------- signals
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_mid_video_removes_the_partial_output(signum, tiny_model, photos_dir,
                                                       videos_dir, tmp_path):
    """SIGTERM (timeout, docker stop, a cancelled CI job) cleans up exactly like Ctrl-C."""
    import os
    import subprocess
    import time

    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "facedancer_torch", "swap", "-s", photos_dir / "df_img1.jpg",
         "-t", videos_dir / "talking_1face_512.mp4", "-o", out / "clip.mp4", "-m", tiny_model,
         "--mask", "box", "--backend", "fused", "--device", "cpu", "--quiet"],
        stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 240
        while not list(out.glob(".clip.*")) and process.poll() is None:
            assert time.monotonic() < deadline, "no partial output appeared"
            time.sleep(0.1)
        assert process.poll() is None, process.stderr.read()
        time.sleep(0.5)  # frames are being encoded into the partial file now
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 128 + signum, stderr
    assert stderr.strip().splitlines()[-1] == "interrupted" and "Traceback" not in stderr
    assert list(out.iterdir()) == [], list(out.iterdir())


# ---------------------------------------------------------------- models add
def test_models_add_records_a_hash_only_after_conversion(keras_fixture_dir, tmp_path, capsys):
    """A truncated download is refused without pinning its hash; the genuine file is then
    accepted (not refused as "changed by the publisher"), with a loud first-use warning."""
    genuine = tmp_path / "FaceDancer_config_c.h5"
    genuine.write_bytes((keras_fixture_dir / "ref_default.h5").read_bytes())
    cut = tmp_path / "cut" / genuine.name
    cut.parent.mkdir()
    cut.write_bytes(genuine.read_bytes()[: genuine.stat().st_size // 3])
    registry = tmp_path / "home" / "registry.json"

    code, stderr = _run_cli(["models", "add", cut], capsys, None)
    assert code == 2 and stderr.startswith(f"error: {cut}: "), stderr
    assert not registry.exists() or "facedancer-c" not in json.loads(registry.read_text())["models"]

    code, stderr = _run_cli(["models", "add", genuine], capsys, None)
    assert code == 0, stderr
    assert "warning: " in stderr and "facedancer-c" in stderr and "first use" in stderr
    record = json.loads(registry.read_text())["models"]["facedancer-c"]
    assert record["source"]["sha256"] == hashlib.sha256(genuine.read_bytes()).hexdigest()
    assert record["converted"]["files"]

    code, stderr = _run_cli(["models", "verify", "facedancer-c"], capsys, None)
    assert code == 0, stderr


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 60
