"""Batches that run out of GPU memory are halved and retried, not failed."""

import pytest
import torch

from openvid_assets.models.runtime import in_batches_halving_on_oom


class FitsAtMost:
    """A stand-in 'model' that raises CUDA's out-of-memory error for batches above a size."""

    def __init__(self, limit: int):
        self.limit, self.calls = limit, []

    def __call__(self, batch):
        self.calls.append(len(batch))
        if len(batch) > self.limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return [x * 10 for x in batch]


def test_an_oom_batch_is_halved_and_every_item_still_comes_back_in_order():
    model, sizes = FitsAtMost(3), []
    out = in_batches_halving_on_oom(list(range(10)), 8, model, on_halve=sizes.append)
    assert out == [x * 10 for x in range(10)]
    assert sizes == [4, 2]  # 8 -> 4 -> 2, then 2 is kept for the rest
    assert model.calls == [8, 4, 2, 2, 2, 2, 2]


def test_a_single_item_that_does_not_fit_raises_for_the_retry_policy():
    with pytest.raises(torch.OutOfMemoryError):
        in_batches_halving_on_oom([1, 2], 2, FitsAtMost(0))


def test_other_errors_are_not_swallowed():
    def broken(batch):
        raise ValueError("bad input")

    with pytest.raises(ValueError):
        in_batches_halving_on_oom([1], 4, broken)
