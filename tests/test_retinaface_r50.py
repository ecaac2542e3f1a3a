"""The authors' RetinaFace-Res50 (Keras .h5) converted with h5py and run in PyTorch.

``../shared/fixtures/keras-authors/retinaface_r50_small.h5`` is the authors' graph with random
weights; beside it, its inputs, raw head outputs, decoded predictions and NMS result on two
real photos (its README describes every step and the tolerances).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from facedancer_torch.errors import ModelError
from facedancer_torch.faces.retinaface_r50 import HEAD_NAMES, decode, nms_indices
from facedancer_torch.testing import shared_path


@pytest.fixture(scope="module")
def authors_dir() -> Path:
    path = shared_path("fixtures", "keras-authors")
    if path is None:
        pytest.skip("shared fixture 'fixtures/keras-authors' is absent (expected in ../shared "
                    "or $FACEDANCER_SHARED)")
    return path


@pytest.fixture(scope="module")
def detector(authors_dir):
    import facedancer_torch

    return facedancer_torch.load_detector(authors_dir / "retinaface_r50_small.h5")


def _io(authors_dir: Path, photo: str) -> dict[str, np.ndarray]:
    return dict(np.load(authors_dir / f"retinaface_r50_small_io_{photo}.npz"))


def test_raw_heads_match_keras(detector, authors_dir):
    io = _io(authors_dir, "if_t1")
    torch.set_num_threads(2)
    ours = detector.raw_outputs(io["input_image"][0])
    assert set(ours) == set(HEAD_NAMES)
    for name in HEAD_NAMES:
        assert ours[name].shape == io[name].shape, name
        diff = np.abs(ours[name] - io[name])
        assert diff.max() < 1e-3 and diff.mean() < 1e-4, (name, diff.max(), diff.mean())
    # the final output as a set: same rows, each within 1e-3 of one of the other's
    preds = decode(ours, *io["input_image"].shape[1:3])
    final = preds[nms_indices(preds)]
    expected = io["tf.compat.v1.gather"]
    assert final.shape == expected.shape
    for a, b in ((final, expected), (expected, final)):
        order_a, order_b = np.argsort(a[:, 15]), np.argsort(b[:, 15])
        a_sorted, b_sorted = a[order_a], b[order_b]
        # near-ties reorder NMS output; rows pair up after sorting by score within 1e-3
        close = np.abs(a_sorted - b_sorted).max(axis=1) < 1e-3
        for i in np.flatnonzero(~close):
            assert (np.abs(b - a_sorted[i]).max(axis=1) < 1e-3).any()


@pytest.mark.parametrize("photo", ["if_t1", "fr_two_people"])
def test_decoding_and_nms_match_keras(authors_dir, photo):
    io = _io(authors_dir, photo)
    height, width = io["input_image"].shape[1:3]
    preds = decode({k: io[k] for k in HEAD_NAMES}, height, width)
    assert np.abs(preds - io["tf.concat_10"]).max() < 1e-5
    np.testing.assert_array_equal(nms_indices(preds), io["tf.image.non_max_suppression"])


def test_model_folder_round_trip(detector, authors_dir, tmp_path):
    from facedancer_torch.convert.keras_retinaface import convert_retinaface, load_detector

    import json

    folder = convert_retinaface(authors_dir / "retinaface_r50_small.h5", tmp_path / "r50")
    config = json.loads((folder / "config.json").read_text())
    assert config["kind"] == "retinaface-r50" and config["source"] == "retinaface_r50_small.h5"
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    reloaded = load_detector(folder)
    for (k, a), b in zip(detector.state_dict().items(), reloaded.state_dict().values()):
        assert torch.equal(a, b), k


def test_other_files_are_refused_by_name(authors_dir, tmp_path):
    from facedancer_torch.convert.keras_retinaface import load_detector

    with pytest.raises(ModelError, match="ref_daffa.h5: not the authors' RetinaFace graph"):
        load_detector(authors_dir / "ref_daffa.h5")
    (tmp_path / "junk.h5").write_bytes(b"junk")
    with pytest.raises(ModelError, match="junk.h5: not a readable HDF5 file"):
        load_detector(tmp_path / "junk.h5")


def test_detector_backend_chosen_by_folder(detector, authors_dir, tmp_path, photos_dir):
    from facedancer_torch.faces.detect import get_detector, nms
    from facedancer_torch.io.images import read_image

    folder = detector.save_pretrained(tmp_path / "r50")
    # random weights: a turn may "score" higher, and "faces" along the edges would get the
    # padded second pass (faces.detect.at_edge), which refine_max_side=0 turns off
    backend = get_detector(str(folder), device="cpu", score_threshold=0.5, max_side=0,
                           rotate="off", refine_max_side=0)
    assert backend.name == "retinaface-r50"
    assert get_detector("retinaface-r50", model_path=folder, device="cpu").name == "retinaface-r50"
    with pytest.raises(ModelError, match="needs its converted model folder"):
        get_detector("retinaface-r50")
    image = np.ascontiguousarray(read_image(photos_dir / "fr_two_people.jpg")[100:260, 300:492])
    faces = backend.detect(image)
    # the backend's faces are the graph's own decoding, thresholded and suppressed, in pixels
    preds = decode(detector.raw_outputs(image), *image.shape[:2])
    keep = np.flatnonzero(preds[:, 15] > 0.5)
    keep = keep[nms(preds[keep, :4].astype(np.float64), preds[keep, 15], 0.4)]
    assert len(faces) == len(keep) > 0
    scale = np.array([image.shape[1], image.shape[0]] * 2, dtype=np.float32)
    for face, k in zip(faces, keep):
        np.testing.assert_allclose(face.box, preds[k, :4] * scale, atol=1e-2)
        np.testing.assert_allclose(face.landmarks.reshape(-1), preds[k, 4:14] * np.tile(scale[:2], 5),
                                   atol=1e-2)


def test_reading_level_costs_a_few_first_passes(detector, tmp_path, photos_dir, monkeypatch):
    """Random weights find hundreds of "faces" at random tilts, a dozen scoring over 0.9,
    each of which the tilt rule would read on a turned crop (about a second a crop with this
    network): the crops read level hold at most TILT_BUDGET times the first pass's pixels and
    the read that passes it (a 300 x 240 px crop took 40 s before, 12 crops and their second
    reads; 3 s now)."""
    from facedancer_torch.faces import detect
    from facedancer_torch.faces.detect import get_detector
    from facedancer_torch.io.images import read_image

    folder = detector.save_pretrained(tmp_path / "r50")
    backend = get_detector(str(folder), device="cpu", score_threshold=0.5)
    image = np.ascontiguousarray(read_image(photos_dir / "fr_two_people.jpg")[100:260, 300:492])
    crops = []

    def level_crop(*args):
        crop, matrix = real(*args)
        crops.append(crop.shape[0] * crop.shape[1])
        return crop, matrix

    real = detect.level_crop
    monkeypatch.setattr(detect, "level_crop", level_crop)
    faces = backend.detect(image)
    assert len([f for f in faces if f.score >= detect.TILT_MIN_SCORE]) > 10
    budget = detect.TILT_BUDGET * image.shape[0] * image.shape[1]  # no downscaling below 640
    # the last read started within the budget: its crop and its second read (the face there
    # still tilted) at most TILT_MAX_CROP a side
    assert budget <= sum(crops) < budget + 2 * detect.TILT_MAX_CROP ** 2


def test_folder_is_read_by_the_generic_model_reader(detector, tmp_path):
    from facedancer_torch.models.pretrained import read_model_dir

    loaded = read_model_dir(detector.save_pretrained(tmp_path / "r50", source="x.h5"), "retinaface-r50")
    assert loaded.meta["source"] == "x.h5" and loaded.config == {"out_ch": 256, "num_anchor": 2}
    assert len(loaded.state_dict) == len([k for k in detector.state_dict()
                                          if not k.endswith("num_batches_tracked")])


def test_make_testset_and_evaluate_encoder_take_the_detector(detector, tmp_path, photos_dir):
    """`--detector` on the evaluation commands that detect faces (make-testset, evaluate-
    encoder): a converted folder is used (its random weights put the crops elsewhere than the
    embedded detector does), a wrong one is one line and exit 2."""
    import subprocess
    import sys

    from facedancer_torch.io.images import read_image, write_image

    folder = detector.save_pretrained(tmp_path / "r50")
    people = tmp_path / "people"
    # Small photos (below the detectors' 640 px, so no refinement pass: with random weights
    # the converted detector finds hundreds of "faces", each of which would be refined).
    image = read_image(photos_dir / "fr_two_people.jpg")
    for person, x in (("a", 190), ("b", 740)):
        (people / person).mkdir(parents=True)
        write_image(people / person / "1.png", np.ascontiguousarray(image[0:300, x:x + 240]))

    def make(out, *extra):
        return subprocess.run([sys.executable, "-m", "facedancer_torch", "make-testset", people,
                               tmp_path / out, "--size", "128", "--quiet", *extra],
                              capture_output=True, text=True, timeout=300)

    plain, converted = make("plain"), make("r50", "--detector", str(folder))
    assert plain.returncode == converted.returncode == 0, (plain.stderr, converted.stderr)
    crops = sorted((tmp_path / "r50").rglob("*.png"))
    assert len(crops) == 2
    for crop in crops:  # the converted detector's (random) landmarks, not the embedded one's
        same = tmp_path / "plain" / crop.relative_to(tmp_path / "r50")
        assert not np.array_equal(read_image(crop), read_image(same)), crop
    for command in (["make-testset", str(people), str(tmp_path / "bad")],
                    ["evaluate-encoder", "--images", str(people), "--pairs",
                     str(tmp_path / "pairs.txt")]):
        bad = subprocess.run([sys.executable, "-m", "facedancer_torch", *command, "--detector",
                              str(tmp_path / "no-such")], capture_output=True, text=True,
                             timeout=300)
        assert bad.returncode == 2, (command, bad.stderr)
        assert bad.stderr.count("\n") == 1 and "face detector" in bad.stderr, bad.stderr


def test_align_takes_the_detector_by_store_name(authors_dir, tmp_path, photos_dir):
    """`facedancer align --detector NAME` resolves a name in the model store (`models add`)
    as swap, ui and make-testset do: the crops equal those of `--detector FOLDER`; an unknown
    name is one line and exit 2 before anything is written."""
    import os
    import subprocess
    import sys

    from facedancer_torch.io.images import read_image, write_image

    env = {**os.environ, "FACEDANCER_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1"}

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "facedancer_torch", *map(str, args)],
                              capture_output=True, text=True, timeout=300, env=env)

    added = cli("models", "add", authors_dir / "retinaface_r50_small.h5", "--name", "my-r50")
    assert added.returncode == 0, added.stderr
    folder = tmp_path / "home" / "models" / "my-r50"
    assert (folder / "config.json").is_file()
    people = tmp_path / "people" / "a"
    people.mkdir(parents=True)
    # small (no refinement pass: random weights find many "faces") and one person
    image = read_image(photos_dir / "fr_two_people.jpg")
    write_image(people / "1.png", np.ascontiguousarray(image[0:300, 190:430]))
    common = ["--im-size", "112", "--quiet", "--score-threshold", "0.5"]
    by_name = cli("align", tmp_path / "people", tmp_path / "by_name", "--detector", "my-r50",
                  *common)
    by_folder = cli("align", tmp_path / "people", tmp_path / "by_folder", "--detector", folder,
                    *common)
    assert by_name.returncode == by_folder.returncode == 0, (by_name.stderr, by_folder.stderr)
    crops = sorted((tmp_path / "by_name").rglob("*.png"))
    assert crops
    for crop in crops:
        same = tmp_path / "by_folder" / crop.relative_to(tmp_path / "by_name")
        assert np.array_equal(read_image(crop), read_image(same)), crop
    bad = cli("align", tmp_path / "people", tmp_path / "bad", "--detector", "no-such-r50")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1, bad.stderr
    assert "face detector 'no-such-r50'" in bad.stderr
    assert not (tmp_path / "bad").exists()
