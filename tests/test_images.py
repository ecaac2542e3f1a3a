"""Image decoding to RGB uint8 (every odd mode), metadata round-trips, atomic writes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from facedancer_torch.errors import InputError
from facedancer_torch.io.images import (
    IMAGE_EXTENSIONS,
    VIDEO_EXTENSIONS,
    read_image,
    read_image_metadata,
    write_image,
)


@pytest.fixture()
def rgb() -> np.ndarray:
    rng = np.random.default_rng(1)
    # Smooth content so lossy codecs stay close to the original.
    base = rng.integers(0, 256, size=(6, 8, 3)).astype(np.uint8)
    return cv2.resize(base, (64, 48), interpolation=cv2.INTER_LINEAR)


def test_extension_sets_are_lower_case_with_dot():
    for ext in IMAGE_EXTENSIONS | VIDEO_EXTENSIONS:
        assert ext.startswith(".") and ext == ext.lower()
    assert {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"} <= IMAGE_EXTENSIONS
    assert {".mp4", ".mov", ".mkv", ".avi", ".webm"} <= VIDEO_EXTENSIONS
    assert not IMAGE_EXTENSIONS & VIDEO_EXTENSIONS


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff"])
def test_write_read_roundtrip_with_metadata(tmp_path, rgb, suffix):
    path = tmp_path / f"crop{suffix}"
    meta = {"source": "id1/img 1.jpg", "matrix": "[[1.0, 0.0, 2.5]]", "note": "synthétique"}
    write_image(path, rgb, meta)
    back = read_image(path)
    assert back.shape == rgb.shape and back.dtype == np.uint8
    error = np.abs(back.astype(int) - rgb.astype(int)).mean()
    assert error < (3.0 if suffix in (".jpg", ".jpeg", ".webp") else 1e-9)
    assert read_image_metadata(path) == meta
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left


def test_channel_order_is_rgb(tmp_path):
    red = np.zeros((10, 12, 3), np.uint8)
    red[..., 0] = 255
    write_image(tmp_path / "red.png", red)
    assert np.asarray(Image.open(tmp_path / "red.png"))[0, 0].tolist() == [255, 0, 0]
    assert read_image(tmp_path / "red.png")[0, 0].tolist() == [255, 0, 0]


def test_bmp_refuses_metadata_but_writes_pixels(tmp_path, rgb):
    write_image(tmp_path / "a.bmp", rgb)
    assert np.array_equal(read_image(tmp_path / "a.bmp"), rgb)
    assert read_image_metadata(tmp_path / "a.bmp") == {}
    with pytest.raises(Exception, match="BMP"):
        write_image(tmp_path / "b.bmp", rgb, {"k": "v"})


def test_unknown_suffix_is_an_error(tmp_path, rgb):
    with pytest.raises(Exception, match="suffix"):
        write_image(tmp_path / "a.xyz", rgb)


def test_modes_are_converted(tmp_path, rgb):
    gray = rgb[..., 1]
    Image.fromarray(gray, "L").save(tmp_path / "gray.png")
    out = read_image(tmp_path / "gray.png")
    assert out.shape == (48, 64, 3) and np.array_equal(out[..., 0], gray)
    assert np.array_equal(out[..., 0], out[..., 2])

    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    rgba[:, :10, 3] = 0  # transparent band composited onto black
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    out = read_image(tmp_path / "rgba.png")
    assert np.array_equal(out[:, 10:], rgb[:, 10:]) and not out[:, :10].any()

    rgb16 = rgb.astype(np.uint16) * 257 + 100
    cv2.imwrite(str(tmp_path / "rgb16.png"), rgb16[..., ::-1])
    assert np.array_equal(read_image(tmp_path / "rgb16.png"), (rgb16 >> 8).astype(np.uint8))

    gray16 = gray.astype(np.uint16) * 257
    cv2.imwrite(str(tmp_path / "gray16.png"), gray16)
    assert Image.open(tmp_path / "gray16.png").mode.startswith("I")
    assert np.array_equal(read_image(tmp_path / "gray16.png")[..., 1], gray)

    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=98)
    out = read_image(tmp_path / "cmyk.jpg")
    assert out.shape == rgb.shape and np.abs(out.astype(int) - rgb).mean() < 4

    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE).save(tmp_path / "p.gif")
    out = read_image(tmp_path / "p.gif")
    assert out.shape == rgb.shape and np.abs(out.astype(int) - rgb).mean() < 12

    Image.fromarray(gray > 128).save(tmp_path / "bw.png")  # mode "1"
    assert set(np.unique(read_image(tmp_path / "bw.png"))) <= {0, 255}


def test_exif_orientation_is_applied(tmp_path):
    image = np.zeros((20, 40, 3), np.uint8)
    image[:, :10] = 255  # white band on the left, landscape
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    Image.fromarray(image).save(tmp_path / "rot.jpg", exif=exif.tobytes(), quality=100)
    out = read_image(tmp_path / "rot.jpg")
    assert out.shape[:2] == (40, 20)  # now portrait
    assert out[:10].mean() > 200 and out[-10:].mean() < 50  # the band ends up on top


@pytest.mark.parametrize("case", ["missing", "zero", "text", "truncated", "folder", "garbage"])
def test_bad_files_raise_input_error_naming_the_file(tmp_path, rgb, case):
    path = tmp_path / f"bad_{case}.jpg"
    if case == "zero":
        path.write_bytes(b"")
    elif case == "text":
        path = tmp_path / "notes.png"
        path.write_text("this is not a picture\n")
    elif case == "truncated":
        write_image(tmp_path / "full.jpg", cv2.resize(rgb, (640, 480)))
        data = (tmp_path / "full.jpg").read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif case == "folder":
        path.mkdir()
    elif case == "garbage":
        path.write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4)
    with pytest.raises(InputError) as info:
        read_image(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message


def test_one_pixel_image(tmp_path):
    Image.fromarray(np.array([[[10, 20, 30]]], np.uint8)).save(tmp_path / "one.png")
    assert read_image(tmp_path / "one.png").tolist() == [[[10, 20, 30]]]


def test_real_rgba_photo(photos_dir):
    image = read_image(photos_dir / "fr_32bit.png")
    assert image.shape == (1200, 626, 3) and image.dtype == np.uint8


def test_an_rgb_colour_profile_is_read_and_written(tmp_path, photos_dir, rgb):
    """df_img14.jpg carries Adobe RGB (1998): read_icc_profile gives it, write_image embeds it
    in PNG, JPEG, WebP and TIFF (so a colour-managed viewer shows the pixels as the input's),
    BMP cannot hold one; a grey or CMYK profile does not fit RGB pixels and is not carried."""
    import io

    from PIL import ImageCms

    from facedancer_torch.io.images import read_icc_profile, write_image

    profile = read_icc_profile(photos_dir / "df_img14.jpg")
    assert profile is not None and profile[16:20] == b"RGB "
    description = ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(profile)))
    assert "Adobe RGB" in description
    for suffix in (".png", ".jpg", ".webp", ".tif"):
        path = tmp_path / f"out{suffix}"
        write_image(path, rgb, metadata={"k": "v"}, icc_profile=profile)
        assert read_icc_profile(path) == profile, suffix
    write_image(tmp_path / "out.bmp", rgb, icc_profile=profile)
    assert read_icc_profile(tmp_path / "out.bmp") is None
    write_image(tmp_path / "plain.png", rgb)
    assert read_icc_profile(tmp_path / "plain.png") is None
    grey = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    Image.fromarray(rgb[..., 0]).save(tmp_path / "lab.png", icc_profile=grey)
    assert read_icc_profile(tmp_path / "lab.png") is None


def test_heic_photos_are_read_upright_with_their_profile(tmp_path, photos_dir):
    """HEIC (what iPhones save): read like a JPEG, turned upright by its orientation (once),
    its colour profile available to the output."""
    from facedancer_torch.io.images import is_image_path, pillow, read_icc_profile, read_image

    pillow()  # registers the HEIF opener (and saver) with Pillow
    source = Image.open(photos_dir / "df_couple.jpg")
    profile = source.info["icc_profile"]
    turned = Image.Exif()
    turned[0x0112] = 6  # shown turned 90 degrees clockwise
    source.save(tmp_path / "photo.heic", quality=92, icc_profile=profile,
                exif=turned.tobytes())
    source.save(tmp_path / "photo.jpg", quality=92, icc_profile=profile, exif=turned.tobytes())
    assert is_image_path(tmp_path / "photo.HEIC")
    heic, jpeg = read_image(tmp_path / "photo.heic"), read_image(tmp_path / "photo.jpg")
    assert heic.shape == jpeg.shape == (source.width, source.height, 3)
    assert np.abs(heic.astype(int) - jpeg).mean() < 3.0
    assert read_icc_profile(tmp_path / "photo.heic") == profile


def test_straight_colours_keeps_what_the_edit_did_not_touch():
    from facedancer_torch.io.fidelity import straight_colours

    rgba = np.zeros((1, 4, 4), np.uint8)
    rgba[0, :, :3] = (200, 100, 50)
    rgba[0, :, 3] = (255, 0, 128, 128)
    edited = np.full((1, 4, 3), 40, np.uint8)  # every pixel of the composite edited...
    changed = np.array([[True, True, True, False]])  # ...but the last one not by the swap
    out = straight_colours(edited, rgba, changed)
    np.testing.assert_array_equal(out[0, 0], (40, 40, 40))  # opaque: the edit
    np.testing.assert_array_equal(out[0, 1], (200, 100, 50))  # transparent: its own colour
    np.testing.assert_array_equal(out[0, 2], (80, 80, 80))  # half: the edit / its opacity
    np.testing.assert_array_equal(out[0, 3], (200, 100, 50))  # half, untouched: its own


def test_animated_webp_and_png_are_clips_stills_are_images(tmp_path):
    from PIL import Image

    from facedancer_torch.io.images import is_animated, is_image_path, is_video_path

    frames = [Image.new("RGB", (16, 12), (10 * i, 0, 0)) for i in range(3)]
    for suffix in (".webp", ".png"):
        moving, still = tmp_path / f"moving{suffix}", tmp_path / f"still{suffix}"
        frames[0].save(moving, save_all=True, append_images=frames[1:], duration=50)
        frames[0].save(still)
        assert is_animated(moving) and is_video_path(moving) and not is_image_path(moving)
        assert not is_animated(still) and is_image_path(still) and not is_video_path(still)
    assert is_video_path(tmp_path / "missing.apng") and is_image_path(tmp_path / "missing.png")


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_sixteen_bit_images_round_trip_with_tag_profile_and_alpha(tmp_path, suffix):
    """Pillow reads and writes 16-bit RGB as 8-bit; read_image_deep / write_image(deep=) keep
    the 16 bits, with the metadata, the colour profile and the alpha channel."""
    from facedancer_torch.io.fidelity import read_image_deep
    from facedancer_torch.io.images import (read_icc_profile, read_image_metadata,
                                            read_image_rgba, write_image)
    from PIL import ImageCms

    deep = np.random.default_rng(0).integers(0, 65536, (24, 40, 3)).astype(np.uint16)
    alpha = np.full((24, 40), 255, np.uint8)
    alpha[:, :10] = 0
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    out = tmp_path / f"deep{suffix}"
    eight = ((deep.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    write_image(out, eight, metadata={"comment": "synthetic media"}, icc_profile=profile,
                alpha=alpha, deep=deep)
    np.testing.assert_array_equal(read_image_deep(out), deep)
    assert read_image_metadata(out) == {"comment": "synthetic media"}
    assert read_icc_profile(out) == profile
    np.testing.assert_array_equal(read_image_rgba(out)[1][:, :, 3], alpha)
    write_image(tmp_path / "eight.png", eight)
    assert read_image_deep(tmp_path / "eight.png") is None  # 8-bit files: nothing more to keep


def test_a_sixteen_bit_tiff_is_turned_upright_like_read_image(tmp_path):
    import tifffile

    from facedancer_torch.io.fidelity import read_image_deep
    from facedancer_torch.io.images import read_image

    deep = np.zeros((20, 30, 3), np.uint16)
    deep[:5, :10] = 60000  # a bright block top-left as stored
    path = tmp_path / "turned.tif"
    tifffile.imwrite(path, deep, photometric="rgb", metadata=None,
                     extratags=[(274, "H", 1, 6, True)])  # EXIF orientation: turn clockwise
    upright = read_image_deep(path)
    assert upright.shape == read_image(path).shape == (30, 20, 3)
    np.testing.assert_array_equal(upright[:, :, 0] > 30000, read_image(path)[:, :, 0] > 117)


def test_a_jpeg_is_written_again_with_its_own_tables(photos_dir, tmp_path):
    """A JPEG written at a fixed quality 95 with 4:2:0 chroma moved a 4:4:4 photo's pixels
    (df_img1.jpg: 14 % of them more than 4 levels) and shrank it to a third; with its own
    tables and subsampling it comes back nearly as decoded. A very coarse JPEG's tables are
    refined to quality 50, where the watermark survives."""
    from PIL import Image

    from facedancer_torch.io.fidelity import JPEG_FLOOR_QUALITY, read_save_settings
    from facedancer_torch.io.images import read_image, write_image

    source = photos_dir / "df_img1.jpg"
    rgb = read_image(source)
    settings = read_save_settings(source)
    assert settings is not None and settings["subsampling"] == 0  # 4:4:4
    write_image(tmp_path / "same.jpg", rgb, like=settings)
    write_image(tmp_path / "fixed.jpg", rgb)
    same = np.abs(read_image(tmp_path / "same.jpg").astype(int) - rgb)
    fixed = np.abs(read_image(tmp_path / "fixed.jpg").astype(int) - rgb)
    assert same.mean() < 0.3 and (same.max(axis=2) > 4).mean() < 0.001, same.mean()
    assert fixed.mean() > 4 * same.mean()
    assert read_save_settings(photos_dir / "fr_32bit.png") is None
    Image.fromarray(rgb).save(tmp_path / "coarse.jpg", quality=20)
    Image.fromarray(rgb).save(tmp_path / "floor.jpg", quality=JPEG_FLOOR_QUALITY)
    coarse = read_save_settings(tmp_path / "coarse.jpg")["qtables"]
    floor = Image.open(tmp_path / "floor.jpg").quantization
    assert all(list(coarse[k]) == list(floor[k]) for k in (0, 1))


def test_a_lossless_webp_and_a_compressed_tiff_are_written_so_again(photos_dir, tmp_path):
    from PIL import Image

    from facedancer_torch.io.fidelity import read_save_settings
    from facedancer_torch.io.images import read_image, write_image

    rgb = read_image(photos_dir / "fr_obama.jpg")[:200, :300]
    Image.fromarray(rgb).save(tmp_path / "shot.webp", lossless=True)
    Image.fromarray(rgb).save(tmp_path / "lossy.webp", quality=80)
    Image.fromarray(rgb).save(tmp_path / "scan.tif", compression="tiff_lzw")
    assert read_save_settings(tmp_path / "lossy.webp") is None
    like = read_save_settings(tmp_path / "shot.webp")
    assert like == {"format": "WEBP", "lossless": True}
    write_image(tmp_path / "out.webp", rgb, like=like)
    np.testing.assert_array_equal(read_image(tmp_path / "out.webp"), rgb)  # was lossy q95
    like = read_save_settings(tmp_path / "scan.tif")
    write_image(tmp_path / "out.tif", rgb, like=like)
    assert Image.open(tmp_path / "out.tif").info["compression"] == "tiff_lzw"
    write_image(tmp_path / "other.png", rgb, like=like)  # another format: its own settings
