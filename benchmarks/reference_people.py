"""``--reference`` in a video, per person: is the person picked swapped, and no one else?

    python benchmarks/reference_people.py [--clips crowd_720p.mp4] [--min-frames 15] [--every 10]

Each clip is swapped once with no ``--reference`` (every face the video rules take; the tracker
names each person's track). Then, for each track swapped in at least ``--min-frames`` frames,
its face in every ``--every``-th of them is picked in turn: the whole frame is
written as a reference photo (``FRAME.png@N``, as ``facedancer faces --frame`` and the web
UI's people picker do) and the clip is swapped again with that ``--reference``. A small face
picked embeds less surely, so a pick early in a walk towards the camera is the hard case. Per pick the table says in how many of the
track's frames it was swapped again (recall) and how many faces of other people were swapped
(they should be 0). Face selection depends only on the detector and the identity encoder
(FaceNet, as the shipped demo model's), so a tiny random generator stands in for speed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from facedancer_torch.faces.tracking import box_iou
from facedancer_torch.io.images import write_image
from facedancer_torch.io.video_reader import VideoReader
from facedancer_torch.swap.options import SwapOptions
from facedancer_torch.swap.pipeline import Swapper
from facedancer_torch.swap.source import left_to_right
from facedancer_torch.swap.video import VideoStats, swap_stream
from facedancer_torch.testing import shared_path


def _swapped(swapper, frames, source, options) -> list[list[tuple[int, np.ndarray]]]:
    """Per frame, ``(track id, box)`` of each face swapped."""
    stats = VideoStats(record=True)
    for _ in swap_stream(swapper, iter(frames), swapper.plan(source, options), options,
                         stats=stats):
        pass
    return [[(track, np.asarray(box)) for track, _, box in faces] for faces in stats.faces]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", default="crowd_720p.mp4",
                        help="comma-separated clips of the shared videos folder")
    parser.add_argument("--min-frames", type=int, default=15)
    parser.add_argument("--every", type=int, default=10,
                        help="pick each person in every N-th frame it was swapped in")
    parser.add_argument("--source", default=None, help="the source photo (default: the shared "
                        "df_img1.jpg; who it is does not change the selection)")
    args = parser.parse_args()
    videos = shared_path("data", "videos")
    if videos is None or not videos.is_dir():
        sys.exit("error: ../shared/data/videos is not here (set FACEDANCER_SHARED)")
    source = args.source or str(videos.parent / "photos" / "df_img1.jpg")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from swaputil import save_tiny_generator  # a seeded tiny generator (tests/swaputil.py)

    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        swapper = Swapper(save_tiny_generator(scratch / "model"), device="cpu",
                          backend="fused")
        print("| clip | person (track) | picked at frame | face | frames swapped without "
              "--reference | with it | recall | other faces swapped |")
        print("|---|---|---|---|---|---|---|---|")
        summary = []
        for name in args.clips.split(","):
            totals: list[tuple[float, int]] = []
            clip = Path(name) if Path(name).exists() else videos / name
            frames = [decoded.rgb for decoded in VideoReader(clip)]
            options = SwapOptions(watermark=False, batch_size=8)
            everyone = _swapped(swapper, frames, source, options)
            tracks: dict[int, list[tuple[int, np.ndarray]]] = {}
            for index, faces in enumerate(everyone):
                for track, box in faces:
                    tracks.setdefault(track, []).append((index, box))
            picks = [(track, seen, pick) for track, seen in sorted(tracks.items())
                     if len(seen) >= args.min_frames for pick in seen[::args.every]]
            for track, seen, (index, box) in picks:
                faces = left_to_right(swapper.detect(frames[index]))
                number = int(np.argmax(box_iou(np.asarray([f.box for f in faces]), box))) + 1
                reference = scratch / f"{clip.stem}-{track}.png"
                write_image(reference, frames[index])
                picked = _swapped(swapper, frames, source, options.replace(
                    reference=[f"{reference}@{number}"]))
                mine = dict(seen)
                hits = others = 0
                for frame, faces in enumerate(picked):
                    for _, swapped_box in faces:
                        own = mine.get(frame)
                        if own is not None and box_iou(swapped_box[None], own)[0, 0] > 0.3:
                            hits += 1
                        else:
                            others += 1
                print(f"| {clip.name} | {track} | {index} | @{number} | {len(seen)} | {hits} | "
                      f"{hits / len(seen):.2f} | {others} |", flush=True)
                totals.append((hits / len(seen), others))
            if totals:
                recalls, wrong = zip(*totals)
                summary.append(f"| {clip.name} | {len(totals)} | {np.mean(recalls):.3f} | "
                               f"{min(recalls):.2f} | {sum(wrong)} | "
                               f"{sum(w > 0 for w in wrong)} |")
        print("\n| clip | picks | mean recall | lowest | other faces swapped | picks with "
              "any |")
        print("|---|---|---|---|---|---|")
        print("\n".join(summary))


if __name__ == "__main__":
    main()
