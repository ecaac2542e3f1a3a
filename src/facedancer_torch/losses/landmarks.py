"""Landmark consistency: the swap must keep the target's facial geometry (issue 13, pose).

No term of the FaceDancer recipe asks directly for the target's head pose and expression:
reconstruction acts on same-identity pairs only, IFSR and the perceptual term compare FaceNet
features with a margin, and the identity loss is free to reshape the face. The model-card pose
and expression errors are measured on facial landmarks, so this loss compares landmarks: the
embedded RetinaFace detector (MobileNet-0.25, ONNX, run in torch by
:class:`~facedancer_torch.models.onnx_torch.OnnxModule` so that gradients reach the swap) looks
at target and swap, and the swap's 5-point landmark regression (eyes, nose tip, mouth corners)
must match the target's at every anchor, weighted by the target's face confidence there.

No decoding or NMS: every anchor regresses the landmarks relative to itself, and the anchors
that see the face agree, so comparing the raw per-anchor regressions with the target's
(detached) confidences as weights is the same comparison, smooth and cheap. The differences are
converted from anchor units (``variance * anchor size``) to **fractions of the image side**,
so the weight does not depend on the training resolution and anchors of every size count alike.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..faces.detect import RetinaFaceConfig, embedded_mobilenet_weights, anchor_priors
from ..models.onnx_torch import OnnxModule

# The generator's crops (128 px in the demo) are upsampled to this side before detection. On
# aligned LFW crops the face then fills the 128 and 256 px anchors of the two coarse levels
# (every face scores > 0.999, 40-60 anchors above 0.5); at 128 px it would sit at the top of
# the anchor range (the 256 px anchors see half a face) with only ~30 anchors.
DETECTOR_SIDE: int = 256


class LandmarkConsistencyLoss(torch.nn.Module):
    """``sum_a w_a mean_k |l_a,k(swap) - l_a,k(target)| * v * s_a / side``, averaged over
    the batch, where ``l_a`` are anchor ``a``'s 10 landmark regressions, ``s_a`` its size,
    ``v`` the variance and ``w_a`` the target's face probability there, normalised to sum 1
    per image (detached).

    Inputs are RGB images in ``[-1, 1]``, ``(B, 3, H, W)``, of the same size. The detector is
    frozen: its weights are buffers (no gradients, no optimiser state, not checkpointed).
    """

    def __init__(self, detector: torch.nn.Module | None = None,
                 config: RetinaFaceConfig = RetinaFaceConfig(), side: int = DETECTOR_SIDE):
        super().__init__()
        self.detector = (detector if detector is not None
                         else OnnxModule(embedded_mobilenet_weights())).eval()
        self.config = config
        self.side = int(side)
        # anchor size * variance / side: one unit of landmark regression in image fractions
        priors = torch.from_numpy(anchor_priors(self.side, self.side, config))
        self.register_buffer("unit", priors[:, 2] * config.variances[0] / self.side,
                             persistent=False)
        self.register_buffer("mean_bgr", torch.tensor(config.mean_bgr).view(1, 3, 1, 1),
                             persistent=False)

    def train(self, mode: bool = True) -> LandmarkConsistencyLoss:
        return super().train(False)  # a frozen measuring instrument: always eval

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """``[-1, 1]`` RGB -> the detector's input: BGR in ``[0, 255]`` minus the mean."""
        x = (images.float() + 1.0) * 127.5
        if x.shape[-2:] != (self.side, self.side):
            x = F.interpolate(x, size=(self.side, self.side), mode="bilinear",
                              align_corners=False)
        return x.flip(1) - self.mean_bgr

    def regressions(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(face probability ``(B, N)``, landmark regressions ``(B, N, 10)``) per anchor."""
        _, conf, landmarks = self.detector(self.prepare(images))
        return conf[..., 1], landmarks

    def forward(self, target: torch.Tensor, swap: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            face, want = self.regressions(target)
            weight = face / face.sum(1, keepdim=True).clamp_min(1e-6)
        _, got = self.regressions(swap)
        error = (got - want).abs().mean(-1) * self.unit  # (B, N), image fractions
        return (weight * error).sum(1).mean()
