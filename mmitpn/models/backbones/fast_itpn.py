# Copyright (c) mmitpn contributors. All rights reserved.
"""Fast-iTPN: convolutional stem and a SwiGLU attention stage."""
from typing import Dict, Tuple, Union

from torch import nn

from mmitpn.registry import MODELS
from ..utils.fast_itpn_blocks import (ConvMlpBlock, ConvPatchEmbed,
                                      ConvPatchMerge, SwiGLUAttentionBlock)
from .unit_pyramid_backbone import (ArchSettings, UnitPyramidBackbone,
                                    arch_settings)


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
    take them unchanged. Like HiViT's, the stem never crosses a unit
    boundary (1x1 convolutions, 2x2 stride-2 merges), so masked pixel
    pretraining drops hidden units in every stage; pretraining that keeps
    all units (CLIP targets) fills masked units with the mask token right
    after the patch embedding (``mask_token_stage='embed'``, mmitpn's
    reading of the unreleased Fast-iTPN pretraining). Every argument of
    :class:`UnitPyramidBackbone` applies (ViTDet windows included); Fast-iTPN's
    own and its defaults are:

    Args:
        arch (str | dict): One of :attr:`arch_zoo` or a dict (see
            :class:`UnitPyramidBackbone`). Defaults to ``'fast-itpn-base'``.
        mlp_ratio (float): Hidden ratio of the SwiGLU MLPs. Defaults to 3.
        layer_scale_init_value (float): Layer scale of the attention blocks;
            0 disables it. Defaults to 0.1 (the released models).
        pos_embed_init (str): Defaults to ``'trunc_normal'`` (official).
        upcast_attention (bool): q·k and softmax in float32 under autocast,
            as the official code (the fused kernel runs in float32 then);
            False runs attention in the compute dtype (bf16/fp16 flash
            attention on GPUs). Defaults to True.
        **kwargs: Any other argument of :class:`UnitPyramidBackbone`.
    """

    arch_zoo: Dict[str, ArchSettings] = {
        'fast-itpn-tiny': arch_settings(384, (1, 1), 12, 6),
        'fast-itpn-small': arch_settings(384, (2, 2), 20, 6),
        'fast-itpn-base': arch_settings(512, (3, 3), 24, 8),
        'fast-itpn-large': arch_settings(768, (2, 2), 40, 12),
    }
    pos_embed_name = 'pos_embed'
    stem_layout = 'map'
    mask_token_stage = 'embed'
    merge_is_layer = True  # the official get_num_layers counts every block

    def __init__(self,
                 arch: Union[str, ArchSettings] = 'fast-itpn-base',
                 mlp_ratio: float = 3.,
                 layer_scale_init_value: float = 0.1,
                 pos_embed_init: str = 'trunc_normal',
                 upcast_attention: bool = True,
                 **kwargs) -> None:
        super().__init__(
            arch,
            mlp_ratio=mlp_ratio,
            layer_scale_init_value=layer_scale_init_value,
            pos_embed_init=pos_embed_init,
            upcast_attention=upcast_attention,
            **kwargs)

    def build_patch_embed(self, in_channels: int, dims: int) -> nn.Module:
        return ConvPatchEmbed(in_channels, dims)

    def build_stem_block(self, dims: int, drop_path: float) -> nn.Module:
        settings = self.block_settings
        return ConvMlpBlock(dims, settings['stem_mlp_ratio'], settings['drop'],
                            drop_path, settings['norm_eps'])

    def build_merge(self, dims: int) -> nn.Module:
        return ConvPatchMerge(dims, self.block_settings['norm_eps'])

    def build_main_block(self, index: int, drop_path: float,
                         grid_size: Tuple[int, int]) -> nn.Module:
        settings = dict(self.block_settings)
        del settings['stem_mlp_ratio']
        return SwiGLUAttentionBlock(
            self.embed_dims, self.num_heads, drop_path=drop_path, **settings)
