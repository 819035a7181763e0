"""The audit's pixel distance: exact k nearest neighbours under the ℓ2 that forgives a
translation of the query (models.metrics.neighbours.nearest_shifted)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.metrics.neighbours import _translate, nearest, nearest_shifted, paired


def brute_force(queries: torch.Tensor, pool: torch.Tensor, shift: int) -> np.ndarray:
    """(n, m) min over the (2 shift + 1)² translations of the query, float64."""
    flat = pool.reshape(len(pool), -1).double()
    best = None
    for dy in range(-shift, shift + 1):
        for dx in range(-shift, shift + 1):
            moved = _translate(queries, dy, dx).reshape(len(queries), -1).double()
            d = torch.cdist(moved, flat)
            best = d if best is None else torch.minimum(best, d)
    return best.numpy()


def uint8_images(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 2, 6, 5), generator=g, dtype=torch.uint8).float() / 255


@pytest.mark.parametrize("shift", [0, 1, 2])
@pytest.mark.parametrize("offset", [0.0, 1e-4], ids=["uint8-int8-products", "float32"])
def test_matches_a_brute_force_of_the_definition(shift, offset):
    queries, pool = uint8_images(23, 0) + offset, uint8_images(70, 1)
    expected = np.sort(brute_force(queries, pool, shift), axis=1)[:, :4]
    found = nearest_shifted(queries, pool, 4, shift=shift, block=8, chunk=16)
    np.testing.assert_allclose(found.distances, expected, atol=1e-4)
    again = np.take_along_axis(brute_force(queries, pool, shift), found.indices, axis=1)
    np.testing.assert_allclose(again, expected, atol=1e-4)


def test_a_one_pixel_shift_is_at_distance_zero_from_its_original():
    pool = torch.nn.functional.pad(uint8_images(10, 2), (1, 1, 1, 1))
    moved = _translate(pool, 1, -1)
    found = nearest_shifted(moved, pool, 1)
    assert (found.indices[:, 0] == np.arange(10)).all() and (found.distances == 0).all()


def test_no_shift_is_the_plain_l2_of_nearest():
    queries, pool = uint8_images(9, 3), uint8_images(40, 4)
    plain = nearest(queries.reshape(9, -1), pool.reshape(40, -1), 5)
    shifted = nearest_shifted(queries, pool, 5, shift=0)
    np.testing.assert_allclose(shifted.distances, plain.distances, atol=1e-5)
    assert (shifted.indices == plain.indices).all()


@pytest.mark.parametrize("shift", [0, 1])
def test_paired_distances_are_those_of_the_search_to_the_last_bit(shift):
    queries, pool = uint8_images(12, 5), uint8_images(50, 6)
    found = nearest_shifted(queries, pool, 6, shift=shift)
    assert (paired(queries, pool, found.indices, shift=shift) == found.distances).all()


def test_paired_distances_of_feature_rows_are_the_plain_l2():
    queries, pool = torch.randn(10, 7), torch.randn(30, 7)
    found = nearest(queries, pool, 3)
    np.testing.assert_allclose(paired(queries, pool, found.indices), found.distances, atol=1e-5)
