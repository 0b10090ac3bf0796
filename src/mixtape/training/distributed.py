"""Global-batch negatives under DDP, in one place.

Contrastive losses get their negatives from the batch. Computing the loss per GPU (a known bug of
popular SimCLR code) shrinks the negative set to the local batch, so adding GPUs silently changes
the task. Here every rank gathers the embeddings of all ranks, with gradients flowing back to the
rank that computed them, and builds the full global score matrix.

Gradient bookkeeping: every rank computes the same global loss L. The backward of the gather sums
the incoming gradients over ranks (so each rank's local embeddings get world_size · dL/de), and
DDP then averages parameter gradients over ranks, which divides by world_size again: the result is
exactly the single-process gradient of L over the global batch.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor


def _world() -> tuple[int, int]:
    """(rank, world_size) of the default process group, (0, 1) without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def world_size() -> int:
    """Processes in the default group (1 without one)."""
    return _world()[1]


class _GatherWithGrad(torch.autograd.Function):
    """all_gather forward; backward sums the gradients over ranks and keeps this rank's slice.

    Written on all_reduce (supported by every backend, gloo included) rather than on
    torch.distributed.nn's all_gather, whose backward needs all_to_all on non-NCCL backends.
    """

    @staticmethod
    def forward(ctx, local: Tensor) -> Tensor:
        rank, world = _world()
        parts = [torch.empty_like(local) for _ in range(world)]
        dist.all_gather(parts, local.contiguous())
        ctx.rank, ctx.rows = rank, local.shape[0]
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[ctx.rank * ctx.rows : (ctx.rank + 1) * ctx.rows]


def _check_equal_rows(local: Tensor, world: int) -> None:
    """all_gather needs one shape on every rank; a mismatch would otherwise hang or fail obscurely."""
    rows = torch.tensor([local.shape[0]], device=local.device)
    sizes = [torch.empty_like(rows) for _ in range(world)]
    dist.all_gather(sizes, rows)
    counts = [int(s.item()) for s in sizes]
    if len(set(counts)) != 1:
        raise RuntimeError(
            f"ranks hold batches of different sizes {counts}; every rank needs the same batch size to gather negatives"
        )


def gather_with_grad(local: Tensor, check_sizes: bool = False) -> Tensor:
    """Concatenate ``local`` [B, ...] from every rank in rank order → [world·B, ...], differentiable.

    Without a process group (or with one rank) it returns ``local`` itself, so the single-process
    path is exactly the plain loss.
    """
    _, world = _world()
    if world == 1:
        return local
    if check_sizes:
        _check_equal_rows(local, world)
    return _GatherWithGrad.apply(local)


def gather_no_grad(local: Tensor) -> Tensor:
    """Concatenate ``local`` from every rank in rank order (track indices, for the duplicate check)."""
    _, world = _world()
    if world == 1:
        return local
    parts = [torch.empty_like(local) for _ in range(world)]
    dist.all_gather(parts, local.contiguous())
    return torch.cat(parts, dim=0)
