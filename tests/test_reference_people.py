"""A --reference or --map person is one face of a picture: the nearest within the threshold.

Small and blurred faces embed close to each other, so a second person can fall within the
same-person threshold of the one meant (swap/select.py). In a video a track that lost the
person to a nearer face in a frame they shared stays lost, and a new track is judged on its
first views together with those in the look-ahead window (swap/video.py)."""

from __future__ import annotations

import numpy as np
import pytest

from facedancer_torch.io.images import read_image, write_image
from facedancer_torch.swap.select import REFERENCE_PERSON, SelectionPlan
from facedancer_torch.swap.source import Identity

CROWD = "crowd_720p.mp4"


def _identity(vector) -> Identity:
    vector = np.asarray(vector, np.float32)
    return Identity(embedding=vector, unit=vector / np.linalg.norm(vector))


def _units(*angles_deg: float) -> np.ndarray:
    """Unit vectors in a plane at these angles from the x axis (cosine distance 1 - cos)."""
    radians = np.radians(angles_deg)
    return np.stack([np.cos(radians), np.sin(radians), np.zeros_like(radians)], 1
                    ).astype(np.float32)


def test_the_reference_person_goes_to_the_nearest_face_only():
    source, reference = _identity([0, 0, 1]), _identity([1, 0, 0])
    plan = SelectionPlan(source=source, reference=reference, threshold=0.6)
    units = _units(40, 10, 120)  # distances 0.23, 0.02, 1.5: two within the threshold
    assert [i for i, _ in plan.choose([1.0, 1.0, 1.0], units)] == [1]
    assert plan.choose([1.0], _units(120)) == []


def test_mapped_people_are_given_nearest_pairs_first_each_once():
    a, b = _identity([0, 0, 1]), _identity([0, 1, 1])
    person0, person1 = _identity(_units(0)[0]), _identity(_units(30)[0])
    plan = SelectionPlan(source=None, mapping=[(person0, a), (person1, b)], threshold=0.6)
    # face 0 is nearest to both people; face 1 is within the threshold of both
    chosen = plan.choose([1.0, 1.0], _units(5, -20))
    assert [(i, identity is a) for i, identity in chosen] == [(0, True), (1, False)]
    # with --source as well, a mapped person's look-alike that lost gets the source
    plan = SelectionPlan(source=_identity([1, 1, 1]), mapping=[(person0, a)], threshold=0.6)
    chosen = plan.choose([1.0, 1.0], _units(5, -20))
    assert [(i, identity is a) for i, identity in chosen] == [(0, True), (1, False)]


def test_a_track_that_lost_the_person_stays_lost():
    plan = SelectionPlan(source=_identity([0, 0, 1]), reference=_identity([1, 0, 0]),
                         threshold=0.6)
    beaten: dict[int, set[int]] = {}
    both = plan.choose([1.0, 1.0], _units(10, 40), [7, 8], beaten)
    assert [i for i, _ in both] == [0] and beaten == {8: {REFERENCE_PERSON}}
    assert plan.choose([1.0], _units(40), [8], beaten) == []  # the nearer one turned away
    assert [i for i, _ in plan.choose([1.0], _units(40), [9], beaten)] == [0]  # a new track
    assert [i for i, _ in plan.choose([1.0], _units(40), None, None)] == [0]  # a still


@pytest.fixture(scope="module")
def crowd_frame(videos_dir, tmp_path_factory):
    """The crowd clip's frame at 1 s (frame 25), written as a reference photo."""
    from facedancer_torch.swap.preview import frame_shown_at

    path = tmp_path_factory.mktemp("crowd") / "frame.png"
    write_image(path, frame_shown_at(videos_dir / CROWD, 1.0).rgb)
    return path


def test_a_picked_small_face_swaps_one_person_of_the_crowd_frame(swapper, crowd_frame,
                                                                 photos_dir):
    """The third face from the left (a 60 px box) and the fifth are 0.52 apart with FaceNet,
    within its 0.6: the frame with the third as --reference swapped both of them."""
    from facedancer_torch.swap.options import SwapOptions
    from facedancer_torch.swap.source import left_to_right

    frame = read_image(crowd_frame)
    faces = left_to_right(swapper.detect(frame))
    units = swapper.identify(frame, [f.landmarks for f in faces])
    options = SwapOptions(reference=[f"{crowd_frame}@3"], watermark=False)
    plan = swapper.plan(photos_dir / "df_img1.jpg", options)
    near = [i for i, u in enumerate(units) if 1.0 - float(u @ plan.reference.unit)
            <= plan.threshold]
    assert len(near) >= 2, near  # the look-alike is there
    result = swapper.swap_image_detailed(frame, plan, options)
    assert len(result.faces) == 1
    chosen = result.faces[0].box
    assert np.abs(np.asarray(chosen) - np.asarray(faces[2].box)).max() < 2


def _crowd_frames(videos_dir, first: int, count: int) -> list[np.ndarray]:
    from facedancer_torch.io.video_reader import VideoReader

    frames = []
    for index, frame in enumerate(VideoReader(videos_dir / CROWD)):
        if index >= first + count:
            break
        if index >= first:
            frames.append(frame.rgb)
    return frames


def _swapped_tracks(swapper, frames, reference, crowd_frame, source) -> list[list[int]]:
    from facedancer_torch.swap.options import SwapOptions
    from facedancer_torch.swap.video import VideoStats, swap_stream

    options = SwapOptions(reference=[f"{crowd_frame}@{reference}"], watermark=False,
                          batch_size=4)
    stats = VideoStats(record=True)
    for _ in swap_stream(swapper, iter(frames), swapper.plan(source, options), options,
                         stats=stats):
        pass
    return [[track for track, _, _ in faces] for faces in stats.faces]


def test_the_look_alike_is_not_swapped_when_the_picked_boy_turns_away(swapper, videos_dir,
                                                                       crowd_frame, photos_dir):
    """The whole clip: the red-haired boy picked at 1 s walks beside a look-alike in a hooded
    top, who was swapped with him in 63 frames, and alone when the boy turned away at the end
    (frames 102-104: he had lost the person to the boy in the frames they shared)."""
    tracks = _swapped_tracks(swapper, _crowd_frames(videos_dir, 0, 105), 3, crowd_frame,
                             photos_dir / "df_img1.jpg")
    assert sum(map(bool, tracks)) >= 90, tracks
    assert len({track for frame in tracks for track in frame}) == 1, tracks


def test_a_new_track_is_judged_on_its_first_views_ahead_too(swapper, videos_dir, crowd_frame,
                                                             photos_dir):
    """The clip's first frames, with the white-haired woman (not yet in view) as reference:
    the red-haired boy's first view alone lay within the threshold of her, and he was swapped
    in the first frame."""
    tracks = _swapped_tracks(swapper, _crowd_frames(videos_dir, 0, 10), 1, crowd_frame,
                             photos_dir / "df_img1.jpg")
    assert not any(tracks), tracks


def test_a_reference_no_face_matches_says_how_near_the_nearest_came(swapper, photos_dir,
                                                                    tmp_path):
    """Nothing swapped because no face matched the --reference: the warning says so, with the
    distance of the nearest, instead of the general list of reasons."""
    from facedancer_torch.swap.options import SwapOptions
    from facedancer_torch.swap.report import FileReport

    options = SwapOptions(reference=[photos_dir / "fr_obama.jpg"], watermark=False)
    report = swapper.swap_image_file(photos_dir / "df_img5.jpg", tmp_path / "out.png",
                                     photos_dir / "df_img1.jpg", options)
    assert report.swapped == 0 and report.threshold == pytest.approx(0.6)
    assert report.nearest > report.threshold
    assert f"no face came within --threshold 0.60 of a person asked for with --reference or " \
        f"--map; the nearest was {report.nearest:.2f} apart" in report.warning()
    # the same target with itself as the reference: swapped, and nearly 0 apart
    itself = swapper.swap_image_file(photos_dir / "df_img5.jpg", tmp_path / "self.png",
                                     photos_dir / "df_img1.jpg",
                                     options.replace(reference=[photos_dir / "df_img5.jpg"]))
    assert itself.swapped == 1 and itself.nearest < 0.05 and itself.warning() is None
    # a match that was left for another reason gets the general reasons
    near = FileReport(path="o.png", detected=1, nearest=0.4, threshold=0.6)
    assert "none of the 1 faces found was selected" in near.warning()
    assert FileReport(path="o.png", detected=1).nearest is None  # no --reference: not said


def test_a_video_records_how_near_the_reference_came(swapper, videos_dir, tmp_path,
                                                     photos_dir):
    """The crowd clip with the red-haired boy picked at 3.72 s, looking down: his face there
    is read too unsurely to match him anywhere in the clip's first 30 frames."""
    from facedancer_torch.swap.options import SwapOptions
    from facedancer_torch.swap.preview import frame_shown_at
    from facedancer_torch.swap.video import VideoStats, swap_stream

    frame = tmp_path / "frame.png"
    write_image(frame, frame_shown_at(videos_dir / CROWD, 3.72).rgb)
    options = SwapOptions(reference=[f"{frame}@2"], watermark=False, batch_size=4)
    stats = VideoStats()
    for _ in swap_stream(swapper, iter(_crowd_frames(videos_dir, 0, 30)),
                         swapper.plan(photos_dir / "df_img1.jpg", options), options,
                         stats=stats):
        pass
    assert stats.swapped == 0 and 0.6 < stats.nearest < 0.8, stats.nearest
