# Copyright (c) mmitpn contributors. All rights reserved.
"""Token gathering (Fast-iTPN's "reducing computation cost caused by global
attention by introducing few gathering tokens"), in mmitpn's reading: the
paper's code is not public.

``G`` learned gathering tokens per image join the main stage. In every main
block they attend to themselves and to every token of the image, and every
token attends to its window (or, without windows, to the whole grid) and to
the gathering tokens, which so carry information across windows. All
projections, norms and the MLP are the block's own, so pretrained weights
serve unchanged; relative positions apply between image tokens only (zero
bias to and from gathering tokens).
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .windows import Windows


def gathered_block_forward(
        block: nn.Module,
        x: Tensor,
        gather: Tensor,
        grid_size: Tuple[int, int],
        rel_pos: Optional[Tensor] = None,
        windows: Optional[Windows] = None) -> Tuple[Tensor, Tensor]:
    """An :class:`~mmitpn.models.utils.AttentionBlock` (or subclass) with
    gathering tokens.

    Args:
        block (nn.Module): The block; its ``norm1``, ``attn``, ``norm2``,
            ``mlp``, ``gamma_1`` / ``gamma_2`` and ``drop_path`` are used.
        x (Tensor): ``(B, L, C)`` tokens.
        gather (Tensor): ``(B, G, C)`` gathering tokens.
        grid_size (tuple[int, int]): Unit grid of the full input.
        rel_pos (Tensor, optional): The positions the block's attention
            needs (of the windows, with ``windows``).
        windows (GridWindows | SlotWindows, optional): Windowed attention
            for the image tokens.

    Returns:
        tuple[Tensor]: The tokens and the gathering tokens.
    """
    attn = block.attn
    batch = x.shape[0]
    y, y_gather = block.norm1(x), block.norm1(gather)
    q_gather, k_gather, v_gather = attn.project_qkv(y_gather)
    if windows is not None:
        grouped = windows.partition(y)
        num_windows = grouped.shape[0] // batch
        q, k, v = attn.project_qkv(grouped)
        bias = attn.position_bias(q, windows.window_grid, rel_pos)
        extra_k = k_gather.repeat_interleave(num_windows, dim=0)
        extra_v = v_gather.repeat_interleave(num_windows, dim=0)
        all_k, all_v, gather_bias = _keys_of_all_windows(
            k, v, windows.real_slots(x), batch, gather.shape[1])
    else:
        q, k, v = attn.project_qkv(y)
        bias = attn.position_bias(q, grid_size, rel_pos)
        extra_k, extra_v, all_k, all_v = k_gather, v_gather, k, v
        gather_bias = None
    if bias is not None:
        bias = F.pad(
            bias.expand(q.shape[0], -1, -1, -1), (0, extra_k.shape[2]))
    keys, values = torch.cat([k, extra_k], 2), torch.cat([v, extra_v], 2)
    out = attn.attend(q, keys, values, bias)
    if windows is not None:
        out = out.transpose(1, 2).flatten(2)
        out = windows.unpartition(out, batch)
        out = attn.proj_drop(attn.proj(out))
    else:
        out = attn.project_out(out)
    out_gather = attn.project_out(
        attn.attend(q_gather, torch.cat([k_gather, all_k], 2),
                    torch.cat([v_gather, all_v], 2), gather_bias))
    tokens = torch.cat([out, out_gather], 1)
    if block.gamma_1 is not None:
        tokens = block.gamma_1 * tokens
    both = torch.cat([x, gather], 1) + block.drop_path(tokens)
    y = block.mlp(block.norm2(both))
    if block.gamma_2 is not None:
        y = block.gamma_2 * y
    both = both + block.drop_path(y)
    return both[:, :x.shape[1]], both[:, x.shape[1]:]


def _keys_of_all_windows(k: Tensor, v: Tensor, real: Tensor, batch: int,
                         num_gathering: int) -> Tuple[Tensor, Tensor, Tensor]:
    """Keys and values of every window slot of an image for the gathering
    queries, ``(B, heads, num_windows * S, d)``, and the bias that masks
    the padding slots out (``real``: which slots hold a token)."""
    heads, _, head_dims = k.shape[1:]
    num_windows = k.shape[0] // batch
    all_k = k.reshape(batch, num_windows, heads, -1,
                      head_dims).transpose(1, 2).flatten(2, 3)
    all_v = v.reshape(batch, num_windows, heads, -1,
                      head_dims).transpose(1, 2).flatten(2, 3)
    # masked_fill, not a masked assignment into a slice: the ONNX exporter
    # turns the latter into writes at the wrong keys.
    real = torch.cat([real.new_ones(num_gathering), real])
    gather_bias = torch.zeros(real.shape, dtype=k.dtype, device=k.device)
    gather_bias = gather_bias.masked_fill(~real, float('-inf'))
    return all_k, all_v, gather_bias.reshape(1, 1, 1, -1)
