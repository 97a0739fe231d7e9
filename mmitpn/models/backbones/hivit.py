# Copyright (c) mmitpn contributors. All rights reserved.
"""HiViT: hierarchical vision transformer with MAE-style unit dropping."""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.model.weight_init import trunc_normal_
from torch import Tensor, nn

from mmitpn.registry import MODELS
from ..utils.position_encoding import (build_2d_sincos_pos_embed,
                                       resample_with_offset, resize_pos_embed)
from ..utils.transformer_blocks import (AttentionBlock, MlpBlock, dropout,
                                        gather_rel_pos_index)
from ..utils.unit_ops import PatchEmbed, PatchMerge, gather_units, units_to_map
from ..utils.weight_init import init_linear_layers
from .unit_pyramid_backbone import ArchSettings, UnitPyramidBackbone

STAGE_STRIDES = (4, 8, 16)


@MODELS.register_module()
class HiViT(UnitPyramidBackbone):
    """HiViT backbone, as used by iTPN.

    A 4x4-pixel convolution makes sub-tokens that are grouped into 16x16
    units; two stages of MLP-only blocks (stride 4 and 8, joined by
    :class:`PatchMerge` inside each unit) are followed by a main stage of
    global self-attention blocks at stride 16. Nothing mixes units before the
    main stage, so units masked out in pretraining are dropped right after
    the patch embedding and never computed.

    State-dict names follow the official iTPN code: ``patch_embed``, one flat
    ``blocks`` list (stem MLP blocks, PatchMerge, stem MLP blocks,
    PatchMerge, attention blocks), ``absolute_pos_embed`` and ``fc_norm``.

    Args:
        arch (str | dict): One of :attr:`arch_zoo` or a dict with keys
            ``embed_dims``, ``stem_mlp_blocks`` (MLP blocks at stride 4 and
            8, written out), ``depth`` (attention blocks) and ``num_heads``.
            Defaults to ``'itpn-base'``.
        img_size (int | tuple[int, int]): Input size the position
            parameters are made for; other sizes (multiples of 16) resize
            them at run time. Defaults to 224.
        in_channels (int): Image channels. Defaults to 3.
        stem_mlp_ratio (float): MLP ratio of the stem blocks. Defaults to 3.
        mlp_ratio (float): MLP ratio of the attention blocks. Defaults to 4.
        qkv_bias (bool): Bias in qkv projections. Defaults to True.
        drop_rate (float): Dropout after MLPs, projections and the position
            embedding. Defaults to 0.
        attn_drop_rate (float): Attention dropout. Defaults to 0.
        drop_path_rate (float): Stochastic depth, ramped linearly over all
            stem and attention blocks in order. Defaults to 0.
        norm_eps (float): LayerNorm epsilon (1e-6 in pretraining and
            classification; the official det/seg code uses 1e-5).
        pos_embed_init (str): ``'sincos'`` (pixel pretraining) or
            ``'trunc_normal'`` (CLIP pretraining). Defaults to ``'sincos'``.
        pos_embed_trainable (bool): Whether the absolute position embedding
            learns. The official code trains it, MAE and mmpretrain freeze
            it. Defaults to True.
        rel_pos_type (str, optional): ``None``, ``'bias_table'`` (HiViT
            relative position bias, works with masking) or ``'decomposed'``
            (ViTDet-style, full grids only). Defaults to None.
        layer_scale_init_value (float): Layer scale of the stem and attention
            blocks; 0 disables it (CLIP variants use 0.1). Defaults to 0.
        window_size (int, optional): Attend within non-overlapping windows of
            this many units per side (zero-padded at the borders) in every
            attention block except ``global_blocks``; keeps detection at
            1024 px affordable, as HiViT's and ViTDet's detectors do.
            Relative position tables of window blocks are sized for the
            window. Defaults to None (global attention everywhere).
        global_blocks (Sequence[int]): Attention blocks (0-based) that keep
            global attention when ``window_size`` is set. Defaults to ().
        out_indices (Sequence[int]): Stages to return: 0 (stride 4), 1
            (stride 8), 2 (stride 16). Defaults to ``(2, )``.
        out_type (str): ``'featmap'`` returns NCHW maps; ``'raw'`` returns
            unit layouts ``(B, N, 4, 4, C/4)``, ``(B, N, 2, 2, C/2)``,
            ``(B, N, C)`` (the only form with masking, and the laterals
            the iTPN pyramid takes); ``'avg_featmap'`` returns the mean of
            the stride-16 tokens, after ``fc_norm`` if ``final_norm``
            (classification).
            Defaults to ``'featmap'``.
        final_norm (bool): With ``out_type='avg_featmap'``, a LayerNorm
            (``fc_norm``) after mean pooling, as in fine-tuning; linear
            probing uses the pooled tokens as they are. Defaults to True.
        frozen_stages (int): -1 freezes nothing, 0 the patch and position
            embeddings, 1-3 also the stages up to that one. Frozen parts
            stay in eval mode. Defaults to -1.
        with_cp (bool): Gradient checkpointing of every block. Defaults to
            False.
        ape_resample_offset (float): When units are dropped (masked
            pretraining), resample the absolute position embedding
            bicubically with scale factor ``(g + offset) / g`` per side, as
            the official pixel code does through DINO's interpolation with
            its ``+0.1``: the grid keeps its size but the embedding moves by
            about 1 %. 0 (the default) uses the embedding as it is; 0.1
            reproduces the official pretraining exactly.
        init_cfg (dict, optional): mmengine initialisation config, e.g.
            ``dict(type='Pretrained', checkpoint=..., prefix='backbone.')``.
    """

    arch_zoo: Dict[str, ArchSettings] = {
        'itpn-base':
        dict(embed_dims=512, stem_mlp_blocks=(3, 3), depth=24, num_heads=8),
        'itpn-large':
        dict(embed_dims=768, stem_mlp_blocks=(2, 2), depth=40, num_heads=12),
        'hivit-tiny':
        dict(embed_dims=384, stem_mlp_blocks=(2, 2), depth=10, num_heads=6),
        'hivit-small':
        dict(embed_dims=384, stem_mlp_blocks=(4, 4), depth=20, num_heads=6),
        'hivit-base':
        dict(embed_dims=512, stem_mlp_blocks=(4, 4), depth=20, num_heads=8),
        'mmpretrain-base':
        dict(embed_dims=512, stem_mlp_blocks=(4, 4), depth=24, num_heads=8),
    }
    resizable_on_load = ('relative_position_bias_table', )

    def __init__(self,
                 arch: Union[str, ArchSettings] = 'itpn-base',
                 img_size: Union[int, Sequence[int]] = 224,
                 in_channels: int = 3,
                 stem_mlp_ratio: float = 3.,
                 mlp_ratio: float = 4.,
                 qkv_bias: bool = True,
                 drop_rate: float = 0.,
                 attn_drop_rate: float = 0.,
                 drop_path_rate: float = 0.,
                 norm_eps: float = 1e-6,
                 pos_embed_init: str = 'sincos',
                 pos_embed_trainable: bool = True,
                 rel_pos_type: Optional[str] = None,
                 layer_scale_init_value: float = 0.,
                 window_size: Optional[int] = None,
                 global_blocks: Sequence[int] = (),
                 out_indices: Sequence[int] = (2, ),
                 out_type: str = 'featmap',
                 final_norm: bool = True,
                 frozen_stages: int = -1,
                 with_cp: bool = False,
                 ape_resample_offset: float = 0.,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if not 0 <= ape_resample_offset < 1:
            raise ValueError('ape_resample_offset must be in [0, 1), got '
                             f'{ape_resample_offset}.')
        self.ape_resample_offset = ape_resample_offset
        self._set_layout(arch, img_size, out_indices, out_type)
        if pos_embed_init not in ('sincos', 'trunc_normal'):
            raise ValueError("pos_embed_init must be 'sincos' or "
                             f"'trunc_normal', got {pos_embed_init!r}.")
        self.rel_pos_type = rel_pos_type
        self.frozen_stages = frozen_stages
        self.with_cp = with_cp

        stem_dims = (self.embed_dims // 4, self.embed_dims // 2)
        self.patch_embed = PatchEmbed(
            in_channels, stem_dims[0], norm_eps=norm_eps)
        num_units = self.grid_size[0] * self.grid_size[1]
        self.absolute_pos_embed = nn.Parameter(
            torch.zeros(1, num_units, self.embed_dims),
            requires_grad=pos_embed_trainable)
        self.pos_drop = dropout(drop_rate)

        num_drop_path = sum(self.stem_mlp_blocks) + self.depth
        drop_path_rates = [
            drop_path_rate * i / max(num_drop_path - 1, 1)
            for i in range(num_drop_path)
        ]
        # Per block (stem MLP blocks, then attention blocks), for heads that
        # continue the ramp (the CLIP auxiliary branch).
        self.drop_path_rates = tuple(drop_path_rates)
        self.blocks = nn.ModuleList()
        # Start and end (the PatchMerge index) of each stem stage in blocks.
        self.stem_ranges: List[Tuple[int, int]] = []
        for dim, num_blocks in zip(stem_dims, self.stem_mlp_blocks):
            start = len(self.blocks)
            for _ in range(num_blocks):
                self.blocks.append(
                    MlpBlock(dim, stem_mlp_ratio, drop_rate,
                             drop_path_rates.pop(0), layer_scale_init_value,
                             norm_eps))
            self.stem_ranges.append((start, len(self.blocks)))
            self.blocks.append(PatchMerge(dim, norm_eps))
        self.window_size = window_size
        self.global_blocks = tuple(global_blocks)
        if any(not 0 <= i < self.depth for i in self.global_blocks):
            raise ValueError(f'global_blocks {self.global_blocks} are not '
                             f'blocks of the {self.depth}-block main stage.')
        self.main_start = len(self.blocks)
        for index in range(self.depth):
            grid = self.grid_size
            if self._windowed(index):
                grid = (window_size, window_size)
            self.blocks.append(
                AttentionBlock(self.embed_dims, self.num_heads, mlp_ratio,
                               qkv_bias, drop_rate, attn_drop_rate,
                               drop_path_rates.pop(0), layer_scale_init_value,
                               rel_pos_type, grid, norm_eps))
        self.fc_norm = nn.LayerNorm(
            self.embed_dims, eps=norm_eps
        ) if out_type == 'avg_featmap' and final_norm else nn.Identity()

        self._init_weights(pos_embed_init)
        self._freeze_stages()

    def _windowed(self, index: int) -> bool:
        return bool(self.window_size) and index not in self.global_blocks

    @property
    def num_layers(self) -> int:
        """Stem MLP blocks plus attention blocks (PatchMerge not counted)."""
        return sum(self.stem_mlp_blocks) + self.depth

    def _init_weights(self, pos_embed_init: str) -> None:
        # Relative position tables stay zero, as in the official code (and
        # ViTDet's default for decomposed positions).
        init_linear_layers(self)
        with torch.no_grad():
            if pos_embed_init == 'sincos':
                self.absolute_pos_embed.copy_(
                    build_2d_sincos_pos_embed(self.grid_size, self.embed_dims))
            else:
                trunc_normal_(self.absolute_pos_embed, std=.02)

    def _format(self, x: Tensor, grid: Tuple[int, int]) -> Tensor:
        if self.out_type == 'featmap':
            return units_to_map(x, grid)
        if self.out_type == 'avg_featmap':
            return self.fc_norm(x.mean(dim=1))
        return x

    def forward_stem(
            self,
            x: Tensor,
            ids_keep: Optional[Tensor] = None) -> Tuple[List[Tensor], Tensor]:
        """Patch embedding and the two MLP stages.

        Args:
            x (Tensor): Images ``(B, C, H, W)``.
            ids_keep (Tensor, optional): ``(B, L)`` indices of the units to
                keep (row-major over the ``H/16 x W/16`` grid).

        Returns:
            tuple: The stride-4 and stride-8 stage outputs (before each
            PatchMerge; ``(B, L, 4, 4, C/4)`` and ``(B, L, 2, 2, C/2)``) and
            the stride-16 tokens ``(B, L, C)``.
        """
        x = self.patch_embed(x)
        if ids_keep is not None:
            x = gather_units(x, ids_keep)
        stem_outs = []
        for start, end in self.stem_ranges:
            for block in self.blocks[start:end]:
                x = self._run(block, x)
            stem_outs.append(x)
            x = self.blocks[end](x)
        return stem_outs, x[:, :, 0, 0, :]

    @property
    def mask_token_dims(self) -> int:
        """Width of the mask token of CLIP pretraining: masked units get it
        at the stride-16 stage, after the (unit-local) stem."""
        return self.embed_dims

    def forward_stem_masked(self, x: Tensor, mask: Tensor,
                            mask_token: Tensor) -> Tuple[List[Tensor], Tensor]:
        """The stem on all units, then masked stride-16 tokens replaced by
        ``mask_token`` (the stride-4/8 laterals keep the masked units'
        features, as in the official CLIP pretraining)."""
        stem_outs, x = self.forward_stem(x)
        weight = mask.unsqueeze(-1).to(x.dtype)
        return stem_outs, x * (1 - weight) + mask_token.to(x.dtype) * weight

    def forward_main(
        self,
        x: Tensor,
        grid: Tuple[int, int],
        ids_keep: Optional[Tensor] = None,
        collect: Sequence[int] = ()
    ) -> Tuple[Tensor, List[Tensor]]:
        """Position embedding and the attention stage on ``(B, L, C)``.

        Args:
            x (Tensor): Stride-16 tokens from :meth:`forward_stem`.
            grid (tuple[int, int]): Unit grid of the input.
            ids_keep (Tensor, optional): Kept units, as for the stem.
            collect (Sequence[int]): Attention blocks (0-based) whose
                outputs are returned too, e.g. for auxiliary heads.

        Returns:
            tuple: The final tokens and the collected block outputs.
        """
        pos_embed = resize_pos_embed(self.absolute_pos_embed, self.grid_size,
                                     grid)
        if ids_keep is not None and self.ape_resample_offset:
            pos_embed = resample_with_offset(pos_embed, grid,
                                             self.ape_resample_offset)
        if ids_keep is not None:
            pos_embed = gather_units(
                pos_embed.expand(x.shape[0], -1, -1), ids_keep)
        x = self.pos_drop(x + pos_embed)
        rel_pos_index = window_rel_pos_index = None
        if self.rel_pos_type == 'bias_table':
            rel_pos_index = gather_rel_pos_index(grid, ids_keep, x.device)
            if self.window_size:
                window_rel_pos_index = gather_rel_pos_index(
                    (self.window_size, ) * 2, None, x.device)
        if self.window_size and ids_keep is not None:
            raise ValueError('Window attention needs the full unit grid; '
                             'masked pretraining uses global attention.')
        collected = []
        for index, block in enumerate(self.blocks[self.main_start:]):
            if self._windowed(index):
                x = self._run(block, x, grid, window_rel_pos_index,
                              self.window_size)
            else:
                x = self._run(block, x, grid, rel_pos_index)
            if index in collect:
                collected.append(x)
        return x, collected

    def forward(self,
                x: Tensor,
                ids_keep: Optional[Tensor] = None) -> Tuple[Tensor, ...]:
        """Encode images, optionally keeping only the units ``ids_keep``.

        Args:
            x (Tensor): Images ``(B, C, H, W)``; H and W multiples of 16.
            ids_keep (Tensor, optional): ``(B, L)`` kept unit indices; needs
                ``out_type='raw'``.

        Returns:
            tuple[Tensor]: One output per entry of ``out_indices``.
        """
        grid = self.grid_of(x.shape[2], x.shape[3])
        if ids_keep is not None and self.out_type != 'raw':
            raise ValueError("Masked forward (ids_keep) needs out_type='raw'; "
                             'dropped units have no place in a feature map.')
        stem_outs, x = self.forward_stem(x, ids_keep)
        x, _ = self.forward_main(x, grid, ids_keep)
        stage_outs = stem_outs + [x]
        return tuple(
            self._format(stage_outs[i], grid) for i in self.out_indices)

    def get_layer_depth(self,
                        param_name: str,
                        prefix: str = '') -> Tuple[int, int]:
        """Layer id of a parameter for layer-wise learning-rate decay.

        Every stem MLP block and attention block is a layer; a PatchMerge
        shares the id of the block before it. Embeddings get 0; everything
        else (``fc_norm``, necks, heads) gets ``num_layers - 1``, i.e. no
        decay. Compatible with mmpretrain's
        ``LearningRateDecayOptimWrapperConstructor``.

        Args:
            param_name (str): Parameter name, e.g. ``'backbone.blocks.3.x'``.
            prefix (str): Prefix of this backbone in ``param_name``.

        Returns:
            tuple[int, int]: The layer id and the number of layer ids
            (``num_layers + 2``).
        """
        total = self.num_layers + 2
        if not param_name.startswith(prefix):
            return total - 1, total
        name = param_name[len(prefix):]
        if name == 'absolute_pos_embed' or name.startswith('patch_embed.'):
            return 0, total
        if name.startswith('blocks.'):
            index = int(name.split('.')[1])
            merges_before = sum(end < index for _, end in self.stem_ranges)
            is_merge = any(end == index for _, end in self.stem_ranges)
            return index - merges_before + (0 if is_merge else 1), total
        return total - 1, total
