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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=105, help="frames per clip for 1 and 3")
    args = parser.parse_args()
    videos = shared_path("data", "videos")
    if videos is None:
        sys.exit("error: ../shared/data/videos is not here (set FACEDANCER_SHARED)")

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


if __name__ == "__main__":
    main()
