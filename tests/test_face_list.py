"""`facedancer faces` and swap/face_list.py: a picture's faces numbered as PHOTO@N counts them,
and the ones a swap leaves alone, by the swap's own rules (checked against what swap does)."""

from __future__ import annotations

import json
import sys

import numpy as np

from facedancer_torch.io.images import read_image
from facedancer_torch.swap.face_list import LEFT_COLOUR, SWAPPED_COLOUR, draw_faces, list_faces
from facedancer_torch.swap.options import SwapOptions


def _run(argv, capsys) -> tuple[int, str, str]:
    from facedancer_torch.cli import main

    saved, sys.argv = sys.argv, ["facedancer", *map(str, argv)]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        sys.argv = saved
    out = capsys.readouterr()
    return code, out.out, out.err


def _centres(faces) -> list[float]:
    return [(face.box[0] + face.box[2]) / 2 for face in faces]


def test_the_listed_faces_are_the_ones_a_still_swap_takes(swapper, photos_dir):
    """A group photo with a face the edge cuts (df_selfie-many-people.jpg, 5th from the left):
    the faces listed as swapped are those swap_image_detailed swaps."""
    image = read_image(photos_dir / "df_selfie-many-people.jpg")
    faces = list_faces(swapper.detector, image, SwapOptions())
    assert [face.number for face in faces] == list(range(1, len(faces) + 1))
    assert _centres(faces) == sorted(_centres(faces))  # left to right, as @N counts
    left = [(face.number, face.left, face.option) for face in faces if face.left is not None]
    assert left == [(5, "cut too deeply by the picture's edge", "--no-cut-fade")]
    result = swapper.swap_image_detailed(image, photos_dir / "df_img1.jpg",
                                         SwapOptions(watermark=False))
    swapped = sorted(tuple(np.round(f.box, 1)) for f in result.faces)
    listed = sorted(tuple(np.round(face.box, 1)) for face in faces if face.left is None)
    assert len(result.faces) == len(listed) == len(faces) - 1
    assert np.abs(np.asarray(swapped) - np.asarray(listed)).max() < 1.0, (swapped, listed)
    # with the option that changes it, the face is listed as swapped
    again = list_faces(swapper.detector, image, SwapOptions(cut_fade=False))
    assert all(face.left is None for face in again)


def test_a_turned_face_is_listed_with_its_fade(swapper, photos_dir):
    """if_t1.jpg's 5th face from the left is turned nearly to a profile: swapped, but faded
    almost back to the face as it is (swap/select.py split_profiles takes it: weight > 0)."""
    image = read_image(photos_dir / "if_t1.jpg")
    faces = list_faces(swapper.detector, image, SwapOptions())
    assert [face.left for face in faces] == [None] * 6
    assert [face.weight < 1 for face in faces] == [False] * 4 + [True, False]
    assert 0 < faces[4].weight < 0.2
    assert all(face.weight == 1 for face in list_faces(swapper.detector, image,
                                                        SwapOptions(profile_fade=False)))


def test_a_video_frame_lists_faces_under_the_video_minimum_size(swapper, videos_dir):
    from facedancer_torch.swap.preview import frame_shown_at
    from facedancer_torch.swap.select import face_extent, min_face_pixels

    rgb = frame_shown_at(videos_dir / "crowd_720p.mp4", 1.0).rgb
    faces = list_faces(swapper.detector, rgb, SwapOptions(), video=True)
    smallest = min_face_pixels(rgb.shape, SwapOptions(), video=True)
    small = [face_extent(face.box) < smallest for face in faces]
    assert any(small) and not all(small)
    assert [face.option == "--min-face-size" for face in faces] == small
    # as a still, the same frame swaps every face (no minimum size for photos)
    assert all(face.left is None for face in list_faces(swapper.detector, rgb, SwapOptions()))


def test_the_drawn_picture_marks_each_face_and_leaves_the_rest(photos_dir, swapper):
    image = read_image(photos_dir / "df_selfie-many-people.jpg")
    faces = list_faces(swapper.detector, image, SwapOptions())
    drawn = draw_faces(image, faces)
    changed = np.any(drawn != image, axis=2)
    near = np.zeros_like(changed)
    for face in faces:
        x0, y0, x1, y1 = (int(round(v)) for v in face.box)
        near[max(0, y0 - 40):y1 + 40, max(0, x0 - 4):x1 + 60] = True  # box, label above/below
    assert changed.any() and not (changed & ~near).any()
    colours = {tuple(int(v) for v in drawn[int(round(f.box[1])), int(round(
        (f.box[0] + f.box[2]) / 2))]) for f in faces}
    assert SWAPPED_COLOUR in colours and LEFT_COLOUR in colours


def test_faces_command_on_a_clip_writes_the_frame_to_name_a_reference(videos_dir, tmp_path,
                                                                      capsys):
    from facedancer_torch.swap.preview import frame_shown_at

    clip = videos_dir / "crowd_720p.mp4"
    frame, numbered = tmp_path / "frame.png", tmp_path / "numbered.png"
    code, out, err = _run(["faces", clip, "--at", "1", "--frame", frame, "-o", numbered], capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("crowd_720p.mp4, the frame at 1 s (frame 26): 7 faces")
    assert f"({frame}@N names one as --reference or --map person)" in lines[0]
    assert [line.split()[0] for line in lines[1:8]] == [f"@{n}" for n in range(1, 8)]
    assert sum("left as it is, smaller than the video minimum face size" in line
               for line in lines) == 4
    assert np.array_equal(read_image(frame), frame_shown_at(clip, 1.0).rgb)  # untouched
    assert read_image(numbered).shape == read_image(frame).shape
    code, out, _ = _run(["faces", clip, "--at", "1", "--json"], capsys)
    listed = json.loads(out)
    assert code == 0 and len(listed["faces"]) == 7 and abs(listed["time"] - 1.0) < 1e-6
    assert (listed["frame"], listed["timecode"]) == (26, None)  # the clip has no timecode
    assert [face["swapped"] for face in listed["faces"]].count(True) == 3


def test_faces_command_on_a_photo_says_how_to_name_one(photos_dir, capsys):
    code, out, _ = _run(["faces", photos_dir / "if_t1.jpg"], capsys)
    assert code == 0
    assert out.splitlines()[0] == ("if_t1.jpg: 6 faces (if_t1.jpg@N names one as --source, "
                                   "--reference or --map photo)")
    lines = out.splitlines()
    assert [line.split()[0] for line in lines[1:]] == [f"@{n}" for n in range(1, 7)]
    assert lines[5].endswith("turned, the swap fades towards the face as it is (weight 0.07; "
                             "--no-profile-fade swaps it whole)")
    code, out, _ = _run(["faces", photos_dir / "if_t1.jpg", "--no-profile-fade"], capsys)
    assert code == 0 and "turned" not in out


def test_faces_with_a_reference_gives_distances_and_the_face_taken(videos_dir, tmp_path,
                                                                   capsys, tiny_model):
    """The crowd frame at 1 s with its own 3rd face as --reference: that face 0.00 from it
    and the one a swap takes; the 5th, a look-alike, within the threshold but not taken (a
    person is one face of a picture); with --threshold 0.1, the 3rd still, the 5th far out."""
    clip = videos_dir / "crowd_720p.mp4"
    frame = tmp_path / "frame.png"
    assert _run(["faces", clip, "--at", "1", "--frame", frame], capsys)[0] == 0
    code, out, err = _run(["faces", clip, "--at", "1", "--reference", f"{frame}@3",
                           "--model", tiny_model], capsys)
    assert code == 0, err
    lines = {line.split()[0]: line for line in out.splitlines()[1:8]}
    assert ", 0.00 from the reference (the face --reference swaps)" in lines["@3"]
    fifth = float(lines["@5"].split(", ")[-1].split()[0])
    assert 0.3 < fifth < 0.6 and "swaps" not in lines["@5"]
    assert sum("(the face --reference swaps)" in line for line in out.splitlines()) == 1
    assert "if within --threshold 0.60;" in out
    code, out, _ = _run(["faces", clip, "--at", "1", "--reference", f"{frame}@5",
                         "--model", tiny_model, "--json"], capsys)
    listed = json.loads(out)["faces"]
    assert [face["reference"] for face in listed].count(True) == 1 and listed[4]["reference"]
