"""Global-batch negatives: identity on one process, the single-process gradient on two (gloo)."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.multiprocessing as mp
from torch import nn

from mixtape.training.distributed import gather_no_grad, gather_with_grad

BATCH, DIM = 6, 5


def _loss(anchors: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
    scores = anchors @ positives.T
    return nn.functional.cross_entropy(scores, torch.arange(scores.shape[0]))


def _inputs() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(2 * BATCH, DIM, generator=g), torch.randn(2 * BATCH, DIM, generator=g)


def _model() -> nn.Linear:
    torch.manual_seed(0)
    return nn.Linear(DIM, 3)


def test_single_process_gather_is_the_tensor_itself() -> None:
    x = torch.randn(4, 3, requires_grad=True)
    assert gather_with_grad(x) is x
    assert gather_no_grad(x) is x


def _rank_main(rank: int, init_file: str, out: str) -> None:
    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    xa, xp = _inputs()
    model = _model()
    rows = slice(rank * BATCH, (rank + 1) * BATCH)
    anchors = gather_with_grad(model(xa[rows]), check_sizes=True)
    positives = gather_with_grad(model(xp[rows]))
    ids = gather_no_grad(torch.arange(BATCH) + rank * BATCH)
    _loss(anchors, positives).backward()
    for p in model.parameters():  # what DDP does: average the parameter gradients over ranks
        torch.distributed.all_reduce(p.grad)
        p.grad /= 2
    if rank == 0:
        torch.save({"ids": ids, "grads": [p.grad for p in model.parameters()]}, out)
    torch.distributed.destroy_process_group()


def test_two_ranks_give_the_single_process_gradient_of_the_global_batch(tmp_path: Path) -> None:
    out = tmp_path / "grads.pt"
    mp.spawn(_rank_main, args=(str(tmp_path / "init"), str(out)), nprocs=2, join=True)
    got = torch.load(out)

    xa, xp = _inputs()
    model = _model()
    _loss(model(xa), model(xp)).backward()
    assert torch.equal(got["ids"], torch.arange(2 * BATCH))
    for g, p in zip(got["grads"], model.parameters(), strict=True):
        torch.testing.assert_close(g, p.grad, rtol=1e-5, atol=1e-6)
