"""The FaceDancer trainer (paper §3-4; docs/reference.md §5-§6): one G and one D update per step.

Per step, on every rank (its own batch of B pairs):

1. ``z_s = E(source)``, ``z_t, F(x) = E(target)`` (frozen identity encoder, no gradient);
2. generator step: ``y = G(x, z_s)``, ``D(y)``, ``E(y)`` with the IFSR / perceptual blocks,
   ``G(y, z_t)`` (cycle; gradients through both passes), then
   ``L_G = L_adv + 5 L_rec + 10 L_id + 1 L_cyc + 0.2 L_perc + 1 L_IFSR`` (reference weights);
3. discriminator step on the same swap (detached) with the **source batch as real images**
   (the reference's choice) and R1 ``5 * mean ||grad D(real)||^2`` every step (or lazily).

Both optimisers are Adam (lr 1e-4, betas (0, 0.99), eps 1e-7) with ``lr * 0.97^(step/1e5)``.
Gradients are averaged over ranks before each optimiser step (see :mod:`.distributed`).
AMP (bf16 by default on CUDA, fp16 with loss scaling on request) wraps the forward passes;
losses are computed in float32.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import random
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..data.augment import AugmentConfig, TargetAugmentConfig
from ..data.pairs import FaceIndex, PairBatches, open_face_index, pair_loader, validation_pairs
from ..data.shard import VALIDATION_SPLIT, find_manifest, read_manifest
from ..errors import FacedancerError, ModelError
from ..io.atomic import check_writable
from ..losses import (IfsrLoss, Vgg16Features, block_cosine_distances, cycle_loss,
                      discriminator_adversarial_loss, generator_adversarial_loss, identity_loss,
                      parse_perceptual_spec, perceptual_loss, r1_penalty, r1_weight_for_step,
                      reconstruction_loss)
from ..losses.landmarks import LandmarkConsistencyLoss
from ..models.discriminator import build_discriminator
from ..models.generator import build_generator
from ..models.identity.registry import load_identity_encoder
from ..models.pretrained import load_state_dict_checked, read_model_dir
from .checkpoint import (latest_checkpoint, list_checkpoints, load_training_state,
                         remove_stale_temporaries, rng_state, save_checkpoint, set_rng_state)
from .config import TrainConfig
from .distributed import (DistributedContext, all_gather_objects, all_reduce_mean,
                          average_gradients, barrier, broadcast_module, init_distributed)
from .monitor import RunLogger, image_grid

CONFIG_FILE = "config.yaml"
# Keys that may change between a run and its resumption without changing what is learned.
_RESUMABLE_CHANGES = ("steps", "out", "device", "loader.workers", "schedule.", "init_generator")


def read_margins_json(path: str | Path) -> dict[str, float]:
    """IFSR margins from a JSON file: ``{"margins": {block: m}, ...}`` or ``{block: m}``."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read IFSR margins ({exc})", path) from exc
    margins = data.get("margins", data) if isinstance(data, dict) else None
    if not isinstance(margins, dict) or not margins or not all(
            isinstance(v, (int, float)) and v >= 0 for v in margins.values()):
        raise ModelError("IFSR margins file must map block names to non-negative numbers", path)
    return {str(k): float(v) for k, v in margins.items()}


def open_training_data(config: TrainConfig) -> tuple[FaceIndex, FaceIndex | None]:
    """(train, validation) indexes. Validation: ``loader.val_data``, else the shard set's
    ``val`` split, else ``loader.val_fraction`` of a folder's identities held out."""
    if not config.data:
        raise FacedancerError("no training data: pass data=PATH (WebDataset shards from "
                              "'facedancer shard' or a folder of aligned faces)")
    train = open_face_index(config.data, "train")
    if config.loader.val_data:
        return train, open_face_index(config.loader.val_data, VALIDATION_SPLIT)
    manifest = find_manifest(config.data)
    if manifest is not None:
        has_val = VALIDATION_SPLIT in read_manifest(manifest)["splits"]
        return train, open_face_index(manifest, VALIDATION_SPLIT) if has_val else None
    if config.loader.val_fraction > 0 and train.num_identities >= 2:
        train, val = train.split_validation(config.loader.val_fraction, config.seed)
        return train, val if len(val) else None
    return train, None


# A step the fp16 GradScaler skipped (its gradients overflowed) is logged under this key and
# left out of the loss means: the first steps of every fp16 run overflow while the scaler
# finds its scale (R1 at step 0 is computed on logits scaled by 65536), and a NaN there is the
# scaler working, not the model diverging. Only this many skipped steps in a row is divergence
# (the scale has then halved 2^25 times from 65536).
SKIPPED = "amp/skipped_steps"
MAX_SKIPPED_IN_A_ROW = 25


def _scaled_step(scaler: torch.amp.GradScaler, optimizer: torch.optim.Optimizer) -> bool:
    """Step ``optimizer`` through ``scaler``; True when the scaler skipped the step (inf/NaN
    gradients lower its scale). A disabled scaler (bf16 / fp32) never skips."""
    if not scaler.is_enabled():
        optimizer.step()
        return False
    before = scaler.get_scale()
    scaler.step(optimizer)
    scaler.update()
    return scaler.get_scale() < before


def _luma(images: torch.Tensor) -> torch.Tensor:
    """RGB -> the mean of the channels, repeated on three: grey images whose gradient is grey
    too. (Rec. 601 weights would make it (0.3, 0.59, 0.11): a green-or-magenta tint.)"""
    return images.mean(1, keepdim=True).expand_as(images)


def chroma_loss(target: torch.Tensor, swap: torch.Tensor, pool: int = 4) -> torch.Tensor:
    """Mean L1 between the YCbCr chroma (Cb, Cr) of target and swap, averaged over
    ``pool`` x ``pool`` cells: local hue must follow the target; luma, which carries the
    identity-bearing shapes, is left free."""
    m = target.new_tensor([[-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
    cb_cr = lambda img: torch.einsum("ck,bkhw->bchw", m, img.float())  # noqa: E731
    return (F.avg_pool2d(cb_cr(target), pool) - F.avg_pool2d(cb_cr(swap), pool)).abs().mean()


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


class Trainer:
    """Builds everything a run needs from a :class:`TrainConfig` and trains it.

    ``resume=True`` continues from the run directory's newest readable checkpoint (an error
    when there is none). ``history`` keeps every step's float stats when
    ``record_history`` (tests compare curves with it).
    """

    def __init__(self, config: TrainConfig, *, resume: bool = False, progress: bool = True,
                 ctx: DistributedContext | None = None, tensorboard: bool = True,
                 record_history: bool = False):
        self.config = config
        self.ctx = ctx or init_distributed(config.device)
        self.device = self.ctx.device
        self.run_dir = Path(config.out)
        self.progress = progress
        self.record_history = record_history
        self.history: list[dict[str, float]] = []
        self.step = 0

        check_writable(self.run_dir, folder=True)  # before hours of work, not at the 1st save
        checkpoint = latest_checkpoint(self.run_dir)
        if checkpoint is not None and not resume:
            raise FacedancerError(f"already holds checkpoints (latest {checkpoint.name}); pass "
                                  "--resume to continue it or choose another out=", self.run_dir)
        if checkpoint is None and resume:
            raise FacedancerError("--resume: there is no checkpoint to resume in this run folder "
                                  "(run without --resume to start a new run)", self.run_dir)

        self.train_index, self.val_index = open_training_data(config)
        self._seed_everything(config.seed)
        self._build_models()
        self._build_losses()
        self._build_optimisers()

        resume_step = None
        if checkpoint is not None:
            self._resume_newest_readable()
            resume_step = self.step
            if self.step > config.steps:
                raise FacedancerError(f"--resume: the run is at step {self.step} already, past "
                                      f"steps={config.steps}; give the total number of steps "
                                      "to reach (steps= counts from 0)", self.run_dir)
        if self.ctx.is_main:
            remove_stale_temporaries(self.run_dir)
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / CONFIG_FILE).write_text(config.to_yaml())
        self.logger = RunLogger(self.run_dir, enabled=self.ctx.is_main, resume_step=resume_step,
                                tensorboard=tensorboard)
        self._val_pairs: dict[str, torch.Tensor] | None = None

    # -- construction --------------------------------------------------------------------
    def _seed_everything(self, seed: int) -> None:
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)  # same on every rank: identical initial weights

    def _build_models(self) -> None:
        cfg = self.config
        self.encoder = load_identity_encoder(cfg.identity_encoder, device=self.device)
        contract = self.encoder.contract
        spec = cfg.identity_encoder
        encoder_label = contract.name if not Path(spec).expanduser().exists() \
            else str(Path(spec).expanduser().resolve())
        g = cfg.generator
        overrides: dict[str, Any] = dict(
            image_size=cfg.image_size, z_dim=contract.embedding_dim,
            mapping_depth=g.mapping_depth, mapping_width=g.mapping_width,
            up_types=tuple(g.up_types), identity_encoder=encoder_label)
        if g.encoder_widths is not None:
            overrides["encoder_widths"] = tuple(g.encoder_widths)
        if g.decoder_widths is not None:
            overrides["decoder_widths"] = tuple(g.decoder_widths)
        self.generator = build_generator(**overrides).to(self.device).train()
        d = cfg.discriminator
        d_over: dict[str, Any] = dict(image_size=cfg.image_size, head_width=d.head_width)
        if d.widths is not None:
            d_over["widths"] = tuple(d.widths)
        self.discriminator = build_discriminator(**d_over).to(self.device).train()
        # a resumed run takes its weights from the checkpoint: the model it started from
        # need not exist any more (nor have the same shape) on this machine
        if cfg.init_generator and latest_checkpoint(self.run_dir) is None:
            self._init_generator_from(cfg.init_generator)
        broadcast_module(self.generator, self.ctx)
        broadcast_module(self.discriminator, self.ctx)
        # The EMA copy is what gets exported; it never trains (no gradients, eval mode).
        self.generator_ema: torch.nn.Module | None = None
        if cfg.optim.ema_decay > 0:
            self.generator_ema = copy.deepcopy(self.generator).eval().requires_grad_(False)

    def _init_generator_from(self, path: str) -> None:
        """Start the generator from an exported model directory (fine-tuning)."""
        model_dir = read_model_dir(Path(path).expanduser(), kind=self.generator.kind)
        state = {k: v.float() if v.is_floating_point() else v
                 for k, v in model_dir.state_dict.items()}
        load_state_dict_checked(self.generator, state, Path(path))

    @torch.no_grad()
    def update_ema(self) -> None:
        """``ema = b * ema + (1 - b) * G`` with ``b = min(decay, (1 + k) / (10 + k))``."""
        if self.generator_ema is None:
            return
        beta = min(self.config.optim.ema_decay, (1 + self.step) / (10 + self.step))
        for e, g in zip(self.generator_ema.parameters(), self.generator.parameters()):
            e.lerp_(g.detach(), 1 - beta)
        for e, g in zip(self.generator_ema.buffers(), self.generator.buffers()):
            e.copy_(g)

    def _build_losses(self) -> None:
        cfg, contract = self.config, self.encoder.contract
        self.ifsr: IfsrLoss | None = None
        if cfg.loss.ifsr > 0:
            if cfg.loss.ifsr_margins:
                margins = read_margins_json(cfg.loss.ifsr_margins)
            elif contract.ifsr_margins:
                margins = dict(contract.ifsr_margins)
            else:
                raise ModelError(f"identity encoder '{contract.name}' has no calibrated IFSR "
                                 "margins: run 'facedancer calibrate-ifsr', pass "
                                 "loss.ifsr_margins=FILE, or disable IFSR with loss.ifsr=0")
            unknown = [b for b in margins if b not in contract.feature_blocks]
            if unknown:
                raise ModelError(f"IFSR margins name blocks that '{contract.name}' does not have: "
                                 f"{', '.join(unknown)}")
            self.ifsr = IfsrLoss(margins, cfg.loss.ifsr_scale).to(self.device)
        self.ifsr_blocks = list(self.ifsr.blocks) if self.ifsr else list(contract.ifsr_blocks)
        kind, path = parse_perceptual_spec(cfg.loss.perceptual_network)
        self.vgg: Vgg16Features | None = None
        self.perceptual_blocks: list[str] = []
        if cfg.loss.perceptual > 0:
            if kind == "vgg16":
                self.vgg = Vgg16Features.from_safetensors(path).to(self.device)
            else:
                self.perceptual_blocks = list(contract.perceptual_blocks)
        # The frozen landmark detector, built only when its term is on (its ONNX graph is
        # parsed into torch ops: ~0.1 s, 1.7 MB of buffers).
        self.landmark_loss: LandmarkConsistencyLoss | None = None
        if cfg.loss.landmarks > 0:
            self.landmark_loss = LandmarkConsistencyLoss().to(self.device)
        # One encoder pass per image gives the embedding, IFSR blocks and perceptual blocks.
        self.feature_blocks = list(dict.fromkeys(
            (self.ifsr.blocks if self.ifsr else []) + self.perceptual_blocks))

    def _build_optimisers(self) -> None:
        o = self.config.optim
        kwargs = dict(lr=o.lr, betas=(o.beta1, o.beta2), eps=o.eps)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), **kwargs)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), **kwargs)
        amp = self.config.amp
        if amp == "auto":
            amp = "bf16" if self.device.type == "cuda" and torch.cuda.is_bf16_supported() \
                else "off"
        self.amp = amp
        if amp == "fp16" and self.device.type == "cpu":
            # It works (the tests run it), but a CPU has no fast half-precision convolution:
            # the tiny config's step measured 6.4x slower than fp32 (2.8 against 0.44 s).
            warnings.warn("amp=fp16 on the CPU is several times slower than fp32 (no fast "
                          "half-precision convolutions there); amp=bf16 is the CPU's mixed "
                          "precision", stacklevel=2)
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)
        fp16 = amp == "fp16"
        self.scaler_g = torch.amp.GradScaler(self.device.type, enabled=fp16)
        self.scaler_d = torch.amp.GradScaler(self.device.type, enabled=fp16)

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp_dtype,
                              enabled=self.amp_dtype is not None)

    # -- checkpoints ---------------------------------------------------------------------
    def _resume_newest_readable(self) -> None:
        """Load the newest checkpoint that reads; a corrupt one (a disk error, a partial copy)
        is skipped with a warning naming it, and the one before it is used."""
        checkpoints = [path for _, path in list_checkpoints(self.run_dir)]
        for checkpoint in reversed(checkpoints):
            try:
                self._load_checkpoint(checkpoint)
            except FacedancerError as exc:
                if self.ctx.is_main:
                    warnings.warn(f"{checkpoint.name} cannot be resumed ({exc}); falling back "
                                  "to the checkpoint before it", stacklevel=2)
                continue
            return
        raise FacedancerError(f"none of the {len(checkpoints)} checkpoints can be resumed (see "
                              "the warnings above)", self.run_dir)

    def _load_checkpoint(self, checkpoint: Path) -> None:
        state = load_training_state(checkpoint)
        saved = _flatten(state.get("config", {}))
        now = _flatten(self.config.to_dict())
        changed = [k for k in now if saved.get(k, now[k]) != now[k]
                   and not k.startswith(_RESUMABLE_CHANGES)]
        if changed and self.ctx.is_main:
            warnings.warn(f"resuming {checkpoint} with changed settings: {', '.join(changed)}",
                          stacklevel=2)
        for module, sub in ((self.generator, "generator"), (self.discriminator, "discriminator")):
            model_dir = read_model_dir(checkpoint / sub, kind=module.kind)
            load_state_dict_checked(module, model_dir.state_dict, checkpoint / sub)
        if self.generator_ema is not None:
            sub = "generator_ema" if (checkpoint / "generator_ema").is_dir() else "generator"
            model_dir = read_model_dir(checkpoint / sub, kind=self.generator_ema.kind)
            load_state_dict_checked(self.generator_ema, model_dir.state_dict, checkpoint / sub)
        self.opt_g.load_state_dict(state["optimizer_g"])
        self.opt_d.load_state_dict(state["optimizer_d"])
        self.scaler_g.load_state_dict(state["scaler_g"])
        self.scaler_d.load_state_dict(state["scaler_d"])
        self.step = int(state["step"])
        data = state.get("data", {})
        rngs = state.get("rng", [])
        if data.get("world_size") == self.ctx.world_size and len(rngs) == self.ctx.world_size:
            set_rng_state(rngs[self.ctx.rank])
        elif self.ctx.is_main:
            warnings.warn(f"resuming a {data.get('world_size')}-process run with "
                          f"{self.ctx.world_size} process(es): the data order changes from here",
                          stacklevel=2)

    def save(self) -> Path | None:
        """Checkpoint the current step (every rank must call it; rank 0 writes)."""
        rngs = all_gather_objects(rng_state(), self.ctx)
        digests = all_gather_objects(self.parameter_digest(), self.ctx)
        if len(set(digests)) > 1:  # data parallelism must keep every rank's weights identical
            raise RuntimeError(f"ranks diverged at step {self.step}: parameter digests {digests}")
        path = None
        if self.ctx.is_main:
            state = {
                "step": self.step,
                "optimizer_g": self.opt_g.state_dict(), "optimizer_d": self.opt_d.state_dict(),
                "scaler_g": self.scaler_g.state_dict(), "scaler_d": self.scaler_d.state_dict(),
                "rng": rngs,
                "data": {"batch": self.step, "seed": self.config.seed,
                         "world_size": self.ctx.world_size,
                         "batch_size": self.config.batch_size},
                "config": self.config.to_dict(),
            }
            meta = {"step": self.step, "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
                    "world_size": self.ctx.world_size, "rank_parameter_digests": digests,
                    "data": self.config.data,
                    "identity_encoder": self.generator.config.identity_encoder}
            path = save_checkpoint(self.run_dir, self.step, self.generator, self.discriminator,
                                   state, meta, self.config.schedule.keep_checkpoints,
                                   ema_generator=self.generator_ema)
        barrier(self.ctx)
        return path

    def parameter_digest(self) -> str:
        """sha256 of every generator and discriminator parameter (checks ranks agree)."""
        digest = hashlib.sha256()
        for module in (self.generator, self.discriminator):
            for tensor in module.state_dict().values():
                digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        return digest.hexdigest()[:16]

    # -- one iteration -------------------------------------------------------------------
    def learning_rate(self, step: int) -> float:
        """``lr * decay^(step / decay_steps)`` (the reference's non-staircase exponential)."""
        o = self.config.optim
        return o.lr * o.lr_decay ** (step / o.lr_decay_steps)

    def train_step(self, batch: dict[str, Any], keep_images: bool = False
                   ) -> dict[str, torch.Tensor]:
        """One G and one D update on ``batch`` (from :class:`PairBatches`); returns detached
        scalar tensors (weighted loss terms, totals, IFSR block distances)."""
        cfg, w = self.config, self.config.loss
        dev = self.device
        x = batch["target"].to(dev, non_blocking=True)
        s = batch["source"].to(dev, non_blocking=True)
        same = batch["same"].to(dev, non_blocking=True)
        shrink = cfg.loader.crop_shrink
        lr = self.learning_rate(self.step)
        for opt in (self.opt_g, self.opt_d):
            for group in opt.param_groups:
                group["lr"] = lr
        G, D, E = self.generator, self.discriminator, self.encoder

        gray = w.encoder_input == "gray"
        with torch.no_grad(), self._autocast():
            # targets and sources in one encoder batch: better use of the cores / GPU
            both = torch.cat([x, s])
            z_both, feats_both = E.embed_and_features(_luma(both) if gray else both,
                                                      self.feature_blocks, crop_shrink=shrink)
            # the generator is always conditioned on the RGB embedding (as at inference)
            z_cond = E.embed(both, crop_shrink=shrink) if gray else z_both
            z_t, z_s = z_cond.chunk(2)
            z_s_loss = z_both.chunk(2)[1]
            feats_x = {k: v[:len(x)] for k, v in feats_both.items()}
            vgg_x = self.vgg(x) if self.vgg is not None else None

        # Generator step: D is frozen here but lets gradients through to the swap.
        D.requires_grad_(False)
        with self._autocast():
            y = G(x, z_s)
            fake_logits = D(y)
            z_y, feats_y = E.embed_and_features(_luma(y) if gray else y, self.feature_blocks,
                                                crop_shrink=shrink)
            cycled = G(y, z_t) if w.cycle > 0 else None
            vgg_y = self.vgg(y) if self.vgg is not None else None
        zero = torch.zeros((), device=dev)
        terms = {
            "adversarial": generator_adversarial_loss(fake_logits),
            "reconstruction": reconstruction_loss(x, y, same),
            "identity": identity_loss(z_s_loss, z_y),
            "cycle": cycle_loss(x, cycled) if cycled is not None else zero,
        }
        if self.vgg is not None:
            terms["perceptual"] = perceptual_loss(vgg_x, vgg_y, same)
        elif self.perceptual_blocks:
            terms["perceptual"] = perceptual_loss(feats_x, feats_y, same, self.perceptual_blocks)
        else:
            terms["perceptual"] = zero
        distances: dict[str, torch.Tensor] = {}
        if self.ifsr is not None:
            terms["ifsr"], distances = self.ifsr(feats_x, feats_y)
        else:
            terms["ifsr"] = zero
        if w.chroma > 0:
            terms["chroma"] = chroma_loss(x, y)
        if self.landmark_loss is not None:
            terms["landmarks"] = self.landmark_loss(x, y)  # in float32, outside autocast
        weighted = {k: getattr(w, k) * v for k, v in terms.items()}
        g_total = sum(weighted.values())
        self.opt_g.zero_grad(set_to_none=True)
        self.scaler_g.scale(g_total).backward()
        average_gradients(G.parameters(), self.ctx)
        skipped_g = _scaled_step(self.scaler_g, self.opt_g)
        self.update_ema()
        D.requires_grad_(True)

        # Discriminator step on the same swap; the source batch is the real batch (augmented
        # like the targets when they are occluded / rotated: occluders are not a mark of fakes).
        r1_weight = r1_weight_for_step(self.step, w.r1_interval) if w.r1_gamma > 0 else 0.0
        real = batch["real"].to(dev, non_blocking=True) if "real" in batch else s
        real = real.detach().requires_grad_(r1_weight > 0)
        with self._autocast():
            real_logits = D(real)
            fake_logits_d = D(y.detach())
        d_real, d_fake = discriminator_adversarial_loss(real_logits, fake_logits_d)
        if r1_weight > 0:
            scale = self.scaler_d.get_scale() if self.scaler_d.is_enabled() else None
            r1 = r1_weight * r1_penalty(real_logits, real, w.r1_gamma, grad_scale=scale)
        else:
            r1 = zero
        d_total = d_real + d_fake + r1
        self.opt_d.zero_grad(set_to_none=True)
        self.scaler_d.scale(d_total).backward()
        average_gradients(D.parameters(), self.ctx)
        skipped_d = _scaled_step(self.scaler_d, self.opt_d)

        self.step += 1
        stats = {f"g/{k}": v.detach() for k, v in weighted.items()}
        stats.update({"g/total": g_total.detach(), "d/real": d_real.detach(),
                      "d/fake": d_fake.detach(), "d/r1": r1.detach(),
                      "d/total": d_total.detach(), "lr": torch.tensor(lr),
                      SKIPPED: torch.tensor(float(skipped_g or skipped_d))})
        stats.update({f"ifsr_distance/{b}": v for b, v in distances.items()})
        if keep_images:
            self._last_images = (x.detach(), s.detach(), y.detach())
        return stats

    # -- validation ------------------------------------------------------------------------
    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Swaps of held-out pairs (different identities): identity cosine of the swap to its
        source and to its target, the target-source baseline, IFSR block distances."""
        if self.val_index is None:
            return {}
        cfg = self.config
        if self._val_pairs is None:
            self._val_pairs = validation_pairs(self.val_index, cfg.image_size,
                                               cfg.schedule.val_pairs, seed=cfg.seed)
        # the EMA generator, when there is one, is the model that gets exported
        G = self.generator if self.generator_ema is None else self.generator_ema
        E, shrink = self.encoder, cfg.loader.crop_shrink
        G.eval()
        sums: dict[str, float] = {}
        n = self._val_pairs["target"].shape[0]
        grid_rows = None
        for start in range(0, n, cfg.batch_size):
            t = self._val_pairs["target"][start:start + cfg.batch_size].to(self.device)
            s = self._val_pairs["source"][start:start + cfg.batch_size].to(self.device)
            with self._autocast():
                z_s = E.embed(s, crop_shrink=shrink)
                z_t, f_t = E.embed_and_features(t, self.ifsr_blocks, crop_shrink=shrink)
                y = G(t, z_s)
                z_y, f_y = E.embed_and_features(y.float(), self.ifsr_blocks, crop_shrink=shrink)
            values = {
                "id_cos_to_source": F.cosine_similarity(z_y.float(), z_s.float()),
                "id_cos_to_target": F.cosine_similarity(z_y.float(), z_t.float()),
                "id_cos_target_source": F.cosine_similarity(z_t.float(), z_s.float()),
            }
            values.update({f"ifsr_distance/{b}": d for b, d in
                           block_cosine_distances(f_t, f_y, self.ifsr_blocks).items()})
            for key, v in values.items():
                sums[key] = sums.get(key, 0.0) + float(v.sum())
            if grid_rows is None:
                grid_rows = (t, s, y.float())
        self.generator.train()
        result = {k: v / n for k, v in sums.items()}
        blocks = [v for k, v in result.items() if k.startswith("ifsr_distance/")]
        result["ifsr_distance_mean"] = float(np.mean(blocks)) if blocks else 0.0
        if grid_rows is not None:
            self.logger.image(self.step, "val", image_grid(list(grid_rows)))
        return result

    # -- the loop ----------------------------------------------------------------------------
    def data_loader(self) -> torch.utils.data.DataLoader:
        cfg, ld = self.config, self.config.loader
        dataset = PairBatches(
            self.train_index, cfg.image_size, cfg.batch_size, seed=cfg.seed,
            rank=self.ctx.rank, world_size=self.ctx.world_size, start_batch=self.step,
            stop_batch=cfg.steps, same_prob=ld.same_prob,
            augment=AugmentConfig(brightness=ld.brightness, contrast=tuple(ld.contrast),
                                  saturation=tuple(ld.saturation), enabled=ld.augment),
            targets=TargetAugmentConfig(occlude_prob=ld.occlude_prob, rotate_deg=ld.rotate_deg,
                                        scale_jitter=ld.scale_jitter,
                                        crop_shrink=ld.crop_shrink))
        return pair_loader(dataset, workers=ld.workers, pin_memory=self.device.type == "cuda")

    def run(self) -> dict[str, float]:
        """Train until ``config.steps``; returns the last logged training stats."""
        cfg, sched = self.config, self.config.schedule
        if self.step >= cfg.steps:
            return {}
        bar = tqdm(total=cfg.steps, initial=self.step, unit="step", dynamic_ncols=True,
                   disable=not (self.progress and self.ctx.is_main), desc="train")
        sums: dict[str, torch.Tensor] = {}
        count, skipped, in_a_row, t0, last = 0, 0, 0, time.perf_counter(), {}
        diverged = ("training diverged at step {} ({}); resume from the last checkpoint with "
                    "a lower optim.lr")
        try:
            for batch in self.data_loader():
                if batch["batch"] != self.step:  # the data position must follow the step
                    raise RuntimeError(f"data batch {batch['batch']} at step {self.step}")
                want_images = self.ctx.is_main and (self.step + 1) % sched.image_every == 0
                stats = self.train_step(batch, keep_images=want_images)
                # every rank skips the same steps: the gradients are averaged before the check
                was_skipped = self.amp == "fp16" and bool(stats[SKIPPED])
                if was_skipped:
                    skipped, in_a_row = skipped + 1, in_a_row + 1
                    if in_a_row > MAX_SKIPPED_IN_A_ROW:
                        raise FacedancerError(diverged.format(
                            self.step, f"fp16 gradients overflowed {in_a_row} steps in a row"))
                else:
                    in_a_row = 0
                    for key, value in stats.items():
                        sums[key] = sums.get(key, 0) + value
                    count += 1
                if self.record_history:
                    self.history.append({k: float(v) for k, v in stats.items()})
                step = self.step
                bar.update(1)
                if (step % sched.log_every == 0 or step % sched.checkpoint_every == 0
                        or step == cfg.steps) and not was_skipped and not all(
                            math.isfinite(float(v)) for v in stats.values()):
                    raise FacedancerError(diverged.format(step, "non-finite loss"))
                if (step % sched.log_every == 0 or step == cfg.steps) and count + skipped:
                    # a window of skipped steps only is logged too (the count, no losses)
                    means = all_reduce_mean({k: float(v) / count for k, v in sums.items()},
                                            self.ctx) if count else {}
                    elapsed = time.perf_counter() - t0
                    steps_done = count + skipped
                    means[SKIPPED] = float(skipped)
                    means["it_per_s"] = steps_done / elapsed if elapsed > 0 else 0.0
                    means["img_per_s"] = means["it_per_s"] * cfg.batch_size * self.ctx.world_size
                    self.logger.scalars(step, "train", means)
                    if count:
                        bar.set_postfix({"G": f"{means['g/total']:.3f}",
                                         "D": f"{means['d/total']:.3f}"}, refresh=False)
                    last, sums, count, skipped, t0 = means, {}, 0, 0, time.perf_counter()
                if want_images:
                    self.logger.image(step, "train", image_grid(list(self._last_images)))
                if self.ctx.is_main and (step % sched.val_every == 0 or step == cfg.steps):
                    val = self.validate()
                    if val:
                        self.logger.scalars(step, "val", val)
                if step % sched.checkpoint_every == 0 or step == cfg.steps:
                    self.save()
                    self.logger.flush()
        finally:
            bar.close()
            self.logger.close()
        return last
