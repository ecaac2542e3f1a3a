"""Noses keep their nostrils: with some source photos the demo generator paints the nose
without them (a pale nose whose wings the detail band outlines), and the nostril pass gives
the target's darkness back there (swap/compose.py ``NOSTRIL_DARKNESS``, faces/color.py
``nostril_darkness``). The synthetic cases are in tests/test_masks.py."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_brows import WORK, _before_and_after  # noqa: E402
from test_compose import _one_thread, demo  # noqa: E402, F401

from facedancer_torch.faces import color, masks  # noqa: E402


def _nostril_gaps(run: dict) -> dict:
    """Per output: the darkest tenth and the median of the L* in the nostrils' zone (the
    target's dlib points), output minus target."""
    zone, _ = masks.nostril_zone(run["points"], WORK)
    target = color.to_lab(run["crops"]["target"])[..., 0][zone]
    gaps = {}
    for name in ("before", "after"):
        output = color.to_lab(run["crops"][name])[..., 0][zone]
        gaps[name] = [float(np.percentile(output, q) - np.percentile(target, q)) for q in (10, 50)]
    return gaps


def test_a_nose_painted_without_nostrils_gets_the_targets_back(demo, photos_dir, monkeypatch):
    """df_img47.jpg with df_img25.jpg (Sundar Pichai) as the source, looked at in session 35:
    the generator paints a pale nose without nostrils, 30 L* lighter than the target's in the
    zone's darkest tenth. With the pass within 8 L*, and nothing changes beyond the nose."""
    from facedancer_torch.io.images import read_image

    run = _before_and_after(demo, read_image(photos_dir / "df_img47.jpg"),
                            photos_dir / "df_img25.jpg", monkeypatch, {"NOSTRIL_DARKNESS": 0.0})
    gaps = _nostril_gaps(run)
    assert gaps["before"][0] > 20.0 and gaps["after"][0] < 8.0, gaps
    assert gaps["after"][1] < gaps["before"][1] - 5.0, gaps
    changed = np.abs(run["crops"]["after"].astype(int) - run["crops"]["before"]).max(-1) > 2
    _, around = masks.nostril_zone(run["points"], WORK, grow=0.4)
    assert changed.sum() > 200 and not (changed & (around == 0)).any(), (
        changed.sum(), (changed & (around == 0)).sum())
