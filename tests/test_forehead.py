"""A brim, its shade or a fringe just above the brows stays: the forehead pass
(swap/compose.py ``FOREHEAD_DARKNESS``, faces/color.py ``forehead_darkness``) brings the pale
strip the demo generator paints there back down to the target's darkness, and leaves a bare
forehead alone."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_brows import WORK, _before_and_after  # noqa: E402
from test_compose import _one_thread, demo  # noqa: E402, F401

from facedancer_torch.faces import masks  # noqa: E402
from facedancer_torch.faces.color import to_lab  # noqa: E402


def _read(path: Path) -> np.ndarray:
    from facedancer_torch.io.images import read_image

    return read_image(path)


def _gap(run: dict, name: str, zone: np.ndarray) -> float:
    """How much lighter ``name``'s median L* over ``zone`` is than the target's (the median:
    the zone's top holds the hat, which the output shows as the photo's)."""
    light = {key: to_lab(crop)[..., 0] for key, crop in run["crops"].items()}
    return float(np.median(light[name][zone]) - np.median(light["target"][zone]))


def test_a_brims_edge_and_shade_stay(demo, lfw_dir, photos_dir, monkeypatch):
    """LFW's Wolfgang Schneiderhan (a beret's dark rim just above the brows) and Troy Garity
    (a hat's shade over the forehead) with Sundar Pichai (df_img25.jpg) as the source, looked
    at in session 44: the generator painted lit skin up to the mask's top, a grey haze over
    the beret's rim and a pale strip under the hat (the zone's median in the output about
    10 L* lighter than the photo's). With the pass it is within a few L* of the photo's,
    only darker, and nothing below the brows moves."""
    for stem in ("Wolfgang_Schneiderhan_0001", "Troy_Garity_0001"):
        image = _read(lfw_dir / "images" / stem.rsplit("_", 1)[0] / f"{stem}.jpg")
        run = _before_and_after(demo, image, photos_dir / "df_img25.jpg", monkeypatch,
                                {"FOREHEAD_DARKNESS": 0.0}, face=None if "Wolf" in stem else 1)
        monkeypatch.undo()
        zone, _ = masks.forehead_zone(run["points"], WORK, 0.8)
        assert zone.sum() > 1000, (stem, zone.sum())
        before, after = _gap(run, "before", zone), _gap(run, "after", zone)
        assert before > 7.0, (stem, before)    # 9.6 and 9.6
        assert after < min(5.0, before - 4.0), (stem, before, after)    # 3.7 and 1.9
        light = {key: to_lab(crop)[..., 0] for key, crop in run["crops"].items()}
        change = light["after"] - light["before"]
        # Only darker: but for a few pixels where the detail pass's gate, which compares the
        # swap's structure with the target's, lets a little more of the photo's band through
        # (17 and 55 pixels, up to 2 L*, against 2,900 and 2,400 darker).
        lighter, darker = int((change > 1.0).sum()), int((change < -1.0).sum())
        assert darker > 1000 and lighter < 0.05 * darker, (stem, lighter, darker)
        assert float(change.max()) < 3.0, (stem, float(change.max()))
        below = ~(masks.above_brows(run["points"], WORK, 0.5) > 0)
        assert float(np.abs(change[below]).max()) < 1.5, (stem, float(np.abs(change[below]).max()))


def test_a_bare_forehead_is_left_alone(demo, photos_dir, monkeypatch):
    """A forehead with nothing on it, lit as the swap paints it (df_img1.jpg, fr_obama.jpg
    with df_img25.jpg): the pass's gate stays shut and the output is the same to the bit."""
    for name in ("df_img1.jpg", "fr_obama.jpg"):
        run = _before_and_after(demo, _read(photos_dir / name), photos_dir / "df_img25.jpg",
                                monkeypatch, {"FOREHEAD_DARKNESS": 0.0})
        monkeypatch.undo()
        assert np.array_equal(run["crops"]["after"], run["crops"]["before"]), name


def test_forehead_zone_lies_above_the_brows(demo, photos_dir):
    """The zone is the face outline above the brows' lowest point without the brows: on
    fr_obama.jpg's crop every pixel of its hard part lies above that point and outside both
    brows' lines, and it holds the forehead's lower part (over a thousand pixels at 256 px);
    its soft part is over a half exactly there."""
    image = _read(photos_dir / "fr_obama.jpg")
    job = demo.jobs_for(image, demo.detect(image), demo.plan([photos_dir / "df_img25.jpg"]))[0]
    size = job.crop.shape[0]
    points = (demo.compositor.landmarks68().on_crop(job.crop) + 0.5) * (WORK / size) - 0.5
    hard, soft = masks.forehead_zone(points, WORK, 0.8)
    rows = np.nonzero(hard)[0]
    assert hard.sum() > 1000, hard.sum()
    assert rows.max() <= points[17:27, 1].max(), (rows.max(), points[17:27, 1].max())
    assert not (hard & (masks.brow_zone(points, WORK, 0.8) > 0.5)).any()
    assert float(soft[~hard].max()) <= 0.5 and float(soft[hard].min()) > 0.5
