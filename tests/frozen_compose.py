"""A frozen copy of the compositing arithmetic as of commit f9360cc (before the speed work of
issue #18), for tests/test_compose_speed_equivalence.py: the fast compositor must give the same
frames within rounding. Copied verbatim (only renamed and made self-contained); do not
"improve" it, it is the reference. Tools whose code was not touched by that work (the 68-point
landmarks, faces/masks.py) are used from the package."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch
from torch.nn import functional as F

from facedancer_torch.faces import masks
from facedancer_torch.faces.align import invert_affine, transform_points
from facedancer_torch.faces.color import ColourTransfer, from_lab, identity_transfer, to_lab
from facedancer_torch.swap import compose
from facedancer_torch.swap.options import SwapOptions, mask_parts

MAX_WORK_SIZE = 1024
LOCAL_COLOR_SIGMA = 0.02
DETAIL_RESOLUTION = 0.5
DETAIL_GATE = 25.0
# a tuning choice, not arithmetic: the frozen copy follows the current one
OCCLUDER_HYSTERESIS = compose.OCCLUDER_HYSTERESIS
_SAME_DEPTH = 1.0
_PROTECT_SCALE = 0.92


# -- faces/occlusion.py: FaceSegmenter.predict / logits -------------------------------------
def _resize_batch(images, size):
    if images.shape[1] == size:
        return images
    interp = cv2.INTER_AREA if images.shape[1] > size else cv2.INTER_LINEAR
    return np.stack([cv2.resize(im, (size, size), interpolation=interp) for im in images])


def _logits(segmenter, crops):
    device = next(segmenter.net.parameters()).device
    small = _resize_batch(crops, segmenter.image_size)
    x = torch.from_numpy(np.ascontiguousarray(small)).to(device).permute(0, 3, 1, 2)
    return segmenter.net(x.float() / 127.5 - 1.0)


@torch.no_grad()
def predict(segmenter, crops, mirror=False, mirror_above=0.0):
    crops = np.asarray(crops)
    n, size = crops.shape[0], crops.shape[1]
    if mirror and n:
        face, occluder = predict(segmenter, crops)
        again = np.flatnonzero(occluder.reshape(n, -1).max(axis=1) > mirror_above)
        if len(again):
            face_m, occluder_m = predict(segmenter, np.ascontiguousarray(crops[again, :, ::-1]))
            face[again] = (face[again] + face_m[:, :, ::-1]) / 2.0
            occluder[again] = (occluder[again] + occluder_m[:, :, ::-1]) / 2.0
        return face, occluder
    face = np.zeros((n, size, size), dtype=np.float32)
    occluder = np.zeros((n, size, size), dtype=np.float32)
    for start in range(0, n, segmenter.batch_size):
        logits = _logits(segmenter, crops[start:start + segmenter.batch_size])
        if size != segmenter.image_size:
            logits = F.interpolate(logits, size=(size, size), mode="bilinear",
                                   align_corners=False)
        probs = torch.sigmoid(logits).float().cpu().numpy()
        face[start:start + len(probs)] = probs[:, 0]
        occluder[start:start + len(probs)] = probs[:, 1]
    return face, occluder


# -- faces/color.py: ColourTransfer.apply / apply_resized, fit_colour ----------------------
def colour_apply(transfer, rgb):
    rgb = np.asarray(rgb)
    if transfer.is_identity:
        return rgb.copy()
    lab = to_lab(rgb)
    lab *= transfer.scale
    lab += transfer.offset
    if transfer.chroma is not None:
        height, width = lab.shape[:2]
        field = transfer.chroma
        if field.shape[:2] != (height, width):
            field = cv2.resize(field, (width, height), interpolation=cv2.INTER_LINEAR)
        lab[..., 1:] += field
    return from_lab(lab)


def apply_resized(transfer, small, large):
    if transfer.is_identity:
        return np.asarray(large).copy()
    if small.shape == large.shape:
        return colour_apply(transfer, large)
    change = colour_apply(transfer, small).astype(np.float32) - small.astype(np.float32)
    change = cv2.resize(change, (large.shape[1], large.shape[0]),
                        interpolation=cv2.INTER_LINEAR)
    return np.clip(np.rint(large.astype(np.float32) + change), 0, 255).astype(np.uint8)


def fit_colour(swapped, target, mask, *, local_sigma=None, strength=1.0, max_gain=2.0):
    swapped = np.asarray(swapped)
    target = np.asarray(target)
    weights = np.asarray(mask, np.float32).reshape(swapped.shape[:2])
    total = float(weights.sum())
    if total < 1.0 or strength <= 0:
        return identity_transfer()
    lab_s, lab_t = to_lab(swapped), to_lab(target)
    w = weights[..., None] / total
    mean_s, mean_t = (lab_s * w).sum((0, 1)), (lab_t * w).sum((0, 1))
    std_s = np.sqrt(((lab_s - mean_s) ** 2 * w).sum((0, 1)))
    std_t = np.sqrt(((lab_t - mean_t) ** 2 * w).sum((0, 1)))
    gain = np.clip(std_t / np.maximum(std_s, 1e-3), 1.0 / max_gain, max_gain)
    scale = 1.0 + float(strength) * (gain - 1.0)
    offset = float(strength) * (mean_t - mean_s * gain)
    transfer = ColourTransfer(scale.astype(np.float32), offset.astype(np.float32))
    if local_sigma is None:
        return transfer
    matched = lab_s[..., 1:] * transfer.scale[1:] + transfer.offset[1:]
    norm = masks.gaussian_blur(weights, local_sigma)
    valid = norm > 1e-3
    field = np.zeros(swapped.shape[:2] + (2,), np.float32)
    for k in range(2):
        difference = masks.gaussian_blur((lab_t[..., k + 1] - matched[..., k]) * weights,
                                         local_sigma)
        field[..., k] = np.where(valid, difference / np.maximum(norm, 1e-3), 0.0) * strength
    transfer.chroma = field
    return transfer


# -- faces/align.py: paste_back ------------------------------------------------------------
def paste_back(frame, crop, M, mask, change=False):
    frame = np.asarray(frame)
    result = frame.copy()
    crop_h, crop_w = crop.shape[:2]
    mask = np.asarray(mask, dtype=np.float32).reshape(crop_h, crop_w)
    inverse = invert_affine(M)
    corners = np.array([[0, 0], [crop_w - 1, 0], [0, crop_h - 1], [crop_w - 1, crop_h - 1]])
    mapped = transform_points(corners, inverse)
    height, width = frame.shape[:2]
    x0 = max(int(np.floor(mapped[:, 0].min())) - 1, 0)
    y0 = max(int(np.floor(mapped[:, 1].min())) - 1, 0)
    x1 = min(int(np.ceil(mapped[:, 0].max())) + 2, width)
    y1 = min(int(np.ceil(mapped[:, 1].max())) + 2, height)
    if x1 <= x0 or y1 <= y0:
        return result
    local = inverse.copy()
    local[:, 2] -= (x0, y0)
    size = (x1 - x0, y1 - y0)
    warped = cv2.warpAffine(np.asarray(crop, dtype=np.float32), local, size,
                            flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    weight = cv2.warpAffine(mask, local, size, flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    weight = np.clip(weight, 0.0, 1.0)
    if warped.ndim == 2:
        warped = warped[:, :, None]
    weight = weight[:, :, None]
    region = frame[y0:y1, x0:x1].astype(np.float32)
    blended = region + warped * weight if change else region * (1.0 - weight) + warped * weight
    result[y0:y1, x0:x1] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    return result


# -- swap/compose.py -----------------------------------------------------------------------
def inside_frame(matrix, size, frame_shape):
    u = np.arange(size, dtype=np.float64)
    grid = np.stack(np.meshgrid(u, u), axis=-1).reshape(-1, 2)
    points = np.rint(transform_points(grid, invert_affine(matrix)))
    height, width = frame_shape[:2]
    ok = (points[:, 0] >= 0) & (points[:, 0] < width) & (points[:, 1] >= 0) & \
        (points[:, 1] < height)
    return ok.reshape(size, size).astype(np.float32)


def add_detail(swap, target, size, strength=1.0):
    work = swap.shape[0]
    coarse = max(8, int(round(size * DETAIL_RESOLUTION)))
    if coarse >= work:
        return swap

    def low(image):
        small = cv2.resize(image, (coarse, coarse), interpolation=cv2.INTER_AREA)
        return small, cv2.resize(small, (work, work), interpolation=cv2.INTER_CUBIC)

    swap_f = swap.astype(np.float32)
    target_f = target.astype(np.float32)
    (target_small, target_low), (swap_small, swap_low) = low(target_f), low(swap_f)
    lightness_gap = np.abs(to_lab(np.clip(swap_small, 0, 255).astype(np.uint8))[..., 0]
                           - to_lab(np.clip(target_small, 0, 255).astype(np.uint8))[..., 0])
    gate = np.clip(1.0 - lightness_gap / DETAIL_GATE, 0.0, 1.0)
    gate = cv2.resize(masks.gaussian_blur(gate, 1.0), (work, work),
                      interpolation=cv2.INTER_LINEAR)[..., None] * float(strength)
    fine_swap = swap_f - swap_low
    fine_target = target_f - target_low
    out = swap_low + gate * fine_target + (1.0 - gate) * fine_swap
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def occluder_weight(probability):
    weak, strong = OCCLUDER_HYSTERESIS
    probability = np.asarray(probability, np.float32)
    count, labels = cv2.connectedComponents((probability > weak).astype(np.uint8),
                                            connectivity=8)
    confident = np.zeros(count, bool)
    confident[np.unique(labels[probability > strong])] = True
    confident[0] = False
    weight = confident[labels].astype(np.float32)
    radius = max(1, int(round(weight.shape[0] / 128.0)))
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1,) * 2)
    weight = cv2.dilate(weight, disc)
    return masks.gaussian_blur(weight, max(0.5, weight.shape[0] / 256.0))


class FrozenCompositor(compose.Compositor):
    """Today's Compositor: the landmark predictor and the segmenter's weights are shared with
    the package (loaded the same way), the arithmetic is the copy above."""

    def crop_masks(self, jobs, options):
        parts = mask_parts(options.mask)
        if not jobs:
            return []
        size = jobs[0].crop.shape[0]
        out = [self.box(size, options).copy() if "box" in parts
               else np.ones((size, size), np.float32) for _ in jobs]
        if "hull" in parts:
            predictor = self.landmarks68()
            for mask, job in zip(out, jobs):
                points = predictor.on_crop(job.crop, self.crop_shrink)
                np.minimum(mask, masks.hull_mask(points, size), out=mask)
        if "occlusion" in parts or "segment" in parts:
            strong = OCCLUDER_HYSTERESIS[1]
            face, occluder = predict(
                self.segmenter(), np.stack([job.crop for job in jobs]), mirror=True,
                mirror_above=-1.0 if "segment" in parts else 2.0 * strong - 1.0)
            for index, mask in enumerate(out):
                if "segment" in parts:
                    np.minimum(mask, face[index], out=mask)
                if "occlusion" in parts:
                    np.minimum(mask, 1.0 - occluder_weight(occluder[index]), out=mask)
        return out

    def composite(self, frame, jobs, swapped, options: SwapOptions,
                  others: Sequence[np.ndarray] = ()):
        if not len(jobs):
            return frame
        crop_masks = self.crop_masks(jobs, options)
        everyone = [np.asarray(job.box, np.float64) for job in jobs] + \
            [np.asarray(b, np.float64) for b in others]
        order = sorted(range(len(jobs)), key=lambda i: jobs[i].area)
        out = frame
        for index in order:
            job = jobs[index]
            weight = masks.pose_weight(job.landmarks) if options.profile_fade else 1.0
            if weight <= 0.0:
                continue
            nearer = [box for j, box in enumerate(everyone)
                      if j != index and compose.box_area(box) >= job.area * _SAME_DEPTH]
            out = self._paste_one(out, job, swapped[index], crop_masks[index] * weight,
                                  nearer, options)
        return out

    def _paste_one(self, frame, job, swapped, mask_s, nearer, options):
        size = job.crop.shape[0]
        if compose.SWAP_SHARPEN > 0:
            swapped = compose.sharpen(swapped, compose.SWAP_SHARPEN,
                                      compose.SWAP_SHARPEN_SIGMA * swapped.shape[0] / 128.0)
        factor = compose.work_factor(job.matrix, size)
        work = size * factor
        matrix = compose.scale_affine(job.matrix, factor) if factor > 1 else \
            np.asarray(job.matrix)
        if factor > 1:
            swap = cv2.resize(swapped, (work, work), interpolation=cv2.INTER_CUBIC) \
                if swapped.shape[0] != work else swapped
            mask = cv2.resize(mask_s, (work, work), interpolation=cv2.INTER_LINEAR)
        else:
            swap, mask = swapped, mask_s
        if nearer:
            protect = np.zeros((work, work), np.float32)
            for box in nearer:
                polygon = transform_points(masks.ellipse_polygon(box, _PROTECT_SCALE), matrix)
                protect = np.maximum(protect, masks.polygon_mask(polygon, work))
            protect = masks.gaussian_blur(protect, 0.01 * work)
            mask = mask * (1.0 - protect)
        if float(mask.max(initial=0.0)) <= 1e-3:
            return frame
        if options.color_match in ("global", "local"):
            small = swapped if swapped.shape[0] == size else \
                cv2.resize(swapped, (size, size), interpolation=cv2.INTER_AREA)
            transfer = self._colour(job, small, mask, frame.shape, options)
            swap = apply_resized(transfer, small, swap)
        if options.detail > 0:
            target = cv2.warpAffine(frame, matrix, (work, work), flags=cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_REPLICATE)
            swap = add_detail(swap, target, size, options.detail)
            return paste_back(frame, swap.astype(np.float32) - target, matrix, mask, change=True)
        return paste_back(frame, swap, matrix, mask)

    def _colour(self, job, small, mask, frame_shape, options):
        size = job.crop.shape[0]
        weights = mask if mask.shape[0] == size else \
            cv2.resize(mask, (size, size), interpolation=cv2.INTER_AREA)
        weights = weights * inside_frame(job.matrix, size, frame_shape)
        if float(weights.sum()) < 1.0:
            return identity_transfer()
        sigma = LOCAL_COLOR_SIGMA * size if options.color_match == "local" else None
        return fit_colour(small, job.crop, weights, local_sigma=sigma)
