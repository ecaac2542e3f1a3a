"""A target's coloured eye shadow stays on the swapped lids (swap/compose.py ``EYE_SHADOW``;
docs/swap.md "Eye shadow kept")."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from swaputil import with_and_without  # noqa: E402
from test_compose import BENCHMARKS, _one_thread, demo  # noqa: E402, F401

CROP = 256  # crops measured at 2x the generator's size, as benchmarks/eye_shadow.py does


def _with_and_without(demo, image, source, monkeypatch) -> dict:
    """:func:`swaputil.with_and_without` with the eye shadow pass as the one switched off."""
    from facedancer_torch.swap import compose

    return with_and_without(demo, image, source,
                            lambda: monkeypatch.setattr(compose, "EYE_SHADOW", 0.0), CROP)


def _measured(run: dict) -> tuple[dict, dict]:
    """benchmarks/eye_shadow.py's measures of the "before" and "after" crops of ``run``."""
    sys.path.insert(0, str(BENCHMARKS))
    import eye_shadow

    crops = run["crops"]
    before, after = eye_shadow.measure(crops["target"], run["points"],
                                       [crops["before"], crops["after"]])
    return before, after


def _shadow(crop: np.ndarray, points: np.ndarray) -> np.ndarray:
    from facedancer_torch.swap.compose import eye_shadow_zone

    weight = eye_shadow_zone(crop, points)
    assert weight is not None
    return weight >= 0.5


def test_lilac_and_green_shadow_stay_on_the_lids(demo, photos_dir, lfw_dir, monkeypatch):
    """df_img46.jpg wears lilac shadow on the upper lids and green under the eyes; swapped
    with Cate_Blanchett_0001.jpg the lids came out grey-beige (session 49). With the pass the
    lids' colour (a*b*, blurred) is at most three quarters as far from the target's (measured:
    11.4 -> 6.8), and nothing changes beyond the eyes' surroundings."""
    from facedancer_torch.faces import masks
    from facedancer_torch.io.images import read_image

    run = _with_and_without(demo, read_image(photos_dir / "df_img46.jpg"),
                            lfw_dir / "images/Cate_Blanchett/Cate_Blanchett_0001.jpg",
                            monkeypatch)
    crops, points = run["crops"], run["points"]
    zone = _shadow(crops["target"], points)
    assert zone.sum() > 250, zone.sum()
    before, after = _measured(run)
    assert before["shadow"] and after["distance"] < 0.75 * before["distance"], (before, after)
    change = np.abs(crops["after"].astype(np.int16) - crops["before"]).max(axis=2)
    around = masks.eye_zone(points, CROP, grow=1.0)
    assert int(change[around].max()) > 10
    assert int(change[~around].max()) <= 2, int(change[~around].max())  # resampling only


def test_bare_lids_and_smoky_make_up_are_not_eye_shadow(demo, photos_dir, lfw_dir, monkeypatch):
    """Bare faces (Obama, an LFW photo of Yao Ming) show next to no eye shadow; the dark,
    grey smoky eye of df_img10.jpg, whose chroma on a lighter swapped lid read as lavender
    (why the lids take their colour by lightness), gets no more colour casts with the pass."""
    from facedancer_torch.io.images import read_image

    source = lfw_dir / "images/Cate_Blanchett/Cate_Blanchett_0001.jpg"
    for photo in (photos_dir / "fr_obama.jpg", lfw_dir / "images/Yao_Ming/Yao_Ming_0002.jpg"):
        run = _with_and_without(demo, read_image(photo), source, monkeypatch)
        monkeypatch.undo()
        zone = _shadow(run["crops"]["target"], run["points"])
        assert zone.sum() < 40, (photo.name, zone.sum())
    before, after = _measured(_with_and_without(demo, read_image(photos_dir / "df_img10.jpg"),
                                                source, monkeypatch))
    assert after["cast"] <= before["cast"] + 1e-4, (before, after)
