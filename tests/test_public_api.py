"""The package's front door: ``facedancer_torch.Swapper`` and ``SwapOptions``, imported lazily,
and the README's library example run as written on real photos."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parents[1] / "README.md"


def test_top_level_names_are_lazy_and_the_real_classes():
    # In a fresh interpreter: the package import itself must not pull in torch or PyAV (the
    # CLI's --help and `import facedancer_torch` stay fast); naming Swapper loads the pipeline.
    code = (
        "import sys, facedancer_torch as f\n"
        "heavy = [m for m in ('torch', 'av', 'onnxruntime') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "assert {'Swapper', 'SwapOptions'} <= set(dir(f)) and 'Swapper' in f.__all__\n"
        "from facedancer_torch.swap.options import SwapOptions\n"
        "from facedancer_torch.swap.pipeline import Swapper\n"
        "assert f.Swapper is Swapper and f.SwapOptions is SwapOptions\n"
        "from facedancer_torch import Swapper as S2\n"
        "assert S2 is Swapper\n"
        "try:\n"
        "    f.NoSuchThing\n"
        "except AttributeError as exc:\n"
        "    assert 'NoSuchThing' in str(exc)\n"
        "else:\n"
        "    raise AssertionError('unknown names must raise AttributeError')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def _readme_library_example() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Library\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, "the README's Library section has one Python example"
    return blocks[0]


def test_readme_library_example_runs(photos_dir, tmp_path, monkeypatch):
    from facedancer_torch.io.images import read_image
    from facedancer_torch.io.provenance import read_provenance
    from facedancer_torch.io.watermark import detect_watermark

    code = _readme_library_example()
    assert "Swapper()" in code and "import SwapOptions, Swapper" in code
    # the example's file names, played by real photos: two people in the target
    shutil.copy(photos_dir / "fr_obama_and_biden.jpg", tmp_path / "group.jpg")
    shutil.copy(photos_dir / "fr_lin-manuel-miranda.png", tmp_path / "me.jpg")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, "README.md (Library)", "exec"), namespace)

    target = read_image(tmp_path / "group.jpg")
    written = read_image(tmp_path / "swapped.png")
    assert written.shape == target.shape
    assert np.abs(written.astype(int) - target.astype(int)).mean() > 0.5  # faces changed
    tag = read_provenance(tmp_path / "swapped.png")
    assert tag is not None and tag["content"] == "synthetic media"
    assert detect_watermark(written).found
    swapped = namespace["swapped"]
    assert swapped.shape == target.shape and swapped.dtype == np.uint8
    changed = np.abs(swapped.astype(int) - target.astype(int)).max(axis=2) > 24
    # faces="largest": one face changed, so fewer pixels than in the all-faces file
    changed_all = np.abs(written.astype(int) - target.astype(int)).max(axis=2) > 24
    assert 0 < changed.sum() < changed_all.sum()
