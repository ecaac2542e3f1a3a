"""Picture quality of swaps, per output, with several compositing settings side by side.

    python benchmarks/quality.py [--model DIR] [--frames 60] [--figure docs/images/quality.png]

Every photo of a fixed list from ``../shared/data/photos`` (single faces, occluded faces, group
photos) and the first ``--frames`` frames of the shared videos are swapped with the shipped demo
model (or ``--model``) to one source (the public-domain example photo ``astronaut.jpg``), once
per setting (``--configs``; ``reference`` = the reference's compositing: box mask, no colour
correction, no detail, no profile or cut fade; ``default`` = what ``facedancer swap`` does without
options; the others are ablations of the default). The watermark is applied as in a real output.

Per photo (face region = the target's 68-landmark face outline, found on the *target*):

- ``sharp``: Laplacian variance in the face region, swap / target (1 = as sharp as the photo);
- ``grain``: the photo's noise in the face region, swap / target: the robust deviation (1.4826
  median absolute deviations) of the grey image minus its Gaussian blur of ``GRAIN_BLUR`` px,
  which counts the many small values of grain and noise and not the few large ones of edges;
  ``grain feat`` the same in the features alone (eyes grown by 35 % of their width, and the
  mouth), where the detail gate gives the swap the finest band (1 = as grainy as the photo).
  With ``--noise S`` every target gets noise of S grey levels per channel first (seeded per
  photo; Gaussian, blurred by ``NOISE_GRAIN`` px and brought back to S: grain a couple of
  pixels across, as a phone's sensor noise after demosaicing): a photo of a dark room;
- ``cast %``: colour-cast pixels of the face region (``evaluate/color.py``);
- ``out %``: pixels changed by more than ``CHANGE_LEVEL`` grey levels outside the face regions
  grown by ``GROW`` of the face height (the watermark alone changes none);
- ``occl``: mean absolute grey change inside the hand-marked occluders
  (``benchmarks/data/occluders.json``);
- ``text`` (with ``--captions``, which first lays a line of text across each photo's largest
  face: a meme's outlined capitals, a yellow subtitle with a drop shadow, white letters with a
  soft shadow or none, in a font the segmenter was not trained with): mean absolute grey change
  inside the letters where they cross a face (0 = the caption came through the swap whole);
- ``id gain``: dlib distance target-source minus swap-source (independent of the generator's
  FaceNet; higher = more of the source's identity), on antialiased crops (a bilinear crop of a
  large face aliases its fine texture into noise the descriptor reads);
- ``pose``: head-pose difference target vs swap in degrees (solvePnP on 68 landmarks).

Configs are also compared photo by photo: the median of each photo's difference from the
first config, with how many photos are higher and lower (medians over photos move when the
median photo changes; these differences do not), over all photos and by the size of each
photo's largest face against the generator's crop (``compose.work_factor``: 1 = at most 1.25
crops across, where the generator's resolution is about the face's; 2-3 = up to 3.25; 4 and
more).
``--photos all`` swaps every photo of the shared folder (82) instead of the fixed 17.
``--source`` repeated pools several source faces: every photo is swapped with each, rows are
named ``photo @ source`` and the per-photo differences pair each photo-source output with
itself (a change that acts only on some sources' faces, as the eye whites do, is then measured
on all of them at once); each source also gets its own table of them (what a setting costs in
identity differs from source to source).
``--segmenter DIR`` swaps with another face segmenter (a fine-tune's model folder).
``--null-generator copy`` (or ``soft``) is a control: the generator returns the target's own
crop (or that crop low-passed to half its resolution, about what the demo model keeps), so each
measure shows what the compositing alone does to a face whose identity did not change.

Per video: ``flicker`` (mean absolute frame-to-frame change in the face regions, output /
input: 1 = as steady as the input), ``eye flicker`` (the same in the eyes alone: each eye's
outline grown by 35 % of its width), ``ghost %`` (pixels changed where the detector sees
no face in that input frame: outside its grown face regions), ``faceless`` (frames without a
detected face), ``swapped`` (frames with a change / frames), ``faces`` (face swaps /
detections), sharpness and colour casts as above, ``grain`` the median over frames of the
photos' measure (``--noise`` gives every frame its own noise).

``--exposure F`` and ``--light R,G,B`` multiply every photo and frame by ``F`` (a dim room) or
by a factor per channel (a coloured light) before the swap; output and target are divided by
it again for the measures, and ``vs lit`` is the mean grey difference in the face from the
same config's swap of the photo as it was (0 = the light changes nothing).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from occluders import occluder_mask  # noqa: E402 - the benchmark's own data, next to this file

from facedancer_torch.evaluate.color import color_cast_fraction  # noqa: E402
from facedancer_torch.evaluate.dlib_face import get_dlib_face  # noqa: E402
from facedancer_torch.evaluate.pose import pose_error_deg  # noqa: E402
from facedancer_torch.faces import detect, masks  # noqa: E402
from facedancer_torch.faces.detect import full_first_pass  # noqa: E402
from facedancer_torch.faces.align import (align_face, alignment_matrix, invert_affine,  # noqa
                                          transform_points)
from facedancer_torch.faces.landmarks68 import get_landmarks68  # noqa: E402
from facedancer_torch.io.images import read_image, write_image  # noqa: E402
from facedancer_torch.io.video import read_frames  # noqa: E402
from facedancer_torch.swap import (brow_focus, compose, exposure, follow, grain,  # noqa: E402
                                   pipeline)
from facedancer_torch.swap.image import finish_image  # noqa: E402
from facedancer_torch.swap.options import SwapOptions  # noqa: E402
from facedancer_torch.swap.pipeline import Swapper  # noqa: E402
from facedancer_torch.swap.source import source_face, split_face_choice  # noqa: E402
from facedancer_torch.swap.video import VideoStats, swap_stream  # noqa: E402

SHARED = Path(os.environ.get("FACEDANCER_SHARED", Path(__file__).resolve().parents[2] / "shared"))
SOURCE = Path(__file__).resolve().parents[1] / "src/facedancer_torch/assets/examples/astronaut.jpg"

PHOTOS = {
    "single": ["df_img1.jpg", "df_img2.jpg", "fr_obama.jpg", "fr_biden.jpg",
               "gfp_Blake_Lively.jpg", "if_Tom_Hanks_54745.png", "df_img11.jpg", "df_img30.jpg"],
    "occluded": ["fr_lin-manuel-miranda.png", "fr_32bit.png", "df_img24.jpg", "df_img25.jpg"],
    "group": ["fr_two_people.jpg", "if_t1.jpg", "fr_obama_and_biden.jpg", "df_couple.jpg",
              "fnp_multiface.jpg"],
}
VIDEOS = ["talking_1face_512.mp4", "crowd_720p.mp4", "talking_a.mp4"]

CONFIGS = {
    "reference": dict(mask="box", color_match="none", detail=0.0, profile_fade=False,
                      cut_fade=False, min_face_size=0.0, confirm_frames=1, detect_every=1,
                      identity_strength=0.0),
    "default": {},
    "half-detail": dict(detail=0.5),
    "no-detail": dict(detail=0.0),
    "no-occlusion": dict(mask="box+hull"),
    "no-blinks": dict(blinks=False),
    "no-cut-fade": dict(cut_fade=False),
    "global-colour": dict(color_match="global"),
    "follow": dict(detail_follow=True),  # the target's detail moved onto the swap's features
    # The reference with one part of the default added: what each part costs in identity.
    "ref+local-colour": dict(mask="box", detail=0.0, profile_fade=False, cut_fade=False,
                             identity_strength=0.0),
    "ref+detail": dict(mask="box", color_match="none", profile_fade=False, cut_fade=False,
                       identity_strength=0.0),
    "ref+hull": dict(mask="box+hull", color_match="none", detail=0.0, profile_fade=False,
                     cut_fade=False, identity_strength=0.0),
    "ref+hull+occlusion": dict(color_match="none", detail=0.0, profile_fade=False,
                               cut_fade=False, identity_strength=0.0),
    "ref+identity-strength": dict(mask="box", color_match="none", detail=0.0,
                                  profile_fade=False, cut_fade=False),  # the model's recommendation
    "no-identity-strength": dict(identity_strength=0.0),
    # The target's own mouth / eyes kept (mask parts "mouth", "eyes"): what they cost.
    "keep-mouth": dict(mask="box+hull+occlusion+mouth"),
    "keep-eyes": dict(mask="box+hull+occlusion+eyes"),
    "pixel-boost-2": dict(pixel_boost=2),
    "pixel-boost-4": dict(pixel_boost=4),
}
# Compositing constants of swap/compose.py a config can set for itself, as a name of
# ``+``-joined ``knob-value`` parts on top of the default (``detail-res-0.75``,
# ``detail-fine-1.0+detail-mid-gate-0``, ``occl-weak-0.4+occl-strong-0.9``): the sweeps of
# docs/swap.md "Detail" and "Measured". They are module constants, not SwapOptions (no user
# should need them), so they are set around that config's swaps and restored after.
KNOBS = {
    "detail-res": "DETAIL_RESOLUTION",
    "detail-gate": "DETAIL_GATE",
    "detail-fine": "DETAIL_FINE_RESOLUTION",
    "detail-mid-gate": "DETAIL_MID_GATE",
    "detail-mid-min-work": "DETAIL_MID_MIN_WORK",
    "detail-shading": "DETAIL_SHADING_SIGMA",  # 0: the plain lightness gate (before session 10)
    # swap/follow.py (with the follow config, --detail-follow): the share of the move
    "detail-follow": "follow.DETAIL_FOLLOW",
    "detail-follow-limit": "follow.DETAIL_FOLLOW_LIMIT",
    "color-sigma": "LOCAL_COLOR_SIGMA",
    "color-similar": "LOCAL_COLOR_SIMILAR_SIGMA",  # 0: the target's chroma in place (before)
    "color-range": "LOCAL_COLOR_LIGHTNESS_RANGE",
    "color-lips": "LOCAL_COLOR_KEEP_LIPS",  # 0: the lips take chroma by lightness (before)
    "color-apart": "LOCAL_COLOR_APART",  # 0: a moustache takes the lips' red (before)
    "color-apart-grow": "LOCAL_COLOR_APART_GROW",
    "color-zone": "LOCAL_COLOR_SIMILAR_ZONE",  # 0: colour by lightness everywhere (before)
    "color-zone-brows": "LOCAL_COLOR_SIMILAR_BROWS",
    "color-darker": "LOCAL_COLOR_SIMILAR_DARKER",  # 0: only around the eyes and brows
    "color-lighter": "LOCAL_COLOR_SIMILAR_LIGHTER",  # 0: not where the swap is lighter (before)
    "color-carry": "LOCAL_COLOR_CARRY",  # 0: the brows keep only the swap's lightness (before)
    "skin-shading": "SKIN_SHADING",  # 0: skin chroma of the target's shading (before session 42)
    "occl-weak": ("OCCLUDER_HYSTERESIS", 0),
    "occl-strong": ("OCCLUDER_HYSTERESIS", 1),
    "occl-guide": "OCCLUDER_GUIDE_RADIUS",  # 0: the kept region's edge a plain blur (before)
    "occl-guide-eps": "OCCLUDER_GUIDE_EPS",
    "occl-edge": "OCCLUDER_EDGE",
    "swap-sharpen": "SWAP_SHARPEN",
    "eye-shadow": "EYE_SHADOW",
    "eye-shadow-chroma": ("EYE_SHADOW_CHROMA", 0),
    "eye-shadow-dark": "EYE_SHADOW_DARK",
    "under-eye": "UNDER_EYE",  # 0: the swap's dark rings under the eyes kept (before session 50)
    "under-eye-top": "UNDER_EYE_TOP",
    "under-eye-bottom": "UNDER_EYE_BOTTOM",
    "under-eye-side": "UNDER_EYE_SIDE",
    "under-eye-cheek-from": ("UNDER_EYE_CHEEK", 0),
    "under-eye-cheek-to": ("UNDER_EYE_CHEEK", 1),
    "under-eye-sigma": "UNDER_EYE_SIGMA",
    "under-eye-margin": "UNDER_EYE_MARGIN",
    "under-eye-from": ("UNDER_EYE_GATE", 0),
    "under-eye-full": ("UNDER_EYE_GATE", 1),
    "spare-inside": "SPARE_INSIDE",  # > 1: occluders inside the eyes kept too (as before)
    "spare-brow": "SPARE_BROW_THICKNESS",  # 0: occluders inside a brow kept (before session 18)
    "spare-mouth": "SPARE_MOUTH_GROW",  # 0: occluders inside the mouth kept (before session 18)
    "spare-sure": "SPARE_SURE_CORE",  # 1e9: sure occluders inside eyes/brows/mouth spared too
    "shadow": "CAST_SHADOW",  # 0: the swap keeps its own shading (before session 17)
    "shadow-radius": "CAST_SHADOW_RADIUS",
    "shadow-margin": "CAST_SHADOW_MARGIN",
    "forehead": "FOREHEAD_DARKNESS",  # 0: a brim's edge and shade painted over (before)
    "forehead-from": ("FOREHEAD_GATE", 0),
    "forehead-full": ("FOREHEAD_GATE", 1),
    "forehead-margin": "FOREHEAD_MARGIN",
    "forehead-brows": "FOREHEAD_BROWS",
    "brow-depth": "BROW_DEPTH",  # 0: brows keep the swap's depth (before session 18)
    "brow-depth-gain": "BROW_DEPTH_GAIN",
    "brow-depth-share": "BROW_DEPTH_SHARE",
    "brow-depth-margin": "BROW_DEPTH_MARGIN",
    "brow-depth-radius": "BROW_DEPTH_RADIUS",
    "brow-shelf": "BROW_SHELF",  # 0: the shelf beside a brow kept (before session 33)
    "brow-shelf-core": "BROW_SHELF_CORE",
    "brow-shelf-near": "BROW_SHELF_NEAR",
    "brow-shelf-reach": "BROW_SHELF_REACH",
    "brow-own": "BROW_OWN",  # 0: the swap's brows judged on the target's line (before)
    "brow-own-reach": "BROW_OWN_REACH",
    "brow-own-thickness": "BROW_OWN_THICKNESS",
    "detail-brow-gate": "DETAIL_BROW_GATE",  # 40 (= detail-gate): brows gated as all (before)
    "box-over-brows": "BOX_OVER_BROWS",  # 0: the box's soft top over the brows (before)
    "box-over-brows-darker-from": ("BOX_OVER_BROWS_DARKER", 0),
    "box-over-brows-darker": ("BOX_OVER_BROWS_DARKER", 1),  # 0: lifted where the swap is darker too
    "lens": "LENS",  # 0: a target's dark lenses swapped over (before session 45)
    "lens-from": ("LENS_GATE", 0),
    "lens-full": ("LENS_GATE", 1),
    "lens-reach": "LENS_REACH",
    "lens-dark": "LENS_DARK",
    "eye-iris": "EYE_IRIS",  # 0: an opening painted over stays so (before session 45)
    "eye-iris-from": ("EYE_IRIS_GATE", 0),
    "eye-iris-full": ("EYE_IRIS_GATE", 1),
    "eye-iris-margin": "EYE_IRIS_MARGIN",
    "eye-dark": "EYE_DARKNESS",  # 0: eyes keep the swap's lightness (before session 14)
    "eye-dark-from": ("EYE_DARKNESS_GATE", 0),
    "eye-dark-full": ("EYE_DARKNESS_GATE", 1),
    "eye-dark-margin": "EYE_DARKNESS_MARGIN",
    "eye-dark-grow": "EYE_DARKNESS_GROW",
    "eye-white": "EYE_WHITES",  # 0: eyes keep the swap's whites (before session 16)
    "eye-white-from": ("EYE_WHITES_GATE", 0),
    "eye-white-full": ("EYE_WHITES_GATE", 1),
    "eye-white-margin": "EYE_WHITES_MARGIN",
    "eye-paired": "EYE_PAIRED",  # 0: each eye on its own gate (before session 34)
    "nostrils": "NOSTRIL_DARKNESS",  # 0: the generator's nostrils (before session 35)
    "nostril-from": ("NOSTRIL_GATE", 0),
    "nostril-full": ("NOSTRIL_GATE", 1),
    "nostril-margin": "NOSTRIL_MARGIN",
    "nostril-grow": "NOSTRIL_GROW",
    "nostril-median": ("NOSTRIL_PERCENTILES", 1),  # 10: judged by the darkest tenth only
    "lips": "LIP_DARKNESS",  # 0: the generator's lips' lightness (before session 43)
    "lip-from": ("LIP_GATE", 0),
    "lip-full": ("LIP_GATE", 1),
    "lip-margin": "LIP_MARGIN",
    # closed eyes taken from the target (docs/swap.md "Blinks"); sessions 8-30 had
    # blink-from-0.22+blink-full-0.2199+blink-gap-low-0.05+blink-gap-high-0.12+blink-grow-0.35
    # +blink-hold-0 (0: no hold per track and none lent to the other eye)
    "blink-from": ("BLINK_CLOSING", 0),
    "blink-full": ("BLINK_CLOSING", 1),
    "blink-gap-low": ("BLINK_GAP", 0),
    "blink-gap-high": ("BLINK_GAP", 1),
    "blink-grow": "BLINK_GROW",
    "blink-hold": "BLINK_HOLD",
    "focus": "FOCUS_MATCH",  # 0: the swap keeps the generator's focus (before session 14)
    "color-fit": "COLOR_FIT_SIZE",  # 0: colour fitted at the generator's S (before session 15)
    # swap/exposure.py's (a module name before the dot)
    "exposure-floor": "exposure.EXPOSURE_FLOOR",  # 0: dark faces given to the model as they are
    "exposure-max": "exposure.EXPOSURE_MAX_GAIN",
    "skin-distance": "exposure.SKIN_DISTANCE",  # 0: faces under coloured light as they are
    # faces the frame's edge cuts (benchmarks/edge_faces.py): the detector's padded pass (0:
    # off), the crops' mirrored border (0: black), occluders only inside the frame (0: off)
    "edge-margin": "detect.EDGE_MARGIN",
    "crop-mirror": "pipeline.CROP_BORDER",
    "occl-inside": "OCCLUDER_INSIDE_FRAME",
    "grain": "grain.GRAIN",  # 0: no grain where the swap's band replaced the target's (before)
    "grain-lowest": "grain.GRAIN_LOWEST",  # the lowest frequency with grain (cycles/px)
    "grain-swap-min": "grain.GRAIN_SWAP_BAND_MIN",
    "brow-focus": "brow_focus.BROW_FOCUS",  # 0: the swap's brows as the model paints them
    "brow-focus-sigma": "brow_focus.BROW_FOCUS_SIGMA",
}
# Knobs whose constant is a word: the number picks it.
WORD_KNOBS = {"crop-mirror": ("black", "mirror")}
# SwapOptions fields a ``knob-value`` part can set the same way (``id-strength-0.3``,
# ``id-strength-0.3+detail-res-0.75``).
OPTION_KNOBS = {"id-strength": "identity_strength", "detail": "detail",
                "follow": "detail_follow"}  # follow-1: --detail-follow
CHANGE_LEVEL = 10  # grey levels: the DCT watermark changes pixels by less than this
PAIRED_TIE = 0.002  # per-photo differences this small count as neither up nor down
# The grain measure's high-pass: the grey image minus its Gaussian blur of this many pixels. At
# 1 px it sees the frame's finest grain, which a swap keeps anyway where the face is larger in
# the frame than its work crop (the change is smooth at that scale); grain a few pixels across
# is what a swapped face loses, and what the eye misses on lips and eyes.
GRAIN_BLUR = 2.0
NOISE_GRAIN = 0.7  # --noise: the grain's blur (px)
GROW = 0.25  # fraction of the face height the face region is grown by for "outside"
# Largest face of a photo by work factor (1, 2, 3, 4 and more): the detail band and its
# identity cost depend on how much larger than the generator's crop the face is.
SIZE_CLASSES = ["k 1", "k 2-3", "k 2-3", "k 4+"]


def _label(source: Path) -> str:
    """A source's name in rows: the photo's stem, with ``@N`` when a face was chosen."""
    photo, choice = split_face_choice(source)
    return Path(photo).stem if choice is None else f"{Path(photo).stem}@{choice}"


def config_settings(config: str) -> tuple[dict, dict]:
    """``(SwapOptions keyword arguments, compose constants)`` of a config name: one of
    ``CONFIGS``, or ``+``-joined ``KNOBS`` parts on the default options."""
    if config in CONFIGS:
        return CONFIGS[config], {}
    constants: dict = {}
    options: dict = {}
    for part in config.split("+"):
        knob, _, value = part.rpartition("-")
        if knob not in KNOBS and knob not in OPTION_KNOBS:
            raise SystemExit(f"error: unknown config {config!r} (part {part!r}); configs: "
                             f"{', '.join(CONFIGS)}, or +-joined <knob>-<value> with knobs "
                             f"{', '.join([*KNOBS, *OPTION_KNOBS])}")
        try:
            number = float(value)
        except ValueError:
            raise SystemExit(f"error: config {config!r}: {value!r} is not a number") from None
        if knob in OPTION_KNOBS:
            options[OPTION_KNOBS[knob]] = bool(number) if knob == "follow" else number
            continue
        name = KNOBS[knob]
        if isinstance(name, tuple):  # one end of a pair
            name, index = name
            pair = list(constants.get(name, getattr(*_constant(name))))
            pair[index] = number
            constants[name] = tuple(pair)
        elif knob in WORD_KNOBS:
            constants[name] = WORD_KNOBS[knob][int(number != 0)]
        else:
            constants[name] = number
    return options, constants


MODULES = {"compose": compose, "exposure": exposure, "detect": detect, "pipeline": pipeline,
           "grain": grain, "follow": follow, "brow_focus": brow_focus}


def _constant(name: str) -> tuple:
    """``(module, attribute)`` of a knob's constant: ``NAME`` of swap/compose.py, or
    ``module.NAME`` of another module in ``MODULES`` (swap/exposure.py, faces/detect.py,
    swap/pipeline.py)."""
    module, _, attribute = name.rpartition(".")
    module = MODULES[module or "compose"]
    if attribute not in vars(module):
        raise SystemExit(f"error: {module.__name__} has no constant {attribute}")
    return module, attribute


@contextlib.contextmanager
def compose_constants(constants: dict):
    """Set swap/compose.py (or ``module.NAME``) constants for the block, restore them after."""
    places = {name: _constant(name) for name in constants}
    saved = {name: getattr(*places[name]) for name in constants}
    try:
        for name, value in constants.items():
            setattr(*places[name], value)
        yield
    finally:
        for name, value in saved.items():
            setattr(*places[name], value)


@dataclass
class FaceRegion:
    polygon: np.ndarray  # (N, 2) frame pixels
    landmarks5: np.ndarray
    landmarks68: np.ndarray
    height: float


@dataclass
class Row:
    name: str
    group: str
    config: str
    values: dict = field(default_factory=dict)


def face_regions(swapper: Swapper, image: np.ndarray, detector=None) -> list[FaceRegion]:
    """Every detected face of ``image`` with its 68-landmark outline in frame pixels
    (``detector``: the swapper's by default)."""
    predictor = get_landmarks68()
    regions = []
    for face in (detector or swapper.detector).detect(image):
        crop, matrix = align_face(image, face.landmarks, 256, antialias=True)
        points = transform_points(predictor.on_crop(crop), invert_affine(matrix))
        polygon = masks.face_polygon(points, brow_lift=0.0)
        height = float(np.linalg.norm(points[8] - points[17:27].mean(0)))
        regions.append(FaceRegion(polygon, np.asarray(face.landmarks), points, height))
    return regions


def region_mask(regions: list[FaceRegion], shape, grow: float = 0.0) -> np.ndarray:
    mask = np.zeros(shape[:2], np.uint8)
    for region in regions:
        layer = (masks.polygon_mask(region.polygon, shape[:2]) > 0.5).astype(np.uint8)
        radius = int(round(grow * region.height))
        if radius > 0:
            layer = cv2.dilate(layer, cv2.getStructuringElement(cv2.MORPH_ELLIPSE,
                                                                (2 * radius + 1,) * 2))
        mask |= layer
    return mask.astype(bool)


def eye_mask(regions: list[FaceRegion], shape, grow: float = 0.35) -> np.ndarray:
    """Both eyes of every face: the outline of each eye's six landmarks grown by ``grow`` of
    its width (lids and lash line, as ``compose.EYE_DARKNESS_GROW``)."""
    mask = np.zeros(shape[:2], bool)
    for region in regions:
        mask |= masks.eye_zone(region.landmarks68, shape[:2], grow)
    return mask


def expose(image: np.ndarray, factor) -> np.ndarray:
    """``image`` with its values multiplied by ``factor`` (a number, or one per RGB channel:
    coloured light; rounded, clipped): about what an exposure ``factor`` times as long, or a
    light of that colour, makes of a photo in sRGB; ``image`` itself for 1."""
    return exposure.apply_gain(image, factor)  # the swap's own gain, applied to the scene


def add_noise(image: np.ndarray, sigma: float, seed: str) -> np.ndarray:
    """``image`` with noise of ``sigma`` grey levels per channel, seeded by ``seed`` (a photo's
    name: every config gets the same noisy photo): Gaussian, blurred by ``NOISE_GRAIN`` px and
    scaled back to ``sigma``; ``image`` itself for 0."""
    if sigma <= 0:
        return image
    rng = np.random.default_rng(zlib.crc32(seed.encode()))
    noise = cv2.GaussianBlur(rng.standard_normal(image.shape).astype(np.float32), (0, 0),
                             NOISE_GRAIN)
    noise *= sigma / max(float(noise.std()), 1e-6)
    return np.clip(np.rint(image.astype(np.float32) + noise), 0, 255).astype(np.uint8)


CAPTION_FONTS = ("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
                 "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf")
CAPTION_WORDS = ("I never said that", "WHEN YOU FINALLY", "me on monday", "BREAKING NEWS",
                 "nobody: absolutely", "GET IT RIGHT", "live from the studio", "NOT AGAIN")


def caption_font(size: int):
    """A bold sans serif that the segmenter's training never used (its text is Pillow's own
    font and OpenCV's), so the measure is of text it has not seen; Pillow's font where neither
    is installed."""
    from PIL import ImageFont

    for path in CAPTION_FONTS:
        if Path(path).is_file():
            return ImageFont.truetype(path, size)
    return ImageFont.load_default(size=size)


def add_caption(image: np.ndarray, regions: list[FaceRegion], seed: str
                ) -> tuple[np.ndarray, np.ndarray]:
    """``image`` with a line of text across its largest face, and the text's mask: a meme's
    white capitals with a black outline, a yellow subtitle with a drop shadow, white letters
    alone, or white letters with a soft shadow (chosen by ``seed``, a photo's name), across
    the eyes, the cheeks or the mouth, 12-16 % of the face's width high."""
    from PIL import Image, ImageDraw, ImageFilter

    if not regions:
        return image, np.zeros(image.shape[:2], bool)
    rng = np.random.default_rng(zlib.crc32(seed.encode()))
    region = max(regions, key=lambda r: r.height)
    left, top = region.polygon.min(axis=0)
    right, bottom = region.polygon.max(axis=0)
    width = right - left
    style = int(rng.integers(4))
    font = caption_font(max(6, int(width * rng.uniform(0.12, 0.16))))
    text = str(rng.choice(CAPTION_WORDS))
    across = float(rng.choice([0.3, 0.55, 0.75]))  # eyes, cheeks, mouth
    stroke = max(2, font.size // 10) if style == 0 else 0
    box = font.getbbox(text, stroke_width=stroke)
    x = (left + right) / 2 - (box[2] - box[0]) / 2 - box[0]
    y = top + across * (bottom - top) - (box[3] - box[1]) / 2 - box[1]
    picture = Image.fromarray(image)
    mask = Image.new("L", picture.size, 0)
    draw, marks = ImageDraw.Draw(picture), ImageDraw.Draw(mask)
    shift = max(2, font.size // 14)
    if style == 1 or style == 3:
        shadow = Image.new("L", picture.size, 0)
        ImageDraw.Draw(shadow).text((x + shift, y + shift), text, font=font, fill=255)
        if style == 3:
            shadow = shadow.filter(ImageFilter.GaussianBlur(shift))
        picture.paste((12, 12, 12), (0, 0), shadow.point(lambda v: int(v * 0.85)))
        marks.bitmap((0, 0), shadow.point(lambda v: 255 if v > 96 else 0), fill=255)
    fill = (250, 225, 40) if style == 1 else (250, 250, 250)
    draw.text((x, y), text, font=font, fill=fill, stroke_width=stroke, stroke_fill=(0, 0, 0))
    marks.text((x, y), text, font=font, fill=255, stroke_width=stroke, stroke_fill=255)
    return np.asarray(picture).copy(), np.asarray(mask) > 127


def grain_level(image: np.ndarray, region: np.ndarray) -> float:
    """The robust deviation of ``image``'s grey high-pass (minus a Gaussian blur) over
    ``region``: grain and noise, not the few large values of edges."""
    if not region.any():
        return float("nan")
    data = grey(image)
    values = (data - cv2.GaussianBlur(data, (0, 0), GRAIN_BLUR))[region]
    return 1.4826 * float(np.median(np.abs(values - np.median(values))))


def mouth_mask(regions: list[FaceRegion], shape, grow: float = 0.15) -> np.ndarray:
    """Every face's mouth: the outline of its 12 outer lip landmarks grown by ``grow`` of the
    face height."""
    mask = np.zeros(shape[:2], np.uint8)
    for region in regions:
        layer = (masks.polygon_mask(region.landmarks68[48:60], shape[:2]) > 0.5).astype(np.uint8)
        radius = max(1, int(round(grow * region.height)))
        mask |= cv2.dilate(layer, cv2.getStructuringElement(cv2.MORPH_ELLIPSE,
                                                            (2 * radius + 1,) * 2))
    return mask.astype(bool)


def grey(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)


def laplacian_variance(image: np.ndarray, region: np.ndarray) -> float:
    lap = cv2.Laplacian(grey(image), cv2.CV_32F, ksize=3)
    return float(lap[region].var()) if region.any() else float("nan")


def grey_change(a: np.ndarray, b: np.ndarray, region: np.ndarray) -> float:
    """Mean absolute grey difference of ``a`` and ``b`` over ``region`` (NaN where empty)."""
    return float(np.abs(grey(a) - grey(b))[region].mean()) if region.any() else float("nan")


def changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a.astype(np.int16) - b.astype(np.int16)).max(axis=2) > CHANGE_LEVEL


def dlib_descriptor_at(image: np.ndarray, landmarks5: np.ndarray) -> np.ndarray:
    # Antialiased (faces.align.warp_crop): sampled bilinearly, a face 4-5 times the crop
    # aliases its fine texture into noise that moves the descriptor, so detail the eye cannot
    # see at dlib's 150 px measured as lost identity (docs/swap.md, "Antialiased crops").
    crop, _ = align_face(image, landmarks5, 256, shrink_factor=0.5, antialias=True)
    return get_dlib_face().analyse_crop(crop, 0.5).descriptor


def photo_metrics(target: np.ndarray, out: np.ndarray, regions: list[FaceRegion],
                  source_descriptor: np.ndarray, name: str, text: np.ndarray | None = None
                  ) -> dict:
    inner = region_mask(regions, target.shape)
    eroded = cv2.erode(inner.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    grown = region_mask(regions, target.shape, GROW)
    values = {
        "sharp": laplacian_variance(out, eroded) / max(laplacian_variance(target, eroded), 1e-6),
        "grain": grain_level(out, eroded) / max(grain_level(target, eroded), 1e-6),
        "cast %": 100.0 * color_cast_fraction(target, out, inner),
        "out %": 100.0 * float(changed(target, out)[~grown].mean()),
    }
    occluders = occluder_mask(name, target.shape)
    features = (eye_mask(regions, target.shape) | mouth_mask(regions, target.shape)) & eroded
    values["grain feat"] = grain_level(out, features) / max(grain_level(target, features), 1e-6)
    values["occl"] = grey_change(out, target, occluders)
    if text is not None:
        # the caption where it crosses a face (where the swap writes)
        values["text"] = grey_change(out, target, text & inner)
    gains, poses = [], []
    dlib = get_dlib_face()
    for region in regions:
        before = dlib_descriptor_at(target, region.landmarks5)
        after = dlib_descriptor_at(out, region.landmarks5)
        if np.abs(out.astype(np.int16) - target.astype(np.int16))[
                masks.polygon_mask(region.polygon, target.shape[:2]) > 0.5].max(initial=0) <= \
                CHANGE_LEVEL:
            continue  # this face was not swapped (too small, profile faded out...)
        gains.append(float(np.linalg.norm(before - source_descriptor)
                           - np.linalg.norm(after - source_descriptor)))
        crop, matrix = align_face(out, region.landmarks5, 256, antialias=True)
        swapped68 = transform_points(dlib.landmarks(crop, _template_box()), invert_affine(matrix))
        poses.append(pose_error_deg(region.landmarks68, swapped68, target.shape[:2]))
    values["id gain"] = float(np.mean(gains)) if gains else float("nan")
    values["pose"] = float(np.mean(poses)) if poses else float("nan")
    values["faces"] = f"{len(gains)}/{len(regions)}"
    return values


def _template_box():
    from facedancer_torch.faces.landmarks68 import template_box

    return template_box(256)


def video_metrics(swapper: Swapper, path: Path, options: SwapOptions, plan, frames: int,
                  regions_cache: dict, exposure_factor=1.0, noise: float = 0.0) -> dict:
    inputs = [f if isinstance(f, np.ndarray) else f.rgb
              for f in read_frames(path, max_frames=frames)]
    stats = VideoStats()
    # --exposure: the clip swapped darkened, measured brightened back (both sides), the faces
    # found on the original frames.
    # --noise: every frame its own grain (seeded by clip and frame), as a camera's.
    inputs = [add_noise(f, noise, f"{path.name}:{t}") for t, f in enumerate(inputs)]
    dark = [expose(f, exposure_factor) for f in inputs]
    outputs = [expose(rgb, 1.0 / exposure_factor)
               for _, rgb in swap_stream(swapper, iter(dark), plan, options, stats=stats)]
    if not exposure.is_unit(exposure_factor):
        inputs, originals = [expose(f, 1.0 / exposure_factor) for f in dark], inputs
    else:
        originals = inputs
    if path not in regions_cache:
        # The detector as the video pipeline runs it (its 640 px first pass for frames)
        detector = full_first_pass(swapper.detector)
        regions_cache[path] = [face_regions(swapper, frame, detector) for frame in originals]
    regions = regions_cache[path]
    flick_in, flick_out, ghost, sharp_num, sharp_den, casts = [], [], [], [], [], []
    grains: list[float] = []
    eyes_in, eyes_out = [], []
    swapped = faceless = 0
    for t, (frame, out, faces) in enumerate(zip(inputs, outputs, regions)):
        swapped += bool(changed(frame, out).any())
        # Ghosts: changes where the detector sees no face in this input frame (a track painted
        # on after its person left, a stamp on a face too blurred to detect).
        grown = region_mask(faces, frame.shape, GROW)
        ghost.append(float(changed(frame, out)[~grown].mean()))
        if not faces:
            faceless += 1
            continue
        inner = region_mask(faces, frame.shape)
        casts.append(color_cast_fraction(frame, out, inner))
        sharp_num.append(laplacian_variance(out, inner))
        sharp_den.append(laplacian_variance(frame, inner))
        grains.append(grain_level(out, inner) / max(grain_level(frame, inner), 1e-6))
        if t and regions[t - 1]:
            flick_in.append(grey_change(frame, inputs[t - 1], inner))
            flick_out.append(grey_change(out, outputs[t - 1], inner))
            eyes = eye_mask(faces, frame.shape)
            if eyes.any():
                eyes_in.append(grey_change(frame, inputs[t - 1], eyes))
                eyes_out.append(grey_change(out, outputs[t - 1], eyes))
    return {
        "sharp": float(np.sum(sharp_num) / max(np.sum(sharp_den), 1e-6)),
        "grain": float(np.median(grains)) if grains else float("nan"),
        "cast %": 100.0 * float(np.mean(casts)) if casts else float("nan"),
        "flicker": float(np.mean(flick_out) / max(np.mean(flick_in), 1e-6))
        if flick_in else float("nan"),
        "eye flicker": float(np.mean(eyes_out) / max(np.mean(eyes_in), 1e-6))
        if eyes_in else float("nan"),
        "ghost %": 100.0 * float(np.mean(ghost)) if ghost else 0.0,
        "faceless": faceless,
        "swapped": f"{swapped}/{len(inputs)}",
        "faces": f"{stats.swapped}/{stats.detected}",
    }


def table(rows: list[Row], columns: list[str]) -> str:
    header = "| output | set | config | " + " | ".join(columns) + " |"
    lines = [header, "|" + "---|" * (3 + len(columns))]
    for row in rows:
        cells = []
        for column in columns:
            value = row.values.get(column, "")
            cells.append(f"{value:.3f}" if isinstance(value, float) else str(value))
        lines.append(f"| {row.name} | {row.group} | {row.config} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summary(rows: list[Row], columns: list[str], configs: list[str]) -> str:
    lines = ["| config | " + " | ".join(f"median {c}" for c in columns) + " |",
             "|" + "---|" * (1 + len(columns))]
    for config in configs:
        cells = []
        for column in columns:
            values = [r.values[column] for r in rows if r.config == config
                      and isinstance(r.values.get(column), float)
                      and not np.isnan(r.values[column])]
            cells.append(f"{np.median(values):.3f}" if values else "")
        lines.append(f"| {config} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def paired(rows: list[Row], columns: list[str], configs: list[str], keep=None) -> str:
    """Per-photo differences from the first config, in the same run: the median difference
    and how many photos are higher / lower by more than ``PAIRED_TIE`` (medians over photos
    move when the median photo changes; these do not). ``keep(name)``: only those photos."""
    base = configs[0]
    lines = ["| config | " + " | ".join(f"{c} - {base} (up / down)" for c in columns) + " |",
             "|" + "---|" * (1 + len(columns))]
    by_key = {(r.name, r.config): r.values for r in rows}
    names = list(dict.fromkeys(r.name for r in rows))
    for config in configs[1:]:
        cells = []
        for column in columns:
            diffs = []
            for name in names:
                if keep is not None and not keep(name):
                    continue
                a = by_key.get((name, base), {}).get(column)
                b = by_key.get((name, config), {}).get(column)
                if isinstance(a, float) and isinstance(b, float) and not (np.isnan(a) or
                                                                         np.isnan(b)):
                    diffs.append(b - a)
            diffs = np.asarray(diffs)
            cells.append(f"{np.median(diffs):+.3f} ({int((diffs > PAIRED_TIE).sum())} / "
                         f"{int((diffs < -PAIRED_TIE).sum())})" if len(diffs) else "")
        lines.append(f"| {config} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def per_source(rows: list[Row], labels: list[str], configs: list[str]) -> str:
    """:func:`paired` on each source's own photos (rows named ``photo @ label``), one table
    per source: what a setting costs in identity depends on the source (make-up, eye shape,
    skin), which the pooled table hides."""
    parts = []
    for label in labels:
        suffix = f" @ {label}"
        count = len({r.name for r in rows if r.name.endswith(suffix)})
        parts.append(f"\n### Source {label} ({count} photos)\n\n" +
                     paired(rows, ["sharp", "id gain", "pose"], configs,
                            keep=lambda name, suffix=suffix: name.endswith(suffix)))
    return "\n".join(parts)


def size_class(swapper: Swapper, regions: list) -> str:
    """The work-factor class of a photo's largest face: how many times the generator's crop
    fits in it (``compose.work_factor``, the factor the detail band is split with)."""
    if not regions:
        return "none"
    largest = max(regions, key=lambda r: r.height)
    matrix = alignment_matrix(largest.landmarks5, swapper.image_size, swapper.crop_shrink)
    factor = compose.work_factor(matrix, swapper.image_size)
    return SIZE_CLASSES[min(factor, len(SIZE_CLASSES)) - 1]


def face_square(outputs: dict, name: str) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)``: the square around ``name``'s largest face the figure shows."""
    target = outputs[(name, "target")]
    regions = outputs[(name, "regions")]
    if regions:
        largest = max(regions, key=lambda r: r.height)
        (x0, y0), (x1, y1) = largest.polygon.min(0), largest.polygon.max(0)
        cx, cy, half = (x0 + x1) / 2, (y0 + y1) / 2, 0.8 * max(x1 - x0, y1 - y0)
    else:
        cx, cy, half = target.shape[1] / 2, target.shape[0] / 2, min(target.shape[:2]) / 2
    half = min(half, cx, cy, target.shape[1] - cx, target.shape[0] - cy)
    x0, y0, x1, y1 = (int(round(v)) for v in (cx - half, cy - half, cx + half, cy + half))
    return x0, y0, x1, y1


def figure(outputs: dict, names: list[str], configs: list[str], path: Path) -> None:
    """Rows of target | config outputs: the same square around each photo's largest face,
    320 px per tile, labelled columns."""
    tile = 320
    rows = []
    for name in names:
        x0, y0, x1, y1 = face_square(outputs, name)
        tiles = [cv2.resize(outputs[(name, c)][y0:y1, x0:x1], (tile, tile),
                            interpolation=cv2.INTER_AREA) for c in ["target", *configs]]
        rows.append(np.concatenate([np.pad(t, ((0, 4), (0, 4), (0, 0)), constant_values=255)
                                    for t in tiles], axis=1))
    grid = np.concatenate(rows, axis=0)
    header = np.full((36, grid.shape[1], 3), 255, np.uint8)
    for i, label in enumerate(["target", *configs]):
        cv2.putText(header, label, (i * (tile + 4) + 8, 26), cv2.FONT_HERSHEY_SIMPLEX, 0.8,
                    (0, 0, 0), 2, cv2.LINE_AA)
    write_image(path, np.concatenate([header, grid], axis=0),
                metadata={"facedancer": "synthetic media: face swaps made by "
                          "benchmarks/quality.py"})


def write_crops(outputs: dict, names: list[str], configs: list[str], folder: Path) -> None:
    """The figure's face squares at the photo's own resolution, one PNG per photo and config
    (``folder/<photo>__<config>.png``): to look at eyes, brows and skin pixel for pixel."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        x0, y0, x1, y1 = face_square(outputs, name)
        for config in ["target", *configs]:
            write_image(folder / f"{Path(name).stem}__{config}.png",
                        outputs[(name, config)][y0:y1, x0:x1],
                        metadata={"facedancer": "synthetic media: face swaps made by "
                                  "benchmarks/quality.py"})


def null_generator(soft: bool):
    """A stand-in for ``Swapper.generate`` that returns the crops it gets (``soft``: each
    area-averaged to half its size and back up, bicubic)."""
    def generate(crops: np.ndarray, embeddings: np.ndarray, batch_size: int = 8) -> np.ndarray:
        out = np.array(crops, copy=True)
        if soft:
            size = crops.shape[1]
            for k, crop in enumerate(crops):
                small = cv2.resize(crop, (size // 2, size // 2), interpolation=cv2.INTER_AREA)
                out[k] = cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC)
        return out

    return generate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--source", type=Path, action="append", default=None,
                        help="the source face (default: the example astronaut.jpg); another "
                        "one checks that a difference between configs is not one source's. "
                        "Repeat it to pool several: each photo is swapped with each source "
                        "(rows 'photo @ source'; the figure, crops and videos use the first); "
                        "PHOTO@N takes the N-th face from the left, as the CLI does")
    parser.add_argument("--configs", default=",".join(CONFIGS),
                        help="comma-separated: names of CONFIGS, or +-joined <knob>-<value> "
                        f"parts on the default (knobs: {', '.join([*KNOBS, *OPTION_KNOBS])})")
    parser.add_argument("--frames", type=int, default=60, help="frames per video (0: none)")
    parser.add_argument("--groups", default="single,occluded,group",
                        help="photo groups (comma-separated; '' for videos only)")
    parser.add_argument("--videos", default=",".join(VIDEOS),
                        help="clips of the shared videos folder (comma-separated)")
    parser.add_argument("--video-configs", default="reference,default",
                        help="the configs also run on the videos (comma-separated; they must "
                        "be in --configs)")
    parser.add_argument("--photos", default=None,
                        help="swap these photos of the shared folder instead of the groups' "
                        "(comma-separated; to look at others than the 17), or 'all'")
    parser.add_argument("--figure", type=Path, default=None,
                        help="write a before/after figure (target | each config) here")
    parser.add_argument("--figure-photos", default="fr_lin-manuel-miranda.png,df_img1.jpg,"
                        "df_img25.jpg,fr_obama_and_biden.jpg")
    parser.add_argument("--figure-configs", default="reference,default",
                        help="the figure's columns after the target (those also run)")
    parser.add_argument("--null-generator", choices=["copy", "soft"], default=None,
                        help="a control: the generator returns the target crop itself (copy) "
                        "or low-passed to half its resolution (soft)")
    parser.add_argument("--exposure", type=float, default=1.0,
                        help="swap every photo and frame with its values multiplied by this "
                        "(0.35: a dark room), and measure output and target brightened back "
                        "by the same factor (faces found on the originals)")
    parser.add_argument("--light", default="1,1,1",
                        help="R,G,B: multiply every photo and frame by these per channel (a "
                        "coloured light: 0.45,0.55,1.25 a blue one, 1.2,0.45,0.7 a magenta "
                        "one), measured as --exposure (output and target divided back)")
    parser.add_argument("--noise", type=float, default=0.0,
                        help="add noise of this many grey levels per channel to every photo and "
                        "video frame first (seeded per photo and frame; 8-15: a dark room's "
                        "sensor noise)")
    parser.add_argument("--segmenter", type=Path, default=None,
                        help="a face segmenter's model folder instead of the shipped one (a "
                        "fine-tune's, to see what it changes in the swaps)")
    parser.add_argument("--captions", action="store_true",
                        help="lay a line of text (a meme's, a subtitle's) across each photo's "
                        "largest face first; 'text' is the mean grey change inside its letters "
                        "where they cross a face (0 = the caption came through the swap whole)")
    parser.add_argument("--crops", type=Path, default=None,
                        help="write the figure photos' face squares at full resolution, per "
                        "config, into this folder")
    args = parser.parse_args()
    if not 0.0 < args.exposure <= 4.0:
        sys.exit(f"error: --exposure is a factor in (0, 4], got {args.exposure}")
    try:
        light = np.array([float(v) for v in args.light.split(",")], np.float64)
    except ValueError:
        light = np.zeros(0)
    if light.shape != (3,) or not np.all((light > 0) & (light <= 4)):
        sys.exit(f"error: --light is three factors in (0, 4] (R,G,B), got {args.light!r}")
    factor = args.exposure * light  # the light on every photo and frame
    lit_change = not exposure.is_unit(factor)
    photos_dir, videos_dir = SHARED / "data/photos", SHARED / "data/videos"
    if not photos_dir.is_dir():
        sys.exit(f"error: {photos_dir}: shared photos not found (set FACEDANCER_SHARED)")
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    for config in configs:
        config_settings(config)  # an unknown name fails now, not after the first photos
    swapper = Swapper(args.model)
    if args.segmenter is not None:
        from facedancer_torch.faces.occlusion import load_face_segmenter

        swapper.compositor._segmenter = load_face_segmenter(args.segmenter)
        print(f"segmenter: {args.segmenter}\n")
    if args.null_generator:
        swapper.generate = null_generator(args.null_generator == "soft")
        print(f"control: a null generator ({args.null_generator}): no face changes identity\n")
    sources = args.source or [SOURCE]
    plans, descriptors = [], []
    for source in sources:
        plans.append(swapper.plan([source]))
        # The face the swap takes (the largest, or PHOTO@N's): until session 18 this was the
        # first one detected, which for gfp_Blake_Lively.jpg is the child beside her.
        photo, choice = split_face_choice(source)
        picture = read_image(photo)
        face = source_face(swapper.detect(picture), choice)
        descriptors.append(dlib_descriptor_at(picture, face.landmarks))
    plan = plans[0]  # the videos' and the figure's
    rows: list[Row] = []
    outputs: dict = {}
    start = time.time()
    if args.photos == "all":
        photos = {"all": sorted(p.name for p in photos_dir.iterdir()
                                if p.suffix.lower() in (".jpg", ".jpeg", ".png"))}
    else:
        photos = {"chosen": args.photos.split(",")} if args.photos else \
            {g: PHOTOS[g] for g in args.groups.split(",") if g}
    sizes: dict[str, str] = {}
    for group, names in photos.items():
        for name in names:
            target = read_image(photos_dir / name)
            regions = face_regions(swapper, target)
            target = add_noise(target, args.noise, name)
            text = None
            if args.captions:
                target, text = add_caption(target, regions, name)
            original, dark = target, expose(target, factor)
            target = expose(dark, 1.0 / factor)  # what the swap had, brightened back
            outputs[(name, "target")], outputs[(name, "regions")] = target, regions
            for index, (source, source_plan, descriptor) in enumerate(
                    zip(sources, plans, descriptors)):
                row_name = name if len(sources) == 1 else f"{name} @ {_label(source)}"
                sizes[row_name] = size_class(swapper, regions)
                for config in configs:
                    kwargs, constants = config_settings(config)
                    options = SwapOptions(**kwargs)
                    with compose_constants(constants):
                        out = finish_image(swapper.swap_image(dark, source_plan, options),
                                           options)
                        lit = finish_image(swapper.swap_image(original, source_plan, options),
                                           options) if lit_change else None
                    out = expose(out, 1.0 / factor)
                    if index == 0:
                        outputs[(name, config)] = out
                    values = photo_metrics(target, out, regions, descriptor, name, text)
                    if lit is not None:
                        # The same swap of the photo as it was: how far the darkened one,
                        # brightened back, is from it in the face (0 = exposure changes
                        # nothing; the target's own quantisation alone is a floor).
                        values["vs lit"] = grey_change(out, lit, region_mask(regions,
                                                                            out.shape))
                    rows.append(Row(row_name, group, config, values))
            print(f"  {name} done ({time.time() - start:.0f} s)", file=sys.stderr)
    photo_columns = ["sharp", "grain", "grain feat", "cast %", "out %", "occl", "id gain",
                     "pose", "faces"]
    if lit_change:
        photo_columns.insert(-1, "vs lit")
    if args.captions:
        photo_columns.insert(photo_columns.index("occl") + 1, "text")
    print("## Photos\n")
    print(table(rows, photo_columns))
    print("\n## Photos, medians over outputs\n")
    print(summary(rows, photo_columns[:-1], configs))
    if len(configs) > 1:
        print(f"\n## Photos, per-photo differences from {configs[0]} (median)\n")
        print(paired(rows, ["sharp", "grain", "grain feat", "occl",
                            *(["text"] if args.captions else []), "id gain", "pose",
                            *(["vs lit"] if lit_change else [])], configs))
        for size in dict.fromkeys(SIZE_CLASSES):
            count = sum(1 for v in sizes.values() if v == size)
            if count:
                unit = "photos" if len(sources) == 1 else "photo-source pairs"
                print(f"\n### Largest face {size} ({count} {unit})\n")
                print(paired(rows, ["sharp", "id gain", "pose"], configs,
                             keep=lambda name, size=size: sizes.get(name) == size))
        if len(sources) > 1:
            print(per_source(rows, [_label(source) for source in sources], configs))
    if args.frames > 0 and videos_dir.is_dir():
        video_rows: list[Row] = []
        cache: dict = {}
        video_configs = args.video_configs.split(",")
        for name in args.videos.split(","):
            for config in configs:
                if config not in video_configs:
                    continue
                kwargs, constants = config_settings(config)
                with compose_constants(constants):
                    values = video_metrics(swapper, videos_dir / name, SwapOptions(**kwargs),
                                           plan, args.frames, cache, factor, args.noise)
                video_rows.append(Row(name, "video", config, values))
            print(f"  {name} done ({time.time() - start:.0f} s)", file=sys.stderr)
        print(f"\n## Videos (first {args.frames} frames)\n")
        print(table(video_rows, ["sharp", "grain", "cast %", "flicker", "eye flicker", "ghost %",
                                 "faceless", "swapped", "faces"]))
    names = [n for n in args.figure_photos.split(",") if (n, "target") in outputs]
    if args.figure is not None:
        shown = [c for c in args.figure_configs.split(",") if c in configs]
        figure(outputs, names, shown, args.figure)
        print(f"\nfigure: {args.figure}")
    if args.crops is not None:
        write_crops(outputs, names, configs, args.crops)
        print(f"crops: {args.crops}")


if __name__ == "__main__":
    main()
