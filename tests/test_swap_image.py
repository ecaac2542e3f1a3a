"""Image swaps on real photos with a tiny random generator (swap/pipeline.py, swap/image.py)."""

from __future__ import annotations

import numpy as np
import pytest

from swaputil import single_thread, warped_masks_union


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    with single_thread():
        yield


def _box_iou(a, b) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(x2 - x1, 0) * max(y2 - y1, 0)
    area = lambda r: (r[2] - r[0]) * (r[3] - r[1])  # noqa: E731
    return inter / (area(a) + area(b) - inter)


def _face_crop(image: np.ndarray, box, grow: float = 0.6) -> np.ndarray:
    """The region around a face box, grown on every side (a 'photo of that person')."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    x1, y1 = int(max(x1 - grow * w, 0)), int(max(y1 - grow * h, 0))
    x2, y2 = int(min(x2 + grow * w, image.shape[1])), int(min(y2 + grow * h, image.shape[0]))
    return np.ascontiguousarray(image[y1:y2, x1:x2])


def test_png_swap_changes_pixels_only_inside_the_masks(swapper, photos_dir, tmp_path):
    from facedancer_torch.io.images import read_image
    from facedancer_torch.io.provenance import read_provenance
    from facedancer_torch.swap.options import SwapOptions

    target = photos_dir / "if_t1.jpg"
    # if_t1 has a profile, which fades back to the target by default: this test wants 6 swaps.
    options = SwapOptions(watermark=False, profile_fade=False)
    plan = swapper.plan(photos_dir / "df_img1.jpg", options)
    report = swapper.swap_image_file(target, tmp_path / "out.png", plan, options)
    output = report.path
    assert report.swapped == report.detected == 6 and report.changed

    original = read_image(target)
    swapped = read_image(output)
    detail = swapper.swap_image_detailed(original, plan, options)
    assert detail.detected == 6 and len(detail.faces) == 6  # --faces all: every face
    np.testing.assert_array_equal(swapped, detail.image)  # the file holds exactly the swap

    inside = warped_masks_union(original.shape[:2], detail.faces, swapper.mask(options))
    np.testing.assert_array_equal(swapped[~inside], original[~inside])
    for face in detail.faces:  # every face really changed
        x1, y1, x2, y2 = face.box.astype(int)
        region = np.abs(swapped[y1:y2, x1:x2].astype(int) - original[y1:y2, x1:x2]).mean()
        assert region > 5.0
    tag = read_provenance(output)
    assert tag is not None and tag["content"] == "synthetic media", tag
    assert tag["faces_swapped"] == "6"


def test_largest_face_only(swapper, photos_dir):
    from facedancer_torch.io.images import read_image
    from facedancer_torch.swap.options import SwapOptions

    image = read_image(photos_dir / "if_t1.jpg")
    options = SwapOptions(faces="largest")
    result = swapper.swap_image_detailed(image, photos_dir / "df_img1.jpg", options)
    faces = swapper.detector.detect(image)
    largest = max(faces, key=lambda f: f.area)
    assert len(result.faces) == 1
    assert _box_iou(result.faces[0].box, largest.box) > 0.99
    inside = warped_masks_union(image.shape[:2], result.faces, swapper.mask(options))
    np.testing.assert_array_equal(result.image[~inside], image[~inside])


def test_reference_swaps_only_the_chosen_person(swapper, photos_dir, tmp_path):
    from facedancer_torch.io.images import read_image, write_image
    from facedancer_torch.swap.options import SwapOptions

    image = read_image(photos_dir / "fr_two_people.jpg")
    faces = sorted(swapper.detector.detect(image), key=lambda f: f.box[0])
    assert len(faces) == 2
    for chosen, other in ((0, 1), (1, 0)):
        reference = tmp_path / f"person_{chosen}.jpg"
        write_image(reference, _face_crop(image, faces[chosen].box))
        options = SwapOptions(reference=[reference], watermark=False)
        result = swapper.swap_image_detailed(image, photos_dir / "df_img1.jpg", options)
        assert len(result.faces) == 1
        assert _box_iou(result.faces[0].box, faces[chosen].box) > 0.99
        x1, y1, x2, y2 = faces[other].box.astype(int)
        np.testing.assert_array_equal(result.image[y1:y2, x1:x2], image[y1:y2, x1:x2])
        x1, y1, x2, y2 = faces[chosen].box.astype(int)
        assert not np.array_equal(result.image[y1:y2, x1:x2], image[y1:y2, x1:x2])


def test_map_gives_each_person_their_own_source(swapper, photos_dir, tmp_path):
    from facedancer_torch.io.images import read_image, write_image
    from facedancer_torch.swap.options import SwapOptions

    image = read_image(photos_dir / "fr_two_people.jpg")
    faces = sorted(swapper.detector.detect(image), key=lambda f: f.box[0])
    people = []
    for k, face in enumerate(faces):
        people.append(tmp_path / f"person_{k}.jpg")
        write_image(people[-1], _face_crop(image, face.box))
    sources = [photos_dir / "df_img1.jpg", photos_dir / "df_img20.jpg"]
    options = SwapOptions(mapping=list(zip(people, sources)))
    plan = swapper.plan(None, options)
    result = swapper.swap_image_detailed(image, plan, options)
    assert len(result.faces) == 2
    by_position = sorted(result.faces, key=lambda f: f.box[0])
    for face, (_, source) in zip(by_position, plan.mapping):
        assert face.source is source
    # Only the first person mapped: the second stays untouched.
    options = SwapOptions(mapping=[(people[0], sources[0])])
    result = swapper.swap_image_detailed(image, None, options)
    assert len(result.faces) == 1 and _box_iou(result.faces[0].box, faces[0].box) > 0.99


def test_image_without_faces_is_unchanged(swapper, photos_dir):
    from facedancer_torch.io.images import read_image

    image = read_image(photos_dir / "fr_two_people.jpg")[430:, :400].copy()
    assert swapper.detector.detect(image) == []  # precondition: really no face there
    result = swapper.swap_image_detailed(image, photos_dir / "df_img1.jpg")
    assert result.faces == [] and result.detected == 0
    np.testing.assert_array_equal(result.image, image)


def test_several_sources_average_their_directions(swapper, photos_dir):
    from facedancer_torch.swap.source import average_embeddings

    one = swapper.embed(photos_dir / "df_img20.jpg")
    two = swapper.embed(photos_dir / "df_img21.jpg")  # the same person (deepface pairs: Yes)
    both = swapper.embed([photos_dir / "df_img20.jpg", photos_dir / "df_img21.jpg"])
    direction = one.unit + two.unit
    np.testing.assert_allclose(both.unit, direction / np.linalg.norm(direction), atol=1e-5)
    mean_norm = (np.linalg.norm(one.embedding) + np.linalg.norm(two.embedding)) / 2
    assert np.linalg.norm(both.embedding) == pytest.approx(mean_norm, rel=1e-5)
    # One photo: its raw embedding, untouched.
    np.testing.assert_allclose(average_embeddings(one.embedding[None]).embedding,
                               one.embedding, rtol=1e-6)
    # Same person closer than another person.
    other = swapper.embed(photos_dir / "df_img1.jpg")
    assert 1 - one.unit @ two.unit < 1 - one.unit @ other.unit


def test_mask_padding_and_colour_match_stay_inside_their_masks(swapper, photos_dir):
    from facedancer_torch.io.images import read_image
    from facedancer_torch.swap.options import SwapOptions

    image = read_image(photos_dir / "fr_two_people.jpg")
    plan = swapper.plan(photos_dir / "df_img1.jpg")
    changed = {}
    for padding in (0.0, 0.1):
        options = SwapOptions(mask_padding=padding, color_match=True)
        result = swapper.swap_image_detailed(image, plan, options)
        inside = warped_masks_union(image.shape[:2], result.faces, swapper.mask(options))
        np.testing.assert_array_equal(result.image[~inside], image[~inside])
        changed[padding] = int((result.image != image).any(axis=2).sum())
    assert changed[0.1] > changed[0.0]


@pytest.mark.parametrize("part, corners", [("mouth", (3, 4)), ("eyes", (0, 1))])
def test_mouth_and_eyes_parts_keep_the_targets_own(swapper, photos_dir, part, corners):
    """``--mask ...+mouth`` (``+eyes``) keeps the target's lips and teeth (eyes): exact lip
    movement for a dub, the target's gaze; the rest of the face is swapped as before."""
    from facedancer_torch.faces.detect import largest_face
    from facedancer_torch.io.images import read_image
    from facedancer_torch.swap.options import SwapOptions

    image = read_image(photos_dir / "df_img1.jpg")
    plan = swapper.plan(photos_dir / "fr_obama.jpg")
    face = largest_face(swapper.detector.detect(image))
    # the middle of the feature: between its two landmarks (mouth corners; eye centres, a
    # small square around each)
    a, b = face.landmarks[corners[0]], face.landmarks[corners[1]]
    width = float(np.linalg.norm(b - a))
    region = np.zeros(image.shape[:2], bool)
    if part == "mouth":
        (x0, y0), (x1, y1) = np.minimum(a, b), np.maximum(a, b)
        region[int(y0 - 0.08 * width):int(y1 + 0.08 * width),
               int(x0 + 0.2 * width):int(x1 - 0.2 * width)] = True
    else:
        for x, y in (a, b):
            r = int(0.06 * width)
            region[int(y) - r:int(y) + r, int(x) - r:int(x) + r] = True
    # elsewhere on the face, away from the feature: the nose tip for the eyes, the bridge of
    # the nose between the eyes for the mouth
    x, y = face.landmarks[2] if part == "eyes" else face.landmarks[:2].mean(axis=0)
    r = int(0.06 * np.linalg.norm(face.landmarks[1] - face.landmarks[0]))
    cheek = np.zeros_like(region)
    cheek[int(y) - r:int(y) + r, int(x) - r:int(x) + r] = True
    default = swapper.swap_image(image, plan, SwapOptions())
    kept = swapper.swap_image(image, plan, SwapOptions(mask=f"box+hull+occlusion+{part}"))

    def change(out, where):
        return float(np.abs(out.astype(np.float32) - image)[where].mean())

    assert change(default, region) > 8.0 and change(kept, region) < 0.5
    assert change(kept, cheek) > 0.8 * change(default, cheek) > 4.0


def test_watermark_survives_one_jpeg_reencode(swapper, photos_dir, tmp_path):
    from PIL import Image

    from facedancer_torch.io.images import read_image
    from facedancer_torch.io.watermark import detect_watermark
    from facedancer_torch.swap.options import SwapOptions

    target = photos_dir / "fr_two_people.jpg"
    output = swapper.swap_image_file(target, tmp_path / "marked.png", photos_dir / "df_img1.jpg",
                                     SwapOptions()).path
    assert detect_watermark(read_image(output)).found
    assert not detect_watermark(read_image(target)).found
    again = tmp_path / "again.jpg"
    Image.open(output).convert("RGB").save(again)  # Pillow's default JPEG quality (75)
    assert detect_watermark(read_image(again)).found


def test_folder_is_mirrored_and_resumable(swapper, photos_dir, tmp_path):
    import shutil

    from facedancer_torch.io.images import read_image
    from facedancer_torch.io.provenance import read_provenance
    from facedancer_torch.swap.options import SwapOptions

    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    shutil.copy(photos_dir / "fr_two_people.jpg", folder / "two.jpg")
    shutil.copy(photos_dir / "df_img21.jpg", folder / "sub" / "one.jpg")
    (folder / "broken.png").write_bytes(b"not a png")
    (folder / "notes.txt").write_text("ignored")
    output = tmp_path / "out"
    options = SwapOptions(watermark=False)
    report = swapper.swap_folder(folder, output, photos_dir / "df_img1.jpg", options,
                                 progress=False)
    assert sorted(p.relative_to(output).as_posix() for p in report.written) == \
        ["sub/one.jpg", "two.jpg"]
    assert [p.name for p, _ in report.failed] == ["broken.png"]
    assert "broken.png" in report.failed[0][1]
    assert not (output / "broken.png").exists() and not (output / "notes.txt").exists()
    for name in ("two.jpg", "sub/one.jpg"):
        assert read_image(output / name).shape == read_image(folder / name).shape
        assert read_provenance(output / name)["content"] == "synthetic media"
    # A rerun resumes: finished outputs are kept, not redone.
    stamp = (output / "two.jpg").stat().st_mtime_ns
    (output / "sub" / "one.jpg").unlink()  # as if the first run had stopped before it
    report = swapper.swap_folder(folder, output, photos_dir / "df_img1.jpg", options,
                                 progress=False)
    assert [p.relative_to(output).as_posix() for p in report.written] == ["sub/one.jpg"]
    assert [p.relative_to(output).as_posix() for p in report.skipped] == ["two.jpg"]
    assert (output / "two.jpg").stat().st_mtime_ns == stamp


def test_a_generator_returning_its_input_gives_back_the_target(swapper, photos_dir):
    """Geometry check: align -> generate -> paste back must land every pixel where it came
    from, so a generator that returns the target crop leaves the photo as it was (up to the
    bilinear resampling of two warps)."""
    from facedancer_torch.io.images import read_image

    from facedancer_torch.swap.options import SwapOptions

    image = read_image(photos_dir / "if_t1.jpg")
    plan = swapper.plan(photos_dir / "df_img1.jpg")
    options = SwapOptions(profile_fade=False)  # every face, the profile too
    random_result = swapper.swap_image_detailed(image, plan, options)
    runner = swapper.runner
    swapper.runner = lambda x, z: x  # the generator's input comes back as its output
    try:
        result = swapper.swap_image_detailed(image, plan, options)
    finally:
        swapper.runner = runner
    assert len(result.faces) == 6
    for face in result.faces:
        x1, y1, x2, y2 = face.box.astype(int)
        same = np.abs(result.image[y1:y2, x1:x2].astype(int) - image[y1:y2, x1:x2]).mean()
        changed = np.abs(random_result.image[y1:y2, x1:x2].astype(int)
                         - image[y1:y2, x1:x2]).mean()
        # 64 px crops of ~110 px faces blur a little (~2 levels); one pixel off is ~5-6.
        assert same < 3.0 < changed, (same, changed)


def test_a_group_photo_as_source_says_which_face_it_took(swapper, photos_dir):
    """The largest face of a source photo is the person; where others are nearly as large
    (a group photo) that is a guess, and the warning names the face taken. A portrait with a
    small bystander, or one face, is taken without a word."""
    import warnings

    from facedancer_torch.faces.detect import largest_face
    from facedancer_torch.io.images import read_image
    from facedancer_torch.swap.source import rival_faces

    path = photos_dir / "fr_two_people.jpg"
    faces = swapper.detector.detect(read_image(path))
    largest = largest_face(faces)
    assert len(faces) == 2 and rival_faces(faces, largest) == 1
    with pytest.warns(UserWarning, match=r"fr_two_people\.jpg: 2 faces in the source image, 1 of"
                      r" the others nearly as large") as caught:
        swapper.embed([path], role="source")
    x0, y0 = (int(round(float(v))) for v in largest.box[:2])
    assert f"box {x0},{y0} to" in str(caught[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        swapper.embed([photos_dir / "df_selfie-many-people.jpg"])  # one face far larger
        swapper.embed([photos_dir / "fr_obama.jpg"])


def test_source_photos_of_different_people_warn(swapper, photos_dir):
    """Several --source photos are averaged as one person; photos of two people would make a
    face of neither, so the warning names them (two photos) or the odd one out (more), and
    the identity's notes keep it for the web UI. Photos of one person pass in silence."""
    import warnings

    from facedancer_torch.swap.source import mixed_people_note, odd_photo

    same = [photos_dir / "df_img20.jpg", photos_dir / "df_img21.jpg"]  # one person (0.10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert swapper.embed(same).notes == ()
    with pytest.warns(UserWarning, match=r"^fr_obama\.jpg and df_img5\.jpg look like different "
                                         r"people \(identity distance 0\.[6-9]"):
        swapper.embed([photos_dir / "fr_obama.jpg", photos_dir / "df_img5.jpg"])
    with pytest.warns(UserWarning, match=r"^fr_obama\.jpg looks like another person than the "
                                         r"other source photos") as caught:
        mixed = swapper.embed(same + [photos_dir / "fr_obama.jpg"])
    assert mixed.notes == (str(caught[0].message),)

    # The odd one among several: each photo against the others' mean direction.
    rng = np.random.default_rng(0)
    person, other = rng.normal(size=(2, 64))
    units = np.stack([person + rng.normal(scale=0.3, size=64) for _ in range(3)] + [other])
    units /= np.linalg.norm(units, axis=1, keepdims=True)
    index, distance = odd_photo(units)
    assert index == 3 and distance > 0.8
    assert odd_photo(units[:3])[1] < 0.2 and odd_photo(units[:1]) is None
    assert mixed_people_note(["a.jpg", "b.jpg", "c.jpg", "d.jpg"], units, 0.6).startswith(
        "d.jpg looks like another person than the other source photos (identity distance")
    assert mixed_people_note(["a.jpg", "b.jpg", "c.jpg"], units[:3], 0.6) is None


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_the_target_colour_profile_goes_with_the_swap(swapper, photos_dir, tmp_path, suffix):
    """df_img14.jpg is in Adobe RGB: written without its profile, a colour-managed viewer
    showed the whole swapped photo as sRGB, paler (pixels the swap did not touch up to 22
    levels off); the output carries the target's profile, also when nothing was swapped and
    the format changes."""
    from facedancer_torch.io.images import read_icc_profile
    from facedancer_torch.swap.options import SwapOptions

    target = photos_dir / "df_img14.jpg"
    plan = swapper.plan(photos_dir / "df_img1.jpg")
    report = swapper.swap_image_file(target, tmp_path / f"out{suffix}", plan,
                                     SwapOptions(watermark=False))
    assert report.changed
    assert read_icc_profile(report.path) == read_icc_profile(target) is not None
    unchanged = swapper.swap_image_file(target, tmp_path / "none.png", plan,
                                        SwapOptions(min_face_size=0.99))
    assert not unchanged.changed
    assert read_icc_profile(unchanged.path) == read_icc_profile(target)


def test_photo_at_n_takes_that_face_from_the_left(swapper, photos_dir):
    """``PHOTO@N`` (swap/source.py, split_face_choice): the N-th face from the left of a group
    photo, without the warning; the largest one is one of them; a file named with an @ stays
    a file; N out of range is one InputError naming the photo."""
    import warnings

    from facedancer_torch.errors import InputError
    from facedancer_torch.faces.detect import largest_face
    from facedancer_torch.io.images import read_image
    from facedancer_torch.swap.source import split_face_choice

    path = photos_dir / "fr_two_people.jpg"
    faces = swapper.detector.detect(read_image(path))
    ordered = sorted(faces, key=lambda f: float(f.box[0] + f.box[2]))
    place = next(i for i, f in enumerate(ordered, 1) if f is largest_face(faces))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a chosen face is not a guess: no warning
        chosen = [swapper.embed([f"{path}@{n}"]) for n in (1, 2)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the plain name warns (or is cached from a test)
        largest = swapper.embed([path])
    np.testing.assert_allclose(chosen[place - 1].embedding, largest.embedding, rtol=1e-5)
    assert float(chosen[0].unit @ chosen[1].unit) < 0.9  # two different people
    assert chosen[1].files == (f"{path}@2",)
    with pytest.raises(InputError, match=r"@3 asks for face 3 from the left, but the source "
                                         r"image has 2 face\(s\)"):
        swapper.embed([f"{path}@3"])
    assert split_face_choice(path) == (path, None)
    assert split_face_choice(f"{path}@2") == (str(path), 2)
    assert split_face_choice(photos_dir / "x.jpg@a") == (photos_dir / "x.jpg@a", None)


def test_source_face_is_the_face_the_swap_takes(swapper, photos_dir):
    """``source_face`` (swap/source.py), which benchmarks/quality.py measures a swap's identity
    against: the largest face, not the first one detected (gfp_Blake_Lively.jpg: the child
    beside her is detected first), or PHOTO@N's N-th from the left; the embedding
    ``load_identity`` makes is that face's."""
    import warnings

    from facedancer_torch.io.images import read_image
    from facedancer_torch.swap.source import embed_faces, source_face

    path = photos_dir / "gfp_Blake_Lively.jpg"
    image = read_image(path)
    faces = swapper.detector.detect(image)
    assert len(faces) == 2
    largest = source_face(faces)
    assert largest is not faces[0]  # the child comes first
    assert float(largest.box[0]) > float(faces[0].box[0])
    assert source_face(faces, 1) is faces[0] and source_face(faces, 2) is largest
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        identity = swapper.embed([path])
    raw = embed_faces(image, [largest.landmarks], swapper.encoder)[0]
    unit = raw / np.linalg.norm(raw)
    assert float(unit @ identity.unit) > 0.999


def _cut_out(image: np.ndarray) -> np.ndarray:
    """``image`` as a cut-out portrait: straight RGBA, opaque inside a soft ellipse around the
    person, transparent outside, with a hidden colour under the transparent part."""
    import cv2

    h, w = image.shape[:2]
    alpha = np.zeros((h, w), np.uint8)
    cv2.ellipse(alpha, (w // 2, int(h * 0.62)), (int(w * 0.38), int(h * 0.62)), 0, 0, 360, 255,
                -1)
    alpha = cv2.GaussianBlur(alpha, (0, 0), 6)
    colour = image.copy()
    colour[alpha == 0] = (20, 200, 60)  # what an editor left under the transparent part
    return np.dstack([colour, alpha])


@pytest.mark.parametrize("suffix", [".png", ".webp"])
def test_a_transparent_target_stays_transparent(swapper, photos_dir, tmp_path, suffix):
    """A cut-out portrait came back with a black background: the swap read it composited onto
    black and wrote RGB. Its transparency, and every pixel the swap did not touch, are kept;
    the face is swapped and labelled."""
    from PIL import Image

    from facedancer_torch.io.images import read_image, read_image_rgba
    from facedancer_torch.io.provenance import verify_file
    from facedancer_torch.swap.options import SwapOptions

    rgba = _cut_out(read_image(photos_dir / "fr_obama.jpg"))
    target = tmp_path / "cutout.png"
    Image.fromarray(rgba, "RGBA").save(target)
    composited, straight = read_image_rgba(target)
    np.testing.assert_array_equal(straight, rgba)
    np.testing.assert_array_equal(composited, read_image(target))
    plan = swapper.plan(photos_dir / "df_img1.jpg")
    report = swapper.swap_image_file(target, tmp_path / f"out{suffix}", plan, SwapOptions())
    assert report.swapped == 1
    out = np.asarray(Image.open(report.path))
    assert out.shape == rgba.shape  # RGBA, not RGB on black
    np.testing.assert_array_equal(out[:, :, 3], rgba[:, :, 3])
    box = swapper.detector.detect(composited)[0].box.astype(int)
    face = out[box[1]:box[3], box[0]:box[2], :3].astype(int)
    assert np.abs(face - rgba[box[1]:box[3], box[0]:box[2], :3]).mean() > 5.0
    hidden = rgba[:, :, 3] == 0
    if suffix == ".png":  # lossless: the hidden colour is kept too
        np.testing.assert_array_equal(out[hidden][:, :3], rgba[hidden][:, :3])
    found = verify_file(report.path)
    assert found.provenance is not None and found.watermark.found
    # A JPEG holds no alpha: the picture composited onto black, as it was read.
    report = swapper.swap_image_file(target, tmp_path / "out.jpg", plan, SwapOptions())
    dark = read_image(report.path)[hidden]
    assert dark.mean() < 8.0, dark.mean()


def test_a_sixteen_bit_photo_keeps_its_bits_where_nothing_changed(swapper, photos_dir,
                                                                   tmp_path):
    """A photographer's 16-bit PNG or TIFF came back at 8 bits everywhere (a smooth gradient
    kept 17 of its 800 levels); now the untouched pixels are the source's to the bit."""
    import cv2

    from facedancer_torch.io.fidelity import read_image_deep
    from facedancer_torch.io.images import read_image
    from facedancer_torch.io.provenance import read_provenance
    from facedancer_torch.swap.options import SwapOptions

    photo = read_image(photos_dir / "fr_obama.jpg")
    deep = photo.astype(np.uint16) * 257
    deep[:60] = (np.linspace(20000, 24000, photo.shape[1])[None, :, None]
                 * np.ones((60, 1, 3))).astype(np.uint16)
    target = tmp_path / "sixteen.png"
    cv2.imwrite(str(target), deep[:, :, ::-1])
    plan = swapper.plan(photos_dir / "df_img1.jpg")
    for suffix in (".png", ".tif"):
        report = swapper.swap_image_file(target, tmp_path / f"out{suffix}", plan,
                                         SwapOptions(watermark=False))
        assert report.swapped == 1
        out = read_image_deep(report.path)
        np.testing.assert_array_equal(out[:60], deep[:60])
        box = swapper.detector.detect(photo)[0].box.astype(int)
        face = (slice(box[1], box[3]), slice(box[0], box[2]))
        assert np.abs(out[face].astype(int) - deep[face]).mean() > 5 * 257
        assert read_provenance(report.path)["content"] == "synthetic media"
    report = swapper.swap_image_file(target, tmp_path / "out.jpg", plan, SwapOptions())
    assert read_image_deep(report.path) is None  # JPEG is 8-bit


def test_a_folder_writes_each_file_where_its_codec_fits(tmp_path):
    """--codec prores over a folder: an .mp4 (which cannot hold ProRes) is written as .mov, an
    FFV1 one as .mkv; animations keep their own format and codec."""
    from PIL import Image

    from facedancer_torch.swap.folder import mirrored_path

    target, output = tmp_path / "in", tmp_path / "out"
    target.mkdir()
    frames = [Image.new("RGB", (8, 8), (i, 0, 0)) for i in (0, 50)]
    frames[0].save(target / "loop.webp", save_all=True, append_images=frames[1:])
    assert mirrored_path(target / "clip.mp4", target, output, "prores") == output / "clip.mov"
    assert mirrored_path(target / "clip.mp4", target, output, "ffv1") == output / "clip.mkv"
    assert mirrored_path(target / "clip.mov", target, output, "prores") == output / "clip.mov"
    assert mirrored_path(target / "clip.avi", target, output) == output / "clip.mp4"
    assert mirrored_path(target / "loop.webp", target, output, "prores") == output / "loop.webp"


def test_a_jpeg_target_keeps_its_quality_outside_the_face(swapper, photos_dir, tmp_path):
    from facedancer_torch.io.images import read_image
    from facedancer_torch.swap.options import SwapOptions

    target = photos_dir / "df_img1.jpg"  # a large 4:4:4 JPEG
    options = SwapOptions(watermark=False)
    plan = swapper.plan(photos_dir / "df_img10.jpg", options)
    report = swapper.swap_image_file(target, tmp_path / "out.jpg", plan, options)
    original, swapped = read_image(target), read_image(report.path)
    detail = swapper.swap_image_detailed(original, plan, options)
    inside = warped_masks_union(original.shape[:2], detail.faces, swapper.mask(options))
    outside = np.abs(swapped.astype(int) - original)[~inside]
    assert outside.mean() < 0.3 and (outside.max(axis=1) > 4).mean() < 0.005, outside.mean()
    assert 0.7 < report.path.stat().st_size / target.stat().st_size < 1.4


def test_a_black_and_white_photo_stays_black_and_white(swapper, photos_dir, tmp_path,
                                                       monkeypatch):
    """The generator paints in colour: on a black-and-white photo the swapped face is grey
    (R = G = B), and the file stays one grey channel (a JPEG with its own single table, a
    16-bit PNG at 16 bits), labelled like any swap."""
    import cv2
    from PIL import Image

    from facedancer_torch.io.images import read_image
    from facedancer_torch.io.provenance import read_provenance
    from facedancer_torch.io.watermark import detect_watermark
    from facedancer_torch.swap import monochrome
    from facedancer_torch.swap.options import SwapOptions

    grey = cv2.cvtColor(read_image(photos_dir / "fr_obama.jpg"), cv2.COLOR_RGB2GRAY)
    target = tmp_path / "bw.jpg"
    Image.fromarray(grey).save(target, quality=80)
    photo = read_image(target)
    assert monochrome.is_monochrome(photo)
    assert not monochrome.is_monochrome(read_image(photos_dir / "fr_obama.jpg"))
    options = SwapOptions(watermark=False)
    plan = swapper.plan(photos_dir / "df_img1.jpg", options)
    swapped = swapper.swap_image_detailed(photo, plan, options).image
    assert np.abs(swapped.astype(int) - photo).max() > 20  # the face changed ...
    assert (swapped == swapped[:, :, :1]).all()  # ... and is grey
    with monkeypatch.context() as patch:  # without the rule, the swap has colour
        patch.setattr(monochrome, "MONOCHROME_TOLERANCE", -1)
        coloured = swapper.swap_image_detailed(photo, plan, options).image
        assert np.abs(coloured[:, :, 0].astype(int) - coloured[:, :, 1]).max() > 5

    for suffix in (".jpg", ".png"):
        report = swapper.swap_image_file(target, tmp_path / f"out{suffix}", plan, SwapOptions())
        with Image.open(report.path) as image:
            assert image.mode == "L", suffix
            if suffix == ".jpg":
                assert len(image.quantization) == 1
        assert read_provenance(report.path)["content"] == "synthetic media"
        assert detect_watermark(read_image(report.path)).found

    deep = grey.astype(np.uint16) * 257
    target16 = tmp_path / "bw16.png"
    cv2.imwrite(str(target16), deep)
    report = swapper.swap_image_file(target16, tmp_path / "out16.png", plan, options)
    with Image.open(report.path) as image:
        assert image.mode.startswith("I;16") or image.mode == "I", image.mode
    out = cv2.imread(str(report.path), cv2.IMREAD_UNCHANGED)
    assert out.dtype == np.uint16 and out.ndim == 2
    assert (out == deep).mean() > 0.5  # untouched pixels keep their 16 bits
