# Copyright (c) mmitpn contributors. All rights reserved.
"""iTPN pretraining: HiViT and its feature pyramid trained together."""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.model.weight_init import trunc_normal_
from mmpretrain.models import BaseSelfSupervisor
from mmpretrain.models.utils import CosineEMA
from torch import Tensor, nn

from mmitpn.registry import MODELS
from mmitpn.utils import sample_noise
from ..backbones.unit_pyramid_backbone import UnitPyramidBackbone
from ..utils.builder import build_part

DEFAULT_PREPROCESSOR = dict(
    type='mmpretrain.SelfSupDataPreprocessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True)


class iTPNBase(BaseSelfSupervisor):
    """Backbone and pyramid shared by the iTPN objectives.

    An mmpretrain ``BaseSelfSupervisor`` (its ``forward`` modes
    ``'tensor'`` and ``'loss'``, ``get_layer_depth`` and data preprocessor
    handling) whose backbone must be of the HiViT family and whose features
    are the pyramid's; each subclass adds its heads and ``loss``.

    The checkpoint keys ``backbone.*`` (:class:`HiViT`) and ``neck.*``
    (:class:`iTPNPyramid`) are exactly those the classification, detection
    and segmentation configs load.

    Args:
        backbone (dict): A HiViT-family backbone (:class:`HiViT`,
            :class:`FastiTPN`); ``out_indices=(0, 1, 2)`` and
            ``out_type='raw'`` are filled in (and required).
        neck (dict, optional): iTPNPyramid config; None feeds the raw
            backbone stages to the heads (the MAE-style baseline without
            pyramid).
        data_preprocessor (dict, optional): Defaults to mmpretrain's
            ``SelfSupDataPreprocessor`` with ImageNet mean and std.
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self,
                 backbone: dict,
                 neck: Optional[dict],
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        backbone = dict(backbone)
        backbone.setdefault('out_indices', (0, 1, 2))
        backbone.setdefault('out_type', 'raw')
        if tuple(backbone['out_indices']) != (0, 1, 2) or \
                backbone['out_type'] != 'raw':
            raise ValueError('iTPN pretraining feeds all three HiViT stages '
                             "to the pyramid: use out_indices=(0, 1, 2) and "
                             "out_type='raw'.")
        backbone_module = build_part(backbone)
        if not isinstance(backbone_module, UnitPyramidBackbone):
            raise TypeError(
                f'{type(self).__name__} needs a HiViT-family backbone '
                '(mmitpn.HiViT, mmitpn.FastiTPN), got '
                f'{backbone.get("type")!r}.')
        neck_module = build_part(neck) if neck is not None else None
        if neck_module is not None and \
                neck_module.embed_dims != backbone_module.embed_dims:
            raise ValueError(
                f'neck.embed_dims={neck_module.embed_dims} does not match '
                f'the backbone width {backbone_module.embed_dims}.')
        super().__init__(
            backbone=backbone_module,
            neck=neck_module,
            data_preprocessor=data_preprocessor or dict(DEFAULT_PREPROCESSOR),
            init_cfg=init_cfg)

    @property
    def grid_size(self) -> Tuple[int, int]:
        """Unit grid of the configured input size."""
        return self.backbone.grid_size

    def extract_feat(self, inputs: Tensor) -> Tuple[Tensor, ...]:
        """Pyramid P4, P8, P16 of full images (unit layout)."""
        return self.levels(self.backbone(inputs))

    def levels(self, backbone_outs: Sequence[Tensor]) -> Sequence[Tensor]:
        """The pyramid of the backbone outputs, or the outputs themselves
        for a model without pyramid (MAE-style baseline)."""
        return backbone_outs if self.neck is None else self.neck(backbone_outs)

    def _refuse(self, reason: str) -> None:
        """A combination of this algorithm and its backbone that cannot
        work, refused when the config is built."""
        raise ValueError(f'{type(self).__name__} with backbone '
                         f'{type(self.backbone).__name__}: {reason}')


@MODELS.register_module()
class iTPN(iTPNBase):
    """iTPN with pixel reconstruction, optionally plus masked feature
    modelling against a moving-averaged teacher.

    ``pixel`` (as released): 75 % of the units are dropped (MAE random
    masking) in every stage of the backbone (HiViT or Fast-iTPN, whose
    stems are unit-local) and in the pyramid; the fused pixel decoder
    (``head``) reconstructs their normalised pixels.

    ``pixel + MFM`` (the paper's description; the released code has none):
    with ``mfm_head`` set, an exponential moving average of the backbone
    (``teacher``, in eval mode, outside the optimizer, saved in checkpoints)
    encodes the full image, and each pyramid level predicts the teacher's
    features of its stride at the masked units. ``ema`` follows mmpretrain's
    ``CosineEMA``: ``teacher = (1 - m) * teacher + m * backbone`` after every
    step, with ``m`` cosine-annealed from ``momentum`` to ``end_momentum``
    over training (0.004 -> 0 is BYOL's 0.996 -> 1).

    Args:
        backbone (dict): HiViT or FastiTPN config (global attention: the
            main stage sees the visible units only).
        neck (dict): iTPNPyramid config.
        head (dict): iTPNPixelHead config.
        mask_ratio (float): Fraction of units masked. Defaults to 0.75.
        mfm_head (dict, optional): iTPNMFMHead config; enables MFM.
        ema (dict, optional): ``momentum`` and ``end_momentum`` of the
            teacher. Defaults to ``dict(momentum=0.004, end_momentum=0.)``.
        data_preprocessor (dict, optional): See :class:`iTPNBase`.
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: dict,
                 mask_ratio: float = 0.75,
                 mfm_head: Optional[dict] = None,
                 ema: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(backbone, neck, data_preprocessor, init_cfg)
        if not 0 < mask_ratio < 1:
            raise ValueError(
                f'mask_ratio must be in (0, 1), got {mask_ratio}.')
        self.mask_ratio = mask_ratio
        self._check_visible_units(self.grid_size)
        if self.backbone.window_size or \
                self.backbone.gathering_tokens is not None or \
                self.backbone.token_reduction.start_block is not None:
            self._refuse('masked pretraining runs the main stage on the '
                         'visible units only, which have no windows and '
                         'nothing redundant to drop; remove window_size, '
                         'gathering_tokens and token_reduction (they are for '
                         'dense fine-tuning and inference).')
        self.head = build_part(head)
        self.mfm_head = None
        if mfm_head is not None:
            if self.neck is None:
                raise ValueError('MFM supervises the pyramid levels: it needs '
                                 'a neck.')
            self.mfm_head = build_part(mfm_head)
            dims = self.backbone.embed_dims
            expected = (dims // 4, dims // 2, dims)
            if tuple(self.mfm_head.teacher_dims) != expected:
                raise ValueError(
                    f'mfm_head.teacher_dims={self.mfm_head.teacher_dims} '
                    f'does not match the teacher (the backbone) {expected}.')
            self.teacher = CosineEMA(self.backbone,
                                     **(ema or dict(momentum=0.004)))
            self.teacher.eval()
        elif ema is not None:
            raise ValueError('ema configures the MFM teacher; set mfm_head.')

    def _check_visible_units(self, grid: Tuple[int, int]) -> int:
        num_units = grid[0] * grid[1]
        num_visible = int(num_units * (1 - self.mask_ratio))
        if num_visible < 1:
            raise ValueError(
                f'mask_ratio {self.mask_ratio} leaves no visible unit of the '
                f'{grid[0]}x{grid[1]} grid; lower it or enlarge the input.')
        return num_visible

    def train(self, mode: bool = True) -> 'iTPN':
        super().train(mode)
        if self.mfm_head is not None:
            self.teacher.eval()
        return self

    def random_masking(
        self,
        batch_size: int,
        grid: Tuple[int, int],
        device: torch.device,
        sample_ids: Optional[Sequence[int]] = None
    ) -> Tuple[Tensor, Tensor, Tensor]:
        """MAE random masking of the units.

        Args:
            batch_size (int): Images.
            grid (tuple[int, int]): Unit grid.
            device (torch.device): Where the masks go.
            sample_ids (Sequence[int], optional): Dataset indices of the
                images: the noise of each then depends only on the seed,
                the iteration and the index (see
                :func:`mmitpn.utils.sample_noise`),
                so any split of a global batch over processes masks it the
                same way. Without them the global generator draws it.

        Returns:
            tuple[Tensor]: ``ids_keep`` ``(B, L)``, ``ids_restore``
            ``(B, N)`` and ``mask`` ``(B, N)`` (1 for masked units).
        """
        num_units = grid[0] * grid[1]
        num_visible = self._check_visible_units(grid)
        noise = torch.rand(batch_size, num_units, device=device) \
            if sample_ids is None else sample_noise(sample_ids, num_units,
                                                    device)
        ids_shuffle = noise.argsort(dim=1)
        ids_restore = ids_shuffle.argsort(dim=1)
        mask = torch.ones(batch_size, num_units, device=device)
        mask[:, :num_visible] = 0
        return ids_shuffle[:, :num_visible], ids_restore, mask.gather(
            1, ids_restore)

    def loss(self,
             inputs: Tensor,
             data_samples: Optional[List] = None) -> Dict[str, Tensor]:
        grid = self.backbone.grid_of(inputs.shape[2], inputs.shape[3])
        sample_ids = [s.sample_idx for s in data_samples] \
            if data_samples and all('sample_idx' in s
                                    for s in data_samples) else None
        ids_keep, ids_restore, mask = self.random_masking(
            inputs.shape[0], grid, inputs.device, sample_ids)
        levels = self.levels(self.backbone(inputs, ids_keep))
        losses = dict(
            loss_pixel=self.head.loss(levels, inputs, mask, ids_restore))
        if self.mfm_head is not None:
            with torch.no_grad():
                self.teacher.update_parameters(self.backbone)
                teacher_outs = self.teacher.module(inputs)
            losses.update(
                self.mfm_head.loss(levels, teacher_outs, mask, ids_restore,
                                   grid))
        return losses

    @torch.no_grad()
    def reconstruct(self, inputs: Tensor) -> Tuple[Tensor, Tensor]:
        """Masked forward for visualisation.

        Returns:
            tuple[Tensor]: Predicted pixels ``(B, N, 16*16*C)`` (normalised
            per unit when ``head.norm_pix``) and the mask ``(B, N)``.
        """
        grid = self.backbone.grid_of(inputs.shape[2], inputs.shape[3])
        ids_keep, ids_restore, mask = self.random_masking(
            inputs.shape[0], grid, inputs.device)
        levels = self.levels(self.backbone(inputs, ids_keep))
        return self.head(levels, ids_restore, grid), mask


@MODELS.register_module()
class iTPNCLIP(iTPNBase):
    """iTPN with CLIP features as targets (as released).

    Block-wise masks come from the data pipeline (mmpretrain's
    ``BEiTMaskGenerator``, packed as ``data_sample.mask``). Units are not
    dropped: the stem runs on all units and at the attention stage the
    masked tokens are replaced by a learned ``mask_token``. The pyramid's
    stride-4/8 laterals therefore see the masked units' stem features, as
    in the official code. The frozen CLIP ``teacher`` sees the same crop
    with CLIP normalisation.

    With a :class:`FastiTPN` backbone (Fast-iTPN pretraining, mmitpn's
    reading of the paper, whose code is not released) the ``D/4``-wide mask
    token fills all 16 sub-tokens of each masked unit right after the patch
    embedding, so nothing of a masked unit reaches any stage; the rest of
    the objective is the same.

    Args:
        backbone (dict): HiViT config (the official recipe uses relative
            position bias and layer scale 0.1) or FastiTPN config.
        neck (dict): iTPNPyramid config (``fpn_depth=1`` officially).
        head (dict): iTPNCLIPHead config.
        teacher (dict): CLIPTeacher config with a local ``ckpt``.
        aux_block (int, optional): Main-stage block feeding the auxiliary
            branch. Defaults to ``int(0.75 * depth)``.
        data_preprocessor (dict, optional): See :class:`iTPNBase`.
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: dict,
                 teacher: dict,
                 aux_block: Optional[int] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(backbone, neck, data_preprocessor, init_cfg)
        self.aux_block = int(0.75 * self.backbone.depth) \
            if aux_block is None else aux_block
        if not 0 <= self.aux_block < self.backbone.depth:
            raise ValueError(f'aux_block {self.aux_block} is not a block of '
                             f'the {self.backbone.depth}-block main stage.')
        self.mask_token = nn.Parameter(
            torch.zeros(1, 1, self.backbone.mask_token_dims))
        trunc_normal_(self.mask_token, std=.02)
        head = dict(head)
        if head.get('aux_drop_path_rates') is None:
            head['aux_drop_path_rates'] = self.continued_drop_path(
                head.get('aux_depth', 2))
        self.head = build_part(head)
        teacher = dict(teacher)
        teacher.setdefault('grid_size', self.grid_size)
        self.teacher = build_part(teacher)
        if self.teacher.embed_dim != self.head.teacher_dims:
            raise ValueError(
                f'The teacher ({teacher.get("model_name")}) gives '
                f'{self.teacher.embed_dim}-dim features but '
                f'head.teacher_dims={self.head.teacher_dims}.')

    def continued_drop_path(self, num_blocks: int) -> List[float]:
        """Stochastic depth of auxiliary blocks that branch off after main
        block ``aux_block``: the backbone's linear ramp continued, i.e. the
        rates of the main blocks they stand beside (official)."""
        rates = self.backbone.drop_path_rates
        branch = len(rates) - self.backbone.depth + self.aux_block
        step = rates[1] - rates[0] if len(rates) > 1 else 0.
        return [rates[branch] + step * (i + 1) for i in range(num_blocks)]

    def split_views(
            self, inputs: Union[Tensor,
                                Sequence[Tensor]]) -> Tuple[Tensor, Tensor]:
        """The student input and the teacher's images in [0, 1].

        With ``mmpretrain.TwoNormDataPreprocessor`` (``second_mean`` 0,
        ``second_std`` 255) the second view is the teacher's own crop (the
        same box, resized with lanczos to its size, as the official code
        does); with a single view the student normalisation is undone and
        the teacher resizes it.
        """
        if isinstance(inputs, Tensor):
            preprocessor = self.data_preprocessor
            return inputs, (inputs * preprocessor.std +
                            preprocessor.mean) / 255.
        if len(inputs) != 2:
            raise ValueError('iTPNCLIP takes one view or two (student, '
                             f'teacher), got {len(inputs)}.')
        return inputs[0], inputs[1]

    @staticmethod
    def _masks(data_samples: Sequence, num_units: int) -> Tensor:
        if not data_samples or 'mask' not in data_samples[0]:
            raise ValueError('iTPNCLIP needs block-wise masks in the data '
                             "samples: add dict(type='mmpretrain."
                             "BEiTMaskGenerator', ...) to the pipeline.")
        mask = torch.stack([torch.as_tensor(s.mask) for s in data_samples])
        mask = mask.flatten(1)
        if mask.shape[1] != num_units:
            raise ValueError(f'The mask covers {mask.shape[1]} units but the '
                             f'input has {num_units}; set BEiTMaskGenerator '
                             'input_size to the unit grid.')
        return mask

    def extract_feat(
            self, inputs: Union[Tensor,
                                Sequence[Tensor]]) -> Tuple[Tensor, ...]:
        """Pyramid P4, P8, P16 of the student view (unit layout)."""
        if not isinstance(inputs, Tensor):
            inputs = inputs[0]
        return super().extract_feat(inputs)

    def loss(self,
             inputs: Union[Tensor, Sequence[Tensor]],
             data_samples: Optional[List] = None) -> Dict[str, Tensor]:
        inputs, teacher_images = self.split_views(inputs)
        grid = self.backbone.grid_of(inputs.shape[2], inputs.shape[3])
        if grid != self.teacher.grid_size:
            raise ValueError(f'Input grid {grid} differs from the teacher '
                             f'grid {self.teacher.grid_size}.')
        mask = self._masks(data_samples, grid[0] * grid[1]).to(inputs.device)
        stem_outs, x = self.backbone.forward_stem(
            inputs, mask=mask, mask_token=self.mask_token)
        collect = (self.aux_block, ) if self.head.aux_depth else ()
        x, collected = self.backbone.forward_main(x, grid, collect=collect)
        aux_tokens = collected[0] if collected else None
        levels = self.levels((*stem_outs, x))
        target = self.teacher(teacher_images)
        return self.head.loss(levels, aux_tokens, target, grid)
