"""Training configuration: typed dataclasses loaded from YAML, with ``key=value`` overrides.

``facedancer train --config NAME|PATH [key=value ...]``: ``NAME`` is one of the configs shipped
with the package (``tiny``, ``demo``, ``paper``), ``PATH`` any YAML file with the same keys.
Overrides use the config's own (dotted) keys, e.g. ``data=faces/ out=runs/a steps=5000
loss.ifsr=0 optim.lr=2e-4 generator.mapping_depth=2``. Unknown keys and wrongly typed values
are errors, never silently ignored.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import FacedancerError

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
REFERENCE_UP_TYPES = ["no_skip", "no_skip", "affa", "affa", "affa", "concat"]


@dataclass
class GeneratorSection:
    """Generator shape (docs/reference.md §2); ``None`` widths take the reference's."""

    encoder_widths: list[int] | None = None
    decoder_widths: list[int] | None = None
    mapping_depth: int = 4
    mapping_width: int = 512
    up_types: list[str] = field(default_factory=lambda: list(REFERENCE_UP_TYPES))


@dataclass
class DiscriminatorSection:
    """Discriminator shape (docs/reference.md §3): stem width then one width per down block."""

    widths: list[int] | None = None
    head_width: int = 512


@dataclass
class LossSection:
    """Loss weights (reference: ``L_adv + 5 L_rec + 10 L_id + 1 L_cyc + 0.2 L_perc + 1 L_IFSR``),
    R1 (gamma, lazy interval), IFSR scale / margins file and the perceptual network."""

    adversarial: float = 1.0
    reconstruction: float = 5.0
    identity: float = 10.0
    cycle: float = 1.0
    perceptual: float = 0.2
    ifsr: float = 1.0
    r1_gamma: float = 5.0
    r1_interval: int = 1
    ifsr_scale: float = 1.2
    ifsr_margins: str | None = None  # JSON file; default: the identity encoder's own margins
    perceptual_network: str = "identity"  # or "vgg16:/path/to/vgg16.safetensors"
    # What the identity encoder sees in the losses (embedding, IFSR, perceptual): "rgb" (the
    # reference) or "gray" (luma only, so the identity loss cannot be met by painting colours).
    encoder_input: str = "rgb"
    # L1 between the low-passed chroma (YCbCr Cb, Cr; 4x4 cells) of target and swap: the swap
    # keeps the target's skin tone and lighting; identity lives in shape, not in hue.
    chroma: float = 0.0
    # L1 between the embedded RetinaFace detector's per-anchor landmark regressions of target
    # and swap (losses/landmarks.py, in fractions of the image side): the swap keeps the
    # target's head pose and expression. 0 = off (the reference).
    landmarks: float = 0.0


@dataclass
class OptimSection:
    """Adam for G and D (reference: lr 1e-4, betas (0, 0.99), eps 1e-7, lr * 0.97^(step/1e5))."""

    lr: float = 1e-4
    beta1: float = 0.0
    beta2: float = 0.99
    eps: float = 1e-7
    lr_decay: float = 0.97
    lr_decay_steps: int = 100_000
    # Exponential moving average of the generator weights (0: none, the reference). Exported
    # instead of the raw weights; ramped up as min(ema_decay, (1 + k) / (10 + k)) at step k.
    ema_decay: float = 0.0


@dataclass
class LoaderSection:
    """Pairs and augmentation (docs/reference.md §6) and the data loader."""

    same_prob: float = 0.2
    augment: bool = True
    brightness: float = 0.3
    contrast: list[float] = field(default_factory=lambda: [0.9, 1.1])
    saturation: list[float] = field(default_factory=lambda: [0.9, 1.1])
    workers: int = 2
    crop_shrink: float = 1.0  # shrink factor the aligned training crops were made with
    # Robustness (docs/training.md "Occluded and rotated targets"; off = the reference): chance
    # a target gets synthetic occluders, its random in-plane rotation (+- degrees) and scale
    # jitter (exp(U(-a, a)), a = log(1 + jitter)), border reflected. The swap is compared with
    # the occluded target, so the generator learns to keep occluders.
    occlude_prob: float = 0.0
    rotate_deg: float = 0.0
    scale_jitter: float = 0.0
    val_data: str | None = None  # held-out faces; default: the shards' val split or a split
    val_fraction: float = 0.05  # of identities held out of a plain folder (no val split)


@dataclass
class ScheduleSection:
    """How often to checkpoint, log, draw image grids and validate (in steps)."""

    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    log_every: int = 100
    image_every: int = 1000
    val_every: int = 1000
    val_pairs: int = 16


@dataclass
class TrainConfig:
    """A whole training run. ``batch_size`` is per process: the global batch of a
    ``torchrun --nproc-per-node N`` run is ``N * batch_size``."""

    name: str = "custom"
    data: str | None = None  # shards (manifest or folder) or a folder of aligned faces
    out: str = "runs/facedancer"
    steps: int = 300_000
    seed: int = 0
    image_size: int = 256
    batch_size: int = 10
    device: str = "auto"
    amp: str = "auto"  # auto (bf16 on CUDA, off on CPU) | bf16 | fp16 | off
    identity_encoder: str = "default"
    # Model directory (``facedancer export`` output, fp16 or fp32) whose weights a new run's
    # generator starts from (fine-tuning); ignored when resuming a checkpoint.
    init_generator: str | None = None
    generator: GeneratorSection = field(default_factory=GeneratorSection)
    discriminator: DiscriminatorSection = field(default_factory=DiscriminatorSection)
    loss: LossSection = field(default_factory=LossSection)
    optim: OptimSection = field(default_factory=OptimSection)
    loader: LoaderSection = field(default_factory=LoaderSection)
    schedule: ScheduleSection = field(default_factory=ScheduleSection)

    def validate(self) -> TrainConfig:
        """Check values that YAML types alone cannot; returns self."""
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise FacedancerError(f"invalid training config: {message}")

        need(self.steps >= 0, "steps must be >= 0")
        need(self.optim.lr > 0, "optim.lr must be > 0")
        need(self.batch_size >= 1, "batch_size must be >= 1")
        # 64 px at least: the generator's bottleneck (1/32) must keep 2x2 pixels for its
        # instance norms to have statistics.
        need(self.image_size >= 64 and self.image_size % 32 == 0,
             "image_size must be a multiple of 32, at least 64")
        need(self.amp in ("auto", "bf16", "fp16", "off"), "amp must be auto, bf16, fp16 or off")
        need(0 <= self.loader.same_prob <= 1, "loader.same_prob must lie in [0, 1]")
        need(len(self.loader.contrast) == 2 and len(self.loader.saturation) == 2,
             "loader.contrast and loader.saturation are [low, high]")
        need(0 < self.loader.crop_shrink <= 1, "loader.crop_shrink must lie in (0, 1]")
        need(0 <= self.loader.occlude_prob <= 1, "loader.occlude_prob must lie in [0, 1]")
        need(0 <= self.loader.rotate_deg <= 90, "loader.rotate_deg must lie in [0, 90]")
        need(0 <= self.loader.scale_jitter < 1, "loader.scale_jitter must lie in [0, 1)")
        need(self.loss.r1_interval >= 1, "loss.r1_interval must be >= 1")
        need(self.loss.encoder_input in ("rgb", "gray"), "loss.encoder_input must be rgb or gray")
        need(self.loss.chroma >= 0, "loss.chroma must be >= 0")
        need(self.loss.landmarks >= 0, "loss.landmarks must be >= 0")
        need(0 <= self.optim.ema_decay < 1, "optim.ema_decay must lie in [0, 1)")
        s = self.schedule
        need(min(s.checkpoint_every, s.log_every, s.image_every, s.val_every) >= 1,
             "schedule intervals must be >= 1")
        need(s.keep_checkpoints >= 1, "schedule.keep_checkpoints must be >= 1")
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        """Block-style YAML with one-line lists, readable by :func:`load_config`."""
        return yaml.dump(self.to_dict(), Dumper=_ConfigDumper, sort_keys=False,
                         default_flow_style=False)


class _Yaml12Loader(yaml.SafeLoader):
    """YAML with 1.2 booleans: only true/false are booleans, so ``amp: off`` stays a string;
    and ``1e-4`` (no dot) is a float, not a string."""


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers
            if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:float")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"))
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d[\d_]*\.[\d_]*(?:[eE][-+]?\d+)?|\.[\d_]+(?:[eE][-+]?\d+)?"
               r"|\d[\d_]*[eE][-+]?\d+|\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+0123456789."))


def _yaml_load(text: str) -> Any:
    return yaml.load(text, Loader=_Yaml12Loader)  # noqa: S506 (a SafeLoader subclass)


class _ConfigDumper(yaml.SafeDumper):
    pass


_ConfigDumper.add_representer(
    list, lambda dumper, data: dumper.represent_sequence("tag:yaml.org,2002:seq", data,
                                                         flow_style=True))


def available_configs() -> list[str]:
    """Names of the configs shipped with the package."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def _is_dataclass_type(hint: Any) -> bool:
    return isinstance(hint, type) and dataclasses.is_dataclass(hint)


def _coerce(value: Any, hint: Any, key: str, raw: str | None = None) -> Any:
    """``value`` converted to the field type ``hint``, or a FacedancerError naming ``key``."""
    def bad() -> FacedancerError:
        return FacedancerError(f"config key '{key}': {value!r} is not a valid "
                               f"{getattr(hint, '__name__', str(hint))}")

    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None or (isinstance(value, str) and value.lower() in ("null", "none")):
            if type(None) in options:
                return None
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, key, raw)
            except FacedancerError:
                continue
        raise bad()
    if origin is list:
        (item,) = typing.get_args(hint)
        if isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, list):
            raise bad()
        return [_coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise bad()
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise bad()
        return value
    if hint is float:
        if isinstance(value, bool):
            raise bad()
        if isinstance(value, str):  # YAML 1.1 reads "1e-4" (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                raise bad() from None
        if not isinstance(value, (int, float)):
            raise bad()
        if value != value or value in (float("inf"), float("-inf")):
            # NaN or inf pass every range check below and poison the weights at step 1
            raise FacedancerError(f"config key '{key}': {value} is not a finite number")
        return float(value)
    if hint is str:
        if raw is not None:  # from the command line: keep the text ("off", "no", "1e-4" ...)
            return raw
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise bad()
    raise bad()


def _apply(target: Any, data: dict[str, Any], prefix: str = "") -> None:
    hints = typing.get_type_hints(type(target))
    for key, value in data.items():
        full = f"{prefix}{key}"
        if key not in hints:
            known = ", ".join(f"{prefix}{k}" for k in hints)
            raise FacedancerError(f"unknown config key '{full}' (known: {known})")
        hint = hints[key]
        if _is_dataclass_type(hint):
            if not isinstance(value, dict):
                raise FacedancerError(f"config key '{full}' must be a mapping")
            _apply(getattr(target, key), value, f"{full}.")
        else:
            setattr(target, key, _coerce(value, hint, full))


def _set_dotted(config: TrainConfig, dotted: str, text: str) -> None:
    parts = dotted.split(".")
    target: Any = config
    for i, part in enumerate(parts):
        hints = typing.get_type_hints(type(target))
        full = ".".join(parts[:i + 1])
        if part not in hints:
            known = ", ".join(".".join(parts[:i] + [k]) for k in hints)
            raise FacedancerError(f"unknown config key '{full}' (known: {known})")
        if i == len(parts) - 1:
            if _is_dataclass_type(hints[part]):
                raise FacedancerError(f"config key '{full}' is a section; set one of its keys")
            try:
                value = _yaml_load(text) if text.strip() else None
            except yaml.YAMLError as exc:
                raise FacedancerError(f"cannot parse value of '{full}': {text!r}") from exc
            setattr(target, part, _coerce(value, hints[part], full, raw=text))
        else:
            if not _is_dataclass_type(hints[part]):
                raise FacedancerError(f"config key '{full}' has no sub-keys")
            target = getattr(target, part)


def resolve_config_path(name_or_path: str | Path) -> Path:
    """A shipped config name (``tiny``) or a YAML path -> the file to read."""
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    shipped = CONFIG_DIR / f"{name_or_path}.yaml"
    if shipped.is_file():
        return shipped
    if path.suffix in (".yaml", ".yml"):
        # configs/NAME.yaml from a source checkout: fall back to the shipped copy of NAME
        shipped = CONFIG_DIR / path.name
        if shipped.is_file() and path.parent.name == "configs":
            return shipped
        raise FacedancerError("config file not found", path)
    raise FacedancerError(f"unknown config '{name_or_path}' (shipped: "
                          f"{', '.join(available_configs())}; or give a YAML file)")


def load_config(name_or_path: str | Path, overrides: list[str] | tuple[str, ...] = ()
                ) -> TrainConfig:
    """Read a YAML config (shipped name or path), apply ``key=value`` overrides, validate."""
    path = resolve_config_path(name_or_path)
    try:
        data = _yaml_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise FacedancerError(f"cannot read config ({exc})", path) from exc
    if not isinstance(data, dict):
        raise FacedancerError("config must be a YAML mapping", path)
    config = TrainConfig()
    _apply(config, data)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise FacedancerError(f"override '{item}' is not key=value")
        _set_dotted(config, key.strip(), text)
    return config.validate()


def config_from_dict(data: dict[str, Any]) -> TrainConfig:
    """Rebuild a config from :meth:`TrainConfig.to_dict` (as stored in checkpoints)."""
    config = TrainConfig()
    _apply(config, data)
    return config.validate()
