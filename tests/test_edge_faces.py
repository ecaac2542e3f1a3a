"""Faces the image's edge cuts: re-detected on a crop padded beyond the edge."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from facedancer_torch.faces import detect
from facedancer_torch.faces.detect import Face, at_edge, get_detector, largest_face
from facedancer_torch.io.images import read_image

SOURCE = Path(__file__).resolve().parents[1] / "src/facedancer_torch/assets/examples/astronaut.jpg"


@pytest.fixture(scope="module")
def detector():
    return get_detector(device="cpu")


def _cut(image: np.ndarray, face: Face, side: str, fraction: float
         ) -> tuple[np.ndarray, np.ndarray]:
    """The benchmark's cut (``image`` cut so that its ``side`` edge runs ``fraction`` of the
    face box into it, and the cut's offset), as a contiguous array."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from edge_faces import cut

    part, offset = cut(image, face.box, side, fraction)
    return np.ascontiguousarray(part), offset


def _error(face: Face, truth: np.ndarray) -> float:
    """Mean landmark distance in eye distances of the truth."""
    eye = float(np.linalg.norm(truth[1] - truth[0]))
    return float(np.linalg.norm(face.landmarks - truth, axis=1).mean()) / eye


def test_window_pads_with_the_fill_outside_the_image():
    image = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    inside = detect._window(image, 1, 1, 4, 3, (9, 9, 9))
    assert inside.base is not None and np.array_equal(inside, image[1:3, 1:4])  # a view
    out = detect._window(image, -2, -1, 3, 5, (7, 8, 9))
    assert out.shape == (6, 5, 3)
    np.testing.assert_array_equal(out[1:5, 2:5], image[0:4, 0:3])
    assert (out[0] == (7, 8, 9)).all() and (out[:, :2] == (7, 8, 9)).all()
    assert (out[5] == (7, 8, 9)).all()


def test_at_edge_by_the_face_size():
    face = Face(box=np.array([30, 100, 230, 350], np.float32), score=0.99,
                landmarks=np.zeros((5, 2), np.float32))
    # 250 px longer side: 15 % is 37.5 px
    assert at_edge(face, (1000, 1000))  # 30 px from the left edge
    assert not at_edge(face, (1000, 1000), margin=0.1)
    assert not at_edge(face, (1000, 1000), margin=0.0)
    moved = Face(box=face.box + np.array([40, 0, 40, 0], np.float32), score=0.99,
                 landmarks=face.landmarks)
    assert not at_edge(moved, (1000, 1000))
    assert at_edge(moved, (380, 1000))  # 30 px from the bottom


@pytest.mark.parametrize("name, side", [("df_img19.jpg", "top"), ("df_img2.jpg", "bottom"),
                                        ("df_img30.jpg", "right"), ("df_img1.jpg", "left")])
def test_a_cut_face_is_found_upright_with_its_landmarks(detector, photos_dir, name, side,
                                                        monkeypatch):
    # Each photo cut so that the edge runs a quarter (df_img1: a third, through the nose) of
    # the face box into it. Seen only inside the image the face scored 0.998-0.999, which set
    # off the search for turned faces, and a half face read sideways won it: landmarks off by
    # 50-66 % of the eye distance, the aligned crop turned by 50-100 degrees. Re-detected with
    # room beyond the edge, it is found upright near where the whole photo puts it.
    image = read_image(photos_dir / name)
    whole = largest_face(detector.detect(image))
    part, offset = _cut(image, whole, side, 1 / 3 if name == "df_img1.jpg" else 0.25)
    truth = whole.landmarks - offset
    face = largest_face(detector.detect(part))
    assert at_edge(face, part.shape) and face.rotation == 0
    # (0.12-0.13 for the 550-740 px faces of df_img2 and df_img30, which the whole photo and
    # the cut one refine scaled down to REFINE_MAX_FACE from boxes of different sizes)
    assert _error(face, truth) < 0.15
    if name in ("df_img1.jpg", "df_img30.jpg"):
        # without the edge pass df_img1 is found upright or sideways by a hair, and df_img30's
        # 620 px face, refined scaled down (REFINE_MAX_FACE), upright
        return
    monkeypatch.setattr(detect, "EDGE_MARGIN", 0.0)
    monkeypatch.setattr(detect, "TILT_MIN", 180.0)  # (turns read level judge them too)
    plain = largest_face(get_detector(device="cpu").detect(part))
    assert plain.rotation != 0 and _error(plain, truth) > 0.15


@pytest.mark.parametrize("name", ["fr_obama.jpg", "df_img1.jpg", "fnp_multiface.jpg"])
def test_faces_away_from_the_edges_are_unchanged(photos_dir, name, monkeypatch):
    image = read_image(photos_dir / name)
    faces = get_detector(device="cpu").detect(image)
    assert faces and not any(at_edge(f, image.shape) for f in faces)
    monkeypatch.setattr(detect, "EDGE_MARGIN", 0.0)
    plain = get_detector(device="cpu").detect(image)
    assert len(plain) == len(faces)
    for a, b in zip(faces, plain):
        assert np.array_equal(a.landmarks, b.landmarks) and a.score == b.score


def test_an_edge_face_in_a_small_image_gets_the_second_pass(photos_dir, monkeypatch):
    # A 330 px wide portrait is detected at its own size (no downscaling, so no refinement);
    # cut at its box's left quarter, the face is at the edge and is re-detected padded: its
    # box reaches beyond the image, where the cheek it cannot see lies (-14 px against -2 px
    # for the plain pass; the truth is at -46 px), and its landmarks are closer to the truth.
    image = read_image(photos_dir / "df_img5.jpg")
    whole = largest_face(get_detector(device="cpu", rotate="off").detect(image))
    part, offset = _cut(image, whole, "left", 0.25)
    truth = whole.landmarks - offset
    face = largest_face(get_detector(device="cpu", rotate="off").detect(part))
    monkeypatch.setattr(detect, "EDGE_MARGIN", 0.0)
    plain = largest_face(get_detector(device="cpu", rotate="off").detect(part))
    assert at_edge(face, part.shape, margin=0.15)
    assert face.box[0] < plain.box[0] - 5.0
    assert _error(face, truth) < _error(plain, truth) < 0.15


def test_mirrored_crop_border():
    from facedancer_torch.faces.align import warp_crop

    image = np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    matrix = np.array([[1.0, 0.0, 10.0], [0.0, 1.0, 5.0]])  # the crop reaches 10 px left
    black = warp_crop(image, matrix, 32)
    mirror = warp_crop(image, matrix, 32, border="mirror")
    np.testing.assert_array_equal(black[5:, 10:], mirror[5:, 10:])  # inside: the same
    assert (black[:, :10] == 0).all()
    np.testing.assert_array_equal(mirror[5:, 9], image[:27, 1])  # column -1 mirrors column 1
    with pytest.raises(ValueError, match="border"):
        warp_crop(image, matrix, 32, border="wrap")


def test_a_face_cut_through_the_nose_is_swapped_as_on_the_whole_photo(photos_dir,
                                                                      monkeypatch):
    # df_img1.jpg cut a third of the face box from its left. With black beyond the frame the
    # face segmenter read the black border as an occluder and half of the target's other eye
    # stayed beside the swap's along the edge; the crop now shows the frame mirrored there
    # and occluders count only inside the frame. Compared with the swap of the
    # whole photo cut the same way, along the cut edge: measured 5.9 grey levels against 10.2.
    from facedancer_torch.swap import compose, pipeline
    from facedancer_torch.swap.options import SwapOptions
    from facedancer_torch.swap.pipeline import Swapper

    swapper = Swapper(backend="fused")
    plan = swapper.plan([SOURCE])
    image = read_image(photos_dir / "df_img1.jpg")
    whole = largest_face(swapper.detect(image))
    part, offset = _cut(image, whole, "left", 1 / 3)
    reference = swapper.swap_image(image, plan, SwapOptions())[:, int(offset[0]):]
    y1, y2 = int(whole.box[1]), int(whole.box[3])
    band = int(0.1 * whole.width)

    def strip_difference() -> float:
        out = swapper.swap_image(part, plan, SwapOptions())
        assert out.shape == part.shape
        return float(np.abs(out[y1:y2, :band].astype(np.float32) - reference[y1:y2, :band])
                     .mean())

    mirrored = strip_difference()
    monkeypatch.setattr(pipeline, "CROP_BORDER", "black")
    monkeypatch.setattr(compose, "OCCLUDER_INSIDE_FRAME", 0.0)
    black = strip_difference()
    assert mirrored < 0.7 * black, (mirrored, black)


def test_a_deep_cut_read_only_sideways_is_left_as_it_is(photos_dir):
    """A face the edge cuts half away is found only turned, with its landmarks broken (the
    swap smeared the eye): it is left as it is and said so. A sideways photo's face at the
    edge, read surely at its turn, is still swapped; upright photos lose only a face the edge
    cuts deeply and the detector doubts."""
    from facedancer_torch.swap import select
    from facedancer_torch.swap.options import SwapOptions
    from facedancer_torch.swap.pipeline import Swapper

    swapper = Swapper(backend="fused")
    plan = swapper.plan([SOURCE])
    for name, side, fraction in (("df_img2.jpg", "left", 0.5), ("df_img13.jpg", "left", 0.4)):
        image = read_image(photos_dir / name)
        part, _ = _cut(image, largest_face(swapper.detect(image)), side, fraction)
        (face,) = [f for f in swapper.detect(part) if f.width > 0.2 * part.shape[1]]
        # measured 0.76 and 0.90, a quarter turn; 0.40 and 0.50 eye distances off
        assert face.rotation % 360 and face.score < select.CUT_TURNED_SCORE - 0.05
        result = swapper.swap_image_detailed(part, plan, SwapOptions())
        assert result.cut == 1 and not result.faces and result.image is part
        assert "cut deeply by the picture's edge" in result.summary()
        # with the rule off the same face is swapped (what the rule guards against)
        assert swapper.swap_image_detailed(part, plan, SwapOptions(cut_fade=False)).faces
    # fr_obama_partial_face.jpg (the face at the edge) taken sideways: read at its turn, 0.9995
    sideways = np.ascontiguousarray(np.rot90(read_image(photos_dir /
                                                        "fr_obama_partial_face.jpg")))
    result = swapper.swap_image_detailed(sideways, plan, SwapOptions())
    assert result.cut == 0 and len(result.faces) == 1
    # upright photos: faces cut by the edge but read surely are kept (the partial faces score
    # 0.999; the group's man with glasses at the right edge 0.991, 35 % of him beyond it) ...
    for name in ("df_selfie-many-people.jpg", "fr_obama_partial_face2.jpg", "df_img1.jpg"):
        image = read_image(photos_dir / name)
        faces = swapper.detect(image)
        kept, cut = select.split_cut(faces, image.shape, SwapOptions())
        if name != "df_selfie-many-people.jpg":
            assert not cut and kept, name
            continue
        # ... but the selfie's taker, a third of his face beyond the bottom-right corner and read
        # at 0.90, is left as he is (his swap had a milky smear for an eye)
        assert len(kept) == len(faces) - 1 and len(cut) == 1
        assert cut[0].box[2] > 0.95 * image.shape[1] and cut[0].box[3] > 0.95 * image.shape[0]
        assert select.split_cut(faces, image.shape, SwapOptions(cut_fade=False)) == (faces, [])


def test_cut_weight_follows_the_score_only_where_the_frame_cuts_the_face():
    """The share of a face inside the frame comes from its landmarks; the fade by score acts
    only on a face the frame cuts."""
    from facedancer_torch.faces import masks
    from facedancer_torch.faces.align import template_points

    face = template_points(112) * 2.0 + 100.0  # a face about 220 px wide, centred at 212
    box = np.array([100.0, 110.0, 324.0, 330.0])
    whole = (480, 480, 3)
    assert masks.share_inside(face, whole) == 1.0
    # the frame's right edge through the nose: about half the face is beyond it
    half = (480, int(round(face[2, 0])), 3)
    assert 0.4 < masks.share_inside(face, half) < 0.6
    low, high = masks.CUT_FADE
    assert masks.cut_weight(face, box, 0.5, whole) == 1.0  # a whole face is never faded
    assert masks.cut_weight(face, box, 0.999, half) == 1.0
    assert masks.cut_weight(face, box, low - 0.01, half) == 0.0
    assert 0.4 < masks.cut_weight(face, box, (low + high) / 2, half) < 0.6
    assert masks.cut_weight(face, box, low, half, fade=(0.5, 0.9)) > 0.9
    # a reading placed wholly inside the frame, its box reaching the edge: cut all the same
    narrow = (480, 324, 3)
    assert masks.share_inside(face, narrow) == 1.0
    assert masks.cut_weight(face, box, low, narrow) == 0.0


def _leaving(videos_dir) -> list[np.ndarray]:
    """30 frames of talking_a.mp4 (700 x 700, the face's box about 206 x 287 px at x 284-490,
    y 94-381) seen through a 240 x 600 window whose left edge moves from 300 px (the face
    inside) to 450 (four fifths of it beyond): the face leaves over the left edge."""
    from facedancer_torch.io.video_reader import read_frames

    whole = [f.rgb for f in read_frames(videos_dir / "talking_a.mp4", max_frames=75)][45:]
    frames = []
    for i, frame in enumerate(whole):
        x0 = 300 + int(round(150 * i / (len(whole) - 1)))
        frames.append(np.ascontiguousarray(frame[20:620, x0:x0 + 240]))
    return frames


def test_a_face_leaving_the_frame_fades_out_instead_of_vanishing(videos_dir):
    """A talking face seen through a window that pans away from it, so that it leaves over
    the left edge: with the cut fade its swap fades out over frames as the detector's score
    falls, and the frames where it is cut deeply are the input's; without, it is pasted at
    full weight until the detector loses it (on broken readings: a smear over the eye)."""
    from facedancer_torch.swap.options import SwapOptions
    from facedancer_torch.swap.pipeline import Swapper
    from facedancer_torch.swap.video import VideoStats, swap_stream

    frames = _leaving(videos_dir)
    swapper = Swapper(backend="fused")
    plan = swapper.plan([SOURCE])
    runs = {}
    for fade in (True, False):
        stats = VideoStats(record=True)
        out = [rgb for _, rgb in swap_stream(swapper, iter(frames), plan,
                                             SwapOptions(cut_fade=fade), stats=stats)]
        weights = [w[0] if w else 0.0 for w in stats.weights]
        runs[fade] = (out, stats, weights)
    out, stats, weights = runs[True]
    assert weights[0] == 1.0  # the face inside: swapped in full
    assert stats.cut > 0 and np.array_equal(out[-1], frames[-1])
    # the fade: weights between 0 and 1 on the way out, over several frames (largest step 0.41
    # measured; 0.95 with each frame's own score instead of the track's mean of four), and
    # never back up by much (0.87 with the crops' own scores, frame by frame)
    assert any(0.0 < w < 1.0 for w in weights)
    assert max(abs(b - a) for a, b in zip(weights, weights[1:])) < 0.6
    assert max(b - a for a, b in zip(weights, weights[1:])) < 0.25
    out_off, stats_off, weights_off = runs[False]
    assert stats_off.cut == 0
    assert sum(w == 1.0 for w in weights_off) > sum(w == 1.0 for w in weights)
    # where the fade left the face alone, the run without it pasted a swap
    left = [i for i, w in enumerate(weights) if w == 0.0 and weights_off[i] > 0]
    assert left and all(not np.array_equal(out_off[i], frames[i]) for i in left)


def test_a_face_leaving_a_live_stream_fades_out_too(videos_dir):
    """The live loop follows faces in crops between full detections; they carry the whole
    frame's score, so the cut fade acts as in a video file: the frames where the face is cut
    deeply come out as they went in, where without the fade its swap was pasted on."""
    from facedancer_torch.faces import masks
    from facedancer_torch.swap import live
    from facedancer_torch.swap.pipeline import Swapper

    frames = _leaving(videos_dir)
    swapper = Swapper(backend="fused")
    runs = {}
    for fade in (True, False):
        stream = live.LiveSwapper(swapper, [SOURCE], live.live_options(cut_fade=fade),
                                  live.LiveSettings(detect_every=5, background=False),
                                  label=False)
        changed, weights = [], []
        for frame in frames:
            changed.append(not np.array_equal(stream.swap(frame).rgb, frame))
            weights.append([masks.cut_weight(f.landmarks, f.box, f.score, frame.shape)
                            for f in stream.tracker._faces])
        stream.close()
        runs[fade] = changed, weights
    changed, weights = runs[True]
    assert changed[0] and not changed[-1]
    assert any(0.0 < w < 1.0 for ws in weights for w in ws)  # faded, not cut off
    # with the crops' own scores the fade began while four fifths of the face were inside
    # (frame 4) and went back up by 0.09 on the way out: now full weight for the first ten
    # frames and then only down
    assert all(ws == [1.0] for ws in weights[:10]), weights[:10]
    path = [ws[0] if ws else 0.0 for ws in weights]
    assert max(b - a for a, b in zip(path, path[1:])) < 0.05, path
    changed_off, _ = runs[False]
    assert sum(changed_off) > sum(changed)  # measured 26 frames against 17


def test_a_cut_face_the_mirrored_picture_reads_alike_is_swapped_in_full(photos_dir,
                                                                        monkeypatch):
    """A still image's face the edge cuts, scored in the fade's doubt, is read again on the
    mirrored picture: read alike there (a right reading) it is swapped in full instead of
    faintly; misread differently (a broken one) it keeps its faded weight."""
    from facedancer_torch.faces import masks
    from facedancer_torch.swap.options import SwapOptions
    from facedancer_torch.swap.pipeline import Swapper
    from facedancer_torch.swap.select import trust_mirrored

    swapper = Swapper(backend="fused")
    plan = swapper.plan([SOURCE])

    def cut_photo(name, side, fraction):
        image = read_image(photos_dir / name)
        part, offset = _cut(image, largest_face(swapper.detect(image)), side, fraction)
        faces = swapper.detect(part)
        (face,) = [f for f in faces if f.width > 0.2 * part.shape[1]]
        return part, faces, face

    # df_img42.jpg cut through the nose from below: read right (0.04 eye distances from the
    # whole photo's reading) at 0.972, weight 0.09; the mirrored picture reads it 0.04 apart
    part, faces, face = cut_photo("df_img42.jpg", "bottom", 0.5)
    assert masks.CUT_FADE[0] < face.score < masks.CUT_FADE[0] + 0.01
    (trusted,) = [f for f in trust_mirrored(swapper.detector, part, faces, SwapOptions())
                  if f.width > 0.2 * part.shape[1]]
    assert masks.cut_weight(trusted.landmarks, trusted.box, trusted.score, part.shape) == 1.0
    box = tuple(int(v) for v in np.clip(face.box, 0, [part.shape[1], part.shape[0]] * 2))

    def change() -> float:
        out = swapper.swap_image(part, plan, SwapOptions())
        return float(np.abs(out.astype(np.float32) - part)[box[1]:box[3], box[0]:box[2]].mean())

    with_mirror = change()
    monkeypatch.setattr(masks, "MIRROR_MIN_SCORE", 2.0)  # the second opinion off
    without = change()
    monkeypatch.undo()
    assert with_mirror > 3 * without, (with_mirror, without)
    # df_img12.jpg cut from the left, 0.4 of the box: broken (the visible eye read as the
    # other one) at 0.978; the mirrored picture reads it elsewhere, and its weight stays
    part, faces, face = cut_photo("df_img12.jpg", "left", 0.4)
    (kept,) = [f for f in trust_mirrored(swapper.detector, part, faces, SwapOptions())
               if f.width > 0.2 * part.shape[1]]
    assert kept.score == face.score
