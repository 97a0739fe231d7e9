# Copyright (c) mmitpn contributors. All rights reserved.
"""The template of HiViT-family backbones: a stem at stride 4 and 8 joined by
merges inside 16x16 units, then a main stage at stride 16 with an absolute
position embedding; one flat ``blocks`` list."""
import warnings
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.model import BaseModule
from mmengine.model.weight_init import trunc_normal_
from mmpretrain.models.utils import to_2tuple
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from ..utils.position_encoding import (build_2d_sincos_pos_embed,
                                       resample_with_offset, resize_pos_embed)
from ..utils.token_reduction import TokenReduction, build_token_reduction
from ..utils.transformer_blocks import dropout
from ..utils.unit_ops import (fill_masked, gather_units, map_to_units,
                              unit_grid, units_to_map)
from ..utils.weight_init import (check_checkpoint_shapes,
                                 check_pretrained_file, init_linear_layers)
from ..utils.windows import Windows

ArchSettings = Dict[str, Union[int, Tuple[int, int]]]
MASK_TOKEN_STAGES = ('main', 'embed')


def arch_settings(embed_dims: int, stem_mlp_blocks: Tuple[int, int],
                  depth: int, num_heads: int) -> ArchSettings:
    """One entry of an ``arch_zoo``: width, MLP blocks at stride 4 and 8,
    main blocks and attention heads."""
    return dict(
        embed_dims=embed_dims,
        stem_mlp_blocks=stem_mlp_blocks,
        depth=depth,
        num_heads=num_heads)


STEM_LAYOUTS = ('units', 'map')


class UnitPyramidBackbone(BaseModule):
    """Everything HiViT-family backbones share; a family supplies four
    builders (:meth:`build_patch_embed`, :meth:`build_stem_block`,
    :meth:`build_merge`, :meth:`build_main_block`) and three class
    attributes:

    - :attr:`stem_layout`: ``'units'`` if its stem works on the unit
      layout ``(B, N, s, s, C)`` (HiViT), ``'map'`` on NCHW maps
      (Fast-iTPN's convolutions);
    - :attr:`mask_token_stage`: where masked pretraining that keeps every
      unit (CLIP targets) puts its mask token: ``'main'`` replaces the
      masked stride-16 tokens (the official HiViT CLIP code), ``'embed'``
      fills all sub-tokens of a masked unit right after the patch
      embedding (mmitpn's reading of the unreleased Fast-iTPN
      pretraining);
    - :attr:`merge_is_layer`: whether a merge counts as a layer of
      layer-wise lr decay (the official code of each family decides).

    Masked pixel pretraining (``ids_keep``) always *drops* the hidden
    units right after the patch embedding, for every family: the stem must
    be unit-local (per-sub-token MLPs or 1x1 convolutions, 2x2 stride-2
    merges aligned with the units), so the visible units of a ``'map'``
    family are laid side by side as a ``4 x 4L`` map and the stem computes
    exactly what it would compute for them on the full image (tested),
    at a quarter of the cost.

    The template owns the stochastic-depth ramp, the stages and merges,
    the position embedding (resized at run time and on load), relative
    position indices, ViTDet windows, masking, the output formats,
    ``fc_norm``, ``frozen_stages``, ``with_cp`` and ``get_layer_depth``.

    Args:
        arch (str | dict): One of the family's :attr:`arch_zoo` or a dict
            with keys ``embed_dims``, ``stem_mlp_blocks`` (MLP blocks at
            stride 4 and 8, written out), ``depth`` (main blocks) and
            ``num_heads``.
        img_size (int | tuple[int, int]): Input size the position
            parameters are made for; other sizes (multiples of 16, any
            aspect) resize them at run time. Defaults to 224.
        in_channels (int): Image channels. Defaults to 3.
        stem_mlp_ratio (float): Hidden ratio of the stem MLPs. Defaults
            to 3.
        mlp_ratio (float): Hidden ratio of the main-stage MLPs.
        qkv_bias (bool): Biases of the attention projections. Defaults to
            True.
        drop_rate (float): Dropout after MLPs, projections and the position
            embedding. Defaults to 0.
        attn_drop_rate (float): Attention dropout. Defaults to 0.
        drop_path_rate (float): Stochastic depth, ramped linearly over all
            stem and main blocks in order (merges excluded). Defaults to 0.
        layer_scale_init_value (float): Layer scale; 0 disables it.
        norm_eps (float): LayerNorm epsilon. Defaults to 1e-6.
        pos_embed_init (str): ``'sincos'`` or ``'trunc_normal'``.
        pos_embed_trainable (bool): Whether the absolute position embedding
            learns. Defaults to True.
        window_size (int, optional): Attend within non-overlapping windows
            of this many units per side (zero-padded at the borders, as
            ViTDet) in every main block except ``global_blocks``. Defaults
            to None (global attention everywhere).
        global_blocks (Sequence[int]): Main blocks (0-based) that keep
            global attention when ``window_size`` is set. Defaults to ().
        gathering_tokens (int): Token gathering (Fast-iTPN's second
            "flexible design", in mmitpn's reading; see
            :mod:`mmitpn.models.utils.token_gathering`): this many learned
            tokens per image join the main stage; in every main block they
            attend to all tokens and every token attends to them besides
            its window, so windows exchange global information without
            global attention. They start from ``gathering_tokens`` (a new
            parameter, trunc-normal initialised; checkpoints without it
            leave it at its initialisation and say so) and are dropped
            after the main stage. 0 disables it. Defaults to 0.
        token_reduction (dict, optional): Which tokens the main blocks run
            on (see :mod:`mmitpn.models.utils.token_reduction`): None for
            all; ``dict(type='migration', start_block=k, keep_ratio=r)``
            drops the ``1 - r`` most redundant tokens of the grid before
            main block ``k`` (Fast-iTPN's token migration, in mmitpn's
            reading): global blocks run on the kept tokens, windowed blocks
            on the full grid; ``dict(type='window_migration', ...)`` drops
            them within each window (needs ``window_size``), so windowed
            blocks run on the kept tokens too. The outputs hold the full
            grid either way (dropped tokens follow their match, no
            attention in the restore). Training-free: it can be switched on
            for any checkpoint. Not applied with masking (``ids_keep``).
            Defaults to None.
        token_migration (dict, optional): Deprecated spelling of
            ``token_reduction=dict(type='migration', **token_migration)``.
        upcast_attention (bool): q·k and softmax in float32 under autocast.
        fused_attention (bool): Fused attention kernels (flash /
            memory-efficient) wherever they are the faster path; False
            always builds the ``(L, L)`` product (a reference, and for
            export targets without a fused kernel). Defaults to True.
        out_indices (Sequence[int]): Stages to return: 0 (stride 4), 1
            (stride 8), 2 (stride 16). Defaults to ``(2, )``.
        out_type (str): ``'featmap'`` returns NCHW maps; ``'raw'`` the unit
            layouts ``(B, N, 4, 4, D/4)``, ``(B, N, 2, 2, D/2)``,
            ``(B, N, D)`` (the only form with masking, and what the iTPN
            pyramid takes); ``'avg_featmap'`` the mean of the stride-16
            tokens, after ``fc_norm`` if ``final_norm`` (classification).
            Defaults to ``'featmap'``.
        final_norm (bool): With ``out_type='avg_featmap'``, a LayerNorm
            (``fc_norm``) after mean pooling, as in fine-tuning; linear
            probing pools the tokens as they are. Defaults to True.
        frozen_stages (int): -1 freezes nothing, 0 the patch and position
            embeddings, 1-3 also the stages up to that one (frozen parts
            stay in eval mode). Defaults to -1.
        with_cp (bool): Gradient checkpointing of every block. Defaults to
            False.
        init_cfg (dict, optional): mmengine initialisation config, e.g.
            ``dict(type='Pretrained', checkpoint=..., prefix='backbone.')``.
    """

    arch_zoo: Dict[str, ArchSettings] = {}
    out_types = ('featmap', 'raw', 'avg_featmap')
    pos_embed_name = 'absolute_pos_embed'
    resizable_on_load: Tuple[str, ...] = ()
    stem_layout = 'units'
    mask_token_stage = 'main'
    merge_is_layer = False
    # Set by families that have them (HiViT).
    rel_pos_type: Optional[str] = None
    ape_resample_offset = 0.

    def __init__(self,
                 arch: Union[str, ArchSettings],
                 img_size: Union[int, Sequence[int]] = 224,
                 in_channels: int = 3,
                 stem_mlp_ratio: float = 3.,
                 mlp_ratio: float = 4.,
                 qkv_bias: bool = True,
                 drop_rate: float = 0.,
                 attn_drop_rate: float = 0.,
                 drop_path_rate: float = 0.,
                 layer_scale_init_value: float = 0.,
                 norm_eps: float = 1e-6,
                 pos_embed_init: str = 'sincos',
                 pos_embed_trainable: bool = True,
                 window_size: Optional[int] = None,
                 global_blocks: Sequence[int] = (),
                 gathering_tokens: int = 0,
                 token_reduction: Optional[dict] = None,
                 token_migration: Optional[dict] = None,
                 upcast_attention: bool = False,
                 fused_attention: bool = True,
                 out_indices: Sequence[int] = (2, ),
                 out_type: str = 'featmap',
                 final_norm: bool = True,
                 frozen_stages: int = -1,
                 with_cp: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self._set_layout(arch, img_size, out_indices, out_type)
        if pos_embed_init not in ('sincos', 'trunc_normal'):
            raise ValueError("pos_embed_init must be 'sincos' or "
                             f"'trunc_normal', got {pos_embed_init!r}.")
        self.frozen_stages = frozen_stages
        self.with_cp = with_cp
        self.window_size = window_size
        self.global_blocks = tuple(global_blocks)
        if any(not 0 <= i < self.depth for i in self.global_blocks):
            raise ValueError(f'global_blocks {self.global_blocks} are not '
                             f'blocks of the {self.depth}-block main stage.')
        self.token_reduction = self._build_token_reduction(
            token_reduction, token_migration)
        # What the family builders read.
        self.block_settings = dict(
            stem_mlp_ratio=stem_mlp_ratio,
            mlp_ratio=mlp_ratio,
            qkv_bias=qkv_bias,
            drop=drop_rate,
            attn_drop=attn_drop_rate,
            layer_scale_init_value=layer_scale_init_value,
            norm_eps=norm_eps,
            upcast_attention=upcast_attention,
            fused_attention=fused_attention)

        stem_dims = (self.embed_dims // 4, self.embed_dims // 2)
        self.patch_embed = self.build_patch_embed(in_channels, stem_dims[0])
        self.register_parameter(
            self.pos_embed_name,
            nn.Parameter(
                torch.zeros(1, self.grid_size[0] * self.grid_size[1],
                            self.embed_dims),
                requires_grad=pos_embed_trainable))
        self.pos_drop = dropout(drop_rate)

        num_drop_path = sum(self.stem_mlp_blocks) + self.depth
        rates = [
            drop_path_rate * i / max(num_drop_path - 1, 1)
            for i in range(num_drop_path)
        ]
        # Per block (stem blocks, then main blocks), for heads that continue
        # the ramp (the CLIP auxiliary branch).
        self.drop_path_rates = tuple(rates)
        self.blocks = nn.ModuleList()
        # Start and end (the merge's index) of each stem stage in blocks.
        self.stem_ranges: List[Tuple[int, int]] = []
        for dims, num_blocks in zip(stem_dims, self.stem_mlp_blocks):
            start = len(self.blocks)
            for _ in range(num_blocks):
                self.blocks.append(self.build_stem_block(dims, rates.pop(0)))
            self.stem_ranges.append((start, len(self.blocks)))
            self.blocks.append(self.build_merge(dims))
        self.main_start = len(self.blocks)
        for index in range(self.depth):
            grid = (window_size, ) * 2 if self._windowed(index) \
                else self.grid_size
            self.blocks.append(
                self.build_main_block(index, rates.pop(0), grid))
        self.fc_norm = nn.LayerNorm(
            self.embed_dims, eps=norm_eps
        ) if out_type == 'avg_featmap' and final_norm else nn.Identity()
        self.layer_ids = self._layer_ids()
        if gathering_tokens < 0:
            raise ValueError(
                f'gathering_tokens must be >= 0, got {gathering_tokens}.')
        self.gathering_tokens = nn.Parameter(
            torch.zeros(1, gathering_tokens, self.embed_dims)) \
            if gathering_tokens else None

        self._init_weights(pos_embed_init)
        self._freeze_stages()

    # The four builders a family supplies.
    def build_patch_embed(self, in_channels: int, dims: int) -> nn.Module:
        """Stride-4 embedding of the image to ``dims`` channels, in the
        family's :attr:`stem_layout`."""
        raise NotImplementedError

    def build_stem_block(self, dims: int, drop_path: float) -> nn.Module:
        """A stride-4 or stride-8 block of ``dims`` channels."""
        raise NotImplementedError

    def build_merge(self, dims: int) -> nn.Module:
        """2x2 merge inside each unit, ``dims`` -> ``2 * dims`` channels."""
        raise NotImplementedError

    def build_main_block(self, index: int, drop_path: float,
                         grid_size: Tuple[int, int]) -> nn.Module:
        """Main block ``index``, an :class:`AttentionBlock` (subclass) made
        for ``grid_size`` (the window's grid for windowed blocks)."""
        raise NotImplementedError

    def _set_layout(self, arch: Union[str, ArchSettings],
                    img_size: Union[int, Sequence[int]],
                    out_indices: Sequence[int], out_type: str) -> None:
        """Architecture, input grid and output settings, validated."""
        if self.mask_token_stage not in MASK_TOKEN_STAGES or \
                self.stem_layout not in STEM_LAYOUTS:
            raise TypeError(f'{type(self).__name__}: mask_token_stage must be '
                            f'one of {MASK_TOKEN_STAGES} and stem_layout one '
                            f'of {STEM_LAYOUTS}.')
        self.arch_settings = self._parse_arch(arch)
        self.embed_dims = self.arch_settings['embed_dims']
        self.stem_mlp_blocks = tuple(self.arch_settings['stem_mlp_blocks'])
        self.depth = self.arch_settings['depth']
        self.num_heads = self.arch_settings['num_heads']
        if self.embed_dims % 4 != 0:
            raise ValueError(f'embed_dims must be divisible by 4, got '
                             f'{self.embed_dims}.')
        self.img_size = to_2tuple(img_size)
        self.grid_size = unit_grid(*self.img_size)
        self.out_indices = self._parse_out_indices(out_indices)
        if out_type not in self.out_types:
            raise ValueError(f'out_type must be one of {self.out_types}, got '
                             f'{out_type!r}.')
        if out_type == 'avg_featmap' and self.out_indices != (2, ):
            raise ValueError("out_type='avg_featmap' pools the stride-16 "
                             f'stage only; got out_indices={out_indices}.')
        self.out_type = out_type

    @classmethod
    def _parse_arch(cls, arch: Union[str, ArchSettings]) -> ArchSettings:
        if isinstance(arch, str):
            if arch not in cls.arch_zoo:
                raise ValueError(
                    f'Unknown {cls.__name__} arch {arch!r}; choose '
                    f'one of {sorted(cls.arch_zoo)} or pass a '
                    'dict.')
            return dict(cls.arch_zoo[arch])
        required = {'embed_dims', 'stem_mlp_blocks', 'depth', 'num_heads'}
        if not isinstance(arch, dict) or set(arch) != required:
            raise ValueError(f'A custom {cls.__name__} arch must be a dict '
                             'with keys '
                             f'{sorted(required)}, got {arch!r}.')
        if len(arch['stem_mlp_blocks']) != 2:
            raise ValueError('stem_mlp_blocks gives the MLP blocks at stride '
                             f'4 and 8, got {arch["stem_mlp_blocks"]!r}.')
        return dict(arch)

    @staticmethod
    def _parse_out_indices(out_indices: Sequence[int]) -> Tuple[int, ...]:
        if isinstance(out_indices, int):
            out_indices = (out_indices, )
        parsed = []
        for index in out_indices:
            if not -3 <= index <= 2:
                raise ValueError('out_indices select stages 0 (stride 4), 1 '
                                 f'(stride 8) and 2 (stride 16); got {index}.')
            parsed.append(index % 3)
        return tuple(sorted(set(parsed)))

    grid_of = staticmethod(unit_grid)

    def _windowed(self, index: int) -> bool:
        return bool(self.window_size) and index not in self.global_blocks

    def _layer_ids(self) -> Tuple[int, ...]:
        """Layer id of every block: one per block, a merge sharing the id of
        the block before it unless :attr:`merge_is_layer`."""
        merges = {end for _, end in self.stem_ranges}
        ids, current = [], 0
        for index in range(len(self.blocks)):
            if index not in merges or self.merge_is_layer:
                current += 1
            ids.append(current)
        return tuple(ids)

    @property
    def num_layers(self) -> int:
        """Layers of layer-wise lr decay (see :attr:`merge_is_layer`)."""
        return self.layer_ids[-1]

    @property
    def mask_token_dims(self) -> int:
        """Width of the mask token of :attr:`mask_token_stage`: ``D/4``
        after the patch embedding, ``D`` at the stride-16 stage."""
        return self.embed_dims // 4 if self.mask_token_stage == 'embed' \
            else self.embed_dims

    def _build_token_reduction(self, cfg: Optional[dict],
                               deprecated: Optional[dict]) -> TokenReduction:
        if deprecated is not None:
            if cfg is not None:
                raise ValueError('Set token_reduction only; token_migration '
                                 'is its deprecated spelling.')
            if not isinstance(deprecated, dict) or set(deprecated) != {
                    'start_block', 'keep_ratio'
            }:
                raise ValueError('token_migration must be dict(start_block='
                                 f'..., keep_ratio=...), got {deprecated!r}.')
            cfg = dict(type='migration', **deprecated)
            warnings.warn(
                'token_migration is deprecated; write token_reduction='
                f"dict(type='migration', start_block="
                f"{deprecated['start_block']}, keep_ratio="
                f"{deprecated['keep_ratio']}) instead.", FutureWarning)
        reduction = build_token_reduction(cfg)
        reduction.check(self.depth, self.window_size)
        return reduction

    def _init_weights(self, pos_embed_init: str) -> None:
        # Relative position tables stay zero, as in the official code (and
        # ViTDet's default for decomposed positions).
        init_linear_layers(self)
        if self.gathering_tokens is not None:
            trunc_normal_(self.gathering_tokens, std=.02)
        pos_embed = getattr(self, self.pos_embed_name)
        with torch.no_grad():
            if pos_embed_init == 'sincos':
                pos_embed.copy_(
                    build_2d_sincos_pos_embed(self.grid_size, self.embed_dims))
            else:
                trunc_normal_(pos_embed, std=.02)

    def _stem_units(self, x: Tensor, stage: int) -> Tensor:
        """A stem stage's output in unit layout."""
        if self.stem_layout == 'map':
            return map_to_units(x, 4 // 2**stage)
        return x

    def _tokens(self, x: Tensor) -> Tensor:
        """The last merge's output as stride-16 tokens ``(B, N, D)``."""
        if self.stem_layout == 'map':
            return x.flatten(2).transpose(1, 2)
        return x[:, :, 0, 0, :]

    def _keep_units(self, x: Tensor, ids_keep: Tensor) -> Tensor:
        """The patch embedding's visible units, in the stem layout (a
        ``'map'`` family gets them side by side, a ``4 x 4L`` map)."""
        if self.stem_layout == 'units':
            return gather_units(x, ids_keep)
        units = gather_units(map_to_units(x, 4), ids_keep)
        return units_to_map(units, (1, ids_keep.shape[1]))

    def forward_stem(
            self,
            x: Tensor,
            ids_keep: Optional[Tensor] = None,
            mask: Optional[Tensor] = None,
            mask_token: Optional[Tensor] = None
    ) -> Tuple[List[Tensor], Tensor]:
        """Patch embedding and the two stem stages.

        Args:
            x (Tensor): Images ``(B, C, H, W)``.
            ids_keep (Tensor, optional): ``(B, L)`` indices of the visible
                units (row-major over the ``H/16 x W/16`` grid); the others
                are dropped right after the patch embedding.
            mask (Tensor, optional): ``(B, N)`` masked units, all units kept
                (CLIP pretraining): ``mask_token`` goes in at
                :attr:`mask_token_stage`; the stride-4/8 laterals of a
                ``'main'`` family keep the masked units' stem features, as
                the official CLIP pretraining.
            mask_token (Tensor, optional): :attr:`mask_token_dims` values.

        Returns:
            tuple: The stride-4 and stride-8 stage outputs (before each
            merge; ``(B, L, 4, 4, D/4)`` and ``(B, L, 2, 2, D/2)``) and the
            stride-16 tokens ``(B, L, D)``.
        """
        if ids_keep is not None and mask is not None:
            raise ValueError('Pass ids_keep (visible units only) or mask (all '
                             'units, masked ones get a token), not both.')
        if mask is not None and mask_token is None:
            raise ValueError('A mask needs the mask_token that replaces the '
                             'masked units.')
        x = self.patch_embed(x)
        if ids_keep is not None:
            x = self._keep_units(x, ids_keep)
        elif mask is not None and self.mask_token_stage == 'embed':
            x = fill_masked(x, mask, mask_token)
        stem_outs = []
        for stage, (start, end) in enumerate(self.stem_ranges):
            for block in self.blocks[start:end]:
                x = self._run(block, x)
            stem_outs.append(self._stem_units(x, stage))
            x = self.blocks[end](x)
        tokens = self._tokens(x)
        if mask is not None and self.mask_token_stage == 'main':
            tokens = fill_masked(tokens, mask, mask_token)
        return stem_outs, tokens

    def forward_main(
        self,
        x: Tensor,
        grid: Tuple[int, int],
        ids_keep: Optional[Tensor] = None,
        collect: Sequence[int] = ()
    ) -> Tuple[Tensor, List[Tensor]]:
        """Position embedding and the main stage on ``(B, L, D)``.

        Args:
            x (Tensor): Stride-16 tokens from :meth:`forward_stem`.
            grid (tuple[int, int]): Unit grid of the input.
            ids_keep (Tensor, optional): Visible units, as for the stem.
            collect (Sequence[int]): Main blocks (0-based) whose outputs are
                returned too (full grid), e.g. for auxiliary heads.

        Returns:
            tuple: The final tokens and the collected block outputs.
        """
        if ids_keep is not None and (self.window_size
                                     or self.gathering_tokens is not None):
            raise ValueError('Window attention and gathering tokens need the '
                             'full unit grid; masked pretraining uses global '
                             'attention.')
        x = self.pos_drop(x + self._position_embedding(x, grid, ids_keep))
        reduction = self.token_reduction if ids_keep is None \
            else TokenReduction()
        tokens = reduction.begin(x, grid, ids_keep, self.rel_pos_type,
                                 self.window_size)
        gather = None if self.gathering_tokens is None else \
            self.gathering_tokens.expand(x.shape[0], -1, -1)
        collected = []
        for index, block in enumerate(self.blocks[self.main_start:]):
            windowed = self._windowed(index)
            tokens.keep(index)
            x, rel_pos, windows = tokens.block_input(windowed)
            x, gather = self._run_main_block(block, x, gather, grid, rel_pos,
                                             windows)
            tokens.block_output(x, windowed)
            if index in collect:
                collected.append(tokens.restore())
        return tokens.restore(), collected

    def _position_embedding(self, x: Tensor, grid: Tuple[int, int],
                            ids_keep: Optional[Tensor]) -> Tensor:
        """The absolute position embedding of the tokens ``x``."""
        pos_embed = resize_pos_embed(
            getattr(self, self.pos_embed_name), self.grid_size, grid)
        if ids_keep is None:
            return pos_embed
        if self.ape_resample_offset:
            pos_embed = resample_with_offset(pos_embed, grid,
                                             self.ape_resample_offset)
        return gather_units(pos_embed.expand(x.shape[0], -1, -1), ids_keep)

    def _run_main_block(
            self, block: nn.Module, x: Tensor, gather: Optional[Tensor],
            grid: Tuple[int, int], rel_pos: Optional[Tensor],
            windows: Optional[Windows]) -> Tuple[Tensor, Optional[Tensor]]:
        if gather is None:
            return self._run(block, x, grid, rel_pos, windows), None
        return self._run(block.forward_gathered, x, gather, grid, rel_pos,
                         windows)

    def _format(self, x: Tensor, grid: Tuple[int, int]) -> Tensor:
        if self.out_type == 'featmap':
            return units_to_map(x, grid)
        if self.out_type == 'avg_featmap':
            return self.fc_norm(x.mean(dim=1))
        return x

    def forward(self,
                x: Tensor,
                ids_keep: Optional[Tensor] = None) -> Tuple[Tensor, ...]:
        """Encode images, optionally keeping only the units ``ids_keep``.

        Args:
            x (Tensor): Images ``(B, C, H, W)``; H and W multiples of 16.
            ids_keep (Tensor, optional): ``(B, L)`` visible unit indices;
                needs ``out_type='raw'``.

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

        Embeddings get 0, block ``i`` its :attr:`layer_ids` entry,
        everything else (``fc_norm``, necks, heads) ``num_layers + 1``,
        i.e. no decay. Compatible with mmpretrain's
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
        if name == self.pos_embed_name or name.startswith('patch_embed.'):
            return 0, total
        if name.startswith('blocks.'):
            return self.layer_ids[int(name.split('.')[1])], total
        return total - 1, total

    def init_weights(self) -> None:
        check_pretrained_file(self.init_cfg, type(self).__name__)
        super().init_weights()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Checkpoints made at another resolution (e.g. 224 pretraining for a
        # 512 segmentor) hold a square position embedding of another grid;
        # resize it here as the forward would.
        key = prefix + self.pos_embed_name
        if key in state_dict:
            pos_embed = state_dict[key]
            own = getattr(self, self.pos_embed_name)
            if (pos_embed.dim() == 3 and pos_embed.shape[-1] == own.shape[-1]
                    and pos_embed.shape[1] != own.shape[1]):
                side = round(pos_embed.shape[1]**0.5)
                if side * side != pos_embed.shape[1]:
                    raise ValueError(
                        f'{key}: cannot infer the square grid of a position '
                        f'embedding with {pos_embed.shape[1]} tokens.')
                state_dict[key] = resize_pos_embed(pos_embed, (side, side),
                                                   self.grid_size)
        check_checkpoint_shapes(
            self, state_dict, prefix, resizable=self.resizable_on_load)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _frozen_modules(self) -> List[nn.Module]:
        if self.frozen_stages < 0:
            return []
        modules: List[nn.Module] = [self.patch_embed, self.pos_drop]
        stage_ends = [end for _, end in self.stem_ranges] + [len(self.blocks)]
        last = stage_ends[min(self.frozen_stages, 3) - 1] \
            if self.frozen_stages > 0 else 0
        # A merge opens the stage after it, so a frozen stage 1 keeps the
        # first merge trainable.
        modules += list(self.blocks[:last])
        if self.frozen_stages >= 3:
            modules.append(self.fc_norm)
        return modules

    def _freeze_stages(self) -> None:
        if self.frozen_stages < 0:
            return
        getattr(self, self.pos_embed_name).requires_grad = False
        for module in self._frozen_modules():
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True) -> 'UnitPyramidBackbone':
        super().train(mode)
        for module in self._frozen_modules():
            module.eval()
        return self

    def _run(self, block: Callable, x: Tensor, *args):
        if self.with_cp and self.training and x.requires_grad:
            return checkpoint(block, x, *args, use_reentrant=False)
        return block(x, *args)
