"""One process or many: the trainer reads torchrun's ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``.

``facedancer train`` runs as a single process on a CPU or one GPU, or under
``torchrun --nproc-per-node N [--nnodes M --rdzv-endpoint HOST:PORT]`` with one process per GPU
(NCCL) or per CPU worker (Gloo). There is no home-made launcher.

Data parallelism is done as in stylegan3: every rank computes its own batch, then the
gradients of each network are averaged with **one flat all-reduce** before the optimiser step,
and parameters start identical (broadcast from rank 0). ``DistributedDataParallel`` is not
used because one FaceDancer iteration runs the generator twice before backward (swap and
cycle), back-propagates a gradient penalty through the discriminator (R1, double backward),
and uses the discriminator frozen inside the generator step: three patterns DDP's bucketed
hooks handle poorly. With equal parameters, equal averaged gradients and deterministic Adam,
all ranks stay bit-identical.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..device import resolve_device
from ..errors import FacedancerError


@dataclass
class DistributedContext:
    """Where this process sits: rank among ``world_size``, its device, the backend (or None)."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    local_world_size: int = 1
    device: torch.device = torch.device("cpu")
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """A process group is up (under torchrun, also for one process)."""
        return self.backend is not None


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise FacedancerError(f"environment variable {name}={value!r} is not an integer") from exc


def init_distributed(device: str = "auto") -> DistributedContext:
    """Set up this process from torchrun's environment (single process when absent).

    CUDA: rank ``r`` uses ``cuda:LOCAL_RANK`` and NCCL. CPU: Gloo, with the cores split among
    the processes of a node when ``OMP_NUM_THREADS`` is not set. Under torchrun the process
    group is set up for one process too, so ``--nproc-per-node 1`` runs the same collectives
    as N processes (before, it skipped them, and a one-GPU smoke test of NCCL tested nothing).
    """
    world = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", 0)
    local_world = _env_int("LOCAL_WORLD_SIZE", world)
    base = resolve_device(device)
    # torchrun sets WORLD_SIZE and the env:// rendezvous (MASTER_ADDR, MASTER_PORT); without
    # all three (a cluster that only exports MASTER_ADDR, a bare WORLD_SIZE=1) one process
    # stays a plain process
    launched = all(os.environ.get(k) for k in ("WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"))
    if world <= 1 and not launched:
        return DistributedContext(device=base)
    if base.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise FacedancerError(f"LOCAL_RANK {local_rank} but only {torch.cuda.device_count()} "
                                  "GPU(s) on this node")
        torch.cuda.set_device(local_rank)
        base, backend = torch.device("cuda", local_rank), "nccl"
    else:
        backend = "gloo"
        if "OMP_NUM_THREADS" not in os.environ:
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // max(1, local_world)))
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, init_method="env://", rank=rank,
                                world_size=world,
                                device_id=base if base.type == "cuda" else None)
    return DistributedContext(rank=rank, local_rank=local_rank, world_size=world,
                              local_world_size=local_world, device=base, backend=backend)


def shutdown_distributed(ctx: DistributedContext) -> None:
    """Leave the process group (no-op for a single process)."""
    if ctx.distributed and dist.is_initialized():
        dist.destroy_process_group()


def broadcast_module(module: torch.nn.Module, ctx: DistributedContext) -> None:
    """Copy rank 0's parameters and buffers to every rank."""
    if not ctx.distributed:
        return
    with torch.no_grad():
        for tensor in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(tensor.data, src=0)


def average_gradients(parameters: Iterable[torch.nn.Parameter], ctx: DistributedContext) -> None:
    """Average ``.grad`` over ranks with one flat all-reduce (missing grads count as zero)."""
    if not ctx.distributed:
        return
    params = [p for p in parameters if p.requires_grad]
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    flat = torch.cat([p.grad.reshape(-1) for p in params])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= ctx.world_size
    offset = 0
    for p in params:
        n = p.numel()
        p.grad.copy_(flat[offset:offset + n].view_as(p.grad))
        offset += n


def all_reduce_mean(values: dict[str, float], ctx: DistributedContext) -> dict[str, float]:
    """Mean of scalar stats over ranks (every rank must call it with the same keys)."""
    if not ctx.distributed or not values:
        return values
    keys = sorted(values)
    tensor = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64,
                          device=ctx.device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    tensor /= ctx.world_size
    return dict(zip(keys, tensor.tolist(), strict=True))


def all_gather_objects(obj: object, ctx: DistributedContext) -> list:
    """Every rank's ``obj`` (picklable), in rank order."""
    if not ctx.distributed:
        return [obj]
    out: list = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def barrier(ctx: DistributedContext) -> None:
    if ctx.distributed:
        dist.barrier()
