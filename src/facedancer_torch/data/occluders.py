"""Synthetic occluders painted on aligned face crops: shared by the occlusion-aware segmenter's
training data (:mod:`..train.segmenter`) and the generator's occluded targets (:mod:`.augment`).

Every painter draws on a float32 ``(S, S, 3)`` RGB image in [0, 255] **in place** and returns
the occluder's alpha ``(S, S)`` in [0, 1] (pixels where alpha is 0 are left bit-identical).
Painters place their shapes from dlib's 68 landmarks of the crop
(:func:`..faces.landmarks68.Landmarks68.on_crop`); ``others`` are other crops (uint8) whose
textures objects and hands may borrow.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

# --------------------------------------------------------------------------------------------

def _blend(image: np.ndarray, layer: np.ndarray, alpha: np.ndarray) -> None:
    image *= 1.0 - alpha[..., None]
    image += layer * alpha[..., None]


def _shade(alpha: np.ndarray, rng: np.random.Generator, depth: float = 0.35) -> np.ndarray:
    """A shading field: darker towards the object's edges (round objects) times a linear light
    gradient, so pasted shapes are not flat stickers."""
    hard = (alpha > 0.5).astype(np.uint8)
    dist = cv2.distanceTransform(hard, cv2.DIST_L2, 3)
    scale = max(float(dist.max()), 1.0)
    edge = 1.0 - depth * (1.0 - np.clip(dist / (0.6 * scale), 0, 1)) ** 2
    size = alpha.shape[0]
    angle = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
    light = 1.0 + rng.uniform(0.0, 0.5) * (np.cos(angle) * xx + np.sin(angle) * yy)
    return (edge * light).astype(np.float32)


def _texture_from(crop: np.ndarray, rng: np.random.Generator, size: int,
                  box: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """A ``(size, size, 3)`` float32 texture: a random (or the given) box of ``crop``, rotated
    and resized."""
    s = crop.shape[0]
    if box is None:
        w = int(rng.integers(s // 6, s // 2))
        x0, y0 = (int(v) for v in rng.integers(0, s - w, 2))
        box = (x0, y0, x0 + w, y0 + w)
    x0, y0, x1, y1 = box
    patch = crop[y0:y1, x0:x1]
    patch = np.rot90(patch, int(rng.integers(4)))
    return cv2.resize(np.ascontiguousarray(patch), (size, size),
                      interpolation=cv2.INTER_CUBIC).astype(np.float32)


def _alpha_from(draw, size: int, soft: float = 0.0) -> np.ndarray:
    """Draw with ``draw(mask)`` on a 2x canvas (uint8 255), downsample: anti-aliased alpha."""
    big = np.zeros((size * 2, size * 2), dtype=np.uint8)
    draw(big)
    alpha = cv2.resize(big, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    if soft > 0:
        alpha = cv2.GaussianBlur(alpha, (0, 0), soft)
    return alpha


def _pts(points: np.ndarray) -> np.ndarray:
    """Crop pixel points -> int32 vertices on the 2x canvas with 3 fractional bits."""
    return np.round((np.asarray(points) * 2 + 0.5) * 8).astype(np.int32)


def _random_polygon(rng: np.random.Generator, centre: np.ndarray, radius: float) -> np.ndarray:
    count = int(rng.integers(5, 12))
    angles = np.sort(rng.uniform(0, 2 * math.pi, count))
    radii = radius * rng.uniform(0.55, 1.0, count)
    return centre + np.stack([np.cos(angles) * radii, np.sin(angles) * radii], axis=1)


def _face_point(landmarks: np.ndarray, rng: np.random.Generator, spread: float = 1.0) -> np.ndarray:
    """A random point on or near the face: a random landmark plus noise."""
    base = landmarks[int(rng.integers(len(landmarks)))]
    scale = np.ptp(landmarks[:, 0]) * 0.15 * spread
    return base + rng.normal(0, scale, 2)


def _edge_point(landmarks: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """A point just inside or outside the crop's bottom edge (or a side edge), level with the
    face: an object held there shows only a sliver in the crop (the microphone under
    fr_lin-manuel-miranda's chin), which the network must still call an occluder."""
    depth = rng.uniform(-0.06, 0.1) * size  # > 0: outside the crop
    if rng.random() < 0.7:
        x = rng.uniform(landmarks[4, 0], landmarks[12, 0])
        return np.array([x, size - 1 + depth])
    y = rng.uniform(landmarks[30, 1], size)
    return np.array([-depth if rng.random() < 0.5 else size - 1 + depth, y])


def paint_object(image, landmarks, others, rng, anchor=None):
    """A textured polygon or ellipse cut from another photo, or a flat shaded object."""
    size = image.shape[0]
    centre = _face_point(landmarks, rng) if anchor is None else anchor
    radius = size * rng.uniform(0.1, 0.35)
    if rng.random() < 0.5:
        polygon = _random_polygon(rng, centre, radius)
        alpha = _alpha_from(lambda m: cv2.fillPoly(m, [_pts(polygon)], 255, cv2.LINE_AA, 3), size)
    else:
        axes = (radius, radius * rng.uniform(0.4, 1.0))
        angle = rng.uniform(0, 180)
        alpha = _alpha_from(lambda m: cv2.ellipse(
            m, tuple(int(v) for v in _pts(centre)), (int(axes[0] * 16), int(axes[1] * 16)),
            angle, 0, 360, 255, -1, cv2.LINE_AA, 3), size)
    if rng.random() < 0.7:
        layer = _texture_from(others[int(rng.integers(len(others)))], rng, size)
    else:
        layer = np.broadcast_to(rng.uniform(0, 255, 3).astype(np.float32), image.shape).copy()
    layer *= _shade(alpha, rng, depth=rng.uniform(0.0, 0.5))[..., None]
    _blend(image, np.clip(layer, 0, 255), alpha)
    return alpha


def _skin_texture(crop: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Skin of a face: a cheek patch between the eye, nose and jaw landmarks, enlarged."""
    side = int(rng.integers(2))
    cheek = landmarks[[1, 2, 31, 41]] if side == 0 else landmarks[[15, 14, 35, 46]]
    cx, cy = cheek.mean(axis=0)
    half = max(int(np.ptp(landmarks[:, 0]) * 0.08), 3)
    s = crop.shape[0]
    x0, y0 = int(np.clip(cx - half, 0, s - 2 * half)), int(np.clip(cy - half, 0, s - 2 * half))
    return _texture_from(crop, rng, s, (x0, y0, x0 + 2 * half, y0 + 2 * half))


def paint_hand(image, landmarks, others, rng, other_landmarks=None, anchor=None):
    """A hand-like blob: a palm ellipse and four or five finger capsules, in skin colour taken
    from this face (same skin tone: the hard case) or another one, with shading and dark gaps
    between the fingers."""
    size = image.shape[0]
    face_w = np.ptp(landmarks[:, 0])
    palm = face_w * rng.uniform(0.28, 0.45)
    centre = _face_point(landmarks, rng, 1.3) if anchor is None else anchor
    direction = rng.uniform(0, 2 * math.pi)
    unit = np.array([math.cos(direction), math.sin(direction)])
    normal = np.array([-unit[1], unit[0]])
    fingers = int(rng.integers(3, 6))
    finger_len = palm * rng.uniform(1.2, 2.0)
    finger_w = max(palm * rng.uniform(0.28, 0.4), 2.0)
    curl = rng.uniform(-0.3, 0.3)
    segments = []
    for k in range(fingers):
        offset = (k - (fingers - 1) / 2) * finger_w * 1.05
        base = centre + unit * palm * 0.6 + normal * offset
        bend = unit * math.cos(curl) + normal * math.sin(curl)
        tip = base + bend * finger_len * rng.uniform(0.75, 1.1)
        segments.append((base, tip))
    arm_end = centre - unit * size * 1.5  # wrist and forearm leave the crop

    def draw(mask):
        cv2.ellipse(mask, tuple(int(v) for v in _pts(centre)),
                    (int(palm * 16), int(palm * 0.8 * 16)), math.degrees(direction), 0, 360, 255,
                    -1, cv2.LINE_AA, 3)
        cv2.line(mask, tuple(int(v) for v in _pts(centre)), tuple(int(v) for v in _pts(arm_end)),
                 255, int(palm * 2 * 1.3), cv2.LINE_AA, 3)
        for base, tip in segments:
            cv2.line(mask, tuple(int(v) for v in _pts(base)), tuple(int(v) for v in _pts(tip)),
                     255, max(int(finger_w * 2 * 0.9), 2), cv2.LINE_AA, 3)

    alpha = _alpha_from(draw, size)
    if other_landmarks is not None and rng.random() < 0.5:
        j = int(rng.integers(len(others)))
        layer = _skin_texture(others[j], other_landmarks[j], rng)
    else:
        layer = _skin_texture(image.astype(np.uint8), landmarks, rng)
    layer *= rng.uniform(0.8, 1.2, 3).astype(np.float32) ** 0.3 * rng.uniform(0.75, 1.2)
    layer *= _shade(alpha, rng, depth=rng.uniform(0.15, 0.45))[..., None]
    # Dark gaps between fingers: a thin line along each finger's side.
    gaps = _alpha_from(lambda m: [cv2.line(
        m, tuple(int(v) for v in _pts(b + normal * finger_w * 0.5)),
        tuple(int(v) for v in _pts(t + normal * finger_w * 0.5)), 255, 1, cv2.LINE_AA, 3)
        for b, t in segments[:-1]], size)
    layer *= (1.0 - 0.35 * gaps)[..., None]
    _blend(image, np.clip(layer, 0, 255), alpha)
    return alpha


def paint_microphone(image, landmarks, others, rng, anchor=None):
    """A handheld microphone: a dark rod from outside the crop to a meshed ball head near the
    mouth (or anywhere on the lower face)."""
    size = image.shape[0]
    face_w = np.ptp(landmarks[:, 0])
    head = landmarks[48:68].mean(axis=0) + rng.normal(0, face_w * 0.18, 2) \
        if anchor is None else anchor
    radius = face_w * rng.uniform(0.12, 0.25)
    angle = rng.uniform(math.pi * 0.15, math.pi * 0.85)  # the handle points downwards
    end = head + np.array([math.cos(angle), math.sin(angle)]) * size * 1.5
    rod_w = max(radius * rng.uniform(0.6, 1.1), 2.0)
    alpha_rod = _alpha_from(lambda m: cv2.line(
        m, tuple(int(v) for v in _pts(head)), tuple(int(v) for v in _pts(end)),
        255, int(rod_w * 2), cv2.LINE_AA, 3), size)
    alpha_head = _alpha_from(lambda m: cv2.circle(
        m, tuple(int(v) for v in _pts(head)), int(radius * 16), 255, -1, cv2.LINE_AA, 3), size)
    grey = rng.uniform(10, 90)
    tint = rng.uniform(0.85, 1.15, 3).astype(np.float32)
    rod = np.full(image.shape, grey, np.float32) * tint
    rod *= _shade(alpha_rod, rng, depth=0.0)[..., None]
    _blend(image, rod, alpha_rod)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    pitch = rng.uniform(1.5, 3.0)
    mesh = 0.75 + 0.25 * (np.sin(xx * pitch) * np.sin(yy * pitch) > 0)
    head_grey = rng.uniform(30, 170) if rng.random() < 0.6 else rng.uniform(5, 40)
    layer = (np.full(image.shape, head_grey, np.float32) * tint * mesh[..., None]
             * _shade(alpha_head, rng, depth=0.5)[..., None])
    _blend(image, layer, alpha_head)
    return np.maximum(alpha_rod, alpha_head)


def paint_face_mask(image, landmarks, others, rng):
    """A surgical or cloth mask from the nose bridge to under the chin, with pleats, shading
    and straps towards the ears."""
    size = image.shape[0]
    up = landmarks[27] - landmarks[8]
    top_y = rng.uniform(0.35, 0.6)
    nose = landmarks[27] + (landmarks[30] - landmarks[27]) * top_y
    left, right = landmarks[1] + (landmarks[0] - landmarks[1]) * 0.5, landmarks[15]
    jaw = landmarks[2:15].copy()
    jaw = jaw + (jaw - landmarks[30]) * rng.uniform(0.02, 0.12) - up * 0.03
    polygon = np.concatenate([[left], [nose + (left - nose) * 0.5 + up * 0.04], [nose],
                              [nose + (right - nose) * 0.5 + up * 0.04], [right], jaw[::-1]])
    alpha = _alpha_from(lambda m: cv2.fillPoly(m, [_pts(polygon)], 255, cv2.LINE_AA, 3), size)
    kind = rng.random()
    if kind < 0.5:
        colour = np.array([rng.uniform(150, 200), rng.uniform(200, 230), rng.uniform(225, 255)])
    elif kind < 0.75:
        colour = np.full(3, rng.uniform(200, 250))
    elif kind < 0.9:
        colour = np.full(3, rng.uniform(15, 60))
    else:
        colour = rng.uniform(0, 255, 3)
    layer = np.full(image.shape, 1.0, np.float32) * colour.astype(np.float32)
    # Pleats: horizontal bands of shade across the face's width.
    yy = np.mgrid[0:size, 0:size][0].astype(np.float32)
    phase = rng.uniform(0, 2 * math.pi)
    period = np.ptp(polygon[:, 1]) / rng.uniform(2.5, 4.5)
    pleats = 1.0 - 0.12 * (np.sin(yy / period * 2 * math.pi + phase) > 0.6)
    layer *= (pleats * _shade(alpha, rng, depth=0.3))[..., None]
    _blend(image, np.clip(layer, 0, 255), alpha)
    straps = _alpha_from(lambda m: [cv2.line(
        m, tuple(int(v) for v in _pts(a)), tuple(int(v) for v in _pts(b)), 255, 2, cv2.LINE_AA, 3)
        for a, b in ((left, landmarks[0] + up * 0.2), (right, landmarks[16] + up * 0.2))], size)
    _blend(image, np.full(image.shape, colour * 0.9, np.float32), straps)
    return np.maximum(alpha, straps)


def paint_glasses(image, landmarks, others, rng):
    """Sunglasses (dark lenses, all occluder) or clear glasses (only the frame occludes)."""
    size = image.shape[0]
    eyes = [landmarks[36:42], landmarks[42:48]]
    sun = rng.random() < 0.55
    eye_w = np.mean([np.ptp(e[:, 0]) for e in eyes])
    axes = (eye_w * rng.uniform(0.85, 1.15), eye_w * rng.uniform(0.55, 0.85))
    tilt = math.degrees(math.atan2(*(eyes[1].mean(0) - eyes[0].mean(0))[::-1]))
    thick = int(rng.integers(1, 4))
    centres = [e.mean(axis=0) + np.array([0.0, eye_w * rng.uniform(-0.1, 0.2)]) for e in eyes]

    def lens(mask, fill):
        for c in centres:
            cv2.ellipse(mask, tuple(int(v) for v in _pts(c)),
                        (int(axes[0] * 16), int(axes[1] * 16)), tilt, 0, 360, 255,
                        -1 if fill else thick * 2, cv2.LINE_AA, 3)
        inner = [c + np.array([axes[0] * s, 0.0]) for c, s in zip(centres, (1, -1))]
        cv2.line(mask, tuple(int(v) for v in _pts(inner[0])), tuple(int(v) for v in _pts(inner[1])),
                 255, thick * 2, cv2.LINE_AA, 3)
        for c, s, ear in zip(centres, (-1, 1), (landmarks[0], landmarks[16])):
            cv2.line(mask, tuple(int(v) for v in _pts(c + np.array([axes[0] * s, 0.0]))),
                     tuple(int(v) for v in _pts(ear)), 255, thick * 2, cv2.LINE_AA, 3)

    frame_colour = np.array(rng.uniform(0, 80, 3) if rng.random() < 0.7 else rng.uniform(0, 255, 3),
                            np.float32)
    if sun:
        alpha = _alpha_from(lambda m: lens(m, True), size)
        tint = rng.uniform(5, 60, 3).astype(np.float32)
        layer = np.full(image.shape, 1.0, np.float32) * tint
        layer = layer * _shade(alpha, rng, depth=0.0)[..., None] + image * rng.uniform(0, 0.15)
        _blend(image, np.clip(layer, 0, 255), alpha)
        return alpha
    alpha = _alpha_from(lambda m: lens(m, False), size)
    _blend(image, np.full(image.shape, 1.0, np.float32) * frame_colour, alpha)
    return alpha


def paint_hair(image, landmarks, others, rng):
    """Hair over the face: thin strands, or a lock (a filled band of strands) falling from above
    the brows across the forehead and eyes."""
    size = image.shape[0]
    colour = np.array([[20, 15, 10], [60, 40, 25], [110, 80, 50], [190, 160, 110],
                       [140, 60, 30]][int(rng.integers(5))], np.float32) * rng.uniform(0.8, 1.2)
    face_w = np.ptp(landmarks[:, 0])
    lock = rng.random() < 0.4
    count = int(rng.integers(15, 40) if lock else rng.integers(3, 15))
    start_x = rng.uniform(landmarks[17, 0], landmarks[26, 0])
    spread = face_w * (rng.uniform(0.1, 0.3) if lock else rng.uniform(0.2, 0.6))
    length = face_w * rng.uniform(0.5, 1.3)
    sway = rng.uniform(-0.6, 0.6)
    top = landmarks[19:25, 1].min() - face_w * 0.3
    curves = []
    t = np.linspace(0, 1, 24)[:, None]
    for _ in range(count):
        p0 = np.array([start_x + rng.normal(0, spread), top])
        p2 = p0 + np.array([sway * length + rng.normal(0, face_w * 0.1), length])
        p1 = (p0 + p2) / 2 + rng.normal(0, face_w * 0.15, 2)
        curves.append((1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t ** 2 * p2)
    width = int(rng.integers(1, 3))
    alpha = _alpha_from(lambda m: cv2.polylines(m, [_pts(c) for c in curves], False, 255,
                                                width, cv2.LINE_AA, 3), size)
    if lock:
        # A lock is strands so dense they are opaque: close the gaps.
        alpha = cv2.morphologyEx(alpha, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
    strands = 0.8 + 0.4 * rng.random((size, size)).astype(np.float32)
    strands = cv2.GaussianBlur(strands, (0, 0), 0.7)
    layer = np.full(image.shape, 1.0, np.float32) * colour * strands[..., None]
    _blend(image, np.clip(layer, 0, 255), alpha * rng.uniform(0.85, 1.0))
    return alpha


_LETTERS = "ABCDEFGHIJKLMNOPRSTUVWYabcdeghiklmnoprstuvwy0123456789!?'.,:#@"
_HERSHEY = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_TRIPLEX,
            cv2.FONT_HERSHEY_COMPLEX)


def _words(rng: np.random.Generator) -> str:
    words = ["".join(_LETTERS[int(i)] for i in rng.integers(0, len(_LETTERS),
                                                            int(rng.integers(1, 9))))
             for _ in range(int(rng.integers(1, 5)))]
    text = " ".join(words)
    return text.upper() if rng.random() < 0.4 else text


def _text_mask(text: str, height: float, bold: float, grow: float, font: int | None
               ) -> np.ndarray:
    """The letters of ``text`` ``height`` px high as a uint8 mask on a tight canvas (2x, for
    anti-aliasing after the downsample), thickened by ``bold`` and grown by ``grow`` px (an
    outline). ``font``: one of OpenCV's, or None for Pillow's own (a sans serif, in every
    Pillow)."""
    if font is None:
        from PIL import Image, ImageDraw, ImageFont

        font = ImageFont.load_default(size=max(4.0, 2 * height * 1.35))
        stroke = int(round(2 * (bold + grow)))
        left, top, right, bottom = font.getbbox(text, stroke_width=stroke)
        canvas = Image.new("L", (right - left + 4, bottom - top + 4), 0)
        ImageDraw.Draw(canvas).text((2 - left, 2 - top), text, font=font, fill=255,
                                    stroke_width=stroke, stroke_fill=255)
        return np.asarray(canvas)
    base, _ = cv2.getTextSize("A", font, 1.0, 1)
    scale = 2 * height / max(base[1], 1)
    thickness = max(1, int(round(scale * (1.0 + bold))) + int(round(4 * grow)))
    (width, tall), below = cv2.getTextSize(text, font, scale, thickness)
    canvas = np.zeros((tall + below + 2 * thickness + 4, width + 2 * thickness + 4), np.uint8)
    cv2.putText(canvas, text, (thickness + 2, tall + thickness + 2), font, scale, 255,
                thickness, cv2.LINE_AA)
    return canvas


def paint_text(image, landmarks, others, rng):
    """Words laid over the picture: a caption, a subtitle burned into a clip, a meme's top or
    bottom line, a channel's banner. One or two lines of random letters 7-30 % of the face's
    width high anywhere across the face (memes cover the brows as often as the mouth), in
    Pillow's sans serif or one of OpenCV's fonts, white, yellow, black or a strong colour, with
    a contrasting outline, a drop shadow (hard or soft) or neither, turned a little as the
    crop is. Letters, outline and shadow are the occluder: an edit on top of the photo, not
    part of the face. The segmenter had never seen text and called it face, so a swap painted
    skin over the letters where they crossed the face."""
    size = image.shape[0]
    face_w = float(np.ptp(landmarks[:, 0]))
    top, chin = float(landmarks[17:27, 1].min()), float(landmarks[8, 1])
    fill_kind = rng.choice(4, p=[0.45, 0.2, 0.15, 0.2])
    fill = [np.array([255.0, 255.0, 255.0]), np.array([250.0, 225.0, 40.0]),
            np.array([12.0, 12.0, 12.0]), rng.uniform(0, 255, 3)][fill_kind]
    fill = fill * rng.uniform(0.92, 1.0) if fill_kind != 2 else fill + rng.uniform(0, 25)
    dark_fill = fill.mean() < 110
    decoration = rng.choice(3, p=[0.4, 0.25, 0.35])  # outline, drop shadow, none
    contrast = np.full(3, 245.0 if dark_fill and rng.random() < 0.8 else 10.0)
    angle = rng.normal(0, 6)
    union = np.zeros((size, size), np.float32)
    lines = 1 if rng.random() < 0.8 else 2
    height = face_w * rng.uniform(0.07, 0.3)
    y = rng.uniform(top - 0.1 * (chin - top), chin + 0.1 * (chin - top))
    y = float(np.clip(y, 0.6 * height, size - 0.6 * height))  # a chin below the crop's edge
    for _ in range(lines):
        text = _words(rng)
        font = None if rng.random() < 0.6 else _HERSHEY[int(rng.integers(len(_HERSHEY)))]
        bold = rng.uniform(0.0, 0.12) * height
        grow = rng.uniform(0.06, 0.16) * height if decoration == 0 else 0.0
        letters = _text_mask(text, height, bold, 0.0, font)
        outer = _text_mask(text, height, bold, grow, font) if grow else letters
        # the outline's mask is larger: both centred on one canvas
        shape = np.maximum(letters.shape, outer.shape)

        def centred(mask):
            canvas = np.zeros(shape, np.uint8)
            dy, dx = (shape - mask.shape) // 2
            canvas[dy:dy + mask.shape[0], dx:dx + mask.shape[1]] = mask
            return canvas

        letters, outer = centred(letters), centred(outer)
        centre_x = float(np.clip(rng.uniform(landmarks[:, 0].min(), landmarks[:, 0].max()),
                                 0, size))
        matrix = cv2.getRotationMatrix2D((outer.shape[1] / 2, outer.shape[0] / 2), angle, 1.0)
        matrix[:, 2] += (2 * centre_x - outer.shape[1] / 2, 2 * y - outer.shape[0] / 2)

        def place(mask):
            big = cv2.warpAffine(mask, matrix, (2 * size, 2 * size), flags=cv2.INTER_LINEAR)
            return cv2.resize(big, (size, size), interpolation=cv2.INTER_AREA) \
                .astype(np.float32) / 255

        fill_alpha = place(letters)
        opacity = rng.uniform(0.85, 1.0)
        edge = np.zeros_like(fill_alpha)
        if decoration == 0:
            edge = place(outer)
        elif decoration == 1:
            shift = rng.uniform(0.05, 0.14) * height
            matrix[:, 2] += 2 * shift
            edge = place(letters)
            matrix[:, 2] -= 2 * shift
            if rng.random() < 0.4:  # a soft shadow, as subtitles and titles often have
                edge = cv2.GaussianBlur(edge, (0, 0), max(0.3, shift * 0.5))
        edge_colour = contrast if decoration == 0 else np.full(3, 10.0)
        _blend(image, np.ones(image.shape, np.float32) * edge_colour, edge * opacity)
        _blend(image, np.ones(image.shape, np.float32) * fill, fill_alpha * opacity)
        union = np.maximum(union, np.maximum(fill_alpha, edge) * opacity)
        y += height * rng.uniform(1.3, 1.8)
    return union


PAINTERS = {
    "object": (paint_object, 0.22),
    "hand": (paint_hand, 0.26),
    "microphone": (paint_microphone, 0.14),
    "mask": (paint_face_mask, 0.12),
    "glasses": (paint_glasses, 0.12),
    "hair": (paint_hair, 0.14),
}


# Occluders that are held, so they also come from outside the crop (see _edge_point).
EDGE_KINDS = ("object", "hand", "microphone")



def paint_occluders(image: np.ndarray, landmarks: np.ndarray, others: np.ndarray,
                    rng: np.random.Generator, kind: str | None = None, edge_prob: float = 0.0,
                    other_landmarks: np.ndarray | None = None) -> np.ndarray:
    """Paint one occluder (75 %) or two on ``image`` in place; returns the union (maximum) of
    their alphas ``(S, S)`` float32 in [0, 1]: pixels where it is 0 are unchanged, and
    ``alpha > 0.5`` is the segmenter's occluder label. ``kind`` (a key of :data:`PAINTERS`) forces
    exactly one occluder of that kind; ``edge_prob``: chance that an object, hand or microphone
    is held at the crop's edge (:func:`_edge_point`); ``other_landmarks`` (those of ``others``)
    let hands take their skin from another face."""
    size = image.shape[0]
    union = np.zeros((size, size), np.float32)
    names = list(PAINTERS)
    weights = np.array([PAINTERS[n][1] for n in names])
    count = 1 if kind is not None or rng.random() < 0.75 else 2
    for _ in range(count):
        name = kind or names[int(rng.choice(len(names), p=weights / weights.sum()))]
        kwargs = {}
        if name in EDGE_KINDS and rng.random() < edge_prob:
            kwargs["anchor"] = _edge_point(landmarks, size, rng)
        if name == "hand":
            kwargs["other_landmarks"] = other_landmarks
        alpha = PAINTERS[name][0](image, landmarks, others, rng, **kwargs)
        union = np.maximum(union, alpha)
    return union
