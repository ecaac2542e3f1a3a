"""Anonymize (issue 15): the shipped identity population, the keyed sampler, the plan's per-track
consistency, and the command end to end (tag, determinism, errors).

The sampler is checked on FaceNet embeddings of real photos (``../shared/data/photos``: two
people with two photos each, pairs of ``deepface_master_pairs.csv``); the pipeline runs on the
tiny random generator (it changes pixels, it makes no likeness); how well the demo model hides
people is measured by ``benchmarks/anonymize.py`` (docs/anonymize.md), with one real check here
on a held-out LFW person.
"""

from __future__ import annotations

import numpy as np
import pytest

from swaputil import run_cli, single_thread

# Same-person pairs of deepface_master_pairs.csv ("Yes"), two different people.
PERSON_A = ("df_img20.jpg", "df_img21.jpg")
PERSON_B = ("df_img16.jpg", "df_img17.jpg")


@pytest.fixture(scope="module")
def population():
    from facedancer_torch.models.identity.anonymizer import (IdentityPopulation,
                                                              default_population_path)

    return IdentityPopulation.load(default_population_path("facenet"))


@pytest.fixture(scope="module")
def units(swapper, photos_dir):
    """Unit FaceNet embeddings of the four photos, by file name."""
    with single_thread():
        return {name: swapper.embed(photos_dir / name).unit for name in (*PERSON_A, *PERSON_B)}


def _sampler(population, strength=0.9, seed=0):
    from facedancer_torch.models.identity.anonymizer import SyntheticIdentitySampler
    from facedancer_torch.swap.anonymize import MAX_ANGLE

    return SyntheticIdentitySampler(population, strength, seed, MAX_ANGLE)


def _cos(a, b) -> float:
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def test_shipped_population_is_plain_statistics(population, tmp_path):
    from facedancer_torch.models.identity.anonymizer import (IdentityPopulation,
                                                              default_population_path)

    # plain arrays only: it loads with allow_pickle=False, and holds no per-person rows
    with np.load(default_population_path("facenet"), allow_pickle=False) as data:
        assert all(data[key].dtype != object for key in data.files)
        assert max(data[key].shape[0] if data[key].ndim else 0 for key in data.files) <= 512
    assert population.encoder == "facenet" and population.dim == 512
    assert population.identities > 5000  # LFW people minus the 287 held out
    k = population.components.shape[0]
    np.testing.assert_allclose(population.components @ population.components.T, np.eye(k),
                               atol=1e-4)
    assert np.all(np.diff(population.scales) <= 0) and population.scales[-1] > 0
    assert 16 < population.norm_median < 29  # FaceNet's raw norms (docs/identity.md)
    copy = IdentityPopulation.load(population.save(tmp_path / "copy.npz"))
    np.testing.assert_array_equal(copy.components, population.components)
    assert (copy.source, copy.images) == (population.source, population.images)


def test_population_file_errors_are_one_line(tmp_path):
    from facedancer_torch.errors import ModelError
    from facedancer_torch.models.identity.anonymizer import IdentityPopulation

    bad = tmp_path / "bad.npz"
    np.savez(bad, mean=np.zeros(3))
    with pytest.raises(ModelError, match="bad.npz: cannot read|bad.npz: not an identity"):
        IdentityPopulation.load(bad)
    with pytest.raises(ModelError, match="does not exist"):
        IdentityPopulation.load(tmp_path / "missing.npz")


def test_fit_recovers_the_population_axes():
    from facedancer_torch.models.identity.anonymizer import IdentityPopulation

    rng = np.random.default_rng(0)
    basis = np.linalg.qr(rng.standard_normal((16, 16)))[0]
    mean, axes = basis[0], basis[1:4]  # people spread along 3 axes around one direction
    people = mean + rng.standard_normal((400, 3)) * [0.3, 0.2, 0.1] @ axes
    photos = np.repeat(people, 2, axis=0) * 20.0  # two photos per person, raw scale 20
    population = IdentityPopulation.from_embeddings(photos, np.repeat(np.arange(400), 2),
                                                    "toy", components=3)
    assert population.identities == 400 and population.images == 800
    # the fitted axes span the generating ones (up to sign and order)
    overlap = np.abs(population.components @ axes.T)
    assert np.all(overlap.max(axis=1) > 0.95)


def _projected_faces(coordinates, directions):
    """68 landmarks of a generic 3D head, turned and with the mouth opened as linear functions
    of ``coordinates`` along ``directions`` (yaw, pitch, mouth), seen by the pose metric's
    pinhole camera in a 256 px crop."""
    from facedancer_torch.evaluate.pose import GENERIC_FACE_3D

    # A frontal face in millimetres (the pose metric's axes): its 11 rigid points plus rough
    # jaw, brow, eye and mouth outlines, enough for the pose and expression metrics.
    head = np.zeros((68, 3))
    for index, point in GENERIC_FACE_3D.items():
        head[index] = point
    angles = np.linspace(-0.45, 0.45, 17) * np.pi
    head[0:17] = np.c_[70 * np.sin(angles), 60 - 60 * np.cos(angles) + 30, 60 + 0 * angles]
    head[17:27] = np.c_[np.r_[np.linspace(-55, -15, 5), np.linspace(15, 55, 5)],
                        -18 + 0 * np.arange(10), 38 + 0 * np.arange(10)]
    head[[28, 29]] = [(0, 6, 12), (0, 19, 6)]
    head[[32, 34]] = [(-7, 43, 15), (7, 43, 15)]
    for start, (x0, x1) in ((36, (-45, -16)), (42, (16, 45))):
        ring = np.linspace(0, 2 * np.pi, 7)[:6]
        head[start:start + 6] = np.c_[(x0 + x1) / 2 - (x1 - x0) / 2 * np.cos(ring),
                                      -5 * np.sin(ring), 32 + 0 * ring]
    ring = np.linspace(0, 2 * np.pi, 13)[:12]
    head[48:60] = np.c_[-25 * np.cos(ring), 66 - 8 * np.sin(ring), 35 + 0 * ring]
    ring = np.linspace(0, 2 * np.pi, 9)[:8]
    head[60:68] = np.c_[-20 * np.cos(ring), 66 - 3 * np.sin(ring), 35 + 0 * ring]
    lower = np.r_[55:60, 65:68]
    faces = []
    for c in coordinates:
        yaw, pitch, mouth = (float(c @ d) for d in directions)
        points = head.copy()
        points[lower, 1] += 4.0 + 2.0 * mouth  # the mouth opens linearly
        a, b = np.radians(6.0 * yaw), np.radians(6.0 * pitch)
        turn = (np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
                @ np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]]))
        camera = points @ turn.T + [0.0, -30.0, 600.0]
        faces.append(256.0 * camera[:, :2] / camera[:, 2:] + 128.0)
    return np.array(faces)


def test_kept_axes_are_the_directions_that_predict_pose_and_expression():
    """geometry_axes on landmarks whose yaw, pitch and mouth opening follow three directions
    of the whitened space finds exactly those directions (and no others)."""
    from facedancer_torch.models.identity.anonymizer import geometry_axes

    rng = np.random.default_rng(0)
    coordinates = rng.standard_normal((500, 16))
    directions = np.linalg.qr(rng.standard_normal((16, 3)))[0].T
    landmarks = _projected_faces(coordinates, directions)
    axes = geometry_axes(coordinates, landmarks, 256, expression_axes=1)
    assert axes.shape == (3, 16)
    np.testing.assert_allclose(axes @ axes.T, np.eye(3), atol=1e-9)
    # each generating direction lies in the span of the kept axes
    assert np.all(np.linalg.norm(directions @ axes.T, axis=1) > 0.95)
    # never more axes than the space has minus one: something is always left to anonymize
    assert geometry_axes(coordinates[:, :3], landmarks, 256, expression_axes=4).shape == (2, 3)


def test_shipped_kept_axes_are_kept_by_the_sampler(population, units):
    """The shipped population holds pose and expression axes; a synthetic identity has the
    person's coordinates along them, and the rest turned by exactly the sampler's angle."""
    kept = population.kept_axes.astype(np.float64)
    assert kept.shape == (6, population.components.shape[0])  # yaw, pitch + 4 expression
    np.testing.assert_allclose(kept @ kept.T, np.eye(6), atol=1e-5)
    sampler = _sampler(population, strength=0.9, seed=0)
    for unit in units.values():
        person, synthetic = population.whiten(unit), sampler.coordinates(unit)
        np.testing.assert_allclose(kept @ synthetic, kept @ person, atol=1e-6)
        free_person = person - kept.T @ (kept @ person)
        free_synthetic = synthetic - kept.T @ (kept @ synthetic)
        assert abs(np.linalg.norm(free_synthetic) - np.linalg.norm(free_person)) < 1e-6
        angle = np.degrees(np.arccos(_cos(free_person, free_synthetic)))
        assert abs(angle - sampler.angle) < 1e-4


def test_population_without_kept_axes_still_loads(population, units, tmp_path):
    """A file written before kept axes existed: loads with none, and the sampler turns the
    whole whitened vector by its angle (the behaviour such files were made for)."""
    path = tmp_path / "old.npz"
    with np.load(population.save(tmp_path / "new.npz"), allow_pickle=False) as data:
        np.savez(path, **{key: data[key] for key in data.files if key != "kept_axes"})
    from facedancer_torch.models.identity.anonymizer import IdentityPopulation

    old = IdentityPopulation.load(path)
    assert old.kept_axes.shape == (0, population.components.shape[0])
    sampler = _sampler(old, strength=0.5, seed=2)
    unit = units[PERSON_A[0]]
    angle = np.degrees(np.arccos(_cos(old.whiten(unit), sampler.coordinates(unit))))
    assert abs(angle - sampler.angle) < 1e-4


def test_sampler_moves_away_keeps_people_apart_and_is_keyed(population, units):
    a1, a2 = units[PERSON_A[0]], units[PERSON_A[1]]
    b1 = units[PERSON_B[0]]
    sampler = _sampler(population, strength=0.9, seed=0)
    z_a1, z_a2, z_b1 = (sampler.sample(u) for u in (a1, a2, b1))
    # raw scale of the population (what the generator is conditioned on)
    assert abs(np.linalg.norm(z_a1) - population.norm_median) < 1e-3
    # far from the person: less similar to them than their own second photo is, by far
    assert _cos(z_a1, a1) < _cos(a2, a1) - 0.3
    # continuous in the person: two photos of A give related synthetic identities, A and B
    # unrelated ones
    assert _cos(z_a1, z_a2) > _cos(z_a1, z_b1) + 0.2
    # deterministic per seed, another seed another identity
    np.testing.assert_array_equal(_sampler(population, 0.9, 0).sample(a1), z_a1)
    assert _cos(_sampler(population, 0.9, 1).sample(a1), z_a1) < 0.9
    # strength moves monotonically away from the person
    similarity = [_cos(_sampler(population, s, 0).sample(a1), a1) for s in (0.0, 0.5, 1.0)]
    assert similarity[0] > similarity[1] > similarity[2]
    assert similarity[0] > 0.8  # strength 0 is the person (in the population's axes)


def test_plan_keeps_one_identity_per_track(population, units):
    from facedancer_torch.swap.anonymize import AnonymizePlan

    plan = AnonymizePlan(sampler=_sampler(population))
    assert plan.needs_identity and plan.operation == "anonymize"
    a1, a2, b1 = units[PERSON_A[0]], units[PERSON_A[1]], units[PERSON_B[0]]
    first = plan.choose([100.0, 50.0], np.stack([a1, b1]), [3, 4])
    # the track's identity estimate moves (a2 instead of a1): its synthetic identity does not
    later = plan.choose([50.0, 100.0], np.stack([b1, a2]), [4, 3])
    assert [i for i, _ in first] == [0, 1] and [i for i, _ in later] == [0, 1]
    assert later[1][1] is first[0][1] and later[0][1] is first[1][1]
    assert _cos(first[0][1].embedding, first[1][1].embedding) < 0.9  # two people, two ids
    # the same tracker id on another person (the next video of a folder): a new identity
    reused = plan.choose([10.0], np.stack([b1]), [3])
    assert reused[0][1] is not first[0][1]
    assert _cos(reused[0][1].embedding, plan.synthetic(b1).embedding) > 0.999
    # still images: computed from each face, nothing kept
    still = plan.choose([10.0], np.stack([a2]))
    assert _cos(still[0][1].embedding, plan.synthetic(a2).embedding) > 0.999
    plan.faces = "largest"
    assert [i for i, _ in plan.choose([10.0, 30.0], np.stack([a1, b1]), None)] == [1]


def test_anonymize_image_cli(tiny_model, photos_dir, tmp_path):
    from facedancer_torch.io.images import read_image
    from facedancer_torch.io.provenance import read_provenance

    target = photos_dir / "if_t1.jpg"  # six faces
    outputs = []
    for name in ("one.png", "two.png"):
        out = tmp_path / name
        result = run_cli("anonymize", "-t", target, "-o", out, "-m", tiny_model, "--seed", "5",
                         "--no-watermark", "--backend", "fused", "--device", "cpu",
                         "--matte", out.with_suffix(".matte.png"))
        assert result.returncode == 0, result.stderr
        outputs.append(read_image(out))
    tag = read_provenance(tmp_path / "one.png")
    assert tag["content"] == "synthetic media"
    assert int(tag["faces_swapped"]) >= 5
    np.testing.assert_array_equal(outputs[0], outputs[1])  # --seed: reproducible
    original = read_image(target)
    changed = np.any(outputs[0] != original, axis=-1)
    assert np.mean(changed) > 0.02  # faces were replaced
    matte = read_image(tmp_path / "one.matte.png")[:, :, 0]  # --matte: where, as for swap
    assert not changed[matte == 0].any() and (matte[changed] > 0).all()


def test_anonymize_cli_errors(tiny_model, photos_dir, tmp_path):
    target = photos_dir / "if_t1.jpg"
    for args, message in (
            (("--strength", "1.5"), "--strength must be in [0, 1]"),
            (("--population", tmp_path / "none.npz"), "none.npz: identity population file "
                                                      "does not exist"),
            (("--matte", tmp_path / "m.jpg"), "cannot write an image's matte as '.jpg'")):
        result = run_cli("anonymize", "-t", target, "-o", tmp_path / "o.png", "-m", tiny_model,
                         *args)
        assert result.returncode == 2
        assert result.stderr.strip() == f"error: {message}" or message in result.stderr
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_population_for_another_encoder_is_refused(swapper, population, tmp_path):
    from dataclasses import replace

    from facedancer_torch.errors import ModelError
    from facedancer_torch.swap.anonymize import anonymize_plan

    other = replace(population, encoder="arcface_res50").save(tmp_path / "arc.npz")
    with pytest.raises(ModelError, match="describes 'arcface_res50'"):
        anonymize_plan(swapper, population=other)


def test_demo_model_hides_a_held_out_person(lfw_dir):
    """The shipped demo model on an LFW person held out of its training and of the population:
    the anonymized face no longer verifies as them for dlib (distance > 0.6), while the
    unchanged photo does (distance 0)."""
    pytest.importorskip("dlib")
    from facedancer_torch.data.shard import split_identities
    from facedancer_torch.evaluate.dlib_face import get_dlib_face
    from facedancer_torch.faces.align import align_face
    from facedancer_torch.io.images import read_image
    from facedancer_torch.swap.anonymize import (anonymize_options, anonymize_plan,
                                                 identity_folders)
    from facedancer_torch.swap.pipeline import Swapper

    people = identity_folders(lfw_dir / "images")
    held = sorted(split_identities(list(people), 0.05, 0))
    image = read_image(people[held[0]][0])
    with single_thread():
        swapper = Swapper(device="cpu", backend="fused")
        face = max(swapper.detect(image), key=lambda f: f.area)
        out = swapper.swap_image(image, anonymize_plan(swapper, seed=0),
                                 anonymize_options(watermark=False))
    dlib_face = get_dlib_face()

    def descriptor(img):
        crop, _ = align_face(img, face.landmarks, 256, shrink_factor=0.5)
        return dlib_face.analyse_crop(crop, 0.5).descriptor

    assert np.linalg.norm(descriptor(out) - descriptor(image)) > 0.6


def test_anonymize_video_one_identity_per_person(swapper, videos_dir, tmp_path):
    from facedancer_torch.io.provenance import read_provenance
    from facedancer_torch.io.video import probe_video
    from facedancer_torch.swap.anonymize import anonymize_options, anonymize_plan

    plan = anonymize_plan(swapper, seed=3)
    out = tmp_path / "anonymized.mp4"
    with single_thread():
        swapper.swap_video_file(videos_dir / "talking_1face_512.mp4", out, plan,
                                anonymize_options(max_frames=8), progress=False)
    assert probe_video(out).frame_count == 8
    assert read_provenance(out)["content"] == "synthetic media"
    # one person in the clip, tracked: one synthetic identity for all of their frames
    assert len(plan._tracks) == 1


def test_output_tag_says_anonymized(swapper, photos_dir, tmp_path):
    from facedancer_torch.io.provenance import read_provenance
    from facedancer_torch.swap.anonymize import anonymize_options, anonymize_plan

    out = tmp_path / "anonymized.png"
    with single_thread():
        swapper.swap_image_file(photos_dir / "df_img20.jpg", out, anonymize_plan(swapper, seed=0),
                                anonymize_options())
    assert read_provenance(out)["operation"] == "anonymize"


def test_ui_anonymize_file(swapper, photos_dir, tmp_path):
    """What the web UI's Anonymize tab runs for an uploaded image."""
    from facedancer_torch.io.provenance import read_provenance
    from facedancer_torch.ui.anonymize import anonymize_file

    with single_thread():
        output, replaced = anonymize_file(swapper, photos_dir / "if_t1.jpg", tmp_path, 0.85,
                                          seed=-1, faces="largest", mask_blur=7.0,
                                          mask_padding=0.0, color_match="local")
    assert output.parent == tmp_path and output.suffix == ".png"
    assert replaced == 1 and read_provenance(output)["content"] == "synthetic media"


def test_anonymize_population_cli(tiny_model, lfw_dir, tmp_path):
    """``facedancer anonymize-population`` on a few LFW people (linked, not copied)."""
    from facedancer_torch.models.identity.anonymizer import IdentityPopulation

    folder = tmp_path / "people"
    folder.mkdir()
    names = sorted(p.name for p in (lfw_dir / "images").iterdir()
                   if len(list(p.iterdir())) >= 2)[:6]
    for name in names:
        (folder / name).symlink_to(lfw_dir / "images" / name)
    out = tmp_path / "pop.npz"
    result = run_cli("anonymize-population", "--images", folder, "-o", out, "-m", tiny_model,
                     "--components", "4", "--max-per-identity", "2", "--hold-out", "0.2",
                     "--device", "cpu", "-q")
    assert result.returncode == 0, result.stderr
    population = IdentityPopulation.load(out)
    assert population.encoder == "facenet" and population.components.shape == (4, 512)
    assert population.identities == 5 and population.images == 10  # one of six held out
    assert "1 people held out (fraction 0.2, seed 0)" in population.source
    again = run_cli("anonymize-population", "--images", folder, "-o", out, "-m", tiny_model)
    assert again.returncode == 2 and "already exists" in again.stderr


def test_anonymize_keeps_its_own_identity_distance():
    """The model's recommended identity strength is a swap default; anonymize draws its
    synthetic identity at its own calibrated distance (--strength) and does not add it."""
    from facedancer_torch.swap.anonymize import anonymize_options

    assert anonymize_options().identity_strength == 0.0
    assert anonymize_options(identity_strength=0.3).identity_strength == 0.3
