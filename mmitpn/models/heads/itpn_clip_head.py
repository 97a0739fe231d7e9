# Copyright (c) mmitpn contributors. All rights reserved.
"""CLIP-feature prediction head of iTPN CLIP pretraining."""
from typing import Optional, Sequence, Tuple

import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmitpn.registry import MODELS
from ..utils.level_decoding import embed_level, level_embeddings
from ..utils.transformer_blocks import AttentionBlock, gather_rel_pos_index
from ..utils.weight_init import init_linear_layers


@MODELS.register_module()
class iTPNCLIPHead(BaseModule):
    """Predict a CLIP teacher's patch features from the pyramid (main) and
    from a late backbone block (auxiliary).

    Main branch: the three levels (all units) are embedded by
    ``decoder_embed`` (LayerNorm + Linear to ``D``, ``D/4``, ``D/16`` per
    sub-token, flattened to ``D`` per unit) and summed, then ``norm`` and
    ``lm_head`` map to the teacher width. Auxiliary branch: the output of
    main-stage block ``int(0.75 * depth)`` passes ``cls_pt_layers`` (two
    attention blocks with relative position bias and layer scale),
    ``norm_cls`` and ``lm_cls_head``. Both are trained with SmoothL1 (beta
    1) against the teacher tokens after a parameter-free LayerNorm, on all
    units, with weights 1:1, as the official code does.

    Args:
        embed_dims (int): Backbone width D. Defaults to 512.
        fpn_dim (int): Pyramid channels. Defaults to 256.
        teacher_dims (int): Teacher width (512 for CLIP ViT-B/16, 768 for
            ViT-L/14). Defaults to 512.
        num_heads (int): Heads of the auxiliary blocks. Defaults to 8.
        aux_depth (int): Auxiliary blocks; 0 disables the auxiliary branch
            (as in mmpretrain). Defaults to 2.
        grid_size (tuple[int, int]): Unit grid the auxiliary relative
            position tables are made for. Defaults to (14, 14).
        layer_scale_init_value (float): Layer scale of the auxiliary blocks.
            Defaults to 0.1.
        norm_eps (float): LayerNorm epsilon of ``decoder_embed``, ``norm``
            and ``norm_cls``. Defaults to 1e-6.
        aux_norm_eps (float): LayerNorm epsilon inside the auxiliary blocks
            (the official code builds them with PyTorch's default, 1e-5).
            Defaults to 1e-5.
        aux_drop_path_rates (Sequence[float], optional): Stochastic depth of
            each auxiliary block. :class:`iTPNCLIP` continues the backbone's
            ramp from the branching block (official); None means 0.
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self,
                 embed_dims: int = 512,
                 fpn_dim: int = 256,
                 teacher_dims: int = 512,
                 num_heads: int = 8,
                 aux_depth: int = 2,
                 grid_size: Sequence[int] = (14, 14),
                 layer_scale_init_value: float = 0.1,
                 norm_eps: float = 1e-6,
                 aux_norm_eps: float = 1e-5,
                 aux_drop_path_rates: Optional[Sequence[float]] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if aux_drop_path_rates is None:
            aux_drop_path_rates = (0., ) * aux_depth
        if len(aux_drop_path_rates) != aux_depth:
            raise ValueError(f'aux_drop_path_rates {aux_drop_path_rates} '
                             f'needs one rate per auxiliary block '
                             f'({aux_depth}).')
        self.teacher_dims = teacher_dims
        self.decoder_embed = level_embeddings(fpn_dim, embed_dims, (16, 8, 4),
                                              norm_eps)
        self.norm = nn.LayerNorm(embed_dims, eps=norm_eps)
        self.lm_head = nn.Linear(embed_dims, teacher_dims)
        self.aux_depth = aux_depth
        if aux_depth > 0:
            self.cls_pt_layers = nn.ModuleList([
                AttentionBlock(
                    embed_dims,
                    num_heads,
                    drop_path=rate,
                    layer_scale_init_value=layer_scale_init_value,
                    rel_pos_type='bias_table',
                    grid_size=tuple(grid_size),
                    norm_eps=aux_norm_eps) for rate in aux_drop_path_rates
            ])
            self.norm_cls = nn.LayerNorm(embed_dims, eps=norm_eps)
            self.lm_cls_head = nn.Linear(embed_dims, teacher_dims)
        # The auxiliary relative position tables stay zero (official).
        init_linear_layers(self)

    def forward(self, levels: Sequence[Tensor], aux_tokens: Optional[Tensor],
                grid_size: Tuple[int, int]) -> Tuple[Tensor, Optional[Tensor]]:
        """Main and auxiliary predictions, each ``(B, N, teacher_dims)``
        (the auxiliary one is None without auxiliary blocks).

        Args:
            levels (Sequence[Tensor]): Pyramid P4, P8, P16 on all units.
            aux_tokens (Tensor): ``(B, N, D)`` output of the backbone block
                that feeds the auxiliary branch.
            grid_size (tuple[int, int]): Unit grid of the input.
        """
        p4, p8, p16 = levels
        x = embed_level(self.decoder_embed[0], p16)
        for embed, level in zip(self.decoder_embed[1:], (p8, p4)):
            x = x + embed_level(embed, level)
        main = self.lm_head(self.norm(x))
        if self.aux_depth == 0:
            return main, None

        rel_pos_index = gather_rel_pos_index(grid_size, None,
                                             aux_tokens.device)
        aux = aux_tokens
        for block in self.cls_pt_layers:
            aux = block(aux, grid_size, rel_pos_index)
        return main, self.lm_cls_head(self.norm_cls(aux))

    def loss(self, levels: Sequence[Tensor], aux_tokens: Optional[Tensor],
             target: Tensor, grid_size: Tuple[int, int]) -> dict:
        """SmoothL1 of both branches against the normalised teacher tokens.

        Args:
            target (Tensor): ``(B, N, teacher_dims)`` teacher patch tokens.
        """
        if target.shape[-1] != self.teacher_dims:
            raise ValueError(
                f'The teacher gives {target.shape[-1]}-dim features but the '
                f'head predicts {self.teacher_dims}; set teacher_dims.')
        main, aux = self(levels, aux_tokens, grid_size)
        target = F.layer_norm(target.float(), target.shape[-1:])
        losses = dict(loss_clip=F.smooth_l1_loss(main.float(), target))
        if aux is not None:
            losses['loss_clip_aux'] = F.smooth_l1_loss(aux.float(), target)
        return losses
