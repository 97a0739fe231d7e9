# Copyright (c) mmitpn contributors. All rights reserved.
"""HiViT: hierarchical vision transformer with MAE-style unit dropping."""
from typing import Dict, Optional, Tuple, Union

from torch import nn

from mmitpn.registry import MODELS
from ..utils.transformer_blocks import AttentionBlock, MlpBlock
from ..utils.unit_ops import PatchEmbed, PatchMerge
from .unit_pyramid_backbone import (ArchSettings, UnitPyramidBackbone,
                                    arch_settings)


@MODELS.register_module()
class HiViT(UnitPyramidBackbone):
    """HiViT backbone, as used by iTPN.

    A 4x4-pixel convolution makes sub-tokens that are grouped into 16x16
    units; two stages of MLP-only blocks (stride 4 and 8, joined by
    :class:`PatchMerge` inside each unit) are followed by a main stage of
    self-attention blocks at stride 16. Nothing mixes units before the
    main stage, so units masked out in pretraining are dropped right after
    the patch embedding and never computed.

    State-dict names follow the official iTPN code: ``patch_embed``, one flat
    ``blocks`` list (stem MLP blocks, PatchMerge, stem MLP blocks,
    PatchMerge, attention blocks), ``absolute_pos_embed`` and ``fc_norm``.
    Every argument of :class:`UnitPyramidBackbone` applies (windows,
    fused attention, outputs, freezing, checkpointing); HiViT's own and its
    defaults are:

    Args:
        arch (str | dict): One of :attr:`arch_zoo` or a dict (see
            :class:`UnitPyramidBackbone`). Defaults to ``'itpn-base'``.
        mlp_ratio (float): MLP ratio of the attention blocks. Defaults to 4.
        pos_embed_init (str): ``'sincos'`` (pixel pretraining) or
            ``'trunc_normal'`` (CLIP pretraining). Defaults to ``'sincos'``.
        pos_embed_trainable (bool): The official code trains the absolute
            position embedding, MAE and mmpretrain freeze it. Defaults to
            True.
        rel_pos_type (str, optional): ``None``, ``'bias_table'`` (HiViT
            relative position bias, works with masking; tables of window
            blocks are sized for the window) or ``'decomposed'``
            (ViTDet-style, full grids only). Defaults to None.
        layer_scale_init_value (float): Layer scale of the stem and attention
            blocks; 0 disables it (CLIP variants use 0.1). Defaults to 0.
        upcast_attention (bool): Attention in float32 under autocast; the
            official HiViT runs it in the compute dtype. Defaults to False.
        ape_resample_offset (float): When units are dropped (masked
            pretraining), resample the absolute position embedding
            bicubically with scale factor ``(g + offset) / g`` per side, as
            the official pixel code does through DINO's interpolation with
            its ``+0.1``: the grid keeps its size but the embedding moves by
            about 1 %. 0 (the default) uses the embedding as it is; 0.1
            reproduces the official pretraining exactly.
        **kwargs: Any other argument of :class:`UnitPyramidBackbone`.
    """

    arch_zoo: Dict[str, ArchSettings] = {
        'itpn-base': arch_settings(512, (3, 3), 24, 8),
        'itpn-large': arch_settings(768, (2, 2), 40, 12),
        'hivit-tiny': arch_settings(384, (2, 2), 10, 6),
        'hivit-small': arch_settings(384, (4, 4), 20, 6),
        'hivit-base': arch_settings(512, (4, 4), 20, 8),
        'mmpretrain-base': arch_settings(512, (4, 4), 24, 8),
    }
    resizable_on_load = ('relative_position_bias_table', )

    def __init__(self,
                 arch: Union[str, ArchSettings] = 'itpn-base',
                 mlp_ratio: float = 4.,
                 pos_embed_init: str = 'sincos',
                 rel_pos_type: Optional[str] = None,
                 layer_scale_init_value: float = 0.,
                 upcast_attention: bool = False,
                 ape_resample_offset: float = 0.,
                 **kwargs) -> None:
        if not 0 <= ape_resample_offset < 1:
            raise ValueError('ape_resample_offset must be in [0, 1), got '
                             f'{ape_resample_offset}.')
        self.ape_resample_offset = ape_resample_offset
        self.rel_pos_type = rel_pos_type
        super().__init__(
            arch,
            mlp_ratio=mlp_ratio,
            pos_embed_init=pos_embed_init,
            layer_scale_init_value=layer_scale_init_value,
            upcast_attention=upcast_attention,
            **kwargs)

    def build_patch_embed(self, in_channels: int, dims: int) -> nn.Module:
        return PatchEmbed(
            in_channels, dims, norm_eps=self.block_settings['norm_eps'])

    def build_stem_block(self, dims: int, drop_path: float) -> nn.Module:
        settings = self.block_settings
        return MlpBlock(dims, settings['stem_mlp_ratio'], settings['drop'],
                        drop_path, settings['layer_scale_init_value'],
                        settings['norm_eps'])

    def build_merge(self, dims: int) -> nn.Module:
        return PatchMerge(dims, self.block_settings['norm_eps'])

    def build_main_block(self, index: int, drop_path: float,
                         grid_size: Tuple[int, int]) -> nn.Module:
        settings = dict(self.block_settings)
        del settings['stem_mlp_ratio']
        return AttentionBlock(
            self.embed_dims,
            self.num_heads,
            drop_path=drop_path,
            rel_pos_type=self.rel_pos_type,
            grid_size=grid_size,
            **settings)
