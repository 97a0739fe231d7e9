# Copyright (c) mmitpn contributors. All rights reserved.
"""iTPN's ablations at small scale on CPU, over several seeds.

One small HiViT (128-d, 1 + 1 MLP blocks, 4 attention blocks, 64 px, 4x4
units) is pretrained on Fashion-MNIST training images with each objective:

- ``none``: no pretraining (random initialisation);
- ``mae``: MAE-style masked image modelling on HiViT, the decoder fed by
  the stride-16 tokens only (no pyramid);
- ``itpn-pixel``: iTPN, pixel reconstruction through the pyramid;
- ``itpn-pixel-mfm``: iTPN pixel + masked feature modelling against a
  moving-averaged backbone (mmitpn's reading of the paper);
- ``mfm-*`` (``--mfm-variants``): MFM settings the paper leaves open.

and then, per seed:

- ``probe``: converged linear probes (``mmitpn.evaluation``:
  trust-region Newton logistic regression on mean-pooled features, the
  headline; closed-form ridge on every feature set, the fast check;
  penalties chosen on a
  validation split fixed by the data, never on the test split) on the
  frozen backbone tokens and pyramid levels, mean-pooled and per unit,
  next to raw pixels;
- ``finetune``: end-to-end fine-tuning on Fashion-MNIST (top-1 per epoch);
- ``seg`` / ``det``: the integral-transfer ablation: UperNet and Mask R-CNN
  on the generated shapes sets (``make_shapes_seg.py`` /
  ``make_shapes_coco.py``) from (a) the iTPN checkpoint with its
  pretrained pyramid, (b) the same backbone with a fresh pyramid, (c) the
  MAE-style backbone with a fresh pyramid, (d) no pretraining; validation
  mIoU / mAP at regular intervals.

``--plan prereg`` runs the pre-registered study of
``docs/itpn_study_preregistration.md`` instead (7 epochs on all 60,000
images, probes after epochs 1, 3 and 7, the MFM continuation arms, and
UperNet on composited garments from (a), (b) and (d), its length fixed by
pilot runs) and adds its gates and deciding statistics to the report.

Every training run goes through ``tools/train.py`` with a generated config
kept in its work directory. A run whose ``result.json`` (or record entry)
exists is not repeated, so an interrupted study resumes where it stopped,
in this session or a later one; each run's wall time is logged and
recorded. The report (Markdown tables with mean +- std over seeds, paired
differences with t-based 95 % intervals, matplotlib figures with one band
per variant) is rewritten after every run.

Examples:
    python tools/analysis_tools/itpn_study.py --seeds 0 1 2
    python tools/analysis_tools/itpn_study.py --plan prereg  # ~4 CPU-hours
    python tools/analysis_tools/itpn_study.py --report-only  # tables only
"""
import argparse
import copy
import fcntl
import glob
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import time
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
from mmengine.config import Config

from mmitpn.datasets import FashionMNIST
from mmitpn.utils.cli import add_debug_argument, run_tool
from mmitpn.utils.statistics import paired_difference

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CLS_DATA = osp.join(REPO, 'configs', 'cls', 'demo', '_base_',
                    'fashion-mnist_64px.py')
RUNTIME = osp.join(REPO, 'configs', '_base_', 'default_runtime.py')
CLS_FINETUNE = osp.join(
    REPO, 'configs', 'cls', 'demo',
    'hivit-demo_skimage-pre_1xb64-coslr-6e_fashion-mnist-64px.py')
SEG_DEMO = osp.join(
    REPO, 'configs', 'seg', 'demo',
    'hivit-demo_skimage-pre_upernet_1xb8-1k_shapes-seg-128px.py')
DET_DEMO = osp.join(
    REPO, 'configs', 'det', 'demo',
    'hivit-demo_skimage-pre_mask-rcnn_1xb4-6e_shapes-coco-128px.py')

GARMENT_CLASSES = ('background', ) + FashionMNIST.METAINFO['classes']
DIMS = 128
FPN_DIM = 64
ARCH = dict(embed_dims=DIMS, stem_mlp_blocks=(1, 1), depth=4, num_heads=4)
IMG = 64
OBJECTIVES = ('none', 'mae', 'itpn-pixel', 'itpn-pixel-mfm')
# MFM settings the paper leaves open (each against 'itpn-pixel-mfm':
# teacher momentum 0.01 -> 0, all levels, weight 1, per-unit LayerNorm).
MFM_VARIANTS = {
    'mfm-slow-teacher': dict(ema=dict(momentum=0.001, end_momentum=0.)),
    'mfm-p16-only': dict(level_weights=(0., 0., 1.)),
    'mfm-weight-0.1': dict(level_weights=(.1, .1, .1)),
}
# Integral transfer: (checkpoint's objective, load its pyramid too).
TRANSFER_INITS = {
    'a: iTPN backbone + pyramid': ('itpn-pixel', True),
    'b: iTPN backbone, fresh pyramid': ('itpn-pixel', False),
    'c: MAE-style backbone, fresh pyramid': ('mae', False),
    'd: no pretraining': ('none', False),
}
STAGES = ('pretrain', 'probe', 'finetune', 'seg', 'det')
# The logistic probe runs on mean-pooled features only: on the per-unit ones
# (1,024-12,288 dims) one path of exact fits is too slow on one CPU thread
# (ridge, closed form, covers them).
LOGISTIC_POOLS = ('mean', )

FULL = dict(
    pretrain_images=20000,
    pretrain_epochs=3,
    probe_train_images=10000,
    test_images=10000,
    finetune_images=3000,
    finetune_epochs=3,
    seg_iters=180,
    seg_points=6,
    det_images=80,
    det_epochs=6)
QUICK = dict(
    pretrain_images=256,
    pretrain_epochs=1,
    probe_train_images=256,
    test_images=256,
    finetune_images=256,
    finetune_epochs=1,
    seg_iters=12,
    seg_points=6,
    det_images=16,
    det_epochs=1)
# The pre-registered study (docs/itpn_study_preregistration.md): all 60,000
# training images, 7 epochs, probes of the checkpoints after epochs 1, 3 and
# 7; the MFM arm continues the pixel run's epoch-3 checkpoint to epoch 7.
PREREG = dict(
    probe_max_iter=1000,
    pretrain_images=60000,
    pretrain_epochs=7,
    continue_from=3,
    probe_train_images=20000,
    test_images=10000,
    seg_points=10)
PREREG_QUICK = dict(
    pretrain_images=64,
    pretrain_epochs=2,
    continue_from=1,
    probe_train_images=64,
    test_images=64,
    seg_points=5)
PREREG_OBJECTIVES = ('mae', 'itpn-pixel')
CONTINUATIONS = {'cont-pixel': 'itpn-pixel', 'cont-mfm': 'itpn-pixel-mfm'}
# The pretraining run whose checkpoint the continuation arms start from.
CONTINUATION_START = 'itpn-pixel'
PREREG_SEEDS = (0, 1, 2)
# Dense transfer of pretraining seed k trains with downstream seed 100 + k.
DENSE_SEED_OFFSET = 100
# The initialisations the pre-registered dense transfer trains (G3: b - d;
# C3: a - b; the MAE-style backbone, c, decides nothing and is left out).
PREREG_DENSE_INITS = ('a', 'b', 'd')
# Its length: the first of these iteration counts at which a pilot run of
# (d) on its own canvases (converter seed and downstream seed 99) adds < 1
# mIoU over its last 20 %; no dense run if none does.
DENSE_LENGTHS = (4000, 8000, 16000)
DENSE_LENGTHS_QUICK = (10, )
DENSE_PILOT_SEED = 99


def parse_args(argv: Optional[List[str]] = None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        '--plan',
        choices=('study', 'prereg'),
        default='study',
        help="'study': the 3-epoch ablations; 'prereg': the pre-registered "
        'study of docs/itpn_study_preregistration.md (its own work dir, '
        'record and report)')
    parser.add_argument('--work-dir')
    parser.add_argument('--out', help='Markdown report')
    parser.add_argument(
        '--fig-dir',
        help='where figures go (default: docs/figures, or '
        'docs/figures/itpn_prereg with --plan prereg)')
    parser.add_argument(
        '--record',
        help='JSON file collecting every run\'s result (kept in the '
        'repository, so the report survives a lost work dir; default: '
        'itpn_study_results.json next to --out, or in the work dir with '
        '--quick)')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument(
        '--objectives', nargs='+', choices=OBJECTIVES, default=OBJECTIVES)
    parser.add_argument(
        '--mfm-variants',
        nargs='*',
        choices=tuple(MFM_VARIANTS),
        default=[],
        help='extra MFM settings to pretrain and probe')
    parser.add_argument('--stages', nargs='+', choices=STAGES, default=STAGES)
    parser.add_argument(
        '--quick',
        action='store_true',
        help='tiny budgets (a few minutes; the smoke test)')
    parser.add_argument('--mask-ratio', type=float, default=0.75)
    parser.add_argument(
        '--report-only',
        action='store_true',
        help='rebuild the tables and figures from the record; run nothing')
    parser.add_argument(
        '--fashion-mnist-root',
        help='folder with the Fashion-MNIST IDX files (default: the '
        'Debian package\'s /usr/share/datasets/fashion-mnist)')
    for key, value in FULL.items():
        parser.add_argument(f'--{key.replace("_", "-")}', type=int)
    parser.add_argument('--continue-from', type=int)
    add_debug_argument(parser)
    parser.add_argument(
        '--probe-max-iter',
        type=int,
        help='Newton iteration limit of one logistic fit (default 1000)')
    args = parser.parse_args(argv)
    prereg = args.plan == 'prereg'
    budget = dict(FULL, probe_max_iter=1000)
    if args.quick:
        budget.update(QUICK)
    if prereg:
        budget.update(PREREG_QUICK if args.quick else PREREG)
    for key, value in budget.items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    name = 'itpn_prereg' if prereg else 'itpn_study'
    if args.work_dir is None:
        args.work_dir = osp.join('work_dirs', name)
    if args.out is None:
        args.out = osp.join(
            'docs', 'itpn_study_prereg.md' if prereg else 'itpn_study.md')
    if args.fig_dir is None:
        args.fig_dir = osp.join('docs', 'figures', 'itpn_prereg') \
            if prereg else osp.join('docs', 'figures')
    if args.record is None:
        folder = args.work_dir if args.quick else osp.dirname(args.out)
        args.record = osp.join(
            folder, 'itpn_study_prereg_results.json'
            if prereg else 'itpn_study_results.json')
    return args


# ----------------------------------------------------------------- configs


def schedule(epochs: int, warmup: int, eta_min: float) -> list:
    """Linear warm-up for ``warmup`` epochs, then cosine annealing."""
    warmup = min(warmup, epochs - 1)
    cosine = dict(
        type='CosineAnnealingLR',
        eta_min=eta_min,
        by_epoch=True,
        begin=warmup,
        end=epochs,
        convert_to_iter_based=True)
    if warmup == 0:
        return [cosine]
    return [
        dict(
            type='LinearLR',
            start_factor=1e-3,
            by_epoch=True,
            begin=0,
            end=warmup,
            convert_to_iter_based=True), cosine
    ]


def pretrain_model(objective: str, mask_ratio: float) -> dict:
    model = dict(
        type='mmitpn.iTPN',
        data_preprocessor=dict(
            type='mmpretrain.SelfSupDataPreprocessor',
            mean=[123.675, 116.28, 103.53],
            std=[58.395, 57.12, 57.375],
            to_rgb=False),
        backbone=dict(type='HiViT', arch=ARCH, img_size=IMG),
        neck=dict(
            type='iTPNPyramid', embed_dims=DIMS, fpn_dim=FPN_DIM, fpn_depth=1),
        head=dict(
            type='iTPNPixelHead',
            fpn_dim=FPN_DIM,
            decoder_embed_dims=128,
            decoder_depth=2,
            decoder_num_heads=4,
            img_size=IMG),
        mask_ratio=mask_ratio)
    if objective == 'mae':
        model['neck'] = None
        model['head'].update(fpn_dim=DIMS, levels=(16, ))
    elif objective == 'itpn-pixel-mfm' or objective in MFM_VARIANTS:
        options = copy.deepcopy(MFM_VARIANTS.get(objective, {}))
        model.update(
            mfm_head=dict(
                type='iTPNMFMHead',
                fpn_dim=FPN_DIM,
                teacher_dims=(DIMS // 4, DIMS // 2, DIMS),
                embed_dims=64,
                depth=1,
                num_heads=2,
                level_weights=options.pop('level_weights', (1., 1., 1.)),
                img_size=IMG),
            ema=options.pop('ema', dict(momentum=0.01, end_momentum=0.)))
    return model


def with_root(dataset: dict, args) -> dict:
    """A Fashion-MNIST dataset config reading ``--fashion-mnist-root``."""
    if args.fashion_mnist_root is None:
        return dataset
    return dict(dataset, data_root=args.fashion_mnist_root)


def pretrain_config(objective: str, args, seed: int) -> Config:
    data = Config.fromfile(CLS_DATA)
    pipeline = [
        dict(
            type='mmpretrain.RandomResizedCrop',
            scale=IMG,
            crop_ratio_range=(0.5, 1.0),
            backend='pillow',
            interpolation='bicubic'),
        dict(type='mmpretrain.RandomFlip', prob=0.5),
        dict(type='mmpretrain.PackInputs'),
    ]
    batch = 128
    cfg = Config.fromfile(RUNTIME)
    cfg.merge_from_dict(
        dict(
            model=pretrain_model(objective, args.mask_ratio),
            train_dataloader=dict(
                batch_size=batch,
                num_workers=0,
                sampler=dict(type='DefaultSampler', shuffle=True),
                collate_fn=dict(type='default_collate'),
                dataset=dict(
                    with_root(data.train_dataloader.dataset, args),
                    indices=args.pretrain_images,
                    pipeline=pipeline)),
            optim_wrapper=dict(
                optimizer=dict(
                    type='AdamW',
                    lr=1.5e-4 * batch / 256 * 8,
                    betas=(0.9, 0.95),
                    weight_decay=0.05,
                    fused=True),
                constructor='LayerDecayOptimWrapperConstructor',
                paramwise_cfg=dict(
                    layer_decay_rate=1.0,
                    custom_keys={'mask_token': dict(decay_mult=0.)})),
            param_scheduler=schedule(args.pretrain_epochs, 1, 1e-5),
            train_cfg=dict(
                type='EpochBasedTrainLoop', max_epochs=args.pretrain_epochs),
            default_hooks=dict(
                logger=dict(interval=20),
                checkpoint=pretrain_checkpoints(args)),
            randomness=dict(seed=seed)))
    return cfg


def pretrain_checkpoints(args) -> dict:
    """The last checkpoint (the study), or one after every epoch, weights
    only (the pre-registered plan probes epochs 1, 3 and 7)."""
    if args.plan == 'prereg':
        # The optimiser state too: an interrupted run resumes from its
        # last epoch (a few MB per checkpoint at this size).
        return dict(interval=1, max_keep_ckpts=-1, save_optimizer=True)
    return dict(interval=args.pretrain_epochs, max_keep_ckpts=1)


def lr_after(epoch: int, args) -> float:
    """Learning rate of the pretraining schedule after ``epoch`` epochs
    (1 warm-up epoch, then cosine to 1e-5)."""
    base, eta_min = 1.5e-4 * 128 / 256 * 8, 1e-5
    progress = (epoch - 1) / max(args.pretrain_epochs - 1, 1)
    return eta_min + (base - eta_min) * (1 + np.cos(np.pi * progress)) / 2


def continuation_config(arm: str, checkpoint: str, args, seed: int) -> Config:
    """An arm of the MFM continuation: the pixel run's checkpoint after
    ``continue_from`` epochs trained to ``pretrain_epochs`` with pixel
    reconstruction only (``cont-pixel``) or pixel + MFM (``cont-mfm``).

    Both arms start from the same weights, the learning rate the pixel run
    had there, a fresh AdamW state and the same cosine decay; an MFM
    teacher copies the loaded backbone at its first update.
    """
    cfg = pretrain_config(CONTINUATIONS[arm], args, seed)
    epochs = args.pretrain_epochs - args.continue_from
    cfg.optim_wrapper.optimizer.lr = float(lr_after(args.continue_from, args))
    cfg.param_scheduler = [
        dict(
            type='CosineAnnealingLR',
            eta_min=1e-5,
            by_epoch=True,
            begin=0,
            end=epochs,
            convert_to_iter_based=True)
    ]
    cfg.train_cfg.max_epochs = epochs
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook',
        interval=epochs,
        max_keep_ckpts=1,
        save_optimizer=False)
    cfg.load_from = checkpoint
    return cfg


def finetune_config(checkpoint: Optional[str], args, seed: int) -> Config:
    cfg = Config.fromfile(CLS_FINETUNE)
    backbone = cfg.model.backbone
    backbone.arch = ARCH
    if checkpoint is None:
        backbone.pop('init_cfg')
    else:
        backbone.init_cfg.checkpoint = checkpoint
    cfg.model.head.in_channels = DIMS
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        loader.dataset = with_root(loader.dataset, args)
    cfg.train_dataloader.dataset.indices = args.finetune_images
    cfg.val_dataloader.dataset.indices = args.test_images
    cfg.test_dataloader = cfg.val_dataloader
    epochs = args.finetune_epochs
    cfg.train_cfg.update(max_epochs=epochs, val_interval=1)
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', interval=epochs, max_keep_ckpts=1)
    cfg.param_scheduler = schedule(epochs, 1, 1e-5)
    cfg.randomness = dict(seed=seed)
    return cfg


def _transfer_parts(cfg: Config, checkpoint: Optional[str],
                    with_pyramid: bool) -> None:
    backbone, neck = cfg.model.backbone, cfg.model.neck
    backbone.update(arch=ARCH, img_size=IMG)
    neck.update(embed_dims=DIMS, fpn_dim=FPN_DIM)
    if checkpoint is None:
        backbone.pop('init_cfg')
    else:
        backbone.init_cfg.checkpoint = checkpoint
    if checkpoint is not None and with_pyramid:
        neck.init_cfg.checkpoint = checkpoint
    else:
        neck.pop('init_cfg')


def seg_config(checkpoint, with_pyramid, data_root, args, seed) -> Config:
    cfg = Config.fromfile(SEG_DEMO)
    _transfer_parts(cfg, checkpoint, with_pyramid)
    levels = [FPN_DIM + DIMS // 4, FPN_DIM + DIMS // 2, FPN_DIM + DIMS]
    cfg.model.decode_head.in_channels = levels + levels[-1:]
    cfg.model.auxiliary_head.in_channels = levels[-1]
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        loader.dataset.data_root = data_root
    cfg.test_dataloader = cfg.val_dataloader
    iters = args.seg_iters
    interval = max(1, iters // args.seg_points)
    warmup = max(1, iters // 10)
    cfg.param_scheduler = [
        dict(
            type='LinearLR',
            start_factor=1e-3,
            by_epoch=False,
            begin=0,
            end=warmup),
        dict(
            type='PolyLR',
            eta_min=0.,
            power=1.,
            begin=warmup,
            end=iters,
            by_epoch=False),
    ]
    cfg.train_cfg = dict(
        type='IterBasedTrainLoop', max_iters=iters, val_interval=interval)
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook',
        by_epoch=False,
        interval=iters,
        max_keep_ckpts=1)
    cfg.default_hooks.logger.interval = max(1, interval // 2)
    cfg.randomness = dict(seed=seed)
    return cfg


def garments_seg_config(checkpoint, with_pyramid, data_root, args,
                        seed) -> Config:
    """The pre-registered in-domain dense transfer: :func:`seg_config`'s
    UperNet and schedule (linear warm-up over the first 10 % of
    ``args.seg_iters``, then linear decay to 0; mIoU evaluated
    ``args.seg_points`` times, evenly spaced) on the garments set of
    tools/dataset_converters/make_garments_seg.py (64 px, 11 classes)."""
    cfg = seg_config(checkpoint, with_pyramid, data_root, args, seed)
    cfg.model.data_preprocessor.size = (IMG, IMG)
    for head in (cfg.model.decode_head, cfg.model.auxiliary_head):
        head.num_classes = len(GARMENT_CLASSES)
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        loader.dataset.metainfo = dict(classes=GARMENT_CLASSES)
    cfg.test_dataloader = cfg.val_dataloader
    return cfg


def det_config(checkpoint, with_pyramid, data_root, args, seed) -> Config:
    cfg = Config.fromfile(DET_DEMO)
    _transfer_parts(cfg, checkpoint, with_pyramid)
    channels = FPN_DIM
    roi = cfg.model.roi_head
    cfg.model.rpn_head.update(in_channels=channels, feat_channels=channels)
    roi.bbox_roi_extractor.out_channels = channels
    roi.bbox_head.update(in_channels=channels, conv_out_channels=channels)
    roi.mask_roi_extractor.out_channels = channels
    roi.mask_head.update(in_channels=channels, conv_out_channels=channels)
    cfg.train_dataloader.dataset.update(
        data_root=data_root, indices=args.det_images)
    cfg.val_dataloader.dataset.data_root = data_root
    cfg.val_evaluator.ann_file = osp.join(data_root,
                                          'annotations/instances_val.json')
    cfg.test_dataloader, cfg.test_evaluator = (cfg.val_dataloader,
                                               cfg.val_evaluator)
    epochs = args.det_epochs
    cfg.param_scheduler = [
        dict(
            type='LinearLR',
            start_factor=1e-3,
            by_epoch=False,
            begin=0,
            end=50),
        dict(
            type='MultiStepLR',
            begin=0,
            end=epochs,
            by_epoch=True,
            milestones=[max(1, epochs - 1)],
            gamma=0.1),
    ]
    cfg.train_cfg = dict(
        type='EpochBasedTrainLoop', max_epochs=epochs, val_interval=1)
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', interval=epochs, max_keep_ckpts=1)
    cfg.default_hooks.logger.interval = 10
    cfg.randomness = dict(seed=seed)
    return cfg


# ------------------------------------------------------------------- runs


def read_scalars(work_dir: str) -> List[dict]:
    """The records of the run's mmengine ``scalars.json`` files, oldest
    first: a resumed run's later file replaces the earlier one's records
    from its first step on."""
    records: List[dict] = []
    for path in sorted(
            glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))):
        with open(path) as f:
            part = [json.loads(line) for line in f if line.strip()]
        if part:
            records = [r for r in records if r['step'] < part[0]['step']]
        records += part
    return records


def curve(records: List[dict], key: str) -> List[list]:
    return [[r['step'], r[key]] for r in records if key in r]


def last_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint an interrupted run of ``work_dir`` resumes from (the
    one mmengine's ``last_checkpoint`` file names), if it still exists."""
    pointer = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(pointer):
        return None
    with open(pointer) as f:
        path = f.read().strip()
    return path if osp.isfile(path) else None


def train_run(cfg: Config, work_dir: str, log) -> float:
    """Train a generated config with tools/train.py; returns the wall
    seconds of all its sessions.

    A run interrupted after a checkpoint with its optimiser state (the
    pre-registered plan saves one every epoch) resumes from it; every
    session's wall time is kept in ``sessions.json`` of the work dir and
    logged. Resumed runs redraw masks and crops from the resumed epoch on
    (mmengine restores weights, optimiser, schedule and the data order's
    epoch, not the random state), statistically the same run.
    """
    os.makedirs(work_dir, exist_ok=True)
    config = osp.join(work_dir, 'config.py')
    sessions_file = osp.join(work_dir, 'sessions.json')
    sessions = []
    if osp.isfile(sessions_file):
        with open(sessions_file) as f:
            sessions = json.load(f)
    resume = last_checkpoint(work_dir)
    command = [
        sys.executable,
        osp.join(REPO, 'tools', 'train.py'), config, '--work-dir', work_dir
    ]
    if resume is not None:
        command += ['--resume', resume]
        log(f'  resuming {work_dir} from {osp.basename(resume)}')
    else:
        cfg.dump(config)
        sessions = []
    start = time.perf_counter()
    with open(osp.join(work_dir, 'stdout.log'), 'a') as out:
        result = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - start
    sessions.append(
        dict(
            wall_s=seconds,
            resumed_from=None if resume is None else osp.basename(resume),
            rc=result.returncode))
    with open(sessions_file, 'w') as f:
        json.dump(sessions, f, indent=1)
    if result.returncode != 0:
        with open(osp.join(work_dir, 'stdout.log')) as f:
            tail = f.read()[-3000:]
        raise RuntimeError(f'{config} failed (rc {result.returncode}):\n'
                           f'{tail}')
    total = sum(s['wall_s'] for s in sessions)
    log(f'  trained {work_dir} in {seconds / 60:.1f} min ({len(sessions)} '
        f'session(s), {total / 60:.1f} min in all)')
    return total


class Study:
    """Resumable runs.

    Each run writes ``result.json`` in its work dir and into the record
    (``--record``), one JSON file keyed ``stage/name/seed``. A run found in
    either is not repeated, except training runs when their work dir is
    gone (later stages need their checkpoints); the report is built from
    the record.
    """

    def __init__(self, args) -> None:
        self.args = args
        self.root = args.work_dir
        os.makedirs(self.root, exist_ok=True)
        self.log_file = open(osp.join(self.root, 'study.log'), 'a')
        self.record: Dict[str, dict] = {}
        # Keys this process ran (or found in its work dir): they win over
        # the file's when the record is merged on saving.
        self.written: set = set()
        if osp.isfile(args.record):
            with open(args.record) as f:
                self.record = json.load(f)
        recorded = len(self.record)
        for path in glob.glob(
                osp.join(self.root, '*', '*', '*', 'result.json')):
            with open(path) as f:
                result = json.load(f)
            if self.key(result) not in self.record:
                self.record[self.key(result)] = result
                self.written.add(self.key(result))
        if len(self.record) > recorded:
            # Runs made by another invocation with its own record.
            self.save_record()

    @staticmethod
    def key(result: dict) -> str:
        return f'{result["stage"]}/{result["name"]}/{result["seed"]}'

    def save_record(self) -> None:
        """Write the record, merged with what other processes sharing the
        work dir (one per seed) saved since it was read: under a lock, and
        replaced atomically, so a reader never sees half a file."""
        path = osp.abspath(self.args.record)
        os.makedirs(osp.dirname(path), exist_ok=True)
        with open(osp.join(self.root, 'record.lock'), 'w') as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if osp.isfile(path):
                with open(path) as f:
                    saved = json.load(f)
                self.record.update({
                    key: result
                    for key, result in saved.items() if key not in self.written
                })
            partial = f'{path}.{os.getpid()}.tmp'
            with open(partial, 'w') as f:
                json.dump(
                    dict(sorted(self.record.items())),
                    f,
                    indent=0,
                    sort_keys=True)
                f.write('\n')
            os.replace(partial, path)

    def log(self, message: str) -> None:
        line = f'[{time.strftime("%H:%M:%S")}] {message}'
        print(line, flush=True)
        self.log_file.write(line + '\n')
        self.log_file.flush()

    def run(self, stage: str, name: str, seed: int, fn) -> dict:
        work_dir = osp.join(self.root, stage, name, f'seed{seed}')
        path = osp.join(work_dir, 'result.json')
        key = f'{stage}/{name}/{seed}'
        # Training runs are repeated when their work dir is gone: later
        # stages need their checkpoints.
        if osp.isfile(path) and key not in self.record:
            # Written by another process sharing the work dir.
            with open(path) as f:
                self.record[key] = json.load(f)
        if osp.isfile(path) or (key in self.record and stage
                                not in ('pretrain', 'continue', 'regenerate')):
            return self.record[key]
        self.log(f'{stage} {name} seed {seed}')
        start = time.perf_counter()
        result = fn(work_dir)
        result.update(
            stage=stage,
            name=name,
            seed=seed,
            wall_s=time.perf_counter() - start)
        os.makedirs(work_dir, exist_ok=True)
        with open(path, 'w') as f:
            json.dump(result, f, indent=1)
        previous = self.record.get(key)
        if previous is not None and 'losses' in previous:
            before = previous['losses']['loss_pixel'][-1][1]
            after = result['losses']['loss_pixel'][-1][1]
            self.log(f'  re-run of a recorded run: final loss_pixel '
                     f'{after:.4f}, recorded {before:.4f}')
        self.record[key] = result
        self.written.add(key)
        self.save_record()
        self.log(f'  done in {result["wall_s"] / 60:.1f} min')
        return result

    def results(self, stage: str) -> List[dict]:
        return [
            result for key, result in sorted(self.record.items())
            if result['stage'] == stage
        ]

    # ------------------------------------------------------------ stages

    def checkpoint(self,
                   objective: str,
                   seed: int,
                   epoch: Optional[int] = None) -> Optional[str]:
        """The pretraining (or continuation) checkpoint of a run after
        ``epoch`` epochs (default: its last)."""
        if objective == 'none':
            return None
        stage = 'continue' if objective in CONTINUATIONS else 'pretrain'
        if epoch is None:
            epoch = self.args.pretrain_epochs
            if stage == 'continue':
                epoch -= self.args.continue_from
        path = osp.join(self.root, stage, objective, f'seed{seed}',
                        f'epoch_{epoch}.pth')
        if not osp.isfile(path):
            raise FileNotFoundError(
                f'{path} is missing: run the {stage} stage for '
                f'{objective!r} seed {seed} first.')
        return path

    def continuation(self, arm: str, seed: int) -> dict:

        def fn(work_dir):
            start = self.checkpoint(CONTINUATION_START, seed,
                                    self.args.continue_from)
            seconds = train_run(
                continuation_config(arm, start, self.args, seed), work_dir,
                self.log)
            records = read_scalars(work_dir)
            losses = {
                key: curve(records, key)
                for key in sorted(
                    {k
                     for r in records
                     for k in r if k.startswith('loss')})
            }
            return dict(train_s=seconds, losses=losses, start=start)

        return self.run('continue', arm, seed, fn)

    def pretrain(self, objective: str, seed: int) -> dict:

        def fn(work_dir):
            seconds = train_run(
                pretrain_config(objective, self.args, seed), work_dir,
                self.log)
            records = read_scalars(work_dir)
            losses = {
                key: curve(records, key)
                for key in sorted(
                    {k
                     for r in records
                     for k in r if k.startswith('loss')})
            }
            return dict(train_s=seconds, losses=losses)

        return self.run('pretrain', objective, seed, fn)

    def regenerate(self, objective: str, seed: int, epochs: int) -> dict:
        """Train a recorded pretraining run again, to ``epochs`` epochs,
        because its checkpoints are gone and runs not yet recorded need
        them: the same generated config, seed and schedule, stopped after
        that epoch, in the run's own work dir.

        The record keeps the original run; this one is recorded as
        ``regenerate/<objective>@<epochs>/<seed>``, with how its loss curves
        agree with the original's (logged steps in common, the first one that
        differs, the largest difference).
        """
        train_dir = osp.join(self.root, 'pretrain', objective, f'seed{seed}')
        original = self.record[f'pretrain/{objective}/{seed}']['losses']

        def fn(work_dir):
            cfg = pretrain_config(objective, self.args, seed)
            cfg.train_cfg.max_epochs = epochs
            seconds = train_run(cfg, train_dir, self.log)
            records = read_scalars(train_dir)
            agreement = {}
            for key, values in original.items():
                again = dict(curve(records, key))
                common = [(step, value) for step, value in values
                          if step in again]
                differ = [
                    step for step, value in common if again[step] != value
                ]
                agreement[key] = dict(
                    steps=len(common),
                    first_difference=differ[0] if differ else None,
                    max_abs_diff=max(
                        (abs(again[step] - value) for step, value in common),
                        default=None))
            self.log(f'  agreement with the recorded run: {agreement}')
            return dict(epochs=epochs, train_s=seconds, agreement=agreement)

        return self.run('regenerate', f'{objective}@{epochs}', seed, fn)

    def fit_probes(self, name: str, features, data, pool: str) -> dict:
        """Ridge (the fast check) on every feature set and Newton logistic
        regression (the headline) on mean-pooled ones, both on the split
        the data fix; a refusal is recorded as such, never as a number."""
        from mmitpn.evaluation import (ProbeConvergenceError, ProbeGridError,
                                       fit_linear_probe)
        methods = ['ridge'] + (['logistic'] if pool in LOGISTIC_POOLS else [])
        probes = {}
        for method in methods:
            key = name if method == 'ridge' else f'{name}/{method}'
            start = time.perf_counter()
            try:
                result = fit_linear_probe(
                    features[0],
                    data[0][1],
                    features[1],
                    data[1][1],
                    method=method,
                    max_iter=self.args.probe_max_iter).as_dict()
            except (ProbeGridError, ProbeConvergenceError) as error:
                result = dict(method=method, refused=str(error))
                self.log(f'  {key}: refused: {error}')
            else:
                self.log(f'  {key}: top-1 {result["top1"]:.2f} (L2 '
                         f'{result["weight_decay"]:g}, '
                         f'{result["extensions"]} extension(s), '
                         f'certificate {result["grad_norm"]:.1e})')
            result['fit_s'] = time.perf_counter() - start
            probes[key] = result
        return probes

    def probe(self,
              objective: str,
              seed: int,
              data,
              epoch: Optional[int] = None) -> dict:
        """Probes of a run's checkpoint (after ``epoch`` epochs, named
        ``objective@epoch``; default: the last, named ``objective``)."""
        from mmitpn.evaluation import FrozenFeatureExtractor, extract_features
        arch = CONTINUATIONS.get(objective, objective)
        name = objective if epoch is None else f'{objective}@{epoch}'

        def fn(work_dir):
            torch.manual_seed(seed)
            model_cfg = pretrain_model(
                'itpn-pixel' if arch == 'none' else arch, self.args.mask_ratio)
            extractor = FrozenFeatureExtractor(
                model_cfg, self.checkpoint(objective, seed, epoch))
            kinds = ['backbone']
            if model_cfg['neck'] is not None:
                kinds.append('pyramid')
            probes = {}
            for kind in kinds:
                for pool in ('mean', 'grid'):
                    features = [
                        extract_features(
                            extractor, images, kind=kind, pool=pool)
                        for images, _ in data
                    ]
                    probes.update(
                        self.fit_probes(f'{kind}/{pool}', features, data,
                                        pool))
            return dict(probes=probes)

        return self.run('probe', name, seed, fn)

    def raw_pixel_probe(self, seed: int, data) -> dict:
        from mmitpn.evaluation import extract_features

        def fn(work_dir):
            features = [extract_features(None, images) for images, _ in data]
            return dict(
                probes=self.fit_probes('pixels/-', features, data, '-'))

        return self.run('probe', 'raw-pixels', seed, fn)

    def finetune(self, objective: str, seed: int) -> dict:

        def fn(work_dir):
            cfg = finetune_config(
                self.checkpoint(objective, seed), self.args, seed)
            seconds = train_run(cfg, work_dir, self.log)
            return dict(
                train_s=seconds,
                top1=curve(read_scalars(work_dir), 'accuracy/top1'))

        return self.run('finetune', objective, seed, fn)

    def transfer(self, task: str, init: str, seed: int) -> dict:
        """A downstream run of the integral-transfer ablation from
        initialisation ``init`` of pretraining seed ``seed``.

        The study trains on the generated shapes sets with the pretraining
        seed; the pre-registered plan segments the garments set with
        downstream seed ``DENSE_SEED_OFFSET + seed``, so that downstream
        variance is not tied to the pretraining seed's.
        """
        objective, with_pyramid = TRANSFER_INITS[init]
        prereg = self.args.plan == 'prereg'
        if prereg:
            data_root = osp.join(self.root, 'data', 'garments_seg')
            self.make_data('make_garments_seg.py', data_root)
            build, run_seed = garments_seg_config, DENSE_SEED_OFFSET + seed
            args = copy.copy(self.args)
            args.seg_iters = dense_length(self.record, self.args)
            if args.seg_iters is None:
                raise RuntimeError(
                    'the dense transfer\'s length is not decided: no pilot '
                    f'run (Study.dense_pilot) of {dense_lengths(args)} '
                    'iterations has converged yet.')
        else:
            data_root = osp.join(self.root, 'data', f'shapes_{task}')
            self.make_data(
                'make_shapes_seg.py'
                if task == 'seg' else 'make_shapes_coco.py', data_root)
            build, run_seed, args = (seg_config if task == 'seg' else
                                     det_config), seed, self.args
        keys = ('mIoU', ) if task == 'seg' else ('coco/bbox_mAP',
                                                 'coco/segm_mAP')

        def fn(work_dir):
            cfg = build(
                self.checkpoint(objective, seed), with_pyramid, data_root,
                args, run_seed)
            seconds = train_run(cfg, work_dir, self.log)
            records = read_scalars(work_dir)
            return dict(
                train_s=seconds,
                iters=args.seg_iters if task == 'seg' else None,
                downstream_seed=run_seed,
                curves={key: curve(records, key)
                        for key in keys})

        return self.run(task, init.split(':')[0], seed, fn)

    def dense_pilot(self, iters: int) -> dict:
        """A pilot run of the pre-registered dense transfer: no
        pretraining (d), ``iters`` iterations, on canvases of its own
        (converter seed ``DENSE_PILOT_SEED``; the study's validation
        canvases are never seen) with downstream seed
        ``DENSE_PILOT_SEED``. It fixes the study's length only."""
        data_root = osp.join(self.root, 'data', 'garments_seg_pilot')
        self.make_data('make_garments_seg.py', data_root,
                       ['--seed', str(DENSE_PILOT_SEED)])

        def fn(work_dir):
            args = copy.copy(self.args)
            args.seg_iters = iters
            cfg = garments_seg_config(None, False, data_root, args,
                                      DENSE_PILOT_SEED)
            seconds = train_run(cfg, work_dir, self.log)
            curve_ = curve(read_scalars(work_dir), 'mIoU')
            self.log(f'  pilot of {iters} iterations: last 20 % adds '
                     f'{late_gain(curve_, iters):+.2f} mIoU')
            return dict(train_s=seconds, iters=iters, curves=dict(mIoU=curve_))

        # One process per seed may get here at once: one trains, the others
        # wait for its result.
        with open(osp.join(self.root, 'pilot.lock'), 'w') as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            return self.run('pilot', f'd@{iters}', DENSE_PILOT_SEED, fn)

    def make_data(self,
                  script: str,
                  data_root: str,
                  options: Optional[List[str]] = None) -> None:
        """Generate a downstream set with one of tools/dataset_converters'
        scripts (its default sizes and seed unless ``options`` say
        otherwise; a few images with ``--quick``), unless it exists."""
        if osp.isdir(data_root):
            return
        counts = ['--train', '32', '--val', '16'] if self.args.quick else []
        counts += options or []
        if script == 'make_garments_seg.py' and self.args.fashion_mnist_root:
            counts += ['--fashion-mnist-root', self.args.fashion_mnist_root]
        # Per process: processes sharing the work dir may both get here.
        partial = f'{data_root}.{os.getpid()}.partial'
        shutil.rmtree(partial, ignore_errors=True)
        subprocess.run(
            [
                sys.executable,
                osp.join(REPO, 'tools', 'dataset_converters', script), partial
            ] + counts,
            check=True,
            stdout=subprocess.DEVNULL)
        try:
            os.replace(partial, data_root)
        except OSError:
            if not osp.isdir(data_root):
                raise
            shutil.rmtree(partial)  # another process finished first


def load_probe_data(args):
    from mmitpn.evaluation import load_labelled_images
    data_cfg = Config.fromfile(CLS_DATA)
    pipeline = data_cfg.test_dataloader.dataset.pipeline
    return [
        load_labelled_images(
            with_root(loader.dataset, args), pipeline,
            data_cfg.data_preprocessor, limit)
        for loader, limit in ((data_cfg.train_dataloader,
                               args.probe_train_images),
                              (data_cfg.test_dataloader, args.test_images))
    ]


def run_prereg(args, study: Study, report) -> None:
    """The pre-registered plan, one run at a time in a fixed order for the
    seeds of ``args.seeds`` (one process per seed may share the work dir
    and record); each pretraining's checkpoints are probed right after it,
    since a session's work dir may not outlive it. Recorded runs are
    skipped, so it resumes across sessions, and a recorded pretraining
    whose checkpoints are gone is trained again only as far as the runs
    not yet recorded need. The probe images are loaded when the first
    probe not yet recorded needs them."""
    data = []

    def probe(objective: str, seed: int, epoch: Optional[int] = None):
        name = objective if epoch is None else f'{objective}@{epoch}'
        if f'probe/{name}/{seed}' not in study.record and not data:
            start = time.perf_counter()
            data.extend(load_probe_data(args))
            study.log(f'  probe images loaded in '
                      f'{(time.perf_counter() - start) / 60:.1f} min')
        study.probe(objective, seed, data, epoch)

    def recorded(name: str, seed: int) -> bool:
        return f'probe/{name}/{seed}' in study.record

    inits = {init.split(':')[0]: init for init in TRANSFER_INITS}

    def unrecorded_dense(seed: int) -> List[str]:
        return [
            inits[name] for name in PREREG_DENSE_INITS
            if f'seg/{name}/{seed}' not in study.record
        ]

    if any(unrecorded_dense(seed) for seed in args.seeds):
        # The pilots fix the dense transfer's length before any run needs
        # it: one length after the other until one has converged.
        for iters in dense_lengths(args):
            if dense_length(study.record, args) is not None:
                break
            study.dense_pilot(iters)
        if dense_length(study.record, args) is None:
            study.log('no pilot length converged: the dense transfer is '
                      'not run (G3 fails)')
    length = dense_length(study.record, args)

    def dense_to_run(seed: int) -> List[str]:
        return unrecorded_dense(seed) if length is not None else []

    epochs = sorted({1, args.continue_from, args.pretrain_epochs})
    for seed in args.seeds:
        probe('none', seed)
        for objective in PREREG_OBJECTIVES:
            # Checkpoints are trained only as far as unrecorded runs need.
            needed = [
                epoch for epoch in epochs
                if not recorded(f'{objective}@{epoch}', seed)
            ]
            if objective == CONTINUATION_START and not all(
                    recorded(arm, seed) for arm in CONTINUATIONS):
                needed.append(args.continue_from)
            if any(TRANSFER_INITS[init][0] == objective
                   for init in dense_to_run(seed)):
                needed.append(args.pretrain_epochs)
            if not needed:
                continue
            trained = osp.join(study.root, 'pretrain', objective,
                               f'seed{seed}', 'result.json')
            if (f'pretrain/{objective}/{seed}' in study.record
                    and not osp.isfile(trained)):
                study.regenerate(objective, seed, max(needed))
            else:
                study.pretrain(objective, seed)
                report.write()
            for epoch in epochs:
                probe(objective, seed, epoch)
                report.write()
        for arm in CONTINUATIONS:
            if recorded(arm, seed):
                continue
            study.continuation(arm, seed)
            probe(arm, seed)
            report.write()
        for init in dense_to_run(seed):
            study.transfer('seg', init, seed)
            report.write()


def main(argv: Optional[List[str]] = None):
    args = parse_args(argv)
    study = Study(args)
    study.log(f'study: seeds {args.seeds}, stages {args.stages}, budgets '
              f'{ {k: getattr(args, k) for k in FULL} }')
    objectives = list(args.objectives)
    pretrained = [o
                  for o in objectives if o != 'none'] + list(args.mfm_variants)
    report = Report(args, study)
    if args.report_only:
        report.write()
        return
    if args.plan == 'prereg':
        run_prereg(args, study, report)
        study.log('pre-registered plan finished')
        return
    if 'pretrain' in args.stages:
        for seed in args.seeds:
            for objective in pretrained:
                study.pretrain(objective, seed)
                report.write()
    if 'probe' in args.stages:
        data = load_probe_data(args)
        for seed in args.seeds:
            for objective in objectives + list(args.mfm_variants):
                study.probe(objective, seed, data)
                report.write()
        # The raw-pixel probe does not depend on a seed (the split is fixed
        # by the data): once is enough (D = 12,288 makes it the slowest).
        study.raw_pixel_probe(args.seeds[0], data)
    if 'finetune' in args.stages:
        for seed in args.seeds:
            for objective in objectives:
                study.finetune(objective, seed)
                report.write()
    for task in ('seg', 'det'):
        if task not in args.stages:
            continue
        for seed in args.seeds:
            for init, (objective, _) in TRANSFER_INITS.items():
                if objective in objectives:
                    study.transfer(task, init, seed)
                    report.write()
    report.write()
    study.log('study finished')


# ----------------------------------------------------------------- report


def mean_std(values) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return '-'
    if len(values) == 1:
        return f'{values[0]:.2f} (1 seed)'
    return f'{np.mean(values):.2f} ± {np.std(values, ddof=1):.2f}'


def difference_cell(diff: Optional[dict]) -> str:
    if diff is None:
        return '-'
    per_seed = ', '.join(f'{d:+.2f}' for d in diff['diffs'])
    return (f'{diff["mean"]:+.2f} [{diff["low"]:+.2f}, {diff["high"]:+.2f}]'
            f' ({per_seed})')


# Comparisons of the report: (first, second) by run name, per stage.
PROBE_PAIRS = (('mae', 'itpn-pixel'), ('itpn-pixel-mfm', 'itpn-pixel'),
               ('itpn-pixel', 'none'), ('mae', 'none'))
TRANSFER_PAIRS = (('a', 'b'), ('a', 'c'), ('b', 'c'), ('b', 'd'), ('c', 'd'),
                  ('a', 'd'))

HEADLINE = 'backbone/mean/logistic'


def prereg_verdicts(record: Dict[str, dict], args) -> List[str]:
    """The gates and deciding statistics of
    docs/itpn_study_preregistration.md, computed from the record."""
    seeds = list(PREREG_SEEDS)
    last, middle = args.pretrain_epochs, args.continue_from

    def top1(name: str, key: str = HEADLINE) -> Dict[int, float]:
        values = {}
        for seed in seeds:
            probe = record.get(f'probe/{name}/{seed}', {}).get('probes', {})
            if 'top1' in probe.get(key, {}):
                values[seed] = probe[key]['top1']
        return values

    def complete(*groups) -> bool:
        return all(len(g) == len(seeds) for g in groups)

    probes = [
        p for key, r in record.items() if key.startswith('probe/')
        for p in r['probes'].values()
    ]
    refused = [p for p in probes if 'refused' in p]
    unconverged = [
        p for p in probes if p.get('method') == 'logistic' and 'top1' in p
        and p['grad_norm'] > p['tolerance']
    ]
    expected = len(seeds) * (1 + 2 * 3 + 2)
    done = sum(key.startswith('probe/') for key in record)
    if refused or unconverged:
        gate1 = (f'FAILED: {len(refused)} probe(s) refused, '
                 f'{len(unconverged)} above tolerance')
    elif done < expected:
        gate1 = f'not reached ({done} of {expected} probe runs done)'
    else:
        gate1 = 'met'
    mae, mae_mid, none = top1(f'mae@{last}'), top1(f'mae@{middle}'), top1(
        'none')
    if not complete(mae, mae_mid, none):
        gate2 = 'not reached (needs mae and none probes of all 3 seeds)'
        gain = rise = None
    else:
        gain, rise = paired_difference(mae,
                                       none), paired_difference(mae, mae_mid)
        ok = gain['mean'] >= 5 and rise['low'] > 0
        gate2 = ('met' if ok else 'FAILED') + (
            f': MAE@{last} - none {difference_cell(gain)}; MAE@{last} - '
            f'MAE@{middle} {difference_cell(rise)}')
    gate3, dense_final = dense_gate(record, seeds, args)
    lines = [
        '## Gates and deciding statistics (pre-registered)', '', 'As fixed in '
        '[itpn_study_preregistration.md](itpn_study_preregistration.md) '
        'before any of these runs: headline metric the logistic probe of '
        'mean-pooled backbone features; differences paired by seed, mean '
        '[t-based 95 % interval] (per seed).', '', '| gate | outcome |',
        '|---|---|',
        f'| G1: every probe converged, penalty inside the grid | {gate1} |',
        f'| G2: MAE@{last} >= 5 points above random init, and rising from '
        f'epoch {middle} to {last} (interval above 0) | {gate2} |',
        f'| G3: dense transfer long enough (fresh pyramid - none >= 2 mIoU, '
        f'last 20 % adds < 1 mIoU) | {gate3} |', '',
        '| claim | statistic | gates | verdict |', '|---|---|---|---|'
    ]
    gates_ok = gate1 == 'met' and gate2.startswith('met')
    for claim, first, second, gates in (('iTPN probes better than MAE',
                                         f'itpn-pixel@{last}', f'mae@{last}',
                                         'G1, G2'),
                                        ('MFM helps over pixel-only',
                                         'cont-mfm', 'cont-pixel', 'G1, G2')):
        a, b = top1(first), top1(second)
        if not complete(a, b):
            statistic, verdict = '-', 'no verdict (not reached)'
        else:
            diff = paired_difference(a, b)
            statistic = f'{first} - {second}: {difference_cell(diff)}'
            verdict = decide(diff, gates_ok, first, second)
        lines.append(f'| {claim} | {statistic} | {gates} | {verdict} |')
    a, b = dense_final['a'], dense_final['b']
    if not complete(a, b):
        statistic, verdict = '-', 'no verdict (not reached)'
    else:
        diff = paired_difference(a, b)
        statistic = f'a - b, final mIoU: {difference_cell(diff)}'
        gates_met = gate1 == 'met' and gate3.startswith('met')
        verdict = decide(diff, gates_met, 'a', 'b')
    lines.append('| pretrained pyramid better than a fresh one | '
                 f'{statistic} | G1, G3 | {verdict} |')
    return lines + ['']


def dense_lengths(args) -> tuple:
    return DENSE_LENGTHS_QUICK if args.quick else DENSE_LENGTHS


def late_gain(points: list, iters: int) -> float:
    """What the last 20 % of a run of ``iters`` iterations added: its final
    value minus the last one evaluated at or before 80 %."""
    at_80 = [value for step, value in points if step <= 0.8 * iters]
    return points[-1][1] - at_80[-1]


def dense_length(record: Dict[str, dict], args) -> Optional[int]:
    """The pre-registered dense transfer's length: the first pilot length
    whose pilot run's last 20 % added < 1 mIoU; ``None`` while undecided
    or when none did."""
    for iters in dense_lengths(args):
        pilot = record.get(f'pilot/d@{iters}/{DENSE_PILOT_SEED}')
        if pilot is None:
            return None
        if late_gain(pilot['curves']['mIoU'], iters) < 1:
            return iters
    return None


def pilot_summary(record: Dict[str, dict], args) -> str:
    pilots = [(iters, record[f'pilot/d@{iters}/{DENSE_PILOT_SEED}'])
              for iters in dense_lengths(args)
              if f'pilot/d@{iters}/{DENSE_PILOT_SEED}' in record]
    return '; '.join(
        f'pilot of {iters}: final {p["curves"]["mIoU"][-1][1]:.2f}, last '
        f'20 % adds {late_gain(p["curves"]["mIoU"], iters):+.2f}'
        for iters, p in pilots) or 'no pilot run yet'


def dense_gate(record: Dict[str, dict], seeds: List[int], args) -> tuple:
    """Gate G3 of the pre-registered plan, and the final mIoU of each
    dense-transfer initialisation by seed: fresh pyramid (b) minus no
    pretraining (d) >= 2 mIoU (mean paired difference), and the last 20 %
    of iterations adds < 1 mIoU (final minus the value at 80 %, mean over
    all runs). The runs' length is fixed by the pilots (FAILED when none
    converged)."""
    curves: Dict[str, Dict[int, list]] = {
        name: {
            seed: record[f'seg/{name}/{seed}']['curves']['mIoU']
            for seed in seeds if f'seg/{name}/{seed}' in record
        }
        for name in PREREG_DENSE_INITS
    }
    final = {
        name: {
            seed: points[-1][1]
            for seed, points in runs.items()
        }
        for name, runs in curves.items()
    }
    iters = dense_length(record, args)
    pilots = pilot_summary(record, args)
    if iters is None:
        lengths = dense_lengths(args)
        if f'pilot/d@{lengths[-1]}/{DENSE_PILOT_SEED}' in record:
            return f'FAILED: no pilot length converged ({pilots})', final
        return f'not reached (length undecided: {pilots})', final
    done = sum(len(runs) for runs in curves.values())
    expected = len(PREREG_DENSE_INITS) * len(seeds)
    if done < expected:
        return (f'not reached ({done} of {expected} dense runs of {iters} '
                f'iterations done; {pilots})'), final
    fresh = paired_difference(final['b'], final['d'])
    late = float(
        np.mean([
            late_gain(points, iters) for runs in curves.values()
            for points in runs.values()
        ]))
    ok = fresh['mean'] >= 2 and late < 1
    return ('met' if ok else 'FAILED') + (
        f': b - d {difference_cell(fresh)}; last 20 % adds {late:+.2f} '
        f'mIoU (mean of all runs; {iters} iterations, {pilots})'), final


def decide(diff: dict, gates_met: bool, first: str, second: str) -> str:
    """The pre-registered verdict rule for a paired difference."""
    if not gates_met:
        return 'no verdict (gate not met)'
    if diff['low'] > 0:
        return f'{first} higher'
    if diff['high'] < 0:
        return f'{second} higher'
    return 'no difference shown (interval includes 0)'


class Report:
    """Markdown tables (mean ± sample std over seeds; paired differences
    over seeds with t-based 95 % intervals) and figures."""

    def __init__(self, args, study: Study) -> None:
        self.args = args
        self.study = study

    @staticmethod
    def group(results: List[dict]) -> Dict[str, List[dict]]:
        grouped: Dict[str, List[dict]] = {}
        for result in results:
            grouped.setdefault(result['name'], []).append(result)
        return grouped

    @staticmethod
    def by_seed(runs: List[dict], value) -> Dict[int, float]:
        values = {}
        for run in runs:
            number = value(run)
            if number is not None:
                values[run['seed']] = number
        return values

    def differences(self, grouped, pairs, value, label) -> List[str]:
        lines = []
        for first, second in pairs:
            if first in grouped and second in grouped:
                diff = paired_difference(
                    self.by_seed(grouped[first], value),
                    self.by_seed(grouped[second], value))
                if diff is not None:
                    lines.append(f'| {label(first)} - {label(second)} | '
                                 f'{len(diff["seeds"])} | '
                                 f'{difference_cell(diff)} |')
        return lines

    def header(self) -> str:
        """What the tables rest on: the plan's budgets, how seeds are
        shared, and where the machine behind the wall times is named."""
        args = self.args
        if args.plan == 'prereg':
            budgets = ', '.join(f'{k}={getattr(args, k)}' for k in PREREG)
            iters = dense_length(self.study.record, args)
            dense = f'{iters} iterations (fixed by the pilot)' if iters \
                else 'length not yet fixed by the pilot'
            return (
                f'Budgets: {budgets}, mask ratio {args.mask_ratio}; dense '
                f'transfer: {dense}. Mean ± sample standard deviation over '
                'seeds; differences are paired by seed: mean [t-based 95 % '
                'interval] (per seed). Pretraining seed k drives its '
                'pretraining and probes; its dense runs train with seed '
                f'{DENSE_SEED_OFFSET} + k. Wall times as logged; the '
                'CPU and threads of each session are in the '
                'pre-registration\'s *Sessions*, and differ between them.')
        budgets = ', '.join(f'{k}={getattr(args, k)}' for k in FULL)
        return (f'Budgets: {budgets}, mask ratio {args.mask_ratio}. Mean ± '
                'sample standard deviation over seeds; differences are '
                'paired by seed: mean [t-based 95 % interval] (per seed). '
                'One seed drives pretraining, the probe and downstream '
                'training of a run alike. Wall times on the machine the '
                'write-up names.')

    def write(self) -> None:
        lines = ['# iTPN ablations at small scale (CPU)', '']
        lines += [
            'Written by `python tools/analysis_tools/itpn_study.py` (this '
            'file is regenerated; the write-up is '
            '[itpn_study_writeup.md](itpn_study_writeup.md)). ' +
            self.header(), ''
        ]
        if self.args.plan == 'prereg':
            lines += prereg_verdicts(self.study.record, self.args)
        lines += self.pretrain_table() + self.probe_table()
        lines += self.finetune_table() + self.transfer_tables()
        out_dir = osp.dirname(osp.abspath(self.args.out))
        figures = self.figures()
        if figures:
            lines += [
                '## Curves', '', 'Mean over seeds, band ± one sample '
                'standard deviation.', ''
            ]
            for title, path in figures:
                link = osp.relpath(osp.abspath(path), out_dir)
                lines += [f'![{title}]({link})', '']
        os.makedirs(out_dir, exist_ok=True)
        with open(self.args.out, 'w') as f:
            f.write('\n'.join(lines).rstrip('\n') + '\n')

    def pretrain_table(self) -> List[str]:
        grouped = self.group(self.study.results('pretrain'))
        if not grouped:
            return []
        lines = [
            '## Pretraining', '',
            '| objective | seeds | final loss_pixel | final MFM losses | '
            'wall time per run |', '|---|---|---|---|---|'
        ]
        for name, runs in grouped.items():
            pixel = [r['losses']['loss_pixel'][-1][1] for r in runs]
            mfm = sorted(k for k in runs[0]['losses'] if 'mfm' in k)
            mfm_text = ', '.join(
                f'{k} {mean_std([r["losses"][k][-1][1] for r in runs])}'
                for k in mfm) or '-'
            minutes = np.mean([r['wall_s'] for r in runs]) / 60
            lines.append(f'| {name} | {len(runs)} | {mean_std(pixel)} | '
                         f'{mfm_text} | {minutes:.1f} min |')
        return lines + ['']

    def probe_table(self) -> List[str]:
        results = self.study.results('probe')
        grouped = self.group(results)
        if not grouped:
            return []
        order = ('backbone/mean', 'backbone/grid', 'pyramid/mean',
                 'pyramid/grid', 'pixels/-')
        keys = sorted(
            {k
             for r in results
             for k in r['probes']},
            key=lambda k:
            (order.index(k.rsplit('/logistic')[0])
             if k.rsplit('/logistic')[0] in order else len(order), k))
        methods = [('ridge', [k for k in keys if not k.endswith('/logistic')]),
                   ('logistic', [k for k in keys if k.endswith('/logistic')])]
        lines = []
        for method, columns in methods:
            if not columns:
                continue
            probes = [
                r['probes'][c] for r in results for c in columns
                if c in r['probes']
            ]
            lines += self.probe_method_table(grouped, method, columns, probes)
        return lines

    def probe_method_table(self, grouped, method, columns, probes):

        def top1(column):
            return lambda run: run['probes'].get(column, {}).get('top1')

        title = ('logistic regression (the headline)'
                 if method == 'logistic' else 'closed-form ridge classifier')
        lines = [
            f'## Converged linear probes, {title} (top-1 %, Fashion-MNIST '
            'test)', '',
            'Standardised frozen features; L2 chosen on a validation part '
            'of the training features; `mean`: each map mean-pooled, '
            '`grid`: each map averaged to the 4x4 unit grid and kept per '
            'unit. `none` is the randomly initialised model of each seed.', '',
            '| model | seeds | ' + ' | '.join(columns) + ' |',
            '|---' * (len(columns) + 2) + '|'
        ]
        for name, runs in grouped.items():
            cells = [
                mean_std(list(self.by_seed(runs, top1(c)).values()))
                for c in columns
            ]
            lines.append(f'| {name} | {len(runs)} | ' + ' | '.join(cells) +
                         ' |')
        refused = [p for p in probes if 'refused' in p]
        solved = [p for p in probes if 'top1' in p]
        on_edge = [
            p for p in solved
            if p['weight_decay'] in (min(map(float, p['val_top1'])),
                                     max(map(float, p['val_top1'])))
        ]
        grids = sorted({(min(map(float, p['val_top1'])),
                         max(map(float, p['val_top1'])))
                        for p in solved})
        worst = max((p['grad_norm'] for p in solved), default=0.)
        lines += [
            '', f'{len(solved)} probes solved, {len(refused)} refused '
            '(penalty still on an edge after the extensions, or a fit '
            'above its gradient tolerance: no number); penalties '
            'tried: ' + ', '.join(f'{lo:g} ... {hi:g}' for lo, hi in grids) +
            f'; chosen penalty on the edge of the penalties tried in '
            f'{len(on_edge)} of {len(solved)} (their top-1 is a lower '
            'bound of the probe\'s). Largest convergence certificate '
            '(gradient norm, or relative residual of the normal '
            f'equations): {worst:.1e}.', ''
        ]
        diffs = []
        for column in columns:
            diffs += [
                line.replace('| ', f'| {column}: ',
                             1) for line in self.differences(
                                 grouped, PROBE_PAIRS, top1(column), str)
            ]
        if diffs:
            lines += [
                f'Paired differences ({method}, top-1 points):', '',
                '| comparison | seeds | difference |', '|---|---|---|'
            ] + diffs + ['']
        return lines

    def finetune_table(self) -> List[str]:
        grouped = self.group(self.study.results('finetune'))
        if not grouped:
            return []
        lines = [
            '## Fine-tuning (top-1 %, Fashion-MNIST test, per epoch)', '',
            '| pretraining | seeds | top-1 per epoch | final top-1 | wall '
            'time per run |', '|---|---|---|---|---|'
        ]
        for name, runs in grouped.items():
            per_epoch = np.array([[p[1] for p in r['top1']] for r in runs])
            epochs = ', '.join(f'{v:.2f}' for v in per_epoch.mean(0))
            minutes = np.mean([r['wall_s'] for r in runs]) / 60
            lines.append(f'| {name} | {len(runs)} | {epochs} | '
                         f'{mean_std(per_epoch[:, -1])} | {minutes:.1f} min |')
        diffs = self.differences(grouped, PROBE_PAIRS,
                                 lambda r: r['top1'][-1][1], str)
        if diffs:
            lines += [
                '', 'Paired differences of the final top-1 (points):', '',
                '| comparison | seeds | difference |', '|---|---|---|'
            ] + diffs
        return lines + ['']

    def transfer_tables(self) -> List[str]:
        lines = []
        names = {k.split(':')[0]: k for k in TRANSFER_INITS}
        seg_data = 'garments' if self.args.plan == 'prereg' else 'shapes'
        for task, key, title in (('seg', 'mIoU', 'Segmentation (UperNet, '
                                  f'{seg_data}, mIoU)'),
                                 ('det', 'coco/bbox_mAP', 'Detection (Mask '
                                  'R-CNN, shapes, bbox mAP)'),
                                 ('det', 'coco/segm_mAP', 'Detection (Mask '
                                  'R-CNN, shapes, mask mAP)')):
            grouped = self.group(self.study.results(task))
            if not grouped:
                continue
            scale = 100. if task == 'det' else 1.
            lines += [
                f'## {title}', '',
                '| initialisation | seeds | value at each validation | '
                'final | last validation minus the one before | wall time '
                'per run |', '|---|---|---|---|---|---|'
            ]
            for name in sorted(grouped):
                runs = grouped[name]
                values = np.array([[p[1] for p in r['curves'][key]]
                                   for r in runs]) * scale
                points = ', '.join(f'{v:.1f}' for v in values.mean(0))
                minutes = np.mean([r['wall_s'] for r in runs]) / 60
                gain = values[:, -1] - values[:, -2] if values.shape[1] > 1 \
                    else [None]
                lines.append(
                    f'| {names.get(name, name)} | {len(runs)} | {points} | '
                    f'{mean_std(values[:, -1])} | {mean_std(gain)} | '
                    f'{minutes:.1f} min |')
            diffs = self.differences(grouped, TRANSFER_PAIRS,
                                     lambda r: r['curves'][key][-1][1] * scale,
                                     str)
            if diffs:
                lines += [
                    '', 'Paired differences of the final value:', '',
                    '| comparison | seeds | difference |', '|---|---|---|'
                ] + diffs
            lines.append('')
        return lines

    def figures(self) -> List[Tuple[str, str]]:
        """Plot each stage's curves; return (title, path) per figure."""
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
        os.makedirs(self.args.fig_dir, exist_ok=True)
        panels = [('pretrain', 'loss_pixel', 'pretraining loss_pixel',
                   lambda r: r['losses'].get('loss_pixel', [])),
                  ('finetune', 'top1', 'fine-tuning top-1 (%)',
                   lambda r: r['top1']),
                  ('seg', 'mIoU', 'segmentation mIoU',
                   lambda r: r['curves']['mIoU']),
                  ('det', 'bbox_mAP', 'detection bbox mAP',
                   lambda r: r['curves']['coco/bbox_mAP'])]
        written = []
        for stage, tag, title, get in panels:
            grouped = self.group(self.study.results(stage))
            if not grouped:
                continue
            fig, ax = plt.subplots(figsize=(5, 3.4), dpi=100)
            for name in sorted(grouped):
                runs = [np.array(get(r), dtype=float) for r in grouped[name]]
                length = min(len(r) for r in runs)
                if length == 0:
                    continue
                steps = runs[0][:length, 0]
                values = np.stack([r[:length, 1] for r in runs])
                mean = values.mean(0)
                # Sample std, as in the tables (0 for a single run).
                std = values.std(0, ddof=1) if len(runs) > 1 \
                    else np.zeros_like(mean)
                ax.plot(steps, mean, label=f'{name} (n={len(runs)})')
                ax.fill_between(steps, mean - std, mean + std, alpha=0.25)
            ax.set_title(title)
            ax.set_xlabel('iteration' if stage in ('pretrain',
                                                   'seg') else 'epoch')
            ax.legend(fontsize=7)
            ax.grid(alpha=0.3)
            fig.tight_layout()
            path = osp.join(self.args.fig_dir, f'itpn_study_{tag}.png')
            fig.savefig(path)
            plt.close(fig)
            written.append((title, path))
        return written


if __name__ == '__main__':
    run_tool(main)
