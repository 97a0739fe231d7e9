# Copyright (c) mmitpn contributors. All rights reserved.
"""Pretraining steps to time: mmitpn's models as configured or encoding
every unit, and mmpretrain 1.2.0's iTPN with the same architecture."""
import os.path as osp
from typing import Callable, Dict, List, Optional, Tuple

import torch
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

from mmitpn.registry import MODELS
from .utils import device

# ``mmitpn``: the config as is; ``mmitpn-mmpretrain-optim``: the same network
# with mmpretrain's optimizer settings; ``mmitpn-full``: every unit encoded
# (no dropping); ``mmpretrain``: mmpretrain's iTPN of the same architecture.
RUNS = ('mmitpn', 'mmitpn-mmpretrain-optim', 'mmitpn-full', 'mmpretrain')
MMPRETRAIN_OPTIMIZER_RUNS = ('mmpretrain', 'mmitpn-mmpretrain-optim')

Step = Callable[[], None]


def mmpretrain_model_cfg(model_cfg: Config) -> dict:
    """mmpretrain's iTPN with the architecture of an mmitpn pixel config.

    Raises:
        ValueError: mmpretrain cannot express the architecture (it doubles
            its stem depths, so odd stem depths have no counterpart).
    """
    from mmitpn.models import HiViT
    backbone = model_cfg.backbone
    arch = HiViT._parse_arch(backbone.arch)
    stem = arch['stem_mlp_blocks']
    if stem[0] % 2 or stem[1] % 2:
        raise ValueError(f'mmpretrain cannot express {stem} stem MLP blocks '
                         '(it doubles its depths); use an even arch such as '
                         'mmpretrain-base.')
    img_size = backbone.get('img_size', 224)
    head = model_cfg.head
    return dict(
        type='iTPN',
        backbone=dict(
            type='iTPNHiViT',
            arch=dict(
                embed_dims=arch['embed_dims'],
                depths=[stem[0] // 2, stem[1] // 2, arch['depth']],
                num_heads=arch['num_heads']),
            img_size=img_size,
            reconstruction_type='pixel',
            mask_ratio=model_cfg.get('mask_ratio', 0.75)),
        neck=dict(
            type='iTPNPretrainDecoder',
            num_patches=(img_size // 16)**2,
            embed_dim=arch['embed_dims'],
            fpn_dim=model_cfg.neck.get('fpn_dim', 256),
            fpn_depth=model_cfg.neck.get('fpn_depth', 2),
            decoder_embed_dim=head.get('decoder_embed_dims', 512),
            decoder_depth=head.get('decoder_depth', 8),
            decoder_num_heads=head.get('decoder_num_heads', 16),
            reconstruction_type='pixel'),
        head=dict(
            type='MAEPretrainHead',
            norm_pix=True,
            patch_size=16,
            loss=dict(type='PixelReconstructionLoss', criterion='L2')))


def mmpretrain_optim_wrapper(cfg: Config) -> dict:
    """mmpretrain's iTPN optimizer settings (its configs' paramwise rules,
    one parameter group per tensor, the default AdamW implementation)."""
    wrapper = {
        key: value
        for key, value in cfg.optim_wrapper.items()
        if key not in ('constructor', 'optimizer', 'paramwise_cfg')
    }
    optimizer = dict(cfg.optim_wrapper.optimizer)
    optimizer.pop('fused', None)
    wrapper.update(
        optimizer=optimizer,
        paramwise_cfg=dict(
            custom_keys={
                'norm': dict(decay_mult=0.0),
                'bias': dict(decay_mult=0.0),
                'pos_embed': dict(decay_mult=0.),
                'mask_token': dict(decay_mult=0.),
            }))
    return wrapper


def full_encoding_loss(model, images: torch.Tensor) -> Dict[str, torch.Tensor]:
    """The pixel objective with every unit encoded (nothing dropped)."""
    grid = model.backbone.grid_of(images.shape[2], images.shape[3])
    num_units = grid[0] * grid[1]
    all_units = torch.arange(num_units, device=images.device)
    all_units = all_units.expand(images.shape[0], -1)
    _, _, mask = model.random_masking(images.shape[0], grid, images.device)
    levels = model.neck(model.backbone(images, all_units))
    return dict(loss_pixel=model.head.loss(levels, images, mask, all_units))


def build_pretrain_model(cfg: Config,
                         run: str) -> Tuple[torch.nn.Module, Callable]:
    """``(model, loss function of a batch of images)`` of one of
    :data:`RUNS`."""
    if run == 'mmpretrain':
        import mmpretrain.models  # noqa: F401
        from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS
        with DefaultScope.overwrite_default_scope('mmpretrain'):
            model = MMPRETRAIN_MODELS.build(mmpretrain_model_cfg(cfg.model))
        return model, lambda images: model.loss(images, None)
    with DefaultScope.overwrite_default_scope('mmitpn'):
        model = MODELS.build(cfg.model)
    if run == 'mmitpn-full':
        return model, lambda images: full_encoding_loss(model, images)
    return model, model.loss


def random_clip_teacher(cfg: Config, folder: str) -> None:
    """Point the config's CLIP teacher at an OpenAI-architecture image tower
    of random weights saved in ``folder``: the same cost, nothing
    downloaded."""
    import open_clip

    from mmitpn.models.target_generators import build_vision_tower
    model_name = cfg.model.teacher.model_name
    config = open_clip.get_model_config(model_name)
    tower = build_vision_tower(
        config['embed_dim'],
        config['vision_cfg'],
        quick_gelu=config.get('quick_gelu', False))
    path = osp.join(folder, f'{model_name}-random.pth')
    torch.save({f'visual.{k}': v for k, v in tower.state_dict().items()}, path)
    cfg.model.teacher.ckpt = path


def random_masks(grid: Tuple[int, int], batch: int, masked: int) -> List:
    """mmpretrain data samples, each with ``masked`` random units of
    ``grid`` masked (what the CLIP objective reads from its data)."""
    from mmpretrain.structures import DataSample
    samples = []
    for _ in range(batch):
        mask = torch.zeros(grid, dtype=torch.bool)
        mask.view(-1)[torch.randperm(grid[0] * grid[1])[:masked]] = True
        sample = DataSample()
        sample.set_field(mask, 'mask')
        samples.append(sample)
    return samples


def pretraining_step(
    cfg: Config,
    run: str = 'mmitpn',
    batch_size: int = 8,
    wrap_optimizer: Optional[Callable[[dict], dict]] = None
) -> Tuple[torch.nn.Module, Step]:
    """``(model, step)``: one training step (forward, backward, optimizer) of
    ``run`` on a batch of random images, on :func:`~.utils.device`.

    The optimizer is the config's, or mmpretrain's settings for
    :data:`MMPRETRAIN_OPTIMIZER_RUNS`, as ``wrap_optimizer`` rewrites it
    (e.g. for mixed precision). A config with a CLIP teacher (set up by
    :func:`random_clip_teacher`) gets two views and a random mask of 75 of
    its units per image, the others random images.
    """
    torch.manual_seed(0)
    model, loss_fn = build_pretrain_model(cfg, run)
    model.to(device()).train()
    MessageHub.get_current_instance().update_info('max_iters', 1000)
    wrapper_cfg = mmpretrain_optim_wrapper(cfg) \
        if run in MMPRETRAIN_OPTIMIZER_RUNS else cfg.optim_wrapper
    with DefaultScope.overwrite_default_scope('mmitpn'):
        optim_wrapper = build_optim_wrapper(
            model,
            wrap_optimizer(wrapper_cfg) if wrap_optimizer else wrapper_cfg)
    size = cfg.model.backbone.get('img_size', 224)
    images = torch.randn(batch_size, 3, size, size, device=device())
    if 'teacher' in cfg.model:
        views = [images, torch.rand_like(images)]
        samples = random_masks((size // 16, size // 16), batch_size, 75)

        def loss_fn(_):
            return model.loss(views, samples)

    def step():
        with optim_wrapper.optim_context(model):
            losses = loss_fn(images)
        optim_wrapper.update_params(
            sum(v for k, v in losses.items() if 'loss' in k))

    return model, step
