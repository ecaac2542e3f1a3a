"""Lips keep their colour: the colour correction's chroma-by-lightness filter no longer takes
the red out of the lips (swap/compose.py ``LOCAL_COLOR_KEEP_LIPS``)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_brows import WORK, _before_and_after  # noqa: E402
from test_compose import _one_thread, demo  # noqa: E402, F401

from facedancer_torch.faces import masks  # noqa: E402
from facedancer_torch.faces.color import to_lab  # noqa: E402


def test_red_lips_stay_red(demo, photos_dir, monkeypatch):
    """df_img2.jpg (red lipstick) with the astronaut (session 36): the generator keeps the
    lips' colour, but the chroma-by-lightness filter, computed on a half-size copy where the
    narrow lips mix with the skin, took 6 C* of their chroma away (a dull, brownish red).
    With the lips kept on the plain field their chroma is within 2 C* of the target's, and
    nothing beyond the mouth changes."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from lips import lip_colour, lip_zone

    run = _before_and_after(demo, _read(photos_dir / "df_img2.jpg"),
                            Path(__file__).resolve().parents[1]
                            / "src/facedancer_torch/assets/examples/astronaut.jpg",
                            monkeypatch, {"LOCAL_COLOR_KEEP_LIPS": 0.0})
    zone = lip_zone(run["points"], WORK)
    assert zone is not None
    target, _ = lip_colour(run["crops"]["target"], zone)
    before, _ = lip_colour(run["crops"]["before"], zone)
    after, _ = lip_colour(run["crops"]["after"], zone)
    assert before < target - 4.0, (target, before)    # about 57 -> 50
    assert abs(after - target) < 2.0, (target, after)
    mouth = masks.mouth_zone(run["points"], WORK, 0.3)
    shift = np.linalg.norm(to_lab(run["crops"]["after"])[..., 1:]
                           - to_lab(run["crops"]["before"])[..., 1:], axis=-1)
    assert float(shift[zone].mean()) > 3.0, float(shift[zone].mean())
    # Beyond the mouth, at most a grey level's rounding here and there.
    assert float(shift[~mouth].max()) < 2.0, float(shift[~mouth].max())
    assert float(shift[~mouth].mean()) < 0.02, float(shift[~mouth].mean())


def _read(path: Path) -> np.ndarray:
    from facedancer_torch.io.images import read_image

    return read_image(path)
