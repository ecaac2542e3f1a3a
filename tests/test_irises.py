"""An eye whose opening the generator painted over (a source's heavy lid lowered over the
target's open eye, the iris a pale smear) takes the target's iris back: the iris pass
(swap/compose.py ``EYE_IRIS``, faces/color.py ``eye_irises``), judged by the opening's
median; eyes the generator kept are left alone."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_brows import WORK, _before_and_after  # noqa: E402
from test_compose import SOURCE, _one_thread, demo  # noqa: E402, F401

from facedancer_torch.faces import masks  # noqa: E402
from facedancer_torch.faces.color import to_lab  # noqa: E402


def _read(path: Path) -> np.ndarray:
    from facedancer_torch.io.images import read_image

    return read_image(path)


def _lfw(lfw_dir: Path, stem: str) -> Path:
    return lfw_dir / "images" / stem.rsplit("_", 1)[0] / f"{stem}.jpg"


def test_an_eye_painted_over_takes_its_iris_back(demo, lfw_dir, monkeypatch):
    """LFW's Jerry Seinfeld with Morgan Freeman (LFW) as the source, looked at in session 45:
    the generator paints the image-left eye as a pale lid with a white smear where the photo
    has a brown iris (the opening's median 21 L* lighter than the photo's, its darkest tenth,
    the lash line, within the darkness pass's gate). With the pass the median is within a few
    L* of the photo's; only darker; the lids and everything away from the eyes keep the
    swap's lightness."""
    image = _read(_lfw(lfw_dir, "Jerry_Seinfeld_0001"))
    run = _before_and_after(demo, image, _lfw(lfw_dir, "Morgan_Freeman_0001"), monkeypatch,
                            {"EYE_IRIS": 0.0})
    light = {key: to_lab(crop)[..., 0] for key, crop in run["crops"].items()}
    opening = masks.eye_opening(run["points"], 0, WORK)
    assert opening.sum() > 150, opening.sum()
    gap = {key: float(np.median(light[key][opening]) - np.median(light["target"][opening]))
           for key in ("before", "after")}
    assert gap["before"] > 15.0, gap       # 21.6
    assert gap["after"] < 8.0, gap         # 5.4
    change = light["after"] - light["before"]
    # Only darker: but for a few pixels where the detail pass's gate, which compares the
    # swap's structure with the target's, lets a little more of the photo's band through
    # (18 pixels up to 1.8 L*, against 362 darker).
    lighter, darker = int((change > 1.0).sum()), int((change < -1.0).sum())
    assert darker > 100 and lighter < 0.1 * darker, (lighter, darker)
    assert float(change.max()) < 3.0, float(change.max())
    assert float(change[opening].min()) < -15.0, float(change[opening].min())  # -34
    # The openings feathered by half a pixel of the 128 px crop (a pixel here); outside them
    # nothing moves.
    near = np.zeros((WORK, WORK), bool)
    for eye in (0, 1):
        near |= masks.one_eye_zone(run["points"], eye, WORK, 0.1) > 0.01
    assert float(np.abs(change[~near]).max()) < 1.0, float(np.abs(change[~near]).max())  # 0.1


def test_eyes_the_generator_kept_are_left_alone(demo, photos_dir, lfw_dir, monkeypatch):
    """Open eyes painted about as dark as the photo's (df_img25.jpg with the astronaut,
    LFW's Landon Donovan with Morgan Freeman): the gate stays shut and the output is the
    same to the bit."""
    for target, source in ((photos_dir / "df_img25.jpg", SOURCE),
                           (_lfw(lfw_dir, "Landon_Donovan_0001"),
                            _lfw(lfw_dir, "Morgan_Freeman_0001"))):
        run = _before_and_after(demo, _read(target), source, monkeypatch, {"EYE_IRIS": 0.0})
        monkeypatch.undo()
        assert np.array_equal(run["crops"]["after"], run["crops"]["before"]), target.name
