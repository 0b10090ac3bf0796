"""CPU time of one pre-training step of the `small` encoder: the numbers behind the demo's budget.

Forward + backward + Adam of Encoder → ProjectionHead → similarity → contrastive loss on random
log-mel patches, one torch thread, median of ``--steps`` timed steps after warm-up. Run it with the
current package, and with an older checkout on PYTHONPATH to compare (docs/evidence.md does, with the
commit before channels-last and the frozen input affine):

    python benchmarks/study/step_time.py
    PYTHONPATH=/path/to/old/checkout/src python benchmarks/study/step_time.py

Prints a Markdown table and ``RESULT full_ms=... half_ms=...``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch


def step_ms(channels: list[int] | None, batch: int, steps: int, similarity: str) -> float:
    from mixtape.models import Encoder, ProjectionHead, build_similarity, contrastive_loss

    torch.manual_seed(0)
    enc = Encoder("small", 96, **({"channels": channels} if channels else {}))
    head = ProjectionHead(enc.embedding_dim, 512)
    sim = build_similarity(similarity, 512)
    params = [p for m in (enc, head, sim) for p in m.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=1e-3)
    a, p = torch.randn(batch, 96, 128), torch.randn(batch, 96, 128)
    times = []
    for i in range(steps + 3):
        t0 = time.perf_counter()
        loss = contrastive_loss(sim(head(enc(a)), head(enc(p))))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= 3:
            times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=32, help="pairs per step (the demo's 32: 64 patches)")
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--similarity", default="cosine")
    args = ap.parse_args()
    torch.set_num_threads(1)
    full = step_ms(None, args.batch, args.steps, args.similarity)
    half = step_ms([8, 16, 32, 64, 128], args.batch, args.steps, args.similarity)
    print("| backbone | ms / step |\n|---|---:|")
    print(f"| small, channels 16–256 (default) | {full:.0f} |\n| small, channels 8–128 (the demo's) | {half:.0f} |")
    print(f"RESULT full_ms={full:.1f} half_ms={half:.1f} batch={args.batch} threads=1")


if __name__ == "__main__":
    main()
