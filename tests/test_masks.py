"""Blend masks and colour matching (faces/masks.py)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facedancer_torch.faces import color, masks


def test_reference_mask_equals_the_authors_scipy_code():
    ndimage = pytest.importorskip("scipy.ndimage")
    reference = np.zeros((256, 256))
    reference[77:240, 32:224] = 1  # swap_func.py of the reference implementation
    reference = ndimage.gaussian_filter(reference, sigma=7)
    mask = masks.box_mask(256)
    assert mask.shape == (256, 256) and mask.dtype == np.float32
    np.testing.assert_allclose(mask, reference, atol=1e-5)


def test_hard_box_and_scaling():
    hard = masks.box_mask(256, blur=0)
    rows, cols = np.nonzero(hard)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (77, 239, 32, 223)
    assert set(np.unique(hard)) == {0.0, 1.0}
    big = masks.box_mask(512)
    small = cv2.resize(big, (256, 256), interpolation=cv2.INTER_AREA)
    assert np.abs(small - masks.box_mask(256)).max() < 0.02  # same shape at twice the size
    assert masks.box_mask(112).shape == (112, 112)
    assert masks.box_mask(256, blur=None).max() == pytest.approx(1.0)


def test_padding_and_blur_options():
    base = masks.box_mask(256, blur=0)
    grown = masks.box_mask(256, blur=0, padding=0.05)
    shrunk = masks.box_mask(256, blur=0, padding=-0.05)
    assert grown.sum() > base.sum() > shrunk.sum()
    assert np.all(grown >= base) and np.all(shrunk <= base)
    rows, cols = np.nonzero(masks.box_mask(256, blur=0, padding=(0.1, 0, 0, 0)))
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (51, 239, 32, 223)
    huge = masks.box_mask(256, blur=0, padding=0.5)  # clipped to the crop
    assert huge.min() == 1.0
    soft = masks.box_mask(256, blur=14)
    assert soft[158, 128] == pytest.approx(1.0, abs=1e-3)
    assert soft[77, 128] < masks.box_mask(256)[77, 128] + 0.05  # edge stays near 0.5
    assert np.abs(np.diff(soft, axis=0)).max() < np.abs(np.diff(masks.box_mask(256),
                                                                axis=0)).max()
    with pytest.raises(ValueError):
        masks.box_mask(256, blur=-1)
    with pytest.raises(ValueError):
        masks.box_mask(256, padding=(0.1, 0.2))


def test_gaussian_blur_matches_scipy():
    ndimage = pytest.importorskip("scipy.ndimage")
    rng = np.random.default_rng(0)
    image = rng.random((60, 70)).astype(np.float32)
    for sigma in (1.0, 2.5, 7.0):
        np.testing.assert_allclose(masks.gaussian_blur(image, sigma),
                                   ndimage.gaussian_filter(image.astype(np.float64), sigma),
                                   atol=1e-5)


@pytest.fixture(scope="module")
def face_crop(photos_dir):
    from facedancer_torch.faces.align import align_face
    from facedancer_torch.faces.detect import get_detector, largest_face
    from facedancer_torch.io.images import read_image

    image = read_image(photos_dir / "df_img1.jpg")
    face = largest_face(get_detector(device="cpu").detect(image))
    crop, _ = align_face(image, face.landmarks, 256)
    return crop


def _lab_stats(rgb: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lab = cv2.cvtColor(rgb.astype(np.float32) / 255, cv2.COLOR_RGB2LAB)
    w = (mask / mask.sum())[..., None]
    mean = (lab * w).sum((0, 1))
    return mean, np.sqrt((((lab - mean) ** 2) * w).sum((0, 1)))


def test_color_match_undoes_a_colour_cast(face_crop):
    mask = masks.box_mask(256)
    cast = face_crop.astype(np.float32) * np.array([1.15, 0.95, 0.8]) + np.array([0, 8, 0])
    cast = np.clip(cast, 0, 255).astype(np.uint8)
    matched = color.color_match(cast, face_crop, mask)
    assert matched.shape == face_crop.shape and matched.dtype == np.uint8
    target_mean, target_std = _lab_stats(face_crop, mask)
    cast_mean, _ = _lab_stats(cast, mask)
    got_mean, got_std = _lab_stats(matched, mask)
    assert np.abs(cast_mean - target_mean).max() > 5  # the cast is visible
    assert np.abs(got_mean - target_mean).max() < 1.0
    np.testing.assert_allclose(got_std, target_std, rtol=0.1)
    inside = mask > 0.5
    error_before = np.abs(cast.astype(int) - face_crop)[inside].mean()
    error_after = np.abs(matched.astype(int) - face_crop)[inside].mean()
    assert error_after < 0.4 * error_before


def test_color_match_strength_and_degenerate_masks(face_crop):
    mask = masks.box_mask(256)
    shifted = np.clip(face_crop.astype(int) + 30, 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(color.color_match(shifted, face_crop, mask, strength=0),
                                  shifted)
    np.testing.assert_array_equal(color.color_match(shifted, face_crop, np.zeros((256, 256))),
                                  shifted)
    half = color.color_match(shifted, face_crop, mask, strength=0.5)
    full = color.color_match(shifted, face_crop, mask)
    inside = mask > 0.5
    d_half = np.abs(half.astype(int) - face_crop)[inside].mean()
    d_full = np.abs(full.astype(int) - face_crop)[inside].mean()
    d_none = np.abs(shifted.astype(int) - face_crop)[inside].mean()
    assert d_full < d_half < d_none
    with pytest.raises(ValueError):
        color.color_match(shifted[:100], face_crop, mask)


def test_chroma_by_lightness_does_not_paint_dark_make_up_onto_a_lighter_lid(face_crop):
    """The target has a dark mauve patch (make-up) that the swap has lighter (the generator's
    lid): the plain local field gives the lighter pixels the make-up's chroma (a lavender
    patch, cool against the skin), the lightness-aware one the chroma of the target's pixels
    of their lightness nearby (the skin's); ``keep_plain`` keeps the plain field where asked."""
    target = face_crop.copy()
    lab = color.to_lab(target)
    patch = (slice(100, 116), slice(90, 130))
    skin_b = float(lab[..., 2][patch].mean())
    lab[..., 0][patch] = 35.0                     # dark
    lab[..., 1][patch], lab[..., 2][patch] = 20.0, 2.0  # mauve: red, not yellow
    target = color.from_lab(lab)
    swap_lab = color.to_lab(face_crop)            # the swap keeps the skin's lightness there
    swap_lab[..., 1:][patch] = (20.0, 2.0)        # ... and the generator copied the chroma
    swap = color.from_lab(swap_lab)
    mask = masks.box_mask(256)
    sigma = 0.02 * 256
    plain = color.fit_colour(swap, target, mask, local_sigma=sigma).apply(swap)
    similar = color.fit_colour(swap, target, mask, local_sigma=sigma,
                               similar=(0.05 * 256, 12.0)).apply(swap)
    b_plain = float(color.to_lab(plain)[..., 2][patch].mean())
    b_similar = float(color.to_lab(similar)[..., 2][patch].mean())
    assert b_plain < 6.0 < skin_b - 5.0 < b_similar, (b_plain, b_similar, skin_b)
    keep = np.zeros((256, 256), np.float32)
    keep[patch] = 1.0
    kept = color.fit_colour(swap, target, mask, local_sigma=sigma, similar=(0.05 * 256, 12.0),
                            keep_plain=keep).apply(swap)
    assert abs(float(color.to_lab(kept)[..., 2][patch].mean()) - b_plain) < 1.0


def test_a_band_of_rows_is_corrected_as_the_whole_crop_is(face_crop):
    """``ColourTransfer.apply_rows`` (the eye, nostril and lip passes correct only the rows
    their zones reach) gives those rows of ``apply`` exactly, with a local chroma field and a
    lightness field fitted at the crop's size, and for the identity."""
    swap = np.ascontiguousarray(face_crop[:, ::-1])
    transfer = color.fit_colour(swap, face_crop, masks.box_mask(256), local_sigma=0.02 * 256,
                                carry=(1.0, 0.05 * 256))
    transfer.lightness = np.linspace(-5.0, 5.0, 256 * 256, dtype=np.float32).reshape(256, 256)
    whole = transfer.apply(swap)
    for rows in (slice(90, 140), slice(0, 7), slice(250, 256)):
        np.testing.assert_array_equal(transfer.apply_rows(swap, rows), whole[rows])
    np.testing.assert_array_equal(color.identity_transfer().apply_rows(swap, slice(3, 9)),
                                  swap[3:9])


def test_carried_lightness_keeps_a_cool_brow_visible_once_it_takes_the_skins_colour(face_crop):
    """The generator paints a brow as a grey-blue stripe only a little darker than the skin;
    the local colour field gives it the skin's chroma and it all but vanishes. ``carry`` gives
    the chroma contrast that was taken back as darkness, only to pixels darker than their
    neighbourhood, only where ``carry_where`` allows; skin away from it is left alone."""
    swap_lab = color.to_lab(face_crop)
    dark, light = (slice(60, 68), slice(70, 120)), (slice(60, 68), slice(140, 190))
    for stripe, shift in ((dark, -6.0), (light, 6.0)):
        swap_lab[..., 0][stripe] += shift
        swap_lab[..., 1][stripe], swap_lab[..., 2][stripe] = -2.0, -8.0  # grey-blue
    swap = color.from_lab(swap_lab)
    mask, sigma = masks.box_mask(256), 0.02 * 256
    kwargs = dict(local_sigma=sigma, similar=(0.05 * 256, 12.0))
    plain = color.to_lab(color.fit_colour(swap, face_crop, mask, **kwargs).apply(swap))
    band = np.zeros((256, 256), np.float32)
    band[50:78] = 1.0  # the brows' zone (compose uses masks.brow_zone)
    carried = color.to_lab(color.fit_colour(swap, face_crop, mask, carry=(1.0, 0.05 * 256),
                                            carry_where=band, **kwargs).apply(swap))
    nowhere = color.to_lab(color.fit_colour(swap, face_crop, mask, carry=(1.0, 0.05 * 256),
                                            carry_where=np.zeros((256, 256), np.float32),
                                            **kwargs).apply(swap))
    skin_b = float(plain[..., 2][40:56, 70:120].mean())
    assert float(plain[..., 2][dark].mean()) > skin_b - 6.0  # the stripe took the skin's colour
    drop = float(plain[..., 0][dark].mean() - carried[..., 0][dark].mean())
    assert drop > 7.0, drop  # ... and came back darker (more than its own 6 L again)
    assert abs(float(plain[..., 0][light].mean() - carried[..., 0][light].mean())) < 1.0
    np.testing.assert_allclose(carried[80:], plain[80:], atol=1e-3)  # outside the zone
    np.testing.assert_allclose(nowhere, plain, atol=1e-3)
    zone = masks.brow_zone(np.zeros((68, 2)) + 128, 256)  # degenerate points: no crash
    assert zone.shape == (256, 256)


def test_eye_darkness_brings_back_a_lost_dark_core_and_leaves_a_healthy_eye(face_crop):
    """``eye_darkness``: an eye whose darkest tenth is much lighter than the target's takes
    the target's darker pixels (to within the margin) inside its zone; an eye as dark as the
    target's, and everything outside the zones, keep the swap's lightness."""
    target_lab = color.to_lab(face_crop)
    eye, core = (slice(96, 112), slice(70, 100)), (slice(100, 108), slice(80, 88))
    target_lab[eye] = (75.0, 0.0, 0.0)  # the eye's white (neutral: in gamut) ...
    target_lab[..., 0][core] = 10.0  # ... with a dark pupil in the target
    target = color.from_lab(target_lab)
    swap_lab = target_lab.copy()
    swap_lab[..., 0][core] = 45.0  # the swap painted it grey
    swap = color.from_lab(swap_lab)
    opening = np.zeros((256, 256), bool)
    opening[eye] = True
    around = masks.gaussian_blur(opening.astype(np.float32), 2.0)
    plain = color.identity_transfer()
    out = color.eye_darkness(color.identity_transfer(), swap, target, [(opening, around)],
                             (0.0, 10.0), 4.0).apply(swap)
    light = color.to_lab(out)[..., 0]
    assert float(light[core].mean()) < 15.0, float(light[core].mean())  # within the margin
    away = np.ones((256, 256), bool)
    away[80:130, 50:120] = False
    round_trip = color.from_lab(color.to_lab(swap))  # what apply() does to any pixel
    assert np.abs(out.astype(int) - round_trip)[away].max() == 0
    # The same eye with the swap as dark as the target: nothing changes.
    same = color.eye_darkness(color.identity_transfer(), target, target, [(opening, around)],
                              (0.0, 10.0), 4.0)
    assert same.lightness is None and same.is_identity
    # A gap under the gate's start leaves it alone; half way gets half the darkness.
    assert color.eye_darkness(color.identity_transfer(), swap, target, [(opening, around)],
                              (40.0, 60.0), 4.0).lightness is None
    half = color.eye_darkness(color.identity_transfer(), swap, target, [(opening, around)],
                              (0.0, 2 * 35.0), 4.0).apply(swap)
    assert 20.0 < float(color.to_lab(half)[..., 0][core].mean()) < 35.0
    assert plain.is_identity
    # The whites' pass leaves a grey pupil alone: it only carries lighter target pixels.
    assert color.eye_whites(color.identity_transfer(), swap, target, [(opening, around)],
                            (0.0, 10.0), 4.0).lightness is None


def test_paired_eyes_take_the_same_darkness_and_a_healthy_partner_is_left(face_crop):
    """``paired``: of a face's two eyes, one lost its dark core badly (full weight), the other
    only a little (under the gate's end: a fraction on its own). Alone, the second keeps most
    of its grey; paired, its opening takes the target's darkness as the first does, but not
    the target's eyeliner above it. A partner whose darkest tenth is within the margin of the
    target's is left alone, though part of it (a lash line) is lighter than the target's."""
    target_lab = color.to_lab(face_crop)
    eyes = [(slice(96, 112), slice(50, 80)), (slice(96, 112), slice(150, 180))]
    cores = [(slice(100, 108), slice(60, 68)), (slice(100, 108), slice(160, 168))]
    liner = (slice(90, 93), slice(150, 180))  # over the second eye, inside its zone
    lashes = (slice(96, 98), slice(150, 180))  # the top of its opening
    for eye, core in zip(eyes, cores):
        target_lab[eye] = (75.0, 0.0, 0.0)
        target_lab[..., 0][core] = 10.0
    swap_lab = target_lab.copy()
    target_lab[..., 0][liner] = 20.0
    target_lab[..., 0][lashes] = 20.0
    swap_lab[..., 0][lashes] = 40.0
    target = color.from_lab(target_lab)
    per_eye = []
    for eye in eyes:
        opening = np.zeros((256, 256), bool)
        opening[eye] = True
        per_eye.append((opening, masks.gaussian_blur(opening.astype(np.float32), 4.0)))

    def run(second: float, paired: bool) -> np.ndarray:
        lab = swap_lab.copy()
        lab[..., 0][cores[0]] = 45.0  # lost: 35 L* lighter
        lab[..., 0][cores[1]] = second
        swap = color.from_lab(lab)
        out = color.eye_darkness(color.identity_transfer(), swap, target, per_eye,
                                 (5.0, 30.0), 4.0, paired=paired).apply(swap)
        return color.to_lab(out)[..., 0]

    alone, paired = run(25.0, False), run(25.0, True)  # the second eye 15 L* lighter
    assert float(alone[cores[0]].mean()) < 18.0 and float(paired[cores[0]].mean()) < 18.0
    # On its own gate the second eye goes (15 - 5) / 25 = 0.4 of the way; paired, all of it.
    assert float(alone[cores[1]].mean()) > 19.0, float(alone[cores[1]].mean())
    assert float(paired[cores[1]].mean()) < 15.0, float(paired[cores[1]].mean())
    # What is lent stays in the opening: the eyeliner above it only as alone (0.4 of it).
    np.testing.assert_allclose(paired[liner], alone[liner], atol=1e-3)
    # A partner's darkest tenth 3 L* from the target's (within the margin): left as it is.
    np.testing.assert_allclose(run(13.0, True)[lashes], run(13.0, False)[lashes], atol=1e-3)


def test_eye_whites_bring_back_a_dull_white_and_leave_iris_and_bright_eyes(face_crop):
    """``eye_whites``: an eye whose brightest tenth is much darker than the target's (a grey
    white) takes the target's lighter pixels (to within the margin) inside its zone; its iris
    and pupil, darker in the target, keep the swap's lightness; an eye as bright as the
    target's, and everything outside the zone, are left alone."""
    target_lab = color.to_lab(face_crop)
    eye, core = (slice(96, 112), slice(70, 100)), (slice(98, 110), slice(80, 90))
    target_lab[eye] = (80.0, 0.0, 0.0)  # the white ...
    target_lab[..., 0][core] = 15.0  # ... and the iris
    target = color.from_lab(target_lab)
    swap_lab = target_lab.copy()
    swap_lab[..., 0][eye] = 55.0  # the swap painted the white grey ...
    swap_lab[..., 0][core] = 35.0  # ... and its iris a little lighter than the target's
    swap = color.from_lab(swap_lab)
    opening = np.zeros((256, 256), bool)
    opening[eye] = True
    white = opening.copy()
    white[core] = False
    zone = masks.gaussian_blur(opening.astype(np.float32), 0.5)
    out = color.eye_whites(color.identity_transfer(), swap, target, [(opening, zone)],
                           (5.0, 15.0), 4.0).apply(swap)
    light = color.to_lab(out)[..., 0]
    inner = np.zeros_like(white)
    inner[98:110, 72:98] = True  # away from the zone's soft edge
    assert float(light[white & inner].mean()) > 74.0, float(light[white & inner].mean())
    assert abs(float(light[core].mean()) - 35.0) < 1.0  # the iris is the swap's
    round_trip = color.from_lab(color.to_lab(swap))  # what apply() does to any pixel
    away = np.ones((256, 256), bool)
    away[90:118, 64:106] = False
    assert np.abs(out.astype(int) - round_trip)[away].max() == 0
    # As bright as the target: nothing; under the gate's start: nothing; half way: about half.
    same = color.eye_whites(color.identity_transfer(), target, target, [(opening, zone)],
                            (5.0, 15.0), 4.0)
    assert same.lightness is None and same.is_identity
    assert color.eye_whites(color.identity_transfer(), swap, target, [(opening, zone)],
                            (30.0, 40.0), 4.0).lightness is None
    half = color.eye_whites(color.identity_transfer(), swap, target, [(opening, zone)],
                            (0.0, 50.0), 4.0).apply(swap)
    assert 60.0 < float(color.to_lab(half)[..., 0][white & inner].mean()) < 70.0
    # The darkness pass leaves a grey white alone: it only carries darker target pixels
    # (here the iris's, which the swap painted lighter).
    dark = color.eye_darkness(color.identity_transfer(), swap, target, [(opening, zone)],
                              (0.0, 10.0), 4.0).lightness
    assert np.abs(dark[white & inner]).max() == 0.0 and dark[core].mean() < -10.0


def test_eye_irises_bring_back_an_iris_painted_over_and_leave_the_lash_line_judge(face_crop):
    """``eye_irises``: an opening the swap painted as lid (the iris a pale smear) while its
    lash line stays as dark as the target's: its darkest tenth is within any gate, so the
    darkness pass leaves it; judged by the median, the iris takes the target's darkness back
    (to within the margin), the white and everything outside the opening keep the swap's
    lightness; an eye whose median is as the target's is left alone."""
    target_lab = color.to_lab(face_crop)
    eye, iris = (slice(96, 112), slice(70, 100)), (slice(98, 112), slice(76, 94))
    lashes = (slice(96, 98), slice(70, 100))
    target_lab[eye] = (78.0, 0.0, 0.0)  # the white ...
    target_lab[..., 0][iris] = 25.0     # ... a dark iris (over half the opening) ...
    target_lab[..., 0][lashes] = 12.0   # ... and the lash line
    target = color.from_lab(target_lab)
    swap_lab = target_lab.copy()
    swap_lab[..., 0][iris] = 65.0       # the swap's lid painted over the iris
    swap = color.from_lab(swap_lab)
    opening = np.zeros((256, 256), bool)
    opening[eye] = True
    zone = masks.gaussian_blur(opening.astype(np.float32), 0.5)
    # The darkest tenth (the lash line) is the target's: no darkness pass weight at all.
    assert color.eye_darkness(color.identity_transfer(), swap, target, [(opening, zone)],
                              (5.0, 15.0), 4.0).lightness is None
    out = color.eye_irises(color.identity_transfer(), swap, target, [(opening, zone)],
                           (10.0, 20.0), 4.0).apply(swap)
    light = color.to_lab(out)[..., 0]
    inner = (slice(100, 110), slice(78, 92))
    assert float(light[inner].mean()) < 30.0, float(light[inner].mean())  # within the margin
    # The white beside the iris is lighter in the target than the margin allows: kept.
    white = np.zeros((256, 256), bool)
    white[100:110, 71:75] = white[100:110, 95:99] = True
    base = color.to_lab(color.from_lab(color.to_lab(swap)))[..., 0]
    assert float(np.abs(light - base)[white].max()) < 0.5
    round_trip = color.from_lab(color.to_lab(swap))  # what apply() does to any pixel
    away = np.ones((256, 256), bool)
    away[90:118, 64:106] = False
    assert np.abs(out.astype(int) - round_trip)[away].max() == 0
    # The swap's median as the target's: nothing; under the gate's start: nothing.
    assert color.eye_irises(color.identity_transfer(), target, target, [(opening, zone)],
                            (10.0, 20.0), 4.0).lightness is None
    assert color.eye_irises(color.identity_transfer(), swap, target, [(opening, zone)],
                            (45.0, 60.0), 4.0).lightness is None


def test_eye_zone_on_a_frame_is_the_square_crops_zone_cut_to_its_shape():
    """The eye masks take an (H, W) canvas (benchmarks/quality.py's eye flicker on whole video
    frames) and mean the same pixels as on a square one; an eye past the edge is cut off."""
    points = np.full((68, 2), 64.0, np.float32)
    for start, cx in ((36, 30.0), (42, 196.0)):  # the image-right eye partly past x = 200
        points[start:start + 6] = [(cx - 10, 50), (cx - 5, 46), (cx + 5, 46), (cx + 10, 50),
                                   (cx + 5, 54), (cx - 5, 54)]
    square = masks.eye_zone(points, 256)
    frame = masks.eye_zone(points, (100, 200))
    assert frame.shape == (100, 200)
    np.testing.assert_array_equal(frame, square[:100, :200])
    assert frame[50, 30] and frame[50, 199] and not frame[50, 100]
    # grown by 0.35 of the 20 px eye width (7 px) around the 8 px tall opening, no further
    assert frame[40, 30] and not frame[36, 30]
    np.testing.assert_array_equal(masks.eye_opening(points, 0, (100, 200)),
                                  masks.eye_opening(points, 0, 256)[:100, :200])


def test_cast_shadows_carry_a_large_shadow_and_leave_features_and_light_alone():
    """faces/color.py cast_shadows: a shadow larger than the disc is carried into an evenly
    lit swap with its depth; brows and an eye (narrower than the disc) are not, nor is a
    region where the target is lighter than the swap."""
    size = 128
    skin = np.zeros((size, size, 3), np.uint8)
    skin[:] = (200, 150, 125)
    target = skin.copy()
    target[:40] = (80, 60, 50)                       # a hard shadow over the top third
    target[110:] = (235, 200, 180)                   # a lit chin: lighter than the swap
    cv2.line(target, (20, 70), (50, 66), (60, 45, 40), 4)   # a brow
    cv2.ellipse(target, (85, 88), (10, 4), 0, 0, 360, (40, 30, 30), -1)  # an eye
    weights = np.ones((size, size), np.float32)
    transfer = color.cast_shadows(color.identity_transfer(), skin, target, weights,
                                  radius=0.16 * size, margin=6.0)
    change = transfer.lightness
    gap = color.to_lab(target)[..., 0] - color.to_lab(skin)[..., 0]
    assert gap[:30].mean() < -30
    np.testing.assert_allclose(change[:28], gap[:28], atol=2.0)  # the shadow's depth
    assert np.abs(change[62:100]).max() < 1.0       # brow and eye: features, not shade
    assert change[112:].max() <= 0.0 and np.abs(change[116:]).max() < 1.0  # no lightening
    lightness = color.to_lab(transfer.apply(skin))[..., 0]
    assert np.abs(lightness[:28] - color.to_lab(target)[:28, :, 0]).mean() < 2.0
    assert np.abs(lightness[50:60] - color.to_lab(skin)[50:60, :, 0]).max() < 1.0  # edge kept
    # Off (amount 0) and an even target change nothing.
    assert color.cast_shadows(color.identity_transfer(), skin, target, weights, 20.0, 6.0,
                              amount=0.0).is_identity
    assert color.cast_shadows(color.identity_transfer(), skin, skin, weights, 20.0,
                              6.0).is_identity


def test_brow_depth_deepens_the_swaps_own_pale_brow_to_the_targets_depth():
    """``brow_depth``: a brow the swap paints pale (8 L* below the skin) where the target's is
    deep (35) is deepened in the swap's own shape, at most the gain times and never deeper
    than the target's brow; the target's brow shape is not pasted, skin is left alone, and a
    brow as deep as the target's is not changed."""
    skin = np.zeros((128, 128, 3), np.float32)
    skin[...] = (70.0, 12.0, 16.0)
    target_lab, swap_lab = skin.copy(), skin.copy()
    target_lab[60:68, 30:100, 0] = 35.0  # the target's dark brow
    swap_lab[56:62, 34:104, 0] = 62.0    # the swap's pale brow, a little higher
    target, swap = color.from_lab(target_lab), color.from_lab(swap_lab)
    zone = np.zeros((128, 128), np.float32)
    zone[50:74, 24:110] = 1.0
    brows = [(zone > 0.5, masks.gaussian_blur(zone, 1.0))]
    out = color.brow_depth(color.identity_transfer(), swap, target, brows, 10.0, 5.0, 3.0)
    light = color.to_lab(out.apply(swap))[..., 0]
    # 8 L* deep times 3 (the gain's cap; 35 / 8 is more): about 24 deep.
    brow = float(np.median(light[57:61, 40:98]))
    assert 43.0 < brow < 50.0, brow
    assert abs(float(np.median(light[64:68, 40:98])) - 70.0) < 1.0  # not the target's shape
    assert abs(float(np.median(light[20:40, 20:110])) - 70.0) < 1.0  # skin
    # Capped by the target's depth: a gain of 10 stops at 35 below the skin.
    deep = color.brow_depth(color.identity_transfer(), swap, target, brows, 10.0, 5.0, 10.0)
    deepest = float(color.to_lab(deep.apply(swap))[..., 0][57:61, 40:98].min())
    assert deepest > 70.0 - 35.0 - 1.5, deepest
    # As deep as the target's, or within the margin: nothing to do.
    same = color.brow_depth(color.identity_transfer(), target, target, brows, 10.0, 5.0, 3.0)
    assert same.lightness is None
    assert color.brow_depth(color.identity_transfer(), swap, target, brows, 10.0, 30.0,
                            3.0).lightness is None


def test_brow_shelves_lifts_the_pale_band_at_the_targets_brow_and_keeps_the_swaps_brow():
    """``brow_shelves``: the swap's dark brow lies lower than the target's and a pale band
    (8 L* below the skin) joins it at the target's brow line, a second brow. The band comes
    back as skin; the swap's brow, its soft edge and the skin stay as they are. A swap brow
    without a band, a band where the target has no brow, and amount 0 change nothing."""
    skin = np.zeros((128, 128, 3), np.float32)
    skin[...] = (70.0, 12.0, 16.0)
    target_lab, swap_lab = skin.copy(), skin.copy()
    target_lab[52:59, 30:100, 0] = 35.0   # the target's brow
    swap_lab[52:58, 30:100, 0] = 62.0     # the pale band where the target's brow is
    swap_lab[58:59, 30:100, 0] = 50.0     # the swap brow's soft edge
    swap_lab[59:65, 30:100, 0] = 35.0     # the swap's own brow, lower
    target, swap = color.from_lab(target_lab), color.from_lab(swap_lab)
    zone = np.zeros((128, 128), np.float32)
    zone[48:68, 26:104] = 1.0
    brows = [((slice(40, 76), slice(28, 102)), masks.gaussian_blur(zone, 1.0), 1.5, 4.0)]
    out = color.brow_shelves(color.identity_transfer(), swap, target, brows, 10.0, 0.5)
    light = color.to_lab(out.apply(swap))[..., 0]
    before = color.to_lab(swap)[..., 0]
    assert abs(float(np.median(light[52:56, 40:90])) - 70.0) < 2.0  # the band is skin
    np.testing.assert_allclose(light[59:65, 40:90], before[59:65, 40:90], atol=1.0)  # brow
    np.testing.assert_allclose(light[57:59, 40:90], before[57:59, 40:90], atol=1.0)  # edge
    np.testing.assert_allclose(light[:44], before[:44], atol=1.0)                    # skin
    np.testing.assert_allclose(light[70:], before[70:], atol=1.0)
    # No band: the swap's brow alone (with its soft edge) is left as it is.
    plain_lab = skin.copy()
    plain_lab[58:59, 30:100, 0] = 50.0
    plain_lab[59:65, 30:100, 0] = 35.0
    plain = color.from_lab(plain_lab)
    kept = color.brow_shelves(color.identity_transfer(), plain, target, brows, 10.0, 0.5)
    assert kept.lightness is None or np.abs(kept.lightness).max() < 1.0
    # Lashes at the window's foot, below the brow's line, far darker than a pale brow: the
    # core is looked for on the line, and the brow is no shelf above the lashes.
    lashes_lab = skin.copy()
    lashes_lab[55:61, 30:100, 0] = 50.0
    lashes_lab[71:74, 30:100, 0] = 10.0
    lashes = color.from_lab(lashes_lab)
    below = color.brow_shelves(color.identity_transfer(), lashes, target, brows, 10.0, 0.5)
    light = color.to_lab(below.apply(lashes))[..., 0]
    np.testing.assert_allclose(light[55:61, 40:90], color.to_lab(lashes)[55:61, 40:90, 0],
                               atol=1.0)
    # The band where the target has skin (its brow higher still) is the swap's own (a brow
    # drawn thick): kept.
    higher_lab = skin.copy()
    higher_lab[41:47, 30:100, 0] = 35.0
    higher = color.from_lab(higher_lab)
    own = color.brow_shelves(color.identity_transfer(), swap, higher, brows, 10.0, 0.5)
    assert own.lightness is None or np.abs(own.lightness).max() < 1.0
    assert color.brow_shelves(color.identity_transfer(), swap, target, brows, 10.0, 0.5,
                              amount=0.0).is_identity


def test_brow_passes_judge_the_swaps_brow_on_its_own_line():
    """``own``: the swap's dark brow lies below the target's brow line, and a faint copy of
    the target's brow (half as dark, apart from it by skin) stands at that line. Judged on the
    target's line, the shelf pass takes the copy for the brow's core and keeps it, and the
    depth pass takes it for a pale brow and deepens it. Judged on the swap's own line, the
    copy is lifted to the skin, the swap's brow is kept, and it is not deepened (it is as deep
    as the target's)."""
    skin = np.zeros((128, 128, 3), np.float32)
    skin[...] = (70.0, 12.0, 16.0)
    target_lab, swap_lab = skin.copy(), skin.copy()
    target_lab[50:57, 30:100, 0] = 35.0   # the target's brow
    swap_lab[51:55, 30:100, 0] = 54.0     # the faint copy at its line, 16 L* deep
    swap_lab[60:66, 30:100, 0] = 36.0     # the swap's own brow, lower, apart by skin
    target, swap = color.from_lab(target_lab), color.from_lab(swap_lab)
    theirs = np.zeros((128, 128), np.float32)
    theirs[46:61, 26:104] = 1.0           # the target's line: the copy and the brow's top
    mine = np.zeros((128, 128), np.float32)
    mine[58:68, 26:104] = 1.0             # the swap's own line
    theirs, mine = masks.gaussian_blur(theirs, 1.0), masks.gaussian_blur(mine, 1.0)
    before = color.to_lab(swap)[..., 0]
    shelves = [((slice(40, 72), slice(28, 102)), theirs, 1.5, 6.0)]
    kept = color.brow_shelves(color.identity_transfer(), swap, target, shelves, 10.0, 0.5)
    light = color.to_lab(kept.apply(swap))[..., 0]
    assert float(np.median(light[52:54, 40:90])) < 58.0  # the copy stays
    lifted = color.brow_shelves(color.identity_transfer(), swap, target, shelves, 10.0, 0.5,
                                own=[mine])
    light = color.to_lab(lifted.apply(swap))[..., 0]
    assert abs(float(np.median(light[52:54, 40:90])) - 70.0) < 2.0  # the copy is skin
    np.testing.assert_allclose(light[60:66, 40:90], before[60:66, 40:90], atol=1.0)  # brow
    np.testing.assert_allclose(light[:44], before[:44], atol=1.0)                    # skin
    brows = [(theirs > 0.5, theirs)]
    deepened = color.brow_depth(color.identity_transfer(), swap, target, brows, 10.0, 5.0, 3.0,
                                share=0.7)
    assert float(np.median(color.to_lab(deepened.apply(swap))[..., 0][52:54, 40:90])) < 50.0
    alone = color.brow_depth(color.identity_transfer(), swap, target, brows, 10.0, 5.0, 3.0,
                             share=0.7, own=[(mine > 0.5, mine)])
    assert alone.lightness is None


def test_nostril_zone_holds_the_nostrils_under_the_tip(face_crop):
    """On df_img1.jpg's aligned face the nostrils' zone lies between the nose's tip and the
    upper lip, across the nose's wings, and holds the nostrils: its darkest tenth is far
    darker than its median (skin). The soft zone is the hard one feathered."""
    from facedancer_torch.faces.color import to_lab
    from facedancer_torch.faces.landmarks68 import get_landmarks68

    points = get_landmarks68().on_crop(face_crop)
    zone, soft = masks.nostril_zone(points, 256)
    rows, columns = np.nonzero(zone)
    assert 60 < zone.sum() < 2500, zone.sum()
    assert rows.min() > points[29, 1] and rows.max() < points[51, 1], (rows.min(), rows.max())
    assert columns.min() >= points[31, 0] - 2 and columns.max() <= points[35, 0] + 2
    lightness = to_lab(face_crop)[..., 0][zone]
    assert np.median(lightness) - np.percentile(lightness, 10) > 10.0
    assert soft.dtype == np.float32 and (soft[zone] == 1.0).all()
    assert 0.0 < soft[~zone].max() < 1.0 and soft[:int(points[29, 1]) - 10].max() < 0.01
    judged, grown = masks.nostril_zone(points, 256, grow=0.3)
    np.testing.assert_array_equal(judged, zone)  # grown for the change, not the judging
    assert (grown == 1.0).sum() > 1.5 * zone.sum() and (grown[zone] == 1.0).all()


def test_under_eye_zone_lies_under_each_eye_above_its_cheek_strip(face_crop):
    """On df_img1.jpg's aligned face each under-eye zone lies below its eye's opening (not
    on it), within the eye's span widened by the side reach and its tilt, and the cheek
    strip lies below the zone and clear of the nostrils."""
    from facedancer_torch.faces.landmarks68 import get_landmarks68

    points = get_landmarks68().on_crop(face_crop)
    nostrils = masks.nostril_zone(points, 256)[0]
    for eye in (0, 1):
        zone, cheek = masks.under_eye_zone(points, eye, 256, 0.12, 0.95, 0.3, (1.1, 1.45))
        eye_points = points[36 + 6 * eye:42 + 6 * eye]
        width = float(np.linalg.norm(eye_points[3] - eye_points[0]))
        core = zone > 0.5
        rows, columns = np.nonzero(core)
        assert 0.3 * width ** 2 < core.sum() < 2.0 * width ** 2, (core.sum(), width)
        assert not (core & masks.eye_opening(points, eye, 256)).any()
        assert rows.min() > eye_points[:, 1].min() and rows.max() < points[33, 1]
        # the side reach, and the tilt of the eye's axis carried down by up to 0.95 widths
        assert columns.min() >= eye_points[:, 0].min() - 0.6 * width
        assert columns.max() <= eye_points[:, 0].max() + 0.6 * width
        cheek_rows = np.nonzero(cheek)[0]
        assert cheek.sum() > 0.1 * width ** 2 and cheek_rows.min() > rows.min()
        assert not (cheek & nostrils).any() and not (cheek & core).any()


def test_nostril_darkness_takes_lost_nostrils_back_and_leaves_kept_ones(face_crop):
    """A nose painted without its nostrils (30 L* lighter there than the target's) takes the
    target's darkness back to the margin inside the zone, and nothing outside it; nostrils
    within the gate's start of the target's are left as the swap has them."""
    target_lab = color.to_lab(face_crop)
    target_lab[...] = (70.0, 12.0, 14.0)
    nostrils = [(slice(148, 156), slice(110, 120)), (slice(148, 156), slice(136, 146))]
    for nostril in nostrils:
        target_lab[..., 0][nostril] = 15.0
    swap_lab = target_lab.copy()
    zone = np.zeros((256, 256), bool)
    zone[140:162, 100:156] = True
    soft = masks.gaussian_blur(zone.astype(np.float32), 2.0)

    def run(nostril_lightness: float) -> tuple[np.ndarray, np.ndarray]:
        lab = swap_lab.copy()
        for nostril in nostrils:
            lab[..., 0][nostril] = nostril_lightness
        swap = color.from_lab(lab)
        target = color.from_lab(target_lab)
        out = color.nostril_darkness(color.identity_transfer(), swap, target, (zone, soft),
                                     (5.0, 15.0), 4.0).apply(swap)
        return color.to_lab(swap)[..., 0], color.to_lab(out)[..., 0]

    before, after = run(45.0)
    for nostril in nostrils:
        assert float(after[nostril].mean()) < 20.0, float(after[nostril].mean())
    np.testing.assert_allclose(after[~(soft > 0)], before[~(soft > 0)], atol=1e-3)
    np.testing.assert_allclose(after[145:148, 100:156], before[145:148, 100:156], atol=1.0)
    before, after = run(18.0)  # 3 L* lighter: under the gate's start
    np.testing.assert_allclose(after, before, atol=1e-3)


def test_lip_ring_holds_the_lips_and_not_the_open_mouth(face_crop):
    """On df_img1.jpg's aligned face (a smile with the teeth showing) the lip ring lies
    between the outer and the inner lip lines: redder than the skin around the mouth, and
    none of the teeth inside the inner line. The soft ring is the hard one feathered; a mouth
    a few pixels across gives None."""
    from facedancer_torch.faces.color import to_lab
    from facedancer_torch.faces.landmarks68 import get_landmarks68

    points = get_landmarks68().on_crop(face_crop)
    hard, soft = masks.lip_ring(points, 256)
    # The inner lip line's polygon a pixel in from its edge (the ring rounds its corners).
    inner = cv2.erode((masks.polygon_mask(points[60:68], 256) > 0.5).astype(np.uint8),
                      np.ones((3, 3), np.uint8)) > 0
    assert 150 < hard.sum() < 3000, hard.sum()
    assert inner.sum() > 100 and not (hard & inner).any()    # the teeth are not lips
    assert not (hard & ~masks.mouth_zone(points, 256, 0.02)).any()
    lab = to_lab(face_crop)
    around = masks.mouth_zone(points, 256, 0.3) & ~masks.mouth_zone(points, 256, 0.05)
    assert lab[..., 1][hard].mean() > lab[..., 1][around].mean() + 5.0   # red lips, skin
    assert soft.dtype == np.float32 and (soft[hard] == 1.0).all()
    assert 0.0 < soft[~hard].max() < 1.0
    assert masks.lip_ring(points * 0.05, 256) is None


def test_lip_darkness_takes_a_pale_lipstick_back_and_leaves_dark_lips(face_crop):
    """Lips painted 12 L* lighter than the target's lipstick are brought down to the margin
    inside the ring, and nothing outside it moves; lips as dark as the target's, or darker,
    are left as the swap has them (never lighter)."""
    target_lab = color.to_lab(face_crop)
    target_lab[...] = (70.0, 12.0, 14.0)
    hard = np.zeros((256, 256), bool)
    hard[170:186, 96:160] = True
    target_lab[..., 0][hard] = 42.0
    soft = np.maximum(hard.astype(np.float32), masks.gaussian_blur(hard.astype(np.float32), 1.0))

    def run(lip_lightness: float) -> tuple[np.ndarray, np.ndarray]:
        lab = target_lab.copy()
        lab[..., 0][hard] = lip_lightness
        swap, target = color.from_lab(lab), color.from_lab(target_lab)
        out = color.lip_darkness(color.identity_transfer(), swap, target, (hard, soft),
                                 (1.0, 3.0), 2.0).apply(swap)
        return color.to_lab(swap)[..., 0], color.to_lab(out)[..., 0]

    before, after = run(54.0)
    assert abs(float(after[hard].mean()) - 44.0) < 1.0, float(after[hard].mean())
    np.testing.assert_allclose(after[~(soft > 0)], before[~(soft > 0)], atol=1e-3)
    for darker in (42.5, 36.0):  # within the gate's start, and darker than the target's
        before, after = run(darker)
        np.testing.assert_allclose(after, before, atol=1e-3)
