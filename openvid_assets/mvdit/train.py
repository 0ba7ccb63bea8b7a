"""Training loop for MVDiT on precomputed VAE latents and T5 caption features (a pure module: no Dagster).

    result = train(MVDiT(preset("XL/2")), dataset, TrainConfig(steps=72_000, checkpoint_dir="ckpt/mvdit"))

Items are ``(latent [C, T, H, W], caption features [L, D], mask [L])``. A map-style dataset (``__len__`` and
``__getitem__``) is read in a seeded random order, reshuffled every epoch; any other iterable is read in order
and iterated again when it runs out. Either way the position in the stream follows from the step number, which
is what lets a resumed run continue exactly where its checkpoint left off.

Checkpoints (``step-00002500.pt`` in ``checkpoint_dir``) hold the model, its EMA, the optimizer, the step and
every process's RNG state; each is written to a temporary file and renamed into place, so a crash never leaves a
partial checkpoint under a final name. With ``resume`` the newest one is loaded first.

Several GPUs: launch the script that calls ``train`` with torchrun, e.g.

    torchrun --standalone --nproc_per_node 8 train_mvdit.py

With WORLD_SIZE > 1 in the environment each process joins one process group (NCCL on GPU, Gloo on CPU), wraps
the model in DistributedDataParallel and trains on its own ``batch_size`` slice of every global batch; rank 0
writes the checkpoints. With WORLD_SIZE unset or 1 there is no DDP.
"""

import copy
import logging
import os
import re
import time
from collections.abc import Iterable, Iterator
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from itertools import islice
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from openvid_assets.models.registry.runtime import pick_device
from openvid_assets.mvdit.diffusion import GaussianDiffusion
from openvid_assets.mvdit.model import MVDiT
from openvid_assets.store.files import atomic_path

log = logging.getLogger(__name__)

Item = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # latent [C, T, H, W], caption [L, D], mask [L]
CHECKPOINT_NAME = re.compile(r"step-(\d{8})\.pt")


@dataclass
class TrainConfig:
    steps: int  # train until this global step
    batch_size: int = 1  # per process
    lr: float = 2e-5
    grad_clip: float = 1.0
    ema_decay: float = 0.9999
    checkpoint_dir: str | Path | None = None
    checkpoint_every: int = 2500  # also saved after the last step
    resume: bool = True  # continue from the newest checkpoint in checkpoint_dir, if any
    seed: int = 0
    shuffle: bool = True  # map-style datasets only
    diffusion_steps: int = 1000
    grad_checkpointing: bool | None = None  # None: as the model is configured
    device: str = "auto"
    log_every: int = 50


@dataclass
class TrainResult:
    losses: list[float] = field(default_factory=list)  # each step's loss, averaged over processes
    step_times: list[float] = field(default_factory=list)  # seconds per step, data loading included
    start_step: int = 0  # the step resumed from (0 for a fresh run); losses[i] belongs to step start_step + i + 1
    checkpoints: list[Path] = field(default_factory=list)


# -- data -----------------------------------------------------------------------------------------------------


def is_map_style(data) -> bool:
    return hasattr(data, "__len__") and hasattr(data, "__getitem__")


def epoch_order(size: int, seed: int, epoch: int, shuffle: bool) -> list[int]:
    if not shuffle:
        return list(range(size))
    return torch.randperm(size, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch)).tolist()


def cycle(data: Iterable[Item]) -> Iterator[Item]:
    while True:
        empty = True
        for item in data:
            empty = False
            yield item
        if empty:  # also what a one-shot iterator gives on its second pass
            raise ValueError("the training data yielded no items (pass a re-iterable object, not an iterator)")


def process_batches(
    data, batch_size: int, world: int, rank: int, start_batch: int, seed: int = 0, shuffle: bool = True
) -> Iterator[list[Item]]:
    """This process's share of global batches ``start_batch``, ``start_batch + 1``, ...: global batch k is stream
    positions [k*G, (k+1)*G) with G = batch_size * world, and rank r takes the r-th ``batch_size`` of them.
    A map-style dataset is indexed directly; an iterable is read whole by every process, which keeps its share."""
    global_size = batch_size * world
    mine = slice(rank * batch_size, (rank + 1) * batch_size)
    if is_map_style(data):
        size, cached = len(data), {}
        if size == 0:
            raise ValueError("the training data is empty")
        position = start_batch * global_size
        while True:
            items = []
            for p in range(position, position + global_size)[mine]:
                epoch, offset = divmod(p, size)
                if epoch not in cached:
                    cached = {epoch: epoch_order(size, seed, epoch, shuffle)}
                items.append(data[cached[epoch][offset]])
            yield items
            position += global_size
    else:
        stream = cycle(data)
        for _ in islice(stream, start_batch * global_size):  # what the checkpointed steps consumed
            pass
        while True:
            yield list(islice(stream, global_size))[mine]


def collate(items: list[Item], device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    latents, captions, masks = zip(*items)
    return (
        torch.stack(latents).to(device, torch.float32),
        torch.stack(captions).to(device, torch.float32),
        torch.stack(masks).to(device).bool(),
    )


# -- checkpoints ----------------------------------------------------------------------------------------------


def checkpoint_path(directory: str | Path, step: int) -> Path:
    return Path(directory) / f"step-{step:08d}.pt"


def latest_checkpoint(directory: str | Path) -> Path | None:
    found = [p for p in Path(directory).glob("step-*.pt") if CHECKPOINT_NAME.fullmatch(p.name)]
    return max(found, key=lambda p: int(CHECKPOINT_NAME.fullmatch(p.name).group(1)), default=None)


def save_atomically(payload: dict, path: Path) -> None:
    """A checkpoint is whole or absent: written beside ``path`` and renamed into place."""
    with atomic_path(path) as temporary:
        torch.save(payload, temporary)


def rng_state(device: torch.device) -> dict:
    return {"cpu": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}


def restore_rng_state(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["cpu"])
    if device.type == "cuda" and state["cuda"] is not None:
        torch.cuda.set_rng_state(state["cuda"], device)


# -- loop -----------------------------------------------------------------------------------------------------


def setup_distributed(requested_device: str) -> tuple[int, int, torch.device, bool]:
    """(rank, world size, device, whether this call created the process group)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, pick_device(requested_device), False
    cuda = torch.cuda.is_available() and requested_device in ("auto", "cuda")
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0"))) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    created = not dist.is_initialized()
    if created:
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    return dist.get_rank(), world, device, created


@torch.no_grad()
def update_ema(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    for averaged, current in zip(ema.parameters(), model.parameters()):
        averaged.lerp_(current, 1.0 - decay)


def train(model: MVDiT, data, config: TrainConfig, diffusion: GaussianDiffusion | None = None) -> TrainResult:
    """Train ``model`` in place up to ``config.steps`` (Adam, gradient clipping, EMA, bf16 autocast on GPU,
    10% of captions replaced by the learned null caption as configured in the model)."""
    rank, world, device, created_group = setup_distributed(config.device)
    diffusion = diffusion or GaussianDiffusion.linear(config.diffusion_steps, learn_sigma=model.config.learn_sigma)
    if config.grad_checkpointing is not None:
        model.grad_checkpointing = config.grad_checkpointing
    model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    result = TrainResult()

    resume_from = latest_checkpoint(config.checkpoint_dir) if config.resume and config.checkpoint_dir else None
    saved = torch.load(resume_from, map_location="cpu", weights_only=True) if resume_from else None
    if saved:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        result.start_step = saved["step"]
    net = model
    if world > 1:  # the last block's text feed-forward feeds nothing, so DDP must expect unused parameters
        net = DistributedDataParallel(
            model, device_ids=[device] if device.type == "cuda" else None, find_unused_parameters=True
        )
    ema = copy.deepcopy(model).eval().requires_grad_(False)  # after DDP: every rank holds rank 0's weights
    if saved:
        ema.load_state_dict(saved["ema"])
        if len(saved["rng"]) == world:
            restore_rng_state(saved["rng"][rank], device)
        else:  # a different number of processes cannot replay the same random stream
            log.warning(
                "resuming %d processes from a %d-process checkpoint: fresh random state", world, len(saved["rng"])
            )
            torch.manual_seed(config.seed + rank + result.start_step)
        log.info("resumed from %s at step %d", resume_from, result.start_step)
    else:
        torch.manual_seed(config.seed + rank)

    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if device.type == "cuda" else nullcontext
    batches = process_batches(data, config.batch_size, world, rank, result.start_step, config.seed, config.shuffle)
    for step in range(result.start_step + 1, config.steps + 1):
        started = time.perf_counter()
        latents, captions, mask = collate(next(batches), device)

        def denoiser(x_t: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
            with autocast():
                return net(x_t, timesteps, captions, mask)

        t = torch.randint(0, diffusion.num_timesteps, (latents.shape[0],), device=device)
        loss = diffusion.training_losses(denoiser, latents, t)["loss"].mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        update_ema(ema, model, config.ema_decay)

        reported = loss.detach()
        if world > 1:
            dist.all_reduce(reported)
            reported = reported / world
        result.losses.append(reported.item())  # .item() waits for the step, so the time below is honest
        result.step_times.append(time.perf_counter() - started)
        if rank == 0 and config.log_every and step % config.log_every == 0:
            log.info("step %d loss %.4f (%.3f s/step)", step, result.losses[-1], result.step_times[-1])
        if config.checkpoint_dir and (step % config.checkpoint_every == 0 or step == config.steps):
            result.checkpoints.append(save_checkpoint(config, step, model, ema, optimizer, rank, world, device))

    if created_group:
        dist.destroy_process_group()
    return result


def save_checkpoint(
    config: TrainConfig,
    step: int,
    model: MVDiT,
    ema: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    rank: int,
    world: int,
    device: torch.device,
) -> Path:
    """Collective under DDP: every rank contributes its RNG state; rank 0 writes the file."""
    states = [rng_state(device)]
    if world > 1:
        states = [None] * world
        dist.all_gather_object(states, rng_state(device))
    path = checkpoint_path(config.checkpoint_dir, step)
    if rank == 0:
        settings = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()}  # loadable safely
        payload = {
            "model": model.state_dict(),
            "ema": ema.state_dict(),
            "optimizer": optimizer.state_dict(),
            "step": step,
            "rng": states,
            "model_config": asdict(model.config),
            "train_config": settings,
        }
        save_atomically(payload, path)
    if world > 1:
        dist.barrier()
    return path
