"""The evaluation protocol end to end on real LFW faces, with known answers.

A test set of 4 LFW identities x 2 photos (crops 256 px, shrink 0.5) is built once. Swaps with
known outcomes are written as "precomputed swaps": the target itself (pose and expression
error 0, retrieves the target) and a held-out photo of the source person (retrieves the
source). A tiny random generator exercises the --model path and the determinism of the run.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("dlib", reason="the eval extra (dlib-bin) is not installed")
pytest.importorskip("matplotlib", reason="the eval extra (matplotlib) is not installed")

from facedancer_torch.errors import FacedancerError, InputError  # noqa: E402
from facedancer_torch.evaluate.evaluate import (PAIRS_FILE, Pair, evaluate_swaps,  # noqa: E402
                                                load_encoders, load_swaps, make_pairs,
                                                measure_testset, run_evaluation, write_pairs)
from facedancer_torch.evaluate.testset import load_testset, make_testset  # noqa: E402

PEOPLE = ("Adam_Sandler", "Alec_Baldwin", "Angela_Merkel", "Antonio_Banderas")  # 4-5 photos each
SIZE = 256


@pytest.fixture(scope="module")
def testset(lfw_dir, tmp_path_factory):
    source = tmp_path_factory.mktemp("people")
    for person in PEOPLE:
        (source / person).symlink_to(lfw_dir / "images" / person, target_is_directory=True)
    out = tmp_path_factory.mktemp("testset")
    return make_testset(source, out, seed=0, size=SIZE, shrink=0.5, max_per_identity=2,
                        progress=False)


@pytest.fixture(scope="module")
def encoders():
    return load_encoders(["default"], device="cpu")


@pytest.fixture(scope="module")
def real(testset, encoders):
    return measure_testset(testset, encoders, progress=False)


def _write_swaps(folder, testset, pairs, pick):
    """Copy ``pick(pair)`` (an image path) as the swap of every pair; write pairs.json."""
    folder.mkdir(parents=True, exist_ok=True)
    done = []
    for k, pair in enumerate(pairs):
        path = folder / f"{k:06d}.png"
        shutil.copy(pick(pair), path)
        done.append(Pair(pair.target, pair.source, path))
    write_pairs(folder / PAIRS_FILE, testset, done, seed=0)
    return done


def test_testset_manifest_and_crops(testset):
    assert len(testset.images) == 8 and testset.identities == sorted(PEOPLE)
    assert (testset.size, testset.shrink) == (SIZE, 0.5)
    manifest = json.loads((testset.root / "manifest.json").read_text())
    assert manifest["format"] == "facedancer-testset/1" and manifest["skipped"] == []
    for entry in manifest["images"]:
        assert (testset.root / entry["path"]).is_file()
        assert entry["path"].startswith(f"images/{entry['identity']}/")
        assert np.asarray(entry["landmarks"]).shape == (5, 2) and entry["score"] > 0.7
    assert testset.read(0).shape == (SIZE, SIZE, 3)
    with pytest.raises(FacedancerError, match="already holds a test set"):
        make_testset(testset.root, testset.root, progress=False)


def test_pairing_is_seeded_recorded_and_crosses_identities(testset, tmp_path):
    pairs = make_pairs(testset, seed=0)
    assert [p.target for p in pairs] == list(range(8))
    assert all(testset.images[p.source].identity != testset.images[p.target].identity
               for p in pairs)
    assert make_pairs(testset, seed=0) == pairs
    assert make_pairs(testset, seed=1) != pairs
    assert len(make_pairs(testset, n_pairs=30, seed=0)) == 30
    done = _write_swaps(tmp_path / "swaps", testset, pairs[:3], lambda p: testset.file(p.target))
    loaded, seed = load_swaps(tmp_path / "swaps", testset)
    assert loaded == done and seed == 0


def test_swap_equal_to_target_has_no_pose_or_expression_error(testset, encoders, real, tmp_path):
    pairs = _write_swaps(tmp_path / "swaps", testset, make_pairs(testset, seed=0),
                         lambda p: testset.file(p.target))
    result = evaluate_swaps(testset, pairs, encoders, real=real, progress=False)
    m = result["metrics"]
    assert m["pose_error_deg"]["max"] < 1e-3
    assert m["expression_error"]["max"] < 1e-3
    assert m["color_cast"]["max"] == 0.0
    assert m["pose_error_deg"]["baseline_target_source"]["mean"] > 3.0
    assert m["id_retrieval"]["target_top1"] == 1.0
    assert m["id_retrieval"]["top1"] == 0.0  # the source is never retrieved
    for values in m["identity_cosine"].values():
        assert values["swap_target"] == pytest.approx(1.0, abs=1e-5)
        assert values["swap_source"] == pytest.approx(values["source_target"], abs=1e-5)
    assert all(s["target_rank"] == 1 and s["source_rank"] > 1 for s in result["samples"])


def test_blue_faces_are_colour_casts(testset, encoders, real, tmp_path):
    """Red and blue swapped: warm skin turns blue, so most of the face hull is a cast."""
    from facedancer_torch.io.images import read_image, write_image

    def blue(pair):
        path = tmp_path / f"blue_{pair.target}.png"
        write_image(path, read_image(testset.file(pair.target))[..., ::-1].copy())
        return path

    pairs = _write_swaps(tmp_path / "swaps", testset, make_pairs(testset, seed=0), blue)
    result = evaluate_swaps(testset, pairs, encoders, real=real, progress=False)
    cast = result["metrics"]["color_cast"]
    assert cast["min"] > 0.3 and cast["pairs_over_1pct"] == 1.0
    assert all(s["color_cast"] > 0.3 for s in result["samples"])


def test_swap_as_another_photo_of_the_source_retrieves_the_source(testset, encoders, real,
                                                                   lfw_dir, tmp_path):
    """The 'swap' is a photo of the source person that is not in the test set."""
    from facedancer_torch.faces.align import align_face
    from facedancer_torch.faces.detect import get_detector, largest_face
    from facedancer_torch.io.images import read_image, write_image

    used = {Path(image.origin).name for image in testset.images}
    detector = get_detector(device="cpu")
    held_out = {}
    for person in PEOPLE:
        candidates = sorted(p for p in (lfw_dir / "images" / person).iterdir()
                            if p.name not in used)
        image = read_image(candidates[0])
        crop, _ = align_face(image, largest_face(detector.detect(image)).landmarks, SIZE, 0.5)
        held_out[person] = tmp_path / f"{person}.png"
        write_image(held_out[person], crop)
    pairs = _write_swaps(tmp_path / "swaps", testset, make_pairs(testset, seed=0),
                         lambda p: held_out[testset.images[p.source].identity])
    result = evaluate_swaps(testset, pairs, encoders, real=real, progress=False)
    m = result["metrics"]
    assert m["id_retrieval"]["network"] == "dlib"
    assert m["id_retrieval"]["top1"] == 1.0 and m["id_retrieval"]["top5"] == 1.0
    assert m["id_retrieval"]["chance_top1"] == 0.25
    for values in m["identity_cosine"].values():
        assert values["swap_source"] > values["swap_target"]
        assert values["swap_source"] > values["source_target"]


def test_generator_run_reports_are_complete_and_reproducible(testset, tmp_path):
    """--model path with a tiny random generator: files complete; same seed, same swaps and
    numbers (the swaps folder scored again as precomputed swaps gives the same metrics)."""
    import torch

    from facedancer_torch.evaluate.evaluate import generate_swaps
    from facedancer_torch.io.images import read_image
    from facedancer_torch.models.generator import build_generator

    torch.manual_seed(0)
    generator = build_generator(image_size=64, encoder_widths=(8, 8, 16, 16, 16, 16, 16),
                                mapping_depth=1, mapping_width=32, identity_encoder="default")
    generator.save_pretrained(tmp_path / "model")
    report_dir = tmp_path / "report"
    report = run_evaluation(testset.root, report_dir, model=tmp_path / "model", n_pairs=4,
                            seed=3, device="cpu", examples=3, progress=False)
    pairs = make_pairs(testset, 4, seed=3)
    assert [s["source"] for s in report["samples"]] == [testset.images[p.source].path
                                                        for p in pairs]
    again, _ = generate_swaps(tmp_path / "model", testset, pairs, tmp_path / "again",
                              device="cpu", seed=3, progress=False)
    for k, pair in enumerate(again):
        assert np.array_equal(read_image(pair.swap),
                              read_image(report_dir / "swaps" / f"{k:06d}.png"))
    # --identity-strength: other swaps of the same pairs, recorded in the report's swapper
    steered, info = generate_swaps(tmp_path / "model", testset, pairs, tmp_path / "steered",
                                   device="cpu", seed=3, progress=False, identity_strength=0.5)
    assert info["identity_strength"] == 0.5
    assert any(not np.array_equal(read_image(a.swap), read_image(b.swap))
               for a, b in zip(steered, again))
    rescored = run_evaluation(testset.root, tmp_path / "rescored", swaps_dir=report_dir / "swaps",
                              seed=3, progress=False, examples=0)
    assert rescored["metrics"] == report["metrics"]
    assert rescored["pairing"]["seed"] == 3

    data = json.loads((report_dir / "report.json").read_text())
    assert data["pairing"] == {"seed": 3, "pairs": 4,
                               "file": str((report_dir / "swaps" / PAIRS_FILE).resolve())}
    assert data["swaps"]["generator_crop"] == {"size": 64, "shrink": 1.0}
    assert set(data["metrics"]) >= {"id_retrieval", "pose_error_deg", "expression_error",
                                    "color_cast", "identity_cosine", "fd_nonstandard", "kid_nonstandard", "fid"}
    assert set(data["metrics"]["identity_cosine"]) == {"facenet", "dlib"}
    assert np.isfinite(data["metrics"]["fd_nonstandard"]["value"])
    assert len(data["samples"]) == 4
    assert all((report_dir / "swaps" / s["swap"]).is_file() for s in data["samples"])
    markdown = (report_dir / "report.md").read_text()
    assert "| model | ID retrieval top-1" in markdown and "NOT the standard" in markdown
    assert "colour cast" in markdown
    assert len(data["files"]["plots"]) == 5  # pose, expression, rank, cosine x 2 encoders
    for plot in data["files"]["plots"]:
        assert read_image(report_dir / plot).shape[0] > 100
    grid = read_image(report_dir / "examples.png")
    assert grid.shape[1] == 3 * 160 and grid.shape[0] > 3 * 160
    swap = read_image(report_dir / "swaps" / "000000.png")
    assert swap.shape == (SIZE, SIZE, 3)
    # outside the pasted generator crop, the swap is the target, bit for bit
    target = testset.read(pairs[0].target)
    assert np.array_equal(swap[:40], target[:40])
    assert not np.array_equal(swap[100:150, 100:150], target[100:150, 100:150])


def test_user_errors_are_one_line(testset, tmp_path):
    with pytest.raises(FacedancerError, match="either --model"):
        run_evaluation(testset.root, tmp_path / "r")
    with pytest.raises(FacedancerError, match="--identity-strength"):
        run_evaluation(testset.root, tmp_path / "r", model=tmp_path, identity_strength=2.0)
    with pytest.raises(InputError, match="not a test set"):
        run_evaluation(tmp_path, tmp_path / "r", swaps_dir=tmp_path)
    with pytest.raises(InputError, match="no pairs.json"):
        run_evaluation(testset.root, tmp_path / "r", swaps_dir=tmp_path)
    small = tmp_path / "small"
    pairs = _write_swaps(small, testset, make_pairs(testset, seed=0)[:2],
                         lambda p: testset.file(p.target))
    from facedancer_torch.io.images import write_image

    write_image(pairs[0].swap, np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(InputError, match="swaps must be crops"):
        run_evaluation(testset.root, tmp_path / "r", swaps_dir=small, progress=False)
    out = subprocess.run(
        [sys.executable, "-m", "facedancer_torch", "evaluate", "--swaps", str(small),
         "--testset", str(testset.root), "--out", str(tmp_path / "r"),
         "--inception-weights", str(tmp_path / "inception.pth")],
        capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert out.stderr.startswith("error: ") and "not supported" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert load_testset(testset.root).size == SIZE
