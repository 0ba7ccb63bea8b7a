"""Training: a tiny model overfits, the loop lowers the loss, EMA follows its formula, checkpoints are atomic, and
resuming (single process and under torchrun/DDP) replays exactly the losses of an uninterrupted run."""

import json
import shutil
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from openvid_assets.mvdit.diffusion import GaussianDiffusion
from openvid_assets.mvdit.train import TrainConfig, latest_checkpoint, save_atomically, train
from openvid_assets_tests.mvdit.helpers import TINY, inputs, tiny_model

DIFFUSION = GaussianDiffusion.linear()
NO_DROPOUT = replace(TINY, caption_dropout=0.0)


def items(count: int, config=TINY) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Latents in [-1, 1] with their captions and masks, one per seed."""
    out = []
    for seed in range(count):
        batch = inputs(batch=2, config=config, seed=seed)
        out.append((batch["x"][1].clamp(-1, 1), batch["y"][1], batch["mask"][1]))  # row 1 has caption padding
    return out


class Stream:
    """An iterable without length: read in order, iterated again when exhausted."""

    def __init__(self, data):
        self.data = data

    def __iter__(self):
        return iter(self.data)


def probe_mse(model, item, seed: int = 5) -> float:
    """ε-MSE of one item at fixed noise and timesteps: a loss that does not move with the training draws."""
    x0, caption, mask = item
    t = torch.tensor([30, 150, 300, 500, 700, 900])
    noise = torch.randn(len(t), *x0.shape, generator=torch.Generator().manual_seed(seed))
    model.eval()
    with torch.no_grad():
        denoiser = lambda x, s: model(x, s, caption.expand(len(t), -1, -1), mask.expand(len(t), -1))  # noqa: E731
        return DIFFUSION.training_losses(denoiser, x0.expand(len(t), *x0.shape), t, noise)["mse"].mean().item()


def test_a_tiny_model_overfits_one_batch():
    model = tiny_model(randomized=False, config=NO_DROPOUT).train()
    batch = inputs(batch=4, config=NO_DROPOUT)
    x0, noise = batch["x"].clamp(-1, 1), torch.randn_like(batch["x"])
    t = torch.tensor([10, 250, 500, 900])
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(60):
        denoiser = lambda x, s: model(x, s, batch["y"], batch["mask"])  # noqa: E731
        loss = DIFFUSION.training_losses(denoiser, x0, t, noise)["loss"].mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 5


def test_training_lowers_the_loss_and_reports_each_step():
    model = tiny_model(randomized=False, config=NO_DROPOUT)
    item = items(1, NO_DROPOUT)[0]
    before = probe_mse(model, item)
    result = train(model, [item], TrainConfig(steps=80, batch_size=4, lr=3e-3, log_every=0))
    assert probe_mse(model, item) < before / 2
    assert len(result.losses) == len(result.step_times) == 80 and result.start_step == 0
    assert all(t > 0 for t in result.step_times) and result.checkpoints == []


def test_ema_follows_its_update_rule(tmp_path):
    model = tiny_model(randomized=False)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    decay = 0.9
    train(model, items(2), TrainConfig(steps=1, batch_size=2, lr=1e-2, ema_decay=decay, checkpoint_dir=tmp_path))
    saved = torch.load(tmp_path / "step-00000001.pt", weights_only=True)
    name = "final_layer.linear.weight"  # the one layer a first step moves: everything else waits behind it
    assert not torch.equal(saved["model"][name], initial[name])
    assert torch.allclose(saved["ema"][name], decay * initial[name] + (1 - decay) * saved["model"][name], atol=1e-7)


@pytest.mark.parametrize("kind", ["map-style", "iterable"])
def test_resuming_replays_the_losses_of_an_uninterrupted_run(tmp_path, kind):
    data = items(5) if kind == "map-style" else Stream(items(5))  # 5 items, 2 per step: epochs end mid-batch
    config = TrainConfig(steps=5, batch_size=2, lr=1e-3, checkpoint_every=2, checkpoint_dir=tmp_path / "a", log_every=0)
    uninterrupted = train(tiny_model(seed=0, randomized=False), data, config)  # caption dropout 0.1 draws too
    assert [p.name for p in uninterrupted.checkpoints] == ["step-00000002.pt", "step-00000004.pt", "step-00000005.pt"]

    (tmp_path / "b").mkdir()
    shutil.copy(tmp_path / "a" / "step-00000002.pt", tmp_path / "b")
    resumed = train(tiny_model(seed=1), data, replace(config, checkpoint_dir=tmp_path / "b"))  # other weights
    assert resumed.start_step == 2 and resumed.losses == uninterrupted.losses[2:]
    final_a = torch.load(tmp_path / "a" / "step-00000005.pt", weights_only=True)
    final_b = torch.load(tmp_path / "b" / "step-00000005.pt", weights_only=True)
    for part in ("model", "ema"):
        assert all(torch.equal(final_a[part][k], final_b[part][k]) for k in final_a[part])

    # The replay rests on the restored random state: a checkpoint with another one gives other losses.
    state = torch.load(tmp_path / "a" / "step-00000002.pt", weights_only=True)
    state["rng"][0]["cpu"] = torch.Generator().manual_seed(123).get_state()
    (tmp_path / "c").mkdir()
    torch.save(state, tmp_path / "c" / "step-00000002.pt")
    disturbed = train(tiny_model(), data, replace(config, checkpoint_dir=tmp_path / "c"))
    assert disturbed.start_step == 2 and disturbed.losses != uninterrupted.losses[2:]


def test_checkpoints_are_atomic_and_the_newest_complete_one_is_resumed(tmp_path, monkeypatch):
    config = TrainConfig(steps=3, batch_size=1, checkpoint_every=2, checkpoint_dir=tmp_path, log_every=0)
    train(tiny_model(randomized=False), items(2), config)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-00000002.pt", "step-00000003.pt"]

    (tmp_path / ".step-00000009.pt.tmp-123").write_bytes(b"partial")  # a crash's leftover is never a checkpoint
    assert latest_checkpoint(tmp_path).name == "step-00000003.pt"
    again = train(tiny_model(randomized=False), items(2), config)
    assert again.start_step == 3 and again.losses == []

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        save_atomically({"step": 4}, tmp_path / "step-00000004.pt")
    assert not (tmp_path / "step-00000004.pt").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".step-00000004")]


DDP_SCRIPT = """
import json, shutil, sys
from pathlib import Path
import torch.distributed as dist
from openvid_assets.mvdit.train import TrainConfig, train
from openvid_assets_tests.mvdit.test_train import items
from openvid_assets_tests.mvdit.helpers import tiny_model

root = Path(sys.argv[1])
dist.init_process_group("gloo")
config = TrainConfig(steps=3, batch_size=1, lr=1e-3, checkpoint_every=2, checkpoint_dir=root / "a", log_every=0)
first = train(tiny_model(randomized=False), items(3), config)
if dist.get_rank() == 0:
    (root / "b").mkdir()
    shutil.copy(root / "a" / "step-00000002.pt", root / "b")
dist.barrier()
second = train(tiny_model(seed=1), items(3), TrainConfig(**{**config.__dict__, "checkpoint_dir": root / "b"}))
if dist.get_rank() == 0:
    print("RESULT", json.dumps({"first": first.losses, "second": second.losses, "start": second.start_step}))
dist.destroy_process_group()
"""


def test_ddp_under_torchrun_trains_checkpoints_and_resumes(tmp_path):
    script = tmp_path / "ddp_train.py"
    script.write_text(textwrap.dedent(DDP_SCRIPT))
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(script),
        str(tmp_path),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=Path(__file__).parents[2])
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.split("RESULT", 1)[1])
    assert len(result["first"]) == 3 and result["start"] == 2 and result["second"] == result["first"][2:]
    saved = torch.load(tmp_path / "a" / "step-00000003.pt", weights_only=True)
    assert len(saved["rng"]) == 2  # both processes' random states
    assert not torch.equal(saved["rng"][0]["cpu"], saved["rng"][1]["cpu"])  # each rank draws its own noise
