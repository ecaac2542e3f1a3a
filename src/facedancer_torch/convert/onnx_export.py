"""Export a FaceDancer generator to ONNX (dynamic batch) for ONNX Runtime.

Inputs ``x_target`` (B, 3, H, W) float32 in [-1, 1] and ``z_source`` (B, z_dim) float32 (raw
identity embedding); output ``y`` (B, 3, H, W), nominally [-1, 1] (no tanh, not clamped).
H and W are fixed to the config's ``image_size``; the batch axis is dynamic.

By default the inference-fused graph is exported (:meth:`FaceDancerGenerator.fused_for_inference`:
same function, about 40 % fewer FLOPs). PyTorch's ``torch.export``-based exporter is used when
``onnxscript`` is installed; otherwise the older TorchScript exporter, which needs only ``onnx``
but can only export the reference graph (its initializer de-duplication breaks the fused graph
when two norms hold equal parameters, as in an untrained model).
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import torch

from ..errors import FacedancerError
from ..io.atomic import atomic_path
from ..models.generator import FaceDancerGenerator, load_generator

INPUT_NAMES = ("x_target", "z_source")
OUTPUT_NAME = "y"
DEFAULT_OPSET = 18


def export_generator_onnx(model: FaceDancerGenerator | str | Path, out_path: str | Path, *,
                          fused: bool = True, opset: int = DEFAULT_OPSET,
                          image_size: int | None = None) -> Path:
    """Write ``model`` (a generator or a model directory) to ``out_path`` as ONNX.

    ``image_size`` overrides the spatial size baked into the graph (a multiple of 32).
    The file is written atomically; returns ``out_path``.
    """
    try:
        import onnx  # noqa: F401  (the exporter needs it; fail early with a clear message)
    except ImportError as exc:
        raise FacedancerError("ONNX export needs the 'onnx' package: pip install onnx") from exc
    if not isinstance(model, FaceDancerGenerator):
        model = load_generator(model)
    model = model.float().cpu().eval()
    try:
        import onnxscript  # noqa: F401
        dynamo = True
    except ImportError:
        dynamo = False
    if fused and not dynamo:
        warnings.warn("onnxscript is not installed: exporting the reference (unfused) graph; "
                      "pip install onnxscript for the faster fused graph", stacklevel=2)
        fused = False
    net = model.fused_for_inference() if fused else model
    size = image_size or model.config.image_size
    x = torch.zeros(2, 3, size, size)
    z = torch.zeros(2, model.config.z_dim)
    out_path = Path(out_path)
    quiet = logging.getLogger("torch.onnx")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # "torchvision is not installed" and similar notices
    try:
        with atomic_path(out_path) as tmp, torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # deprecation notices of the exporters
            names = dict(input_names=list(INPUT_NAMES), output_names=[OUTPUT_NAME])
            if dynamo:
                batch = torch.export.Dim("batch", min=1, max=4096)
                program = torch.onnx.export(
                    net, (x, z), dynamo=True, opset_version=max(opset, 18), optimize=True,
                    dynamic_shapes={"x_target": {0: batch}, "z_source": {0: batch}},
                    verbose=False, **names)
                program.save(str(tmp))
            else:
                torch.onnx.export(
                    net, (x, z), str(tmp), dynamo=False, opset_version=opset, **names,
                    dynamic_axes={"x_target": {0: "batch"}, "z_source": {0: "batch"},
                                  "y": {0: "batch"}},
                    do_constant_folding=True)
    finally:
        quiet.setLevel(level)
    return out_path


def onnx_session(path: str | Path, threads: int | None = None):  # -> onnxruntime.InferenceSession
    """An ONNX Runtime CPU session with full graph optimisation (``threads``: intra-op)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
