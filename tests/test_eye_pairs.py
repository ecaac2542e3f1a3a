"""A face's two eyes alike: where the demo generator painted both irises a pale blue-grey and
the eye darkness pass gave one of them the target's darkness back, the other stays a grey-teal
iris beside a brown one unless it is judged with its partner (swap/compose.py ``EYE_PAIRED``,
faces/color.py ``eye_darkness(..., paired=True)``). The synthetic case is in
tests/test_masks.py."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_brows import WORK, _before_and_after, _frame  # noqa: E402
from test_compose import _one_thread, demo  # noqa: E402, F401

from facedancer_torch.faces import color, masks  # noqa: E402


def _iris_gaps(run: dict, name: str) -> list[float]:
    """Per eye: the 25th percentile of the L* in the eye's opening (the target's dlib points;
    below it lie pupil, iris and lash line), output ``name`` minus the target."""
    target = color.to_lab(run["crops"]["target"])[..., 0]
    output = color.to_lab(run["crops"][name])[..., 0]
    gaps = []
    for eye in (0, 1):
        opening = masks.eye_opening(run["points"], eye, WORK)
        gaps.append(float(np.percentile(output[opening], 25) - np.percentile(target[opening], 25)))
    return gaps


def test_both_eyes_get_the_targets_darkness_back(demo, photos_dir, videos_dir, monkeypatch):
    """talking_b.mp4 frame 80 with df_img38.jpg (George Clooney, brown eyes) as the source,
    looked at in session 34: the generator paints both irises blue-grey; one eye lost enough
    of its dark core to take the target's darkness back in full, the other only a seventh of
    it, and came out a grey-teal iris beside a dark brown one (18 against 5 L* lighter than
    the target's). Paired, both are within 8 L* of the target's and within 4 of each other,
    and nothing changes away from the eyes."""
    run = _before_and_after(demo, _frame(videos_dir / "talking_b.mp4", 80),
                            photos_dir / "df_img38.jpg", monkeypatch, {"EYE_PAIRED": False})
    before, after = _iris_gaps(run, "before"), _iris_gaps(run, "after")
    assert max(before) > 10.0 and abs(before[0] - before[1]) > 8.0, before
    assert max(after) < 8.0 and abs(after[0] - after[1]) < 4.0, after
    changed = np.abs(run["crops"]["after"].astype(int) - run["crops"]["before"]).max(-1) > 2
    eyes = masks.eye_zone(run["points"], WORK, grow=0.6)
    assert changed.sum() > 100 and not (changed & ~eyes).any(), (changed.sum(),
                                                                 (changed & ~eyes).sum())
