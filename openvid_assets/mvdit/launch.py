"""Run one MVDiT training job described by a JSON spec, in this process or in several under torchrun.

The ``mvdit_checkpoint`` asset writes the spec and, on a machine with more than
one GPU (or when asked for several processes), launches

    python -m torch.distributed.run --standalone --nproc_per_node <N> -m openvid_assets.mvdit.launch spec.json

Each process reads the same spec; ``train`` joins them into one DDP group, and
rank 0 writes the checkpoints and the result JSON the asset reads back. The same
command works by hand for a long run outside Dagster.
"""

import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from openvid_assets.mvdit.data import LatentClips
from openvid_assets.mvdit.model import MVDiT, MVDiTConfig, init_from_pixart, load_weights, released_state_dict
from openvid_assets.mvdit.train import TrainConfig, TrainResult, latest_checkpoint, train
from openvid_assets.store.files import open_filesystem


@dataclass
class TrainingSpec:
    data_root: str
    latent_paths: list[str]  # relative to the data root
    crop: int  # latent pixels of the square training window
    model: dict[str, Any]  # MVDiTConfig fields
    train: dict[str, Any]  # TrainConfig fields
    init_from: str = ""  # a released MVDiT or PixArt-α checkpoint, used when there is nothing to resume

    def write(self, path: Path) -> Path:
        path.write_text(json.dumps(asdict(self), default=str))
        return path


def new_model(config: MVDiTConfig, init_from: str = "") -> MVDiT:
    """A fresh model; ``init_from`` a released MVDiT checkpoint (loaded whole) or a PixArt-α one (its spatial
    parts: PixArt has no temporal attention)."""
    model = MVDiT(config)
    if init_from:
        state = released_state_dict(init_from)
        if any(".attn_temp." in key for key in state):
            load_weights(model, state)
        else:
            init_from_pixart(model, state)
    return model


def run(spec: TrainingSpec) -> TrainResult:
    files = open_filesystem(spec.data_root)
    data = LatentClips(spec.latent_paths, files.get, crop=spec.crop)
    model_config = MVDiTConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in spec.model.items()})
    config = TrainConfig(**spec.train)
    resuming = config.checkpoint_dir is not None and latest_checkpoint(config.checkpoint_dir) is not None
    torch.manual_seed(config.seed)  # the same initial weights for every run of one seed (the ablation's variants)
    return train(new_model(model_config, "" if resuming else spec.init_from), data, config)


def run_distributed(spec: TrainingSpec, processes: int, workdir: Path) -> TrainResult:
    """``run`` in ``processes`` processes under torchrun; raises with torchrun's output if it fails."""
    spec_path = spec.write(workdir / "spec.json")
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        str(processes),
        "-m",
        "openvid_assets.mvdit.launch",
        str(spec_path),
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    result_path = workdir / "spec.result.json"
    if done.returncode != 0 or not result_path.exists():
        raise RuntimeError(f"torchrun training failed ({done.returncode}):\n{done.stderr[-4000:]}")
    saved = json.loads(result_path.read_text())
    return TrainResult(
        saved["losses"], saved["step_times"], saved["start_step"], [Path(p) for p in saved["checkpoints"]]
    )


def main(argv: list[str] | None = None) -> int:
    spec_path = Path((argv or sys.argv[1:])[0])
    spec = TrainingSpec(**json.loads(spec_path.read_text()))
    result = run(spec)
    if int(os.environ.get("RANK", "0")) == 0:
        out = {
            "losses": result.losses,
            "step_times": result.step_times,
            "start_step": result.start_step,
            "checkpoints": [str(p) for p in result.checkpoints],
        }
        spec_path.with_suffix(".result.json").write_text(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
