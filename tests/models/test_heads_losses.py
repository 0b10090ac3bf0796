"""Projection head, similarities, the contrastive loss and the distinct-track batch rule."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mixtape.errors import MixtapeError
from mixtape.models import (
    BilinearSimilarity,
    CosineSimilarity,
    DuplicateTrackError,
    ProjectionHead,
    build_similarity,
    check_distinct_tracks,
    contrastive_loss,
    in_batch_accuracy,
)

SCORES = [[2.0, 0.5, -1.0], [0.0, 1.0, 3.0], [1.0, -2.0, 0.5]]


def row_ce(rows: list[list[float]]) -> float:
    """Mean over rows of -log softmax(row)[i], written out with math.exp/log."""
    total = 0.0
    for i, row in enumerate(rows):
        total += -(row[i] - math.log(sum(math.exp(v) for v in row)))
    return total / len(rows)


def test_projection_head_is_dense_layernorm_tanh() -> None:
    head = ProjectionHead(1280, 512)
    out = head(torch.randn(4, 1280) * 10)
    assert out.shape == (4, 512)
    assert out.abs().max() <= 1.0
    kinds = [type(m).__name__ for m in head.net]
    assert kinds == ["Linear", "LayerNorm", "Tanh"]


def test_bilinear_scores_are_a_w_p_transposed() -> None:
    torch.manual_seed(0)
    sim = BilinearSimilarity(dim=6)
    a, p = torch.randn(4, 6), torch.randn(4, 6)
    expected = a @ sim.weight @ p.T
    torch.testing.assert_close(sim(a, p), expected)
    # One entry by hand: sum_ij a_0i W_ij p_2j.
    w = sim.weight.detach()
    by_hand = sum(a[0, i] * w[i, j] * p[2, j] for i in range(6) for j in range(6))
    assert sim(a, p)[0, 2].item() == pytest.approx(by_hand.item(), rel=1e-5)


def test_cosine_scores_are_cosine_over_temperature() -> None:
    a = torch.tensor([[3.0, 4.0], [1.0, 0.0]])
    p = torch.tensor([[6.0, 8.0], [0.0, 2.0]])
    scores = CosineSimilarity(temperature=0.5)(a, p)
    expected = torch.tensor([[1.0, 0.8], [0.6, 0.0]]) / 0.5
    torch.testing.assert_close(scores, expected)
    sharper = CosineSimilarity(temperature=0.05)(a, p)
    torch.testing.assert_close(sharper, scores * 10)


def test_build_similarity_by_name() -> None:
    assert isinstance(build_similarity("bilinear", dim=8), BilinearSimilarity)
    cos = build_similarity("cosine", dim=8, temperature=0.2)
    assert isinstance(cos, CosineSimilarity) and cos.temperature == 0.2
    with pytest.raises(MixtapeError, match="bilinear, cosine"):
        build_similarity("dot", dim=8)
    with pytest.raises(MixtapeError, match="temperature"):
        build_similarity("cosine", temperature=0.0)


def test_similarity_refuses_mismatched_widths() -> None:
    with pytest.raises(MixtapeError, match=r"\[4, 5\]"):
        BilinearSimilarity(dim=6)(torch.randn(4, 5), torch.randn(4, 5))


def test_loss_equals_hand_computed_cross_entropy() -> None:
    scores = torch.tensor(SCORES)
    expected = row_ce(SCORES)
    assert contrastive_loss(scores).item() == pytest.approx(expected, rel=1e-6)


def test_symmetric_loss_averages_rows_and_columns() -> None:
    columns = [list(col) for col in zip(*SCORES, strict=True)]
    expected = 0.5 * (row_ce(SCORES) + row_ce(columns))
    got = contrastive_loss(torch.tensor(SCORES), symmetric=True).item()
    assert got == pytest.approx(expected, rel=1e-6)
    assert got != pytest.approx(row_ce(SCORES))


def test_loss_is_low_when_pairs_stand_out_and_log_b_when_uniform() -> None:
    assert contrastive_loss(torch.zeros(5, 5)).item() == pytest.approx(math.log(5))
    assert contrastive_loss(torch.eye(5) * 50).item() < 1e-6


def test_loss_is_float32_under_bfloat16_scores() -> None:
    loss = contrastive_loss(torch.tensor(SCORES, dtype=torch.bfloat16))
    assert loss.dtype == torch.float32


def test_loss_gradient_reaches_the_model() -> None:
    torch.manual_seed(0)
    head, sim = ProjectionHead(16, 8), BilinearSimilarity(8)
    emb = torch.randn(4, 16, requires_grad=True)
    loss = contrastive_loss(sim(head(emb), head(emb + 0.1)), symmetric=True)
    loss.backward()
    assert emb.grad is not None and emb.grad.abs().sum() > 0
    assert sim.weight.grad is not None and sim.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("shape", [(3, 4), (1, 1), (3,)])
def test_loss_refuses_non_square_or_single_pair(shape: tuple[int, ...]) -> None:
    with pytest.raises(MixtapeError):
        contrastive_loss(torch.zeros(*shape))


def test_in_batch_accuracy_counts_rows_won_by_their_positive() -> None:
    # Only row 0 peaks on its own diagonal entry (row 1 peaks at column 2, row 2 at column 0).
    assert in_batch_accuracy(torch.tensor(SCORES)).item() == pytest.approx(1 / 3)


def test_batch_with_duplicated_track_is_refused_and_named() -> None:
    with pytest.raises(DuplicateTrackError) as info:
        check_distinct_tracks([10, 11, 12], [20, 10, 21], allow_self_pairs=False)
    assert "10" in str(info.value)
    assert info.value.track_ids == [10]
    assert isinstance(info.value, MixtapeError)


def test_duplicated_string_ids_are_named() -> None:
    with pytest.raises(DuplicateTrackError, match="'trk_b'"):
        check_distinct_tracks(np.array(["trk_a", "trk_b"]), np.array(["trk_b", "trk_c"]), allow_self_pairs=False)


def test_self_pairs_are_allowed_only_under_the_self_strategy() -> None:
    anchors = torch.tensor([1, 2, 3])
    check_distinct_tracks(anchors, anchors.clone(), allow_self_pairs=True)
    with pytest.raises(DuplicateTrackError, match="self"):
        check_distinct_tracks(anchors, anchors.clone(), allow_self_pairs=False)
    # Even under `self`, a track that is another row's anchor is still a duplicate.
    with pytest.raises(DuplicateTrackError, match="2"):
        check_distinct_tracks([1, 2, 3], [1, 2, 2], allow_self_pairs=True)


def test_distinct_batch_passes_and_length_mismatch_is_refused() -> None:
    check_distinct_tracks([0, 1, 2], [3, 4, 5], allow_self_pairs=False)
    with pytest.raises(DuplicateTrackError, match="3 anchors but 2 positives"):
        check_distinct_tracks([0, 1, 2], [3, 4], allow_self_pairs=False)


@settings(max_examples=60, deadline=None)
@given(
    pairs=st.lists(st.tuples(st.integers(0, 12), st.integers(0, 12)), min_size=1, max_size=8),
    allow_self=st.booleans(),
)
def test_distinct_check_agrees_with_a_plain_count(pairs: list[tuple[int, int]], allow_self: bool) -> None:
    occurrences: list[int] = []
    for a, p in pairs:
        occurrences += [a] if (allow_self and a == p) else [a, p]
    expected_ok = len(occurrences) == len(set(occurrences))
    anchors, positives = zip(*pairs, strict=True)
    try:
        check_distinct_tracks(list(anchors), list(positives), allow_self_pairs=allow_self)
        ok = True
    except DuplicateTrackError:
        ok = False
    assert ok == expected_ok


def test_cola_stack_learns_to_match_noisy_views_and_runs_under_bf16_autocast() -> None:
    from mixtape.models import Encoder

    torch.manual_seed(0)
    encoder, head, sim = Encoder("small", channels=(8, 16, 32)), ProjectionHead(32, 64), BilinearSimilarity(64)
    params = [*encoder.parameters(), *head.parameters(), *sim.parameters()]
    opt = torch.optim.Adam(params, lr=3e-3)
    anchors = torch.randn(8, 96, 64) + 2.0
    positives = anchors + 0.3 * torch.randn_like(anchors)

    def step() -> float:
        opt.zero_grad()
        loss = contrastive_loss(sim(head(encoder(anchors)), head(encoder(positives))), symmetric=True)
        loss.backward()
        opt.step()
        return loss.item()

    first = step()
    for _ in range(25):
        last = step()
    assert last < 0.5 * first
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = contrastive_loss(sim(head(encoder(anchors)), head(encoder(positives))))
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
