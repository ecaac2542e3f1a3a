"""Shot cuts and identity re-checks in edited videos, on the shared clips.

    python benchmarks/shots.py [--frames 105]

Prints three tables:

1. **Picture jumps** (``faces/shots.py``): per shared clip, the largest thumbnail grey
   difference and colour-histogram total variation between consecutive frames, and how many
   frames count as cuts; then the smallest of both between the first and last frames of
   different clips (what a cut between them looks like).
2. **Two speakers, one after the other** (``talking_a.mp4`` then ``talking_b.mp4``, both at
   512 px, framed alike): joined by a cut, by a 12-frame cross-fade and by a 20-frame one,
   swapped with ``--reference`` set to each speaker (the shipped demo model): which frames
   were changed, as runs (``1-40``), and how many cuts were found.
3. **Identity drift along tracks**: per clip, each track's views (every other frame) against
   the mean of its first three, as cosine distances of the identity encoder, with the eye
   distance in pixels: what ``IDENTITY_CHANGE`` and ``IDENTITY_RECHECK_EYES`` in
   ``swap/video.py`` are set from.
4. **Camera motion** (``--camera``, also alone with ``--only-camera``): each clip moved as a
   camera would move it (:func:`camera_move`: a zoom to 1.8x and back with a pan between, a
   static 1.8x close-up, a handheld shake), the cuts found with the grey difference as it is
   and after the previous picture is moved to fit (``faces/shots.py`` ``fit_move``),
   and real cuts into and out of the moving clips; with ``--swap`` the frames swapped of the
   zoomed ``talking_b.mp4`` (shipped demo model, a face that blinks between swapped and not is
   what false cuts did).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from facedancer_torch.faces.shots import ShotCuts, picture, picture_jump
from facedancer_torch.io.video import read_frames
from facedancer_torch.swap.options import SwapOptions
from facedancer_torch.swap.pipeline import Swapper
from facedancer_torch.swap.video import VideoStats, swap_stream
from facedancer_torch.testing import shared_path

CLIPS = ["talking_1face_512.mp4", "talking_a.mp4", "talking_b.mp4", "talking_c.mp4",
         "crowd_720p.mp4"]


def frames_of(path: Path, count: int, size: int | None = None) -> list[np.ndarray]:
    frames = [f.rgb for f in read_frames(path, max_frames=count)]
    if size is not None:
        frames = [cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in frames]
    return frames


def runs(flags: list[bool]) -> str:
    """``[T, T, F, T]`` -> ``"1-2, 4"`` (frames counted from 1)."""
    spans, start = [], None
    for i, flag in enumerate([*flags, False]):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            spans.append(f"{start + 1}-{i}" if i - start > 1 else f"{i}")
            start = None
    return ", ".join(spans) or "none"


def camera_move(frames: list[np.ndarray], kind: str, seed: int = 0) -> list[np.ndarray]:
    """``frames`` as a moving camera films them: ``"zoom"`` (still for a sixth of the clip,
    zoom in to 1.8x over a quarter, pan sideways and back over a quarter, zoom out, still),
    ``"closeup"`` (a still 1.8x close-up: the person's own movement fills the picture) or
    ``"shake"`` (a handheld camera: a random walk of 1.5 % of the width per frame, half of it
    kept, a tilt of 0.5 degrees, 1.15x so the edges stay inside)."""
    height, width = frames[0].shape[:2]
    count = len(frames)
    rng = np.random.default_rng(seed)
    position = np.zeros(2)
    moved = []
    for i, frame in enumerate(frames):
        if kind == "shake":
            position = 0.5 * position + rng.normal(scale=0.015 * width, size=2)
            matrix = cv2.getRotationMatrix2D((width / 2, height / 2), rng.normal(scale=0.5),
                                             1.15)
            matrix[:, 2] += position
        else:
            zoom, pan = 1.8, 0.0
            if kind == "zoom":
                t = i / max(count - 1, 1)
                a, b, c, d = 1 / 6, 5 / 12, 2 / 3, 5 / 6
                if t < a or t >= d:
                    zoom = 1.0
                elif t < b:
                    zoom = 1.0 + 0.8 * (t - a) / (b - a)
                elif t >= c:
                    zoom = 1.8 - 0.8 * (t - c) / (d - c)
                else:
                    pan = 0.25 * np.sin((t - b) / (c - b) * 2 * np.pi)
            cx, cy = width / 2 + pan * width / zoom / 2, 0.45 * height
            matrix = np.array([[zoom, 0, width / 2 - zoom * cx], [0, zoom, height / 2 - zoom * cy]],
                              np.float32)
        moved.append(cv2.warpAffine(frame, matrix, (width, height), flags=cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_REFLECT))
    return moved


def camera_table(videos: Path, count: int, swap: bool) -> None:
    """Section 4: false cuts from camera motion, with and without fitting the move."""
    print("\n## 4. Camera motion: cuts found in one continuous shot (as is / move fitted)\n")
    print("| clip | still | zoom and pan | 1.8x close-up | handheld shake |")
    print("|---|---|---|---|---|")
    moving = {}
    for clip in CLIPS:
        frames = frames_of(videos / clip, count)
        cells = []
        for kind in ("still", "zoom", "closeup", "shake"):
            shot = frames if kind == "still" else camera_move(frames, kind)
            moving[clip, kind] = shot
            found = []
            for motion in (False, True):
                shots = ShotCuts(motion=motion)
                for frame in shot:
                    shots(frame)
                found.append(shots.cuts)
            cells.append(f"{found[0]} / {found[1]}")
        print(f"| {clip} ({len(frames)} frames) | " + " | ".join(cells) + " |", flush=True)
    print("\nReal cuts between two moving shots (the last 20 frames of one, the first 20 of the "
          "next, both at 512 px), cuts found where 1 is right (as is / move fitted):\n")
    print("| from | to | cuts |")
    print("|---|---|---|")
    size = lambda frames: [cv2.resize(f, (512, 512), interpolation=cv2.INTER_AREA)  # noqa: E731
                           for f in frames]
    for (a, ka), (b, kb) in (((CLIPS[1], "zoom"), (CLIPS[2], "shake")),
                             ((CLIPS[2], "shake"), (CLIPS[3], "zoom")),
                             ((CLIPS[3], "closeup"), (CLIPS[0], "still")),
                             ((CLIPS[0], "zoom"), (CLIPS[1], "zoom"))):
        stream = size(moving[a, ka][-20:]) + size(moving[b, kb][:20])
        found = []
        for motion in (False, True):
            shots = ShotCuts(motion=motion)
            flags = [shots(frame) for frame in stream]
            found.append(f"{shots.cuts} (first at {flags.index(True) if any(flags) else '-'})")
        print(f"| {a} {ka} | {b} {kb} | {found[0]} / {found[1]} |", flush=True)
    if not swap:
        return
    from facedancer_torch.faces import shots as shots_module

    print("\nZoomed and panned talking_b.mp4 swapped (shipped demo model, default options):\n")
    print("| cut detection | frames swapped | shot cuts counted |")
    print("|---|---|---|")
    swapper = Swapper()
    plan = swapper.plan([videos.parent / "photos" / "if_Tom_Hanks_54745.png"])
    stream = moving["talking_b.mp4", "zoom"]
    for motion in (False, True):
        shots_module.SHOT_MOTION_FIT = motion
        try:
            stats = VideoStats()
            out = [rgb for _, rgb in swap_stream(swapper, iter(stream), plan, SwapOptions(),
                                                 stats=stats)]
        finally:
            shots_module.SHOT_MOTION_FIT = True
        changed = [not np.array_equal(o, i) for o, i in zip(out, stream)]
        print(f"| {'move fitted' if motion else 'as is'} | {sum(changed)} of {len(stream)} "
              f"({runs(changed)}) | {stats.cuts} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=105, help="frames per clip for 1, 3, 4")
    parser.add_argument("--camera", action="store_true", help="also section 4")
    parser.add_argument("--only-camera", action="store_true", help="section 4 alone")
    parser.add_argument("--swap", action="store_true", help="section 4's swapped clip too")
    args = parser.parse_args()
    videos = shared_path("data", "videos")
    if videos is None:
        sys.exit("error: ../shared/data/videos is not here (set FACEDANCER_SHARED)")
    if args.only_camera:
        camera_table(videos, args.frames, args.swap)
        return

    print("## 1. Picture jumps between consecutive frames\n")
    print("| clip | frame pairs | largest grey difference | largest histogram variation "
          "| cuts |")
    print("|---|---|---|---|---|")
    ends = {}
    for clip in CLIPS:
        frames = frames_of(videos / clip, args.frames)
        feats = [picture(frame) for frame in frames]
        jumps = np.array([picture_jump(feats[i - 1], feats[i]) for i in range(1, len(feats))])
        shots = ShotCuts()
        cuts = sum(shots(frame) for frame in frames)
        print(f"| {clip} | {len(jumps)} | {jumps[:, 0].max():.1f} | {jumps[:, 1].max():.3f} "
              f"| {cuts} |")
        ends[clip] = (feats[0], feats[-1])
    cross = np.array([picture_jump(ends[a][i], ends[b][j])
                      for a, b in itertools.permutations(CLIPS, 2) for i in (0, 1) for j in (0, 1)])
    print(f"\nBetween the first and last frames of different clips: grey difference at least "
          f"{cross[:, 0].min():.1f}, histogram variation at least {cross[:, 1].min():.3f}.")

    swapper = Swapper()
    a = frames_of(videos / "talking_a.mp4", 40, 512)
    b = frames_of(videos / "talking_b.mp4", 60, 512)
    streams = {"cut": a[:40] + b[:40]}
    for length in (12, 20):
        start = 40 - length
        fade = [cv2.addWeighted(a[start + i], 1 - (i + 1) / (length + 1), b[i],
                                (i + 1) / (length + 1), 0) for i in range(length)]
        streams[f"{length}-frame cross-fade (frames {start + 1}-40)"] = \
            a[:start] + fade + b[length:length + 40]
    print("\n## 2. Two speakers framed alike, one after the other (80 frames; the second from "
          "frame 41)\n")
    print("| joined by | --reference | frames changed | cuts found |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "source.png"
        cv2.imwrite(str(source), cv2.cvtColor(b[0], cv2.COLOR_RGB2BGR))
        for name, stream in streams.items():
            for person, frames in (("first speaker", a), ("second speaker", b)):
                reference = Path(tmp) / f"{person}.png"
                cv2.imwrite(str(reference), cv2.cvtColor(frames[5], cv2.COLOR_RGB2BGR))
                options = SwapOptions(reference=[reference])
                stats = VideoStats()
                out = [rgb for _, rgb in swap_stream(swapper, iter(stream),
                                                     swapper.plan([source], options), options,
                                                     stats=stats)]
                changed = [not np.array_equal(o, i) for o, i in zip(out, stream)]
                print(f"| {name} | {person} | {runs(changed)} | {stats.cuts} |", flush=True)

    print("\n## 3. Identity drift along tracks (cosine distance to the mean of a track's first "
          "three views)\n")
    print("| clip | tracks | views | eye distance px | median | largest |")
    print("|---|---|---|---|---|---|")
    plan = swapper.plan([videos.parent / "photos" / "df_img9.jpg"])
    for clip in CLIPS:
        frames = frames_of(videos / clip, args.frames)
        stats = VideoStats(record=True)
        for _ in swap_stream(swapper, iter(frames), plan, SwapOptions(identity_strength=0.0),
                             stats=stats):
            pass
        tracks: dict[int, list] = {}
        for t, faces in enumerate(stats.faces):
            for tid, landmarks, _ in faces:
                tracks.setdefault(tid, []).append((t, landmarks))
        distances, eyes, used = [], [], 0
        for views in tracks.values():
            if len(views) < 8:
                continue
            used += 1
            units = [swapper.identify(frames[t], [lm])[0] for t, lm in views[::2]]
            mean = np.sum(units[:3], axis=0)
            mean /= np.linalg.norm(mean)
            distances += [1.0 - float(u @ mean) for u in units[3:]]
            eyes += [float(np.linalg.norm(lm[1] - lm[0])) for _, lm in views]
        print(f"| {clip} | {used} | {len(distances)} | {min(eyes):.0f}-{max(eyes):.0f} "
              f"| {np.median(distances):.3f} | {max(distances):.3f} |", flush=True)
    if args.camera:
        camera_table(videos, args.frames, args.swap)


if __name__ == "__main__":
    main()
