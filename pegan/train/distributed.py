"""Data-parallel helpers: one process per device under ``torchrun`` (NCCL on GPU, gloo on CPU).

Gradients are averaged explicitly (:func:`all_reduce_grads`) instead of wrapping modules in
DistributedDataParallel: a GAN iteration runs G and D several times (D step, G step, lazy R1,
path length) and explicit averaging keeps every rank's update identical without DDP's
unused-parameter bookkeeping. Rank 0 writes every file.
"""

from __future__ import annotations

import datetime
import os
import sys
from typing import Any, Iterable

import torch
import torch.distributed as dist


def launched_by_torchrun() -> bool:
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ


def is_initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if is_initialized() else 1


def init(use_cuda: bool) -> tuple[int, int, int]:
    """Join the torchrun process group; returns (rank, world size, local rank)."""
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if not launched_by_torchrun():
        return 0, 1, 0
    if use_cuda:
        torch.cuda.set_device(local_rank)
    if not is_initialized():
        # rank 0 alone computes the snapshot metric while the others wait: a long timeout
        dist.init_process_group(backend="nccl" if use_cuda else "gloo",
                                timeout=datetime.timedelta(hours=2))
    return dist.get_rank(), dist.get_world_size(), local_rank


def shutdown() -> None:
    if is_initialized():
        dist.destroy_process_group()


def torchrun_command(nproc: int, argv: list[str]) -> list[str]:
    """The command that re-launches `pegan <argv>` as `nproc` torchrun processes."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc_per_node={nproc}", "-m", "pegan.cli", *argv]


def all_reduce_grads(params: Iterable[torch.nn.Parameter]) -> None:
    """Average the gradients of `params` over ranks (one flat buffer, one collective)."""
    if world_size() == 1:
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world_size()
    offset = 0
    for g in grads:
        n = g.numel()
        g.copy_(flat[offset:offset + n].view_as(g))
        offset += n


def all_reduce_mean(t: torch.Tensor) -> torch.Tensor:
    """Mean of a tensor over ranks (a new tensor; the input is unchanged)."""
    if world_size() == 1:
        return t
    out = t.detach().clone()
    dist.all_reduce(out)
    return out / world_size()


def broadcast_module(module: torch.nn.Module) -> None:
    """Copy rank 0's parameters and buffers to every rank."""
    if world_size() == 1:
        return
    for t in [*module.parameters(), *module.buffers()]:
        dist.broadcast(t.data, src=0)


def batch_norm_stats(modules: Iterable[torch.nn.Module]) -> list[torch.Tensor]:
    """The running statistics of every batch-norm layer in `modules` (they are computed
    from each rank's own batch, so data-parallel replicas drift apart without a sync)."""
    out = []
    for module in modules:
        for m in module.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.track_running_stats:
                out += [m.running_mean, m.running_var]
    return out


def broadcast_tensors(tensors: list[torch.Tensor]) -> None:
    """Rank 0's values of float `tensors` on every rank, in one collective that does not
    wait for the host (as DistributedDataParallel's ``broadcast_buffers``)."""
    if world_size() == 1 or not tensors:
        return
    flat = torch.cat([t.reshape(-1) for t in tensors])
    dist.broadcast(flat, src=0)
    offset = 0
    for t in tensors:
        t.copy_(flat[offset:offset + t.numel()].view_as(t))
        offset += t.numel()


def all_gather_object(obj: Any) -> list[Any]:
    """[obj of rank 0, obj of rank 1, ...] on every rank."""
    if world_size() == 1:
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def any_true(flag: bool, device: torch.device) -> bool:
    """True on every rank if `flag` is true on any rank."""
    if world_size() == 1:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()
