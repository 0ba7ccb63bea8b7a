"""MVDiT: block behaviour (identity at init, which attention mixes frames), ablation switches, equivalence with the
release's forward pass, the released checkpoints' layout, PixArt-α initialisation and the FLOP count."""

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from openvid_assets.mvdit.model import (
    POSITION_BUFFERS,
    MVDiT,
    forward_flops,
    init_from_pixart,
    load_weights,
    pixart_alpha_to_mvdit,
    preset,
)
from openvid_assets_tests.mvdit.helpers import TINY, inputs, randomize, tiny_model

DATA = Path(__file__).parents[1] / "data"
C = TINY.hidden_size


def release_keys(resolution: int = 256) -> dict[str, list[int]]:
    doc = json.loads((DATA / "mvdit_xl2_keys.json").read_text())
    return doc["keys"] if resolution == 256 else {**doc["keys"], **doc["differences_at_16x512x512"]}


def pixart_keys() -> dict[str, list[int]]:
    return json.loads((DATA / "pixart_alpha_xl2_keys.json").read_text())["keys"]


def meta_state(keys: dict[str, list[int]]) -> dict[str, torch.Tensor]:
    """A stand-in checkpoint with the given layout and no memory behind it (XL/2 is 4 GB in float32)."""
    return {key: torch.empty(shape, device="meta") for key, shape in keys.items()}


def meta_xl2(resolution: int = 256) -> MVDiT:
    with torch.device("meta"):
        return MVDiT(preset("XL/2", height=resolution, width=resolution))


def first_block(model: MVDiT, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor, timestep: torch.Tensor):
    _, shared = model.timestep_conditioning(timestep)
    return model.blocks[0](x, y, mask, *shared, model.pos_embed_temporal)


def block_tokens(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    frames, length = TINY.input_size[0], TINY.model_max_length
    x = torch.randn(2, frames, 16, C, generator=g)  # 8x8 latent, 2x2 patches
    y = torch.randn(2, frames, length, C, generator=g)
    mask = torch.ones(2, length, dtype=torch.bool)
    mask[1, 5:] = False
    return x, y, mask, torch.tensor([10.0, 700.0])


# -- the block --------------------------------------------------------------------------------------------------


def test_block_and_model_shapes():
    model = tiny_model()
    x, y, mask, t = block_tokens()
    x_out, y_out = first_block(model, x, y, mask, t)
    assert x_out.shape == x.shape and y_out.shape == y.shape
    out = model(**inputs())
    assert out.shape == (2, 2 * TINY.in_channels, *TINY.input_size) and out.dtype == torch.float32
    assert torch.isfinite(out).all()
    # The release's caption layout [B, 1, L, D] is the same input.
    batch = inputs()
    assert torch.equal(model(**{**batch, "y": batch["y"][:, None]}), out)


def test_a_fresh_block_is_the_identity_until_its_gates_open():
    model = tiny_model(randomized=False)
    x, y, mask, t = block_tokens()
    x_out, y_out = first_block(model, x, y, mask, t)
    assert torch.equal(x_out, x) and torch.equal(y_out, y)
    assert torch.count_nonzero(model(**inputs())) == 0  # the zero final layer: a fresh model predicts nothing

    randomize(model.blocks[0])  # gates (and the MHCA output projection) now nonzero
    x_out, y_out = first_block(model, x, y, mask, t)
    assert (x_out - x).abs().mean() > 1e-2 and (y_out - y).abs().mean() > 1e-2


@torch.no_grad()
def close_temporal_gates(model: MVDiT) -> None:
    rows = model.config.rows_per_branch
    for projection in (model.t_block_temp, model.t_block_y_temp):
        projection[1].weight[(rows - 1) * C :] = 0
        projection[1].bias[(rows - 1) * C :] = 0
    for block in model.blocks:
        block.scale_shift_table_temp[rows - 1] = 0
        block.scale_shift_table_y_temp[rows - 1] = 0


@pytest.mark.parametrize("variant", ["mmta", "no mmta", "mmta gates closed"])
@torch.no_grad()
def test_only_temporal_attention_lets_frames_see_each_other(variant):
    model = tiny_model(config=replace(TINY, temporal_attention=variant != "no mmta"))
    if variant == "mmta gates closed":
        close_temporal_gates(model)
    batch = inputs()
    before = model(**batch)
    batch["x"][:, :, 1] += torch.randn_like(batch["x"][:, :, 1])  # perturb latent frame 1 only
    after = model(**batch)
    assert (after[:, :, 1] - before[:, :, 1]).abs().max() > 1e-2
    other_frames = (after[:, :, [0, 2]] - before[:, :, [0, 2]]).abs().max()
    if variant == "mmta":
        assert other_frames > 1e-3
    else:  # MMSA, MHCA and the feed-forwards work within a frame
        assert other_frames < 1e-5


@torch.no_grad()
def test_padding_tokens_do_not_change_the_output():
    model = tiny_model()
    batch = inputs()
    before = model(**batch)
    batch["y"][1, 3:] = torch.randn_like(batch["y"][1, 3:])  # row 1's padded positions
    after = model(**batch)
    assert torch.allclose(after[1], before[1], atol=1e-5) and torch.equal(after[0], before[0])
    batch["y"][1, 0] += 1  # a real token does
    assert (model(**batch)[1] - before[1]).abs().max() > 1e-3


# -- ablations ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("switch, marker", [("cross_attention", "cross_attn"), ("temporal_attention", "_temp")])
def test_ablations_remove_their_parameters(switch, marker):
    full = MVDiT(TINY).state_dict()
    ablated = MVDiT(replace(TINY, **{switch: False})).state_dict()
    removed = set(full) - set(ablated)
    assert removed and all(marker in key for key in removed) and not any(marker in key for key in ablated)
    assert all(ablated[key].shape == full[key].shape for key in ablated)


def test_without_gating_the_modulation_has_no_gate_rows():
    full = MVDiT(TINY).state_dict()
    ablated = MVDiT(replace(TINY, gating=False)).state_dict()
    assert set(full) == set(ablated)
    modulation = [k for k in full if k.startswith("t_block") or k.startswith("blocks.") and "scale_shift_table" in k]
    assert len(modulation) == 4 * 2 + 4 * TINY.depth
    for key in modulation:
        assert ablated[key].shape[0] * 3 == full[key].shape[0] * 2, key  # (shift, scale) of (shift, scale, gate)
    assert sum(v.numel() for v in ablated.values()) < sum(v.numel() for v in full.values())


def gate_rows_dropped(key: str, value: torch.Tensor) -> torch.Tensor:
    """A gated model's modulation entry without its gate rows (rows come in (shift, scale, gate) triples)."""
    if key.startswith("t_block") and key.endswith("weight"):
        return value.view(-1, 3, C, C)[:, :2].reshape(-1, C)
    if key.startswith("t_block") or (key.startswith("blocks.") and "scale_shift_table" in key):
        return value.reshape(-1, 3, C)[:, :2].reshape(value.shape[0] * 2 // 3, *value.shape[1:])
    return value


@torch.no_grad()
def open_all_gates(model: MVDiT) -> None:
    """Gate α = 1 everywhere: table gate rows 1, shared projections' gate outputs 0."""
    for projection in model.adaptive_projections():
        projection[1].weight.view(-1, 3, C, C)[:, 2] = 0
        projection[1].bias.view(-1, 3, C)[:, 2] = 0
    for block in model.blocks:
        for name, table in block.named_parameters(recurse=False):
            table.view(-1, 3, C)[:, 2] = 1


@pytest.mark.parametrize("switch", ["cross_attention", "temporal_attention", "gating"])
@torch.no_grad()
def test_an_ablated_model_is_the_full_model_with_that_part_silenced(switch):
    full = tiny_model()
    batch = inputs()
    reference = full(**batch)
    if switch == "cross_attention":
        for block in full.blocks:
            block.cross_attn.proj.weight.zero_()
            block.cross_attn.proj.bias.zero_()
    elif switch == "temporal_attention":
        close_temporal_gates(full)
    else:
        open_all_gates(full)
    silenced = full(**batch)
    assert (silenced - reference).abs().max() > 1e-3  # the part mattered before it was silenced

    ablated = MVDiT(replace(TINY, **{switch: False})).eval()
    state = {k: gate_rows_dropped(k, v) if switch == "gating" else v for k, v in full.state_dict().items()}
    ablated.load_state_dict({k: v for k, v in state.items() if k in ablated.state_dict()}, strict=True)
    assert torch.allclose(ablated(**batch), silenced, atol=1e-5)


# -- training-time behaviour ----------------------------------------------------------------------------------


def test_caption_dropout_uses_the_learned_null_caption():
    model = tiny_model(config=replace(TINY, caption_dropout=1.0))
    batch = inputs()
    with torch.no_grad():
        null = model(**batch, drop_captions=torch.ones(2, dtype=torch.bool))
        kept = model(**batch)
    model.train()
    dropped = model(**batch)  # training mode draws the drops: probability 1 here
    assert torch.allclose(dropped, null, atol=1e-6) and (null - kept).abs().max() > 1e-3
    dropped.square().mean().backward()
    assert model.y_embedder.y_embedding.grad.abs().sum() > 0  # learned, not a frozen buffer


def test_gradient_checkpointing_gives_the_same_gradients():
    batch = {**inputs(), "drop_captions": torch.zeros(2, dtype=torch.bool)}
    gradients = []
    for checkpointing in (False, True):
        model = tiny_model().train()
        model.grad_checkpointing = checkpointing
        model(**batch).square().mean().backward()
        gradients.append({n: p.grad for n, p in model.named_parameters()})
    # The text stream leaves the last block unused, so its text feed-forward never gets a gradient (as upstream).
    unused = {n for n, g in gradients[0].items() if g is None}
    assert unused == {n for n in gradients[0] if n.startswith(f"blocks.{TINY.depth - 1}.mlp_y.")}
    assert all(gradients[1][n] is None for n in unused)
    assert all(torch.allclose(gradients[0][n], gradients[1][n], atol=1e-6) for n in gradients[0] if n not in unused)


# -- the release ----------------------------------------------------------------------------------------------


@torch.no_grad()
def test_forward_matches_the_release_implementation():
    """Same weights, same inputs, same outputs as the upstream code (recorded once; see the file's recipe)."""
    reference = json.loads((DATA / "mvdit_release_reference.json").read_text())
    model = MVDiT(replace(TINY, space_scale=0.5)).eval()
    g = torch.Generator().manual_seed(1234)
    state = model.state_dict()
    for key in sorted(state):
        if key not in POSITION_BUFFERS:
            state[key] = torch.randn(state[key].shape, generator=g) * 0.1
    model.load_state_dict(state)
    x, y = torch.randn(2, 4, 3, 8, 8, generator=g), torch.randn(2, 8, 32, generator=g)
    t, mask = torch.tensor([7, 901]), torch.tensor([[1] * 8, [1, 1, 1, 0, 0, 0, 0, 0]])
    out = model(x, t, y, mask)
    assert list(out.shape) == reference["shape"]
    assert torch.allclose(out.flatten(), torch.tensor(reference["output"]), atol=1e-4)
    null_second = model(x, t, y, mask, drop_captions=torch.tensor([False, True]))
    assert torch.allclose(null_second.flatten(), torch.tensor(reference["output_null_second"]), atol=1e-4)


@pytest.mark.parametrize("resolution", [256, 512])
def test_xl2_loads_the_released_checkpoints_strictly(resolution):
    keys = release_keys(resolution)
    model = meta_xl2(resolution)
    assert {k: list(v.shape) for k, v in model.state_dict().items()} == keys
    model.load_state_dict(meta_state(keys), strict=True)
    assert model.config.space_scale == resolution / 512  # the release's configs: 0.5 at 256px, 1.0 at 512px


def test_strict_loading_rejects_a_missing_or_misshapen_entry():
    model = meta_xl2()
    state = meta_state(release_keys())
    del state["blocks.27.attn_temp.proj.bias"]
    with pytest.raises(RuntimeError, match="blocks.27.attn_temp.proj.bias"):
        model.load_state_dict(state, strict=True)
    state = meta_state(release_keys())
    state["blocks.0.scale_shift_table_y"] = torch.empty(3, 1152, device="meta")
    with pytest.raises(RuntimeError, match="size mismatch for blocks.0.scale_shift_table_y"):
        model.load_state_dict(state, strict=True)


def test_load_weights_takes_any_resolution_and_checkpoint_wrapping(tmp_path):
    # A 512px checkpoint into the 256px model: only the fixed position tables differ, and those are recomputed.
    model = meta_xl2(256)
    with pytest.raises(RuntimeError, match="pos_embed"):
        model.load_state_dict(meta_state(release_keys(512)), strict=True)
    load_weights(model, meta_state(release_keys(512)))

    source, target = tiny_model(seed=1), tiny_model(seed=2, randomized=False)
    torch.save({"state_dict": source.state_dict()}, tmp_path / "release.pth")
    load_weights(target, tmp_path / "release.pth")
    assert all(torch.equal(a, b) for a, b in zip(source.state_dict().values(), target.state_dict().values()))
    # Training checkpoints: the EMA weights win over the raw ones.
    torch.save({"model": tiny_model(seed=3).state_dict(), "ema": source.state_dict(), "step": 1}, tmp_path / "t.pt")
    load_weights(target := tiny_model(seed=4), tmp_path / "t.pt")
    assert all(torch.equal(a, b) for a, b in zip(source.state_dict().values(), target.state_dict().values()))


def test_pixart_alpha_xl2_initialises_exactly_the_spatial_parts():
    model = meta_xl2()
    mapped = pixart_alpha_to_mvdit({"state_dict": meta_state(pixart_keys())})
    assert mapped["x_embedder.proj.weight"].shape == (1152, 4, 1, 2, 2) and "pos_embed" not in mapped
    left = init_from_pixart(model, meta_state(pixart_keys()))
    # What PixArt-α lacks is what MVDiT adds: the text stream (*_y*) and the temporal parts (*temp*).
    additions = {k for k in model.state_dict() if k not in POSITION_BUFFERS and ("_y" in k or "temp" in k)}
    assert set(left) == additions and len(additions) == 3 * 2 + 28 * 11  # 3 projections; 3 tables, 2 layers


def test_pixart_weights_land_unchanged_in_the_visual_stream():
    model = tiny_model(randomized=False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    g = torch.Generator().manual_seed(0)
    pixart = {"pos_embed": torch.zeros(1, 16, C)}
    for key in pixart_keys():
        if key in before and key not in POSITION_BUFFERS:  # blocks 0 and 1 of PixArt's 28
            shape = before[key].shape
            pixart[key] = torch.randn(shape[:2] + shape[3:] if key == "x_embedder.proj.weight" else shape, generator=g)
    left = init_from_pixart(model, {"state_dict": pixart})
    after = model.state_dict()
    assert all(torch.equal(after[k].reshape(v.shape), v) for k, v in pixart.items() if k != "pos_embed")
    assert all(torch.equal(after[k], before[k]) for k in [*left, *POSITION_BUFFERS])
    with pytest.raises(ValueError, match="csize_embedder"):  # PixArt-α 1024-MS extras have no place here
        init_from_pixart(model, {**pixart, "csize_embedder.mlp.0.weight": torch.zeros(C, 256)})


# -- cost -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("switches", [{}, {"gating": False}, {"temporal_attention": False}, {"cross_attention": False}])
@torch.no_grad()
def test_forward_flops_count_every_matmul(switches, monkeypatch):
    """forward_flops equals the matmuls torch's counter sees plus attention counted here from the shapes
    SDPA is called with (whether the counter sees attention kernels depends on the torch build and device)."""
    config = replace(TINY, **switches)
    model = MVDiT(config).eval()
    batch = inputs(batch=1, config=config)
    attention = []
    sdpa = torch.nn.functional.scaled_dot_product_attention

    def counted_sdpa(q, k, v, *args, **kwargs):
        *lead, queries, dim = q.shape
        attention.append(2 * 2 * math.prod(lead) * queries * k.shape[-2] * dim)  # scores and weighted values
        return sdpa(q, k, v, *args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", counted_sdpa)
    with FlopCounterMode(display=False) as counter:
        model(**batch)
    matmuls = sum(n for op, n in counter.get_flop_counts()["Global"].items() if "attention" not in str(op))
    assert attention, "the model called no scaled_dot_product_attention"
    assert matmuls + sum(attention) == forward_flops(config, *config.input_size)
