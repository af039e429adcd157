"""Re-identification retrieval metrics (metrics.reid_evaluate): hand-computed cases, a brute-force reference."""

from __future__ import annotations

import math

import pytest
import torch

from protolab.metrics import reid_evaluate


def _one_query(distances, gallery_ids, gallery_cameras, *, query_id=1, query_camera=0, **kwargs):
    """reid_evaluate of a single query (identity ``query_id``, camera ``query_camera``)."""
    return reid_evaluate(torch.tensor([distances], dtype=torch.float64), torch.tensor([query_id]),
                         torch.tensor([query_camera]), torch.tensor(gallery_ids), torch.tensor(gallery_cameras),
                         **kwargs)


def test_perfect_ranking_scores_one():
    result = _one_query([0.1, 0.2, 0.3, 0.4], [1, 1, 2, 3], [1, 2, 1, 1])
    assert result["rank1"] == result["rank5"] == result["rank10"] == result["mAP"] == 1.0
    assert torch.equal(result["cmc"], torch.ones(4, dtype=torch.float64))
    assert (result["n_valid_queries"], result["n_excluded_queries"]) == (1, 0)


def test_matches_at_ranks_one_and_three():
    # ranked ids 1, 2, 1, 3: precision 1/1 at the first match, 2/3 at the second
    result = _one_query([0.1, 0.2, 0.3, 0.4], [1, 2, 1, 3], [1, 1, 1, 1])
    assert result["mAP"] == pytest.approx((1 + 2 / 3) / 2)
    assert result["rank1"] == 1.0


def test_single_match_at_rank_four():
    result = _one_query([0.4, 0.1, 0.2, 0.3], [1, 2, 3, 4], [1, 1, 1, 1])
    assert result["mAP"] == pytest.approx(1 / 4)
    assert (result["rank1"], result["rank5"]) == (0.0, 1.0)
    assert torch.equal(result["cmc"], torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=torch.float64))


def test_same_identity_same_camera_is_removed_but_same_camera_other_identity_stays():
    # ranked: id 1 cam 0 (removed: query's identity and camera), id 2 cam 0 (kept), id 1 cam 1 (match)
    result = _one_query([0.1, 0.2, 0.3], [1, 2, 1], [0, 0, 1], query_camera=0)
    assert result["mAP"] == pytest.approx(1 / 2)
    assert result["rank1"] == 0.0
    assert torch.equal(result["cmc"], torch.tensor([0.0, 1.0, 1.0], dtype=torch.float64))


def test_junk_images_are_ignored():
    # ranked: junk, id 2, id 1 → kept list id 2, id 1: the match is at rank 2, not 3
    result = _one_query([0.1, 0.2, 0.3], [-1, 2, 1], [1, 1, 1])
    assert result["mAP"] == pytest.approx(1 / 2)
    assert result["cmc"][:2].tolist() == [0.0, 1.0]


def test_junk_between_matches_does_not_count():
    # ranked: id 1, junk, junk, id 3, id 1 → kept 1, 3, 1: AP = (1 + 2/3) / 2
    result = _one_query([0.1, 0.2, 0.3, 0.4, 0.5], [1, -1, -1, 3, 1], [1, 1, 2, 1, 2])
    assert result["mAP"] == pytest.approx((1 + 2 / 3) / 2)


def test_distractors_stay_as_negatives():
    # ranked: distractor, distractor, id 1 → match at rank 3
    result = _one_query([0.1, 0.2, 0.3], [0, 0, 1], [1, 2, 1])
    assert result["mAP"] == pytest.approx(1 / 3)
    assert result["rank1"] == 0.0
    assert result["cmc"].tolist() == [0.0, 0.0, 1.0]


def test_ties_are_broken_by_gallery_index():
    # equal distances: the image earlier in the gallery ranks first
    negative_first = _one_query([0.5, 0.5], [2, 1], [1, 1])
    assert (negative_first["rank1"], negative_first["mAP"]) == (0.0, pytest.approx(1 / 2))
    match_first = _one_query([0.5, 0.5], [1, 2], [1, 1])
    assert (match_first["rank1"], match_first["mAP"]) == (1.0, 1.0)
    # a tie of three after a strictly closer negative: ranked 2 (0.1), then 3, 1, 1 in gallery order
    tied = _one_query([0.7, 0.7, 0.1, 0.7], [3, 1, 2, 1], [1, 1, 1, 1])
    assert tied["mAP"] == pytest.approx((1 / 3 + 2 / 4) / 2)


def test_query_without_valid_match_is_excluded_and_counted():
    distances = torch.tensor([[0.1, 0.2, 0.3],   # id 1 cam 0: match id 1 cam 1 at rank 2 → AP 1/2
                              [0.1, 0.2, 0.3],   # id 7: not in the gallery
                              [0.3, 0.2, 0.1],   # id 2 cam 0: its only gallery image is on camera 0
                              [0.2, 0.1, 0.3]])  # id 1 cam 2: match id 1 cam 1 at rank 1 → AP 1
    result = reid_evaluate(distances, torch.tensor([1, 7, 2, 1]), torch.tensor([0, 0, 0, 2]),
                           torch.tensor([2, 1, 5]), torch.tensor([0, 1, 0]))
    assert (result["n_valid_queries"], result["n_excluded_queries"]) == (2, 2)
    assert result["mAP"] == pytest.approx((1 / 2 + 1) / 2)  # excluded queries count neither 0 nor 1
    assert result["rank1"] == pytest.approx(1 / 2)
    assert result["ap"][0].item() == pytest.approx(1 / 2) and result["ap"][3].item() == 1.0
    assert math.isnan(result["ap"][1].item()) and math.isnan(result["ap"][2].item())


def test_cmc_is_cut_to_max_rank_and_gallery_size():
    distances = torch.rand(3, 20, generator=torch.Generator().manual_seed(0))
    ids, cameras = torch.arange(20) % 4, torch.zeros(20, dtype=torch.long)
    query = (torch.tensor([0, 1, 2]), torch.tensor([1, 1, 1]))
    assert reid_evaluate(distances, *query, ids, cameras, max_rank=7)["cmc"].shape == (7,)
    full = reid_evaluate(distances, *query, ids, cameras, max_rank=50)
    assert full["cmc"].shape == (20,) and full["cmc"][-1].item() == 1.0
    # rank-k does not depend on max_rank
    assert reid_evaluate(distances, *query, ids, cameras, max_rank=1)["rank10"] == full["rank10"]


def _brute_force(distances, query_ids, query_cameras, gallery_ids, gallery_cameras, max_rank):
    """The protocol query by query, in plain Python: stable ranking, removal, AP and first match."""
    aps, firsts = [], []
    for q, row in enumerate(distances.tolist()):
        order = sorted(range(len(row)), key=lambda g: (row[g], g))
        kept = [g for g in order if gallery_ids[g] != -1
                and not (gallery_ids[g] == query_ids[q] and gallery_cameras[g] == query_cameras[q])]
        relevant = [gallery_ids[g] == query_ids[q] for g in kept]
        if not any(relevant):
            aps.append(math.nan)
            continue
        hits, precisions = 0, []
        for k, is_match in enumerate(relevant, start=1):
            if is_match:
                hits += 1
                precisions.append(hits / k)
        aps.append(sum(precisions) / hits)
        firsts.append(relevant.index(True) + 1)
    n_ranks = min(max_rank, distances.shape[1])
    cmc = [sum(first <= r for first in firsts) / len(firsts) for r in range(1, n_ranks + 1)]
    return aps, firsts, cmc


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agrees_with_brute_force_loop(seed, dtype):
    generator = torch.Generator().manual_seed(seed)
    n_query, n_gallery, max_rank = 23, 61, 15
    # few distinct distances: many ties; ids −1 (junk) to 5 with 0 the distractors; three cameras
    distances = torch.randint(0, 6, (n_query, n_gallery), generator=generator).to(dtype) / 4
    query_ids = torch.randint(-1, 7, (n_query,), generator=generator)
    query_cameras = torch.randint(0, 3, (n_query,), generator=generator)
    gallery_ids = torch.randint(-1, 6, (n_gallery,), generator=generator)
    gallery_cameras = torch.randint(0, 3, (n_gallery,), generator=generator)
    aps, firsts, cmc = _brute_force(distances, query_ids.tolist(), query_cameras.tolist(), gallery_ids.tolist(),
                                    gallery_cameras.tolist(), max_rank)
    assert 0 < len(firsts) < n_query  # the data exercise exclusion
    for chunk_size in (1, 4, 7, 23, 100):
        result = reid_evaluate(distances, query_ids, query_cameras, gallery_ids, gallery_cameras,
                               max_rank=max_rank, chunk_size=chunk_size)
        assert (result["n_valid_queries"], result["n_excluded_queries"]) == (len(firsts), n_query - len(firsts))
        torch.testing.assert_close(result["ap"], torch.tensor(aps, dtype=torch.float64), equal_nan=True)
        assert result["mAP"] == pytest.approx(sum(a for a in aps if not math.isnan(a)) / len(firsts))
        torch.testing.assert_close(result["cmc"], torch.tensor(cmc, dtype=torch.float64))
        for k in (1, 5, 10):
            assert result[f"rank{k}"] == pytest.approx(sum(f <= k for f in firsts) / len(firsts))


def test_accepts_numpy_inputs():
    distances = torch.tensor([[0.1, 0.2, 0.3]])
    expected = reid_evaluate(distances, torch.tensor([1]), torch.tensor([0]), torch.tensor([2, 1, 1]),
                             torch.tensor([1, 1, 0]))
    result = reid_evaluate(distances.numpy(), [1], [0], torch.tensor([2, 1, 1]).numpy(), [1, 1, 0])
    assert result["mAP"] == expected["mAP"] == pytest.approx(1 / 2)


_GOOD = dict(query_ids=torch.tensor([1, 2]), query_cameras=torch.tensor([0, 0]),
             gallery_ids=torch.tensor([1, 2, 3]), gallery_cameras=torch.tensor([1, 1, 1]))


@pytest.mark.parametrize(("name", "bad", "message"), [
    ("query_ids", torch.tensor([1, 2, 3]), "query_ids must have shape \\(2,\\)"),
    ("query_cameras", torch.tensor([0]), "query_cameras must have shape \\(2,\\)"),
    ("gallery_ids", torch.tensor([1, 2]), "gallery_ids must have shape \\(3,\\)"),
    ("gallery_cameras", torch.tensor([[1, 1, 1]]), "gallery_cameras must have shape \\(3,\\)"),
    ("gallery_ids", torch.tensor([1.0, 2.0, 3.0]), "gallery_ids must hold integers"),
])
def test_mismatched_labels_raise(name, bad, message):
    with pytest.raises(ValueError, match=message):
        reid_evaluate(torch.zeros(2, 3), **{**_GOOD, name: bad})


def test_transposed_distances_raise():
    with pytest.raises(ValueError, match="query_ids must have shape \\(3,\\)"):
        reid_evaluate(torch.zeros(3, 2), **_GOOD)


@pytest.mark.parametrize(("distances", "kwargs", "message"), [
    (torch.zeros(6), {}, "distances must be a \\(Q, G\\) matrix"),
    (torch.tensor([[0.0, math.nan, 1.0], [0.0, 1.0, 2.0]]), {}, "NaN"),
    (torch.zeros(2, 3), {"max_rank": 0}, "max_rank must be an integer >= 1"),
    (torch.zeros(2, 3), {"chunk_size": 0}, "chunk_size must be an integer >= 1"),
])
def test_bad_distances_or_options_raise(distances, kwargs, message):
    with pytest.raises(ValueError, match=message):
        reid_evaluate(distances, **_GOOD, **kwargs)


def test_no_valid_query_raises():
    with pytest.raises(ValueError, match="no query has a valid match"):
        reid_evaluate(torch.zeros(2, 3), torch.tensor([7, 8]), torch.tensor([0, 0]), torch.tensor([1, 2, 3]),
                      torch.tensor([1, 1, 1]))
