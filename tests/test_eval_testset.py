"""make-testset from videos (the FaceForensics++ protocol) and input checks."""

import json

import pytest

from facedancer_torch.errors import FacedancerError, InputError
from facedancer_torch.evaluate.testset import load_testset, make_testset


@pytest.fixture(scope="module")
def two_videos(videos_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("videos")
    for name in ("talking_a.mp4", "talking_b.mp4"):
        (folder / name).symlink_to(videos_dir / name)
    return folder


def test_random_frames_per_video_are_seeded(two_videos, tmp_path):
    first = make_testset(two_videos, tmp_path / "one", frames_per_video=2, seed=5, size=128,
                         progress=False)
    assert first.identities == ["talking_a", "talking_b"]
    assert len(first.images) == 4
    frames = {(i.identity, i.frame) for i in first.images}
    assert len(frames) == 4 and all(isinstance(f, int) and f >= 0 for _, f in frames)
    assert first.read(0).shape == (128, 128, 3)
    manifest = json.loads((tmp_path / "one" / "manifest.json").read_text())
    assert manifest["frames_per_video"] == 2 and manifest["seed"] == 5
    assert manifest["crop"] == {"size": 128, "shrink": 0.5, "template": "arcface"}
    # the same seed draws the same frames; the frames of one video do not depend on the others
    second = make_testset(two_videos, tmp_path / "two", frames_per_video=2, seed=5, size=128,
                          progress=False)
    assert {(i.identity, i.frame) for i in second.images} == frames
    third = make_testset(two_videos, tmp_path / "three", frames_per_video=2, seed=6, size=128,
                         progress=False)
    assert {(i.identity, i.frame) for i in third.images} != frames


def test_input_mistakes_are_reported(tmp_path, photos_dir):
    with pytest.raises(InputError, match="does not exist"):
        make_testset(tmp_path / "nothing", tmp_path / "out", progress=False)
    loose = tmp_path / "loose"
    loose.mkdir()
    (loose / "a.jpg").symlink_to(photos_dir / "df_img1.jpg")
    with pytest.raises(InputError, match="one folder per identity"):
        make_testset(loose, tmp_path / "out", progress=False)
    one = tmp_path / "one_person"
    (one / "person").mkdir(parents=True)
    (one / "person" / "a.jpg").symlink_to(photos_dir / "df_img1.jpg")
    with pytest.raises(FacedancerError, match="fewer than two identities"):
        make_testset(one, tmp_path / "out", progress=False)
    with pytest.raises(FacedancerError, match="frames-per-video"):
        make_testset(one, tmp_path / "out", frames_per_video=0, progress=False)
    with pytest.raises(InputError, match="not a test set"):
        load_testset(tmp_path)
