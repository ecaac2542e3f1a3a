"""Which generator loss term pushes a swap's face colours cold (green / blue / purple)?

For a trained generator and held-out pairs, the swap ``y = G(target, E(source))`` is made a
leaf and each weighted loss term of the training recipe is back-propagated to it alone. A small
step of the same RMS size (0.02 in [-1, 1] units, about 2.5 grey levels) down each term's
gradient is converted to CIE-Lab, and the table gives, inside the central face box of the
aligned crops, where the target is warm (a* or b* > 4, the pixels the colour-cast metric of
``evaluate.color`` watches):

- ``d a*``, ``d b*``: mean change of a* and b* (negative = towards green / blue);
- ``chroma share``: the part of the step's energy in the chroma (Cb, Cr) channels of YCbCr
  rather than in luma (a colour-blind change has 0; a random RGB step about 0.67);
- ``|grad|``: RMS of the term's gradient (how hard it pulls at all);
- ``luma-green corr.``: correlation of the step's luma change with its green-magenta change:
  near +1 when the term brightens by adding green and darkens by removing it (magenta,
  purple), which is what a network that sees mostly the green channel asks for;
- ``d flipped channel on casts``: on the pixels the swap already paints cold (the metric's
  rule at the training size), the change of the channel (a* or b*) that flipped: negative =
  the term deepens the cast, positive = it pulls the colour back.

A term that pulls hard, mostly in chroma and towards cold colours, is a term the generator can
satisfy by painting colours: the cause of colour casts. Different-identity pairs are used for
the identity, IFSR, cycle and adversarial terms; same-identity pairs (source = target) for
reconstruction and perceptual, which only act on those. The adversarial term needs a run's
discriminator, which a model directory does not keep (``--discriminator CHECKPOINT/discriminator``).

    python benchmarks/train_colour_probe.py --model src/facedancer_torch/assets/demo_generator \
        --data ALIGNED_LFW --pairs 32
"""

from __future__ import annotations

import argparse
import tempfile

import cv2
import numpy as np
import torch

from facedancer_torch.train.config import load_config
from facedancer_torch.train.trainer import Trainer, _luma

STEP_RMS = 0.02


def lab(images: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) in [-1, 1] -> (B, H, W, 3) float32 Lab."""
    rgb = ((images.clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).numpy().astype(np.float32)
    return np.stack([cv2.cvtColor(im, cv2.COLOR_RGB2LAB) for im in rgb])


def luma_chroma_correlation(step: torch.Tensor, box: np.ndarray) -> float:
    """Correlation, over the face box, of a step's luma change with its green-magenta change
    (-(Cb + Cr): positive = brighter pixels turn green, darker ones magenta / purple)."""
    m = torch.tensor([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5],
                      [0.5, -0.418688, -0.081312]])
    ycc = torch.einsum("ck,bkhw->bchw", m, step)[:, :, torch.from_numpy(box)]
    y, g = ycc[:, 0].flatten(), -(ycc[:, 1] + ycc[:, 2]).flatten()
    if float(g.std()) == 0 or float(y.std()) == 0:
        return float("nan")
    return float(torch.corrcoef(torch.stack([y, g]))[0, 1])


def chroma_share(step: torch.Tensor) -> float:
    m = torch.tensor([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5],
                      [0.5, -0.418688, -0.081312]])
    ycc = torch.einsum("ck,bkhw->bchw", m, step)
    energy = ycc.pow(2).sum(dim=(0, 2, 3))
    return float(energy[1:].sum() / energy.sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="generator model directory")
    parser.add_argument("--data", required=True, help="aligned faces (the trainer's data=)")
    parser.add_argument("--pairs", type=int, default=32)
    parser.add_argument("--config", default="demo")
    parser.add_argument("--discriminator", help="a checkpoint's discriminator/ directory: adds "
                                                "the adversarial term")
    parser.add_argument("overrides", nargs="*", help="recipe overrides (loss.*=...)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)

    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(args.config, [f"data={args.data}", f"out={tmp}/run",
                                        f"init_generator={args.model}", *args.overrides])
        t = Trainer(cfg, progress=False, tensorboard=False)
        from facedancer_torch.data.pairs import validation_pairs

        pairs = validation_pairs(t.val_index, cfg.image_size, args.pairs, seed=1)
    G, E, w = t.generator.eval(), t.encoder, cfg.loss
    D = None
    if args.discriminator:
        from facedancer_torch.models.pretrained import load_state_dict_checked, read_model_dir

        D = t.discriminator.eval().requires_grad_(False)
        load_state_dict_checked(D, read_model_dir(args.discriminator).state_dict,
                                args.discriminator)
    gray = w.encoder_input == "gray"
    rows = {}
    for kind in ("different", "same"):
        x = pairs["target"]
        s = x if kind == "same" else pairs["source"]
        same = torch.full((len(x),), 1.0 if kind == "same" else 0.0)
        with torch.no_grad():
            z_t, feats_x = E.embed_and_features(_luma(x) if gray else x, t.feature_blocks)
            z_s = E.embed(s)
            z_s_loss = E.embed(_luma(s)) if gray else z_s
            z_tc = E.embed(x)
            y0 = G(x, z_s)
        terms = {}
        if kind == "different":
            terms["identity"] = lambda y: w.identity * (1 - torch.nn.functional.cosine_similarity(
                z_s_loss, E.embed(_luma(y) if gray else y))).mean()
            if t.ifsr is not None:
                terms["ifsr"] = lambda y: w.ifsr * t.ifsr(
                    feats_x, E.embed_and_features(_luma(y) if gray else y, t.ifsr.blocks)[1])[0]
            terms["cycle"] = lambda y: w.cycle * (G(y, z_tc) - x).abs().mean()
            if D is not None:
                terms["adversarial"] = lambda y: w.adversarial * \
                    torch.nn.functional.softplus(-D(y)).mean()
            from facedancer_torch.train.trainer import chroma_loss
            if w.chroma > 0:
                terms["chroma"] = lambda y: w.chroma * chroma_loss(x, y)
        else:
            from facedancer_torch.losses import perceptual_loss, reconstruction_loss
            terms["reconstruction"] = lambda y: w.reconstruction * reconstruction_loss(x, y, same)
            if t.perceptual_blocks:
                terms["perceptual"] = lambda y: w.perceptual * perceptual_loss(
                    feats_x, E.embed_and_features(_luma(y) if gray else y,
                                                  t.perceptual_blocks)[1],
                    same, t.perceptual_blocks)
        lab_x, lab_y = lab(x), lab(y0)
        h = x.shape[-1]
        box = np.zeros((h, h), bool)  # central face box of the ArcFace-aligned crop
        box[int(0.25 * h):int(0.9 * h), int(0.2 * h):int(0.8 * h)] = True
        warm = ((lab_x[..., 1] > 4) | (lab_x[..., 2] > 4)) & box
        # which channel flipped (the metric's rule, per channel, at the training size)
        flip_a = (lab_x[..., 1] > 4) & (lab_y[..., 1] < -4) & box
        flip_b = (lab_x[..., 2] > 4) & (lab_y[..., 2] < -4) & box
        for name, fn in terms.items():
            y = y0.clone().requires_grad_(True)
            loss = fn(y)
            (grad,) = torch.autograd.grad(loss, y)
            rms = grad.pow(2).mean().sqrt()
            step = -grad / rms * STEP_RMS
            d = lab(y0 + step) - lab_y
            # the change of the channel that flipped, on the pixels where it flipped
            cold = np.concatenate([d[..., 1][flip_a], d[..., 2][flip_b]])
            rows[f"{name} ({kind} pairs)"] = (
                float(loss), float(rms), chroma_share(step.detach() * torch.from_numpy(box)),
                float(d[..., 1][warm].mean()), float(d[..., 2][warm].mean()),
                float(cold.mean()) if cold.size else float("nan"), int(cold.size),
                luma_chroma_correlation(step.detach(), box))
    print(f"generator {args.model}, {args.pairs} held-out pairs, {cfg.image_size} px, "
          f"step RMS {STEP_RMS}; overrides: {' '.join(args.overrides) or 'none'}\n")
    print("| term | loss | |grad| (RMS) | chroma share | luma-green corr. | d a* | d b* "
          "| d flipped channel on casts (pixels) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, (loss, rms, share, da, db, dc, n, corr) in rows.items():
        print(f"| {name} | {loss:.4f} | {rms:.2e} | {share:.2f} | {corr:+.2f} | {da:+.3f} "
              f"| {db:+.3f} | {dc:+.3f} ({n}) |")


if __name__ == "__main__":
    main()
