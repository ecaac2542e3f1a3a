"""Dark source photos: does a selfie taken in a dim room give the swap the lit photo gives?

    python benchmarks/dark_source.py [--sources df_img9.jpg,fr_obama.jpg] [--factors 0.5,0.35,0.25]

Each source photo of ``../shared/data/photos`` is darkened by each factor (its values
multiplied, about what a shorter exposure does in sRGB) and embedded, with the exposure gain
of ``swap/exposure.py`` on the identity encoder's crop (the default) and without it
(``EXPOSURE_FLOOR`` 0 while embedding). Printed per source and factor:

- ``cosine``: the identity encoder's cosine between the dark photo's embedding and the lit
  photo's (1 = the same identity vector);
- ``swap diff``: the 17 photos of ``benchmarks/quality.py`` swapped with the dark source and
  with the lit one (default options otherwise), mean grey difference in each largest face's
  inner region (the ellipse of ``exposure.inner_face``), averaged over the photos;
- ``dlib``: the dlib distance of the dark-source swap to the lit source photo minus that of the
  lit-source swap, median over the photos (0 = as like the source; negative = closer).

The targets themselves are not darkened (``quality.py --exposure`` does that).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import quality  # noqa: E402 - the photo list and dlib's measure, next to this file

from facedancer_torch.faces.detect import largest_face  # noqa: E402
from facedancer_torch.io.images import read_image  # noqa: E402
from facedancer_torch.swap import exposure  # noqa: E402
from facedancer_torch.swap.exposure import apply_gain, inner_face  # noqa: E402
from facedancer_torch.swap.options import SwapOptions  # noqa: E402
from facedancer_torch.swap.pipeline import Swapper  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sources", default="df_img9.jpg,fr_obama.jpg")
    parser.add_argument("--factors", default="0.5,0.35,0.25")
    args = parser.parse_args()
    photos_dir = quality.SHARED / "data/photos"
    if not photos_dir.is_dir():
        sys.exit(f"error: {photos_dir}: shared photos not found (set FACEDANCER_SHARED)")
    swapper = Swapper()
    names = [n for group in quality.PHOTOS.values() for n in group]
    targets = []
    for name in names:
        image = read_image(photos_dir / name)
        face = largest_face(swapper.detect(image))
        targets.append((image, face, inner_face(image.shape[:2], face.landmarks)))
    options = SwapOptions()
    print("| source | factor | gain | cosine to the lit photo's | swap diff (grey levels) "
          "| dlib - lit source's |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for source in args.sources.split(","):
            photo = read_image(photos_dir / source)
            picked = largest_face(swapper.detect(photo))
            descriptor = quality.dlib_descriptor_at(photo, picked.landmarks)
            lit_plan = swapper.plan([photos_dir / source])
            lit_swaps = [swapper.swap_image(image, lit_plan, options) for image, _, _ in targets]
            lit_dlib = [np.linalg.norm(quality.dlib_descriptor_at(out, face.landmarks) - descriptor)
                        for out, (_, face, _) in zip(lit_swaps, targets)]
            lit_z = swapper.embed([photos_dir / source]).embedding
            for factor in (float(f) for f in args.factors.split(",")):
                dark_path = Path(tmp) / f"{Path(source).stem}_{factor}.png"
                cv2.imwrite(str(dark_path), cv2.cvtColor(apply_gain(photo, factor),
                                                         cv2.COLOR_RGB2BGR))
                for gain in ("on", "off"):
                    saved = exposure.EXPOSURE_FLOOR
                    if gain == "off":
                        exposure.EXPOSURE_FLOOR = 0.0
                    swapper._identities.clear()  # embed again under this setting
                    try:
                        plan = swapper.plan([dark_path])
                        z = swapper.embed([dark_path]).embedding
                    finally:
                        exposure.EXPOSURE_FLOOR = saved
                    cosine = float(z @ lit_z / np.linalg.norm(z) / np.linalg.norm(lit_z))
                    diffs, dlib = [], []
                    for (image, face, region), lit, lit_d in zip(targets, lit_swaps, lit_dlib):
                        out = swapper.swap_image(image, plan, options)
                        diffs.append(float(np.abs(out.astype(np.float32) - lit)[region].mean()))
                        dlib.append(np.linalg.norm(quality.dlib_descriptor_at(out, face.landmarks)
                                                   - descriptor) - lit_d)
                    print(f"| {source} | {factor:g} | {gain} | {cosine:.3f} | "
                          f"{np.mean(diffs):.2f} | {np.median(dlib):+.4f} |", flush=True)


if __name__ == "__main__":
    main()
