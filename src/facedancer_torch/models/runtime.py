"""Fast inference for the FaceDancer generator: one runner, several backends.

Training uses :class:`FaceDancerGenerator` as is. For swapping, :class:`GeneratorRunner` runs
the same weights through the fastest path available:

==============  ========================================================================
backend         what runs
==============  ========================================================================
``eager``       the reference graph, float32 (the exact model; slowest on CPU)
``fused``       :meth:`FaceDancerGenerator.fused_for_inference` (same function to float
                rounding, ~40 % fewer FLOPs), float32, channels-last
``bf16``        the fused graph with bfloat16 convs and activations (oneDNN AVX512-BF16
                kernels); norm statistics, AdaIN and the mapping network in float32
``onnxruntime`` the fused graph exported to ONNX, float32, ONNX Runtime CPU
``fp16``        CUDA only: the fused graph with float16 convs and activations, channels-last
``auto``        CUDA -> ``fp16``; on a CPU, a small model (crops of at most
                :data:`SMALL_MODEL_SIZE` px, e.g. the demo model) -> ``onnxruntime``;
                larger models: native bf16 (AVX512-BF16, AMX) -> ``bf16``, other CPUs
                -> ``onnxruntime``; ``fused`` where ``onnx`` is not installed
==============  ========================================================================

Inputs and outputs are those of the generator: ``x_target`` (B, 3, H, W) in [-1, 1],
``z_source`` (B, z_dim) raw embedding -> (B, 3, H, W) float32, nominally [-1, 1]. The error of
each backend against float32 ``eager`` is measured by ``benchmarks/generator.py``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import torch

from ..errors import FacedancerError
from .generator import FaceDancerGenerator, load_generator

BACKENDS = ("auto", "eager", "fused", "bf16", "onnxruntime", "fp16")
# On a CPU, ONNX Runtime beats bf16 on small models, where bf16's per-layer conversions weigh
# more than its faster dot products: the 128 px demo model 8 ms vs 21 ms per face
# (benchmarks/live.py), whole video swap 20.1 vs 12.8 frames/s (benchmarks/swap_video.py);
# the reference-size 256 px model is the other way round (bf16 2.4x ONNX Runtime,
# benchmarks/generator.py).
SMALL_MODEL_SIZE: int = 128


def cpu_has_native_bf16() -> bool:
    """True when this CPU computes bfloat16 dot products natively (AVX512-BF16 or AMX);
    elsewhere oneDNN emulates them and ``bf16`` is no faster than float32."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in probes)


def auto_backend(device: torch.device, image_size: int | None = None) -> str:
    """The backend ``auto`` means on ``device`` for a model of ``image_size`` px crops (see the
    table above); callers that fall back when it fails name it in their warning."""
    if device.type == "cuda":
        return "fp16"
    small = image_size is not None and image_size <= SMALL_MODEL_SIZE
    onnx = onnx_available()
    if cpu_has_native_bf16() and not (small and onnx):
        return "bf16"
    return "onnxruntime" if onnx else "fused"


def onnx_available() -> bool:
    """True when the ``onnxruntime`` backend can run: ONNX Runtime and the ``onnx`` package
    that the export needs (onnxruntime alone is not enough)."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def onnx_cache_dir() -> Path:
    """Where exported ONNX graphs are cached (generator, face segmenter): $FACEDANCER_CACHE,
    else $XDG_CACHE_HOME or ~/.cache, then facedancer-torch/onnx."""
    root = os.environ.get("FACEDANCER_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "facedancer-torch")
    return Path(root) / "onnx"


def weights_digest(model: torch.nn.Module) -> str:
    """A content hash of a network's config (``model.config.to_dict()``), the torch version and
    its weights, so a cached ONNX file never goes stale (the generator's, the face segmenter's)."""
    h = hashlib.sha256(repr(sorted(model.config.to_dict().items())).encode())
    h.update(torch.__version__.encode())
    for name, tensor in model.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


class GeneratorRunner:
    """Run a generator for inference on ``device`` with one of :data:`BACKENDS`.

    ``model`` is a :class:`FaceDancerGenerator` (put in eval mode, float32) or a model
    directory. ``threads`` sets the
    CPU threads (ONNX Runtime intra-op threads, or ``torch.set_num_threads``); ``None`` keeps
    the defaults. ``onnx_path`` stores the exported graph there (default: a cache folder,
    ``$FACEDANCER_CACHE/onnx``, keyed by a hash of the weights).
    """

    def __init__(self, model: FaceDancerGenerator | str | Path, backend: str = "auto",
                 device: str | torch.device = "cpu", threads: int | None = None,
                 onnx_path: str | Path | None = None):
        from ..device import resolve_device

        if backend not in BACKENDS:
            raise FacedancerError(f"unknown generator backend '{backend}' "
                                  f"(use {', '.join(BACKENDS)})")
        self.device = resolve_device(device)
        if not isinstance(model, FaceDancerGenerator):
            model = load_generator(model)
        self.model = model.float().eval()
        self.config = model.config
        if backend == "auto":
            backend = auto_backend(self.device, self.config.image_size)
        if backend == "fp16" and self.device.type != "cuda":
            raise FacedancerError("backend 'fp16' needs a CUDA device (use bf16 on CPU)")
        if backend in ("bf16", "onnxruntime") and self.device.type != "cpu":
            raise FacedancerError(f"backend '{backend}' runs on the CPU only")
        self.backend = backend
        if threads and backend != "onnxruntime":
            torch.set_num_threads(threads)
        self._session = None
        self._net: torch.nn.Module | None = None
        if backend == "onnxruntime":
            self._session = self._make_session(onnx_path, threads)
        elif backend == "eager":
            self._net = self.model.to(self.device)
        else:
            self._net = self.model.fused_for_inference(conv_dtype=self._conv_dtype).to(
                self.device, memory_format=torch.channels_last)

    def _make_session(self, onnx_path: str | Path | None, threads: int | None) -> Any:
        from ..convert.onnx_export import export_generator_onnx, onnx_session

        if onnx_path is None:
            onnx_path = onnx_cache_dir() / f"generator-{weights_digest(self.model)}.onnx"
        onnx_path = Path(onnx_path)
        if not onnx_path.is_file():
            export_generator_onnx(self.model, onnx_path, fused=True)
        return onnx_session(onnx_path, threads=threads)

    @property
    def _conv_dtype(self) -> torch.dtype | None:
        # bf16/fp16 store the conv weights in half precision once (autocast would re-cast
        # every weight on every call); statistics, AdaIN and the mapping stay float32
        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.backend)

    @torch.inference_mode()
    def __call__(self, x_target: torch.Tensor, z_source: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1] and (B, z_dim) -> (B, 3, H, W) float32 on ``self.device``."""
        if self._session is not None:
            size = self.config.image_size
            if tuple(x_target.shape[-2:]) != (size, size):
                raise ValueError(f"the ONNX graph takes {size}x{size} crops, got "
                                 f"{tuple(x_target.shape[-2:])}")
            x = x_target.detach().float().cpu().contiguous().numpy()
            z = z_source.detach().float().cpu().contiguous().numpy()
            y = self._session.run(None, {"x_target": x, "z_source": z})[0]
            return torch.from_numpy(y).to(self.device)
        assert self._net is not None
        x = x_target.to(self.device, self._conv_dtype or torch.float32)
        z = z_source.to(self.device, torch.float32)
        if self.backend == "eager":
            return self._net(x, z).float()
        x = x.contiguous(memory_format=torch.channels_last)
        if self.device.type == "cpu" and x.shape[0] > 1:
            # one image at a time on a CPU: the working set stays in cache and the norm can
            # apply the AdaIN affine in its own pass (measured faster per image than batching)
            return torch.cat([self._net(x[i:i + 1], z[i:i + 1]).float()
                              for i in range(x.shape[0])]).contiguous()
        return self._net(x, z).float().contiguous()

    def __repr__(self) -> str:
        return f"GeneratorRunner(backend={self.backend!r}, device={str(self.device)!r})"
