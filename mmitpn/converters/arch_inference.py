# Copyright (c) mmitpn contributors. All rights reserved.
"""Read HiViT / Fast-iTPN and iTPN pyramid settings off a state dict."""
import math
import re
from typing import Dict, Mapping, Optional

from torch import Tensor

from mmitpn.models.utils.unit_ops import UNIT_SIZE

BLOCK_RE = re.compile(r'^blocks\.(\d+)\.')


def _square_side(count: int, what: str) -> int:
    side = math.isqrt(count)
    if side * side != count:
        raise ValueError(f'{what}: {count} entries do not form a square grid;'
                         ' pass the architecture explicitly.')
    return side


# What tells the two official layouts apart, and which converter reads each.
FAMILIES = {
    'HiViT':
    dict(
        name='iTPN/HiViT',
        pos_embed='absolute_pos_embed',
        attention='attn.qkv.weight',
        main_mlp='mlp.fc1.weight',
        converter='tools/model_converters/itpn_to_mmitpn.py'),
    'FastiTPN':
    dict(
        name='Fast-iTPN',
        pos_embed='pos_embed',
        attention='attn.q_proj.weight',
        main_mlp='mlp.w1.weight',
        converter='tools/model_converters/fast_itpn_to_mmitpn.py'),
}


def detect_family(state_dict: Mapping[str, Tensor]) -> Optional[str]:
    """``'HiViT'`` or ``'FastiTPN'`` by the attention keys (any prefix), or
    None when neither is there."""
    for family, signs in FAMILIES.items():
        if any(name.endswith('.' + signs['attention']) for name in state_dict):
            return family
    return None


def check_family(state_dict: Mapping[str, Tensor], expected: str) -> None:
    """Raise a one-line error when ``state_dict`` is the other family's,
    naming the family it looks like and the converter to use."""
    found = detect_family(state_dict)
    if found is not None and found != expected:
        signs = FAMILIES[found]
        raise ValueError(
            f'This looks like a {signs["name"]} checkpoint (keys '
            f'{signs["pos_embed"]}, blocks.N.{signs["attention"]}), not '
            f'{FAMILIES[expected]["name"]}: convert it with '
            f'{signs["converter"]}.')


def _mlp_ratio(backbone: Mapping[str, Tensor], key: str) -> float:
    hidden, channels = backbone[key].shape[:2]
    return hidden / channels


def infer_backbone_arch(backbone: Mapping[str, Tensor],
                        family: str = 'HiViT') -> dict:
    """Constructor arguments of ``mmitpn.HiViT`` or ``mmitpn.FastiTPN``
    that rebuild ``backbone``'s layout.

    Args:
        backbone (Mapping[str, Tensor]): Backbone keys without prefix, in the
            official flat ``blocks.i`` layout.
        family (str): ``'HiViT'`` or ``'FastiTPN'``.

    Returns:
        dict: ``arch`` (embed_dims, stem_mlp_blocks, depth, num_heads),
        ``img_size``, ``stem_mlp_ratio``, ``mlp_ratio``, ``rel_pos_type``
        and ``layer_scale_init_value``.
    """
    check_family(backbone, family)
    signs = FAMILIES[family]
    pos_embed_key = signs['pos_embed']
    if pos_embed_key not in backbone:
        raise ValueError(f'No {pos_embed_key!r} in the checkpoint: it does '
                         f'not look like a {signs["name"]} backbone.')
    embed_dims = backbone[pos_embed_key].shape[-1]
    kinds: Dict[int, str] = {}
    for name in backbone:
        match = BLOCK_RE.match(name)
        if match is None:
            continue
        index, rest = int(match.group(1)), name[match.end():]
        if rest.startswith('reduction.'):
            kinds[index] = 'merge'
        elif rest.startswith('attn.'):
            kinds[index] = 'attn'
        else:
            kinds.setdefault(index, 'mlp')
    if sorted(kinds) != list(range(len(kinds))):
        raise ValueError('The blocks.i indices of the checkpoint are not '
                         'contiguous.')
    order = [kinds[i] for i in range(len(kinds))]
    merges = [i for i, kind in enumerate(order) if kind == 'merge']
    if len(merges) != 2:
        raise ValueError('Expected two PatchMerge blocks (blocks.i.reduction) '
                         f'in the checkpoint, found {len(merges)}.')
    stem = (merges[0], merges[1] - merges[0] - 1)
    main = order[merges[1] + 1:]
    if order[:merges[1]].count('attn') or main.count('attn') != len(main):
        raise ValueError('Attention blocks must follow the second PatchMerge '
                         'and nothing else may.')

    first = f'blocks.{merges[1] + 1}.'
    rel_pos_type: Optional[str] = None
    grid_side = _square_side(backbone[pos_embed_key].shape[1], pos_embed_key)
    if first + 'attn.relative_position_bias_table' in backbone:
        rel_pos_type = 'bias_table'
        table = backbone[first + 'attn.relative_position_bias_table']
        num_heads = table.shape[1]
        grid_side = (_square_side(table.shape[0], 'relative position table') +
                     1) // 2
    elif first + 'attn.rel_pos_h' in backbone:
        rel_pos_type = 'decomposed'
        num_heads = embed_dims // backbone[first + 'attn.rel_pos_h'].shape[1]
    else:
        num_heads = embed_dims // 64
    return dict(
        arch=dict(
            embed_dims=embed_dims,
            stem_mlp_blocks=stem,
            depth=len(main),
            num_heads=num_heads),
        img_size=grid_side * UNIT_SIZE,
        stem_mlp_ratio=_mlp_ratio(
            backbone, 'blocks.0.mlp.fc1.weight') if stem[0] else _mlp_ratio(
                backbone, f'blocks.{merges[0] + 1}.mlp.fc1.weight'),
        mlp_ratio=_mlp_ratio(backbone, first + signs['main_mlp']),
        rel_pos_type=rel_pos_type,
        layer_scale_init_value=0.1 if first + 'gamma_1' in backbone else 0.)


def infer_pyramid_arch(pyramid: Mapping[str, Tensor],
                       embed_dims: int) -> Optional[dict]:
    """iTPNPyramid arguments for the pyramid keys (no prefix), or None."""
    if 'align_dim_16to8.weight' not in pyramid:
        return None
    depth = 1 + max(
        int(name.split('.')[1])
        for name in pyramid if name.startswith('block_16to8.'))
    return dict(
        embed_dims=embed_dims,
        fpn_dim=pyramid['align_dim_16to8.weight'].shape[0],
        fpn_depth=depth)


def infer_pretrain_head_arch(head: Mapping[str, Tensor], embed_dims: int,
                             backbone_cfg: dict) -> Optional[dict]:
    """iTPNPixelHead / iTPNCLIPHead arguments for head keys, or None."""
    if 'decoder_pred.weight' in head:
        decoder_dims = head['decoder_pred.weight'].shape[1]
        return dict(
            type='mmitpn.iTPNPixelHead',
            fpn_dim=head['decoder_embed.0.0.weight'].shape[0],
            decoder_embed_dims=decoder_dims,
            decoder_depth=_count_indexed(head, 'decoder_blocks.'),
            decoder_num_heads=decoder_dims // 32,
            img_size=backbone_cfg['img_size'])
    if 'lm_head.weight' in head:
        aux_depth = _count_indexed(head, 'cls_pt_layers.')
        cfg = dict(
            type='mmitpn.iTPNCLIPHead',
            embed_dims=embed_dims,
            fpn_dim=head['decoder_embed.0.0.weight'].shape[0],
            teacher_dims=head['lm_head.weight'].shape[0],
            num_heads=backbone_cfg['arch']['num_heads'],
            aux_depth=aux_depth,
            grid_size=(backbone_cfg['img_size'] // UNIT_SIZE, ) * 2)
        if aux_depth:
            table = head['cls_pt_layers.0.attn.relative_position_bias_table']
            side = (_square_side(table.shape[0], 'auxiliary table') + 1) // 2
            cfg['grid_size'] = (side, side)
            cfg['layer_scale_init_value'] = \
                0.1 if 'cls_pt_layers.0.gamma_1' in head else 0.
        return cfg
    return None


def _count_indexed(state_dict: Mapping[str, Tensor], prefix: str) -> int:
    indices = {
        int(name[len(prefix):].split('.')[0])
        for name in state_dict if name.startswith(prefix)
    }
    return max(indices) + 1 if indices else 0
