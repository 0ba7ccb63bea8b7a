"""Batches that run out of GPU memory are halved and retried, not failed."""

import pytest
import torch

from openvid_assets.models.registry.runtime import in_batches_halving_on_oom


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


def test_concurrent_runs_on_a_four_gpu_machine_each_take_their_own_gpu(tmp_path):
    # Four run processes at once on a simulated 4-GPU machine (Dagster's gpu pool lets four start): four GPUs.
    import subprocess
    import sys

    # Each holds its claim until all four have claimed (a file each), so none ends before another claims.
    probe = (
        "import os, sys, time\nfrom openvid_assets.models.registry.runtime import claim_gpu\n"
        "print(claim_gpu(4, sys.argv[1]), claim_gpu(4, sys.argv[1]), flush=True)\n"
        "open(os.path.join(sys.argv[1], f'claimed-{os.getpid()}'), 'w').close()\n"
        "end = time.time() + 60\n"
        "while len([f for f in os.listdir(sys.argv[1]) if f.startswith('claimed-')]) < 4 and time.time() < end:\n"
        "    time.sleep(0.05)\n"
    )
    runs = [
        subprocess.Popen([sys.executable, "-c", probe, str(tmp_path)], stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    claims = [run.communicate(timeout=120)[0].split() for run in runs]
    assert all(first == again for first, again in claims), claims  # one process keeps one GPU
    assert sorted(int(first) for first, _ in claims) == [0, 1, 2, 3]
    # Once they have ended, their GPUs are free again (the kernel drops a dead process's locks).
    after = subprocess.run([sys.executable, "-c", probe, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert after.stdout.split()[0] == "0", after.stderr
