# Copyright (c) mmitpn contributors. All rights reserved.
"""Fast-iTPN: convolutional stem and a SwiGLU attention stage."""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.model.weight_init import trunc_normal_
from torch import Tensor, nn

from mmitpn.registry import MODELS
from ..utils.fast_itpn_blocks import (ConvMlpBlock, ConvPatchMerge,
                                      SwiGLUAttentionBlock)
from ..utils.position_encoding import resize_pos_embed
from ..utils.transformer_blocks import dropout
from ..utils.unit_ops import UNIT_SIZE, map_to_units, units_to_map
from ..utils.weight_init import init_linear_layers
from .unit_pyramid_backbone import ArchSettings, UnitPyramidBackbone


@MODELS.register_module()
class FastiTPN(UnitPyramidBackbone):
    """Fast-iTPN backbone (Tian et al., TPAMI 2024), as in the official
    fine-tuning code.

    A 4x4 stride-4 convolution makes a ``D/4``-channel map; convolutional
    MLP blocks (pre-norm LayerNorm over channels, 1x1 convolutions with a
    sub-LN on the hidden channels) run at stride 4 and 8, joined by
    :class:`ConvPatchMerge`; the stride-16 tokens get an absolute position
    embedding (no class token) and pass the main stage of attention blocks
    with separate q/k/v projections, SwiGLU MLPs (sub-LN) and layer scale.
    State-dict names follow the official code (``patch_embed.proj``, one flat
    ``blocks`` list with the merges, ``pos_embed``, ``fc_norm``).

    The outputs have HiViT's forms, so the iTPN pyramid and every task head
    take them unchanged: ``out_type='raw'`` gives the stem maps in unit
    layout ``(B, N, 4, 4, D/4)``, ``(B, N, 2, 2, D/2)`` and the tokens
    ``(B, N, D)``.

    Args:
        arch (str | dict): One of :attr:`arch_zoo` or a dict with keys
            ``embed_dims``, ``stem_mlp_blocks`` (blocks at stride 4 and 8),
            ``depth`` and ``num_heads``. Defaults to ``'fast-itpn-base'``.
        img_size (int | tuple[int, int]): Input size the position embedding
            is made for; other sizes (multiples of 16, any aspect) resize it.
            Defaults to 224.
        in_channels (int): Image channels. Defaults to 3.
        stem_mlp_ratio (float): Hidden ratio of the stem MLPs. Defaults to 3.
        mlp_ratio (float): Hidden ratio of the SwiGLU MLPs. Defaults to 3.
        qkv_bias (bool): ``q_bias`` and ``v_bias``. Defaults to True.
        drop_rate (float): Dropout. Defaults to 0.
        attn_drop_rate (float): Attention dropout. Defaults to 0.
        drop_path_rate (float): Stochastic depth, ramped linearly over the
            stem and attention blocks (merges excluded). Defaults to 0.
        layer_scale_init_value (float): Layer scale of the attention blocks;
            0 disables it. Defaults to 0.1 (the released models).
        norm_eps (float): LayerNorm epsilon everywhere. Defaults to 1e-6.
        out_indices (Sequence[int]): Stages to return: 0 (stride 4), 1
            (stride 8), 2 (stride 16). Defaults to ``(2, )``.
        out_type (str): ``'featmap'`` (NCHW maps), ``'raw'`` (unit layouts,
            as :class:`HiViT`) or ``'avg_featmap'`` (mean of the stride-16
            tokens, after ``fc_norm`` if ``final_norm``). Defaults to
            ``'featmap'``.
        final_norm (bool): ``fc_norm`` after mean pooling. Defaults to True.
        frozen_stages (int): -1 freezes nothing, 0 the patch and position
            embeddings, 1-3 also the stages up to that one. Defaults to -1.
        with_cp (bool): Gradient checkpointing of every block. Defaults to
            False.
        init_cfg (dict, optional): mmengine initialisation config.
    """

    arch_zoo: Dict[str, ArchSettings] = {
        'fast-itpn-tiny':
        dict(embed_dims=384, stem_mlp_blocks=(1, 1), depth=12, num_heads=6),
        'fast-itpn-small':
        dict(embed_dims=384, stem_mlp_blocks=(2, 2), depth=20, num_heads=6),
        'fast-itpn-base':
        dict(embed_dims=512, stem_mlp_blocks=(3, 3), depth=24, num_heads=8),
        'fast-itpn-large':
        dict(embed_dims=768, stem_mlp_blocks=(2, 2), depth=40, num_heads=12),
    }
    pos_embed_name = 'pos_embed'

    def __init__(self,
                 arch: Union[str, ArchSettings] = 'fast-itpn-base',
                 img_size: Union[int, Sequence[int]] = 224,
                 in_channels: int = 3,
                 stem_mlp_ratio: float = 3.,
                 mlp_ratio: float = 3.,
                 qkv_bias: bool = True,
                 drop_rate: float = 0.,
                 attn_drop_rate: float = 0.,
                 drop_path_rate: float = 0.,
                 layer_scale_init_value: float = 0.1,
                 norm_eps: float = 1e-6,
                 out_indices: Sequence[int] = (2, ),
                 out_type: str = 'featmap',
                 final_norm: bool = True,
                 frozen_stages: int = -1,
                 with_cp: bool = False,
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        self._set_layout(arch, img_size, out_indices, out_type)
        self.frozen_stages = frozen_stages
        self.with_cp = with_cp

        stem_dims = (self.embed_dims // 4, self.embed_dims // 2)
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(
            in_channels, stem_dims[0], kernel_size=4, stride=4)
        self.pos_embed = nn.Parameter(
            torch.zeros(1, self.grid_size[0] * self.grid_size[1],
                        self.embed_dims))
        self.pos_drop = dropout(drop_rate)

        num_drop_path = sum(self.stem_mlp_blocks) + self.depth
        rates = [
            drop_path_rate * i / max(num_drop_path - 1, 1)
            for i in range(num_drop_path)
        ]
        self.drop_path_rates = tuple(rates)
        self.blocks = nn.ModuleList()
        self.stem_ranges: List[Tuple[int, int]] = []
        for dim, num_blocks in zip(stem_dims, self.stem_mlp_blocks):
            start = len(self.blocks)
            for _ in range(num_blocks):
                self.blocks.append(
                    ConvMlpBlock(dim, stem_mlp_ratio, drop_rate, rates.pop(0),
                                 norm_eps))
            self.stem_ranges.append((start, len(self.blocks)))
            self.blocks.append(ConvPatchMerge(dim, norm_eps))
        self.main_start = len(self.blocks)
        for _ in range(self.depth):
            self.blocks.append(
                SwiGLUAttentionBlock(self.embed_dims, self.num_heads,
                                     mlp_ratio,
                                     qkv_bias, drop_rate, attn_drop_rate,
                                     rates.pop(0), layer_scale_init_value,
                                     norm_eps))
        self.fc_norm = nn.LayerNorm(
            self.embed_dims, eps=norm_eps
        ) if out_type == 'avg_featmap' and final_norm else nn.Identity()

        init_linear_layers(self)
        trunc_normal_(self.pos_embed, std=.02)
        self._freeze_stages()

    @property
    def num_layers(self) -> int:
        """Every block, merges included (the official ``get_num_layers``)."""
        return len(self.blocks)

    @property
    def mask_token_dims(self) -> int:
        """Width of the mask token pretraining puts in masked units: the
        patch embedding's ``D/4`` (masking happens right after it)."""
        return self.embed_dims // 4

    def forward_stem(
            self,
            x: Tensor,
            mask: Optional[Tensor] = None,
            mask_token: Optional[Tensor] = None
    ) -> Tuple[List[Tensor], Tensor]:
        """Patch embedding and the two convolutional stages.

        Args:
            x (Tensor): Images ``(B, C, H, W)``.
            mask (Tensor, optional): ``(B, N)`` masked units (row-major);
                all 16 sub-tokens of a masked unit are replaced by
                ``mask_token`` right after the patch embedding (Fast-iTPN
                pretraining). Units are never dropped: the convolutions mix
                neighbouring units.
            mask_token (Tensor, optional): ``D/4`` learned values.

        Returns:
            tuple: The stride-4 and stride-8 maps (before each merge) in
            unit layout ``(B, N, 4, 4, D/4)``, ``(B, N, 2, 2, D/2)``, and the
            stride-16 tokens ``(B, N, D)``.
        """
        x = self.patch_embed.proj(x)
        if mask is not None:
            grid = (x.shape[2] // 4, x.shape[3] // 4)
            weight = mask.reshape(-1, 1, *grid).to(x.dtype)
            weight = weight.repeat_interleave(4, 2).repeat_interleave(4, 3)
            token = mask_token.reshape(1, -1, 1, 1).to(x.dtype)
            x = x * (1 - weight) + token * weight
        stem_outs = []
        for index, (start, end) in enumerate(self.stem_ranges):
            for block in self.blocks[start:end]:
                x = self._run(block, x)
            stem_outs.append(map_to_units(x, UNIT_SIZE // 4 // 2**index))
            x = self.blocks[end](x)
        return stem_outs, x.flatten(2).transpose(1, 2)

    def forward_stem_masked(self, x: Tensor, mask: Tensor,
                            mask_token: Tensor) -> Tuple[List[Tensor], Tensor]:
        """:meth:`forward_stem` with ``mask`` applied after the patch
        embedding (the interface :class:`iTPNCLIP` uses for any backbone)."""
        return self.forward_stem(x, mask, mask_token)

    def forward_main(
        self, x: Tensor, grid: Tuple[int, int], collect: Sequence[int] = ()
    ) -> Tuple[Tensor, List[Tensor]]:
        """Position embedding and the attention stage on ``(B, N, D)``.

        Returns:
            tuple: The final tokens and the outputs of the attention blocks
            (0-based) in ``collect``.
        """
        x = self.pos_drop(
            x + resize_pos_embed(self.pos_embed, self.grid_size, grid))
        collected = []
        for index, block in enumerate(self.blocks[self.main_start:]):
            x = self._run(block, x)
            if index in collect:
                collected.append(x)
        return x, collected

    def _format(self, x: Tensor, grid: Tuple[int, int]) -> Tensor:
        if self.out_type == 'featmap':
            return units_to_map(x, grid)
        if self.out_type == 'avg_featmap':
            return self.fc_norm(x.mean(dim=1))
        return x

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """Encode images ``(B, C, H, W)``, H and W multiples of 16.

        Returns:
            tuple[Tensor]: One output per entry of ``out_indices``.
        """
        grid = self.grid_of(x.shape[2], x.shape[3])
        stem_outs, x = self.forward_stem(x)
        x, _ = self.forward_main(x, grid)
        stage_outs = stem_outs + [x]
        return tuple(
            self._format(stage_outs[i], grid) for i in self.out_indices)

    def get_layer_depth(self,
                        param_name: str,
                        prefix: str = '') -> Tuple[int, int]:
        """Layer id for layer-wise lr decay, as the official code counts:
        embeddings 0, block ``i`` (merges included) ``i + 1``, everything
        else ``len(blocks) + 1``; returns (layer id, ``len(blocks) + 2``)."""
        total = self.num_layers + 2
        if not param_name.startswith(prefix):
            return total - 1, total
        name = param_name[len(prefix):]
        if name == 'pos_embed' or name.startswith('patch_embed.'):
            return 0, total
        if name.startswith('blocks.'):
            return int(name.split('.')[1]) + 1, total
        return total - 1, total
