# Copyright (c) mmitpn contributors. All rights reserved.
"""A small, real reproduction of iTPN's claim on Fashion-MNIST (CPU).

The same small HiViT (128-d, 1 + 1 MLP blocks, 4 attention blocks) at
64x64 px is pretrained on the first 20,000 Fashion-MNIST training images
with four objectives and equal budgets:

- ``itpn-pixel``: iTPN, pixel reconstruction through the pyramid;
- ``itpn-pixel-mfm``: iTPN, pixel reconstruction + masked feature modelling
  against a moving-averaged backbone;
- ``mae``: MAE-style masked image modelling on the same HiViT, the decoder
  fed by the stride-16 tokens only (no pyramid);
- ``none``: no pretraining (random initialisation);

then each backbone is linear-probed (frozen, BatchNorm + linear, LARS) and
fine-tuned (AdamW, layer decay) with equal budgets on the same 20,000
images, and evaluated on the 10,000 test images. Every run goes through
``tools/train.py`` with a generated config (kept in the work directory);
the table of top-1 accuracies, seeds and wall times is written as Markdown.

Example (about an hour on 2 CPU cores):
    python tools/analysis_tools/fashion_mnist_study.py \
        --work-dir work_dirs/fashion_mnist_study \
        --out docs/fashion_mnist_study.md
"""
import argparse
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import time

from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DATA = osp.join(REPO, 'configs', 'cls', 'demo', '_base_',
                'fashion-mnist_64px.py')
RUNTIME = osp.join(REPO, 'configs', '_base_', 'default_runtime.py')
ARCH = dict(embed_dims=128, stem_mlp_blocks=(1, 1), depth=4, num_heads=4)
IMG = 64
OBJECTIVES = ('itpn-pixel', 'itpn-pixel-mfm', 'mae', 'none')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work-dir', default='work_dirs/fashion_mnist_study')
    parser.add_argument('--out', default='docs/fashion_mnist_study.md')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0])
    parser.add_argument('--pretrain-epochs', type=int, default=15)
    parser.add_argument('--linear-epochs', type=int, default=10)
    parser.add_argument('--finetune-epochs', type=int, default=5)
    parser.add_argument(
        '--train-images',
        type=int,
        default=20000,
        help='first N training images used by every stage')
    parser.add_argument(
        '--objectives', nargs='+', choices=OBJECTIVES, default=OBJECTIVES)
    return parser.parse_args()


def pretrain_model(objective: str) -> dict:
    model = dict(
        type='mmitpn.iTPN',
        data_preprocessor=dict(
            type='mmpretrain.SelfSupDataPreprocessor',
            mean=[123.675, 116.28, 103.53],
            std=[58.395, 57.12, 57.375],
            to_rgb=False),
        backbone=dict(type='HiViT', arch=ARCH, img_size=IMG),
        neck=dict(type='iTPNPyramid', embed_dims=128, fpn_dim=64, fpn_depth=1),
        head=dict(
            type='iTPNPixelHead',
            fpn_dim=64,
            decoder_embed_dims=128,
            decoder_depth=2,
            decoder_num_heads=4,
            img_size=IMG),
        mask_ratio=0.75)
    if objective == 'itpn-pixel-mfm':
        model.update(
            mfm_head=dict(
                type='iTPNMFMHead',
                fpn_dim=64,
                teacher_dims=(32, 64, 128),
                embed_dims=64,
                depth=1,
                num_heads=2,
                img_size=IMG),
            ema=dict(momentum=0.01, end_momentum=0.))
    elif objective == 'mae':
        model['neck'] = None
        model['head'].update(fpn_dim=128, levels=(16, ))
    return model


def schedule(epochs: int, warmup: int, eta_min: float) -> list:
    return [
        dict(
            type='LinearLR',
            start_factor=1e-3,
            by_epoch=True,
            begin=0,
            end=warmup,
            convert_to_iter_based=True),
        dict(
            type='CosineAnnealingLR',
            eta_min=eta_min,
            by_epoch=True,
            begin=warmup,
            convert_to_iter_based=True),
    ]


def pretrain_config(objective: str, args, seed: int) -> Config:
    data = Config.fromfile(DATA)
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
    cfg = Config.fromfile(RUNTIME)
    cfg.merge_from_dict(
        dict(
            model=pretrain_model(objective),
            train_dataloader=dict(
                batch_size=128,
                num_workers=0,
                sampler=dict(type='DefaultSampler', shuffle=True),
                collate_fn=dict(type='default_collate'),
                dataset=dict(
                    data.train_dataloader.dataset,
                    indices=args.train_images,
                    pipeline=pipeline)),
            optim_wrapper=dict(
                optimizer=dict(
                    type='AdamW',
                    lr=1.5e-4 * 128 / 256 * 8,
                    betas=(0.9, 0.95),
                    weight_decay=0.05,
                    fused=True),
                constructor='LayerDecayOptimWrapperConstructor',
                paramwise_cfg=dict(
                    layer_decay_rate=1.0,
                    custom_keys={'mask_token': dict(decay_mult=0.)})),
            param_scheduler=schedule(args.pretrain_epochs, 2, 1e-5),
            train_cfg=dict(
                type='EpochBasedTrainLoop', max_epochs=args.pretrain_epochs),
            default_hooks=dict(
                logger=dict(interval=50),
                checkpoint=dict(
                    interval=args.pretrain_epochs, max_keep_ckpts=1)),
            randomness=dict(seed=seed)))
    return cfg


def transfer_config(kind: str, checkpoint, args, seed: int) -> Config:
    base = osp.join(REPO, 'configs', 'cls', 'demo',
                    f'hivit-demo_skimage-pre_{kind}.py')
    cfg = Config.fromfile(base)
    backbone = cfg.model.backbone
    backbone.update(arch=ARCH)
    if checkpoint is None:
        backbone.pop('init_cfg')
    else:
        backbone.init_cfg.checkpoint = checkpoint
    cfg.model.head.in_channels = 128
    if cfg.model.get('neck'):
        cfg.model.neck.input_features = 128
    cfg.train_dataloader.dataset.indices = args.train_images
    epochs = args.linear_epochs if 'linear' in kind else args.finetune_epochs
    cfg.train_cfg.update(max_epochs=epochs, val_interval=epochs)
    cfg.default_hooks.checkpoint.interval = epochs
    cfg.param_scheduler = schedule(epochs, 1,
                                   1e-5 if 'linear' not in kind else 0.)
    cfg.randomness = dict(seed=seed)
    return cfg


def run(cfg: Config, work_dir: str) -> float:
    """Train a generated config with tools/train.py; returns wall seconds."""
    os.makedirs(work_dir, exist_ok=True)
    config = osp.join(work_dir, 'config.py')
    cfg.dump(config)
    start = time.perf_counter()
    result = subprocess.run([
        sys.executable,
        osp.join(REPO, 'tools', 'train.py'), config, '--work-dir', work_dir
    ],
                            capture_output=True,
                            text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f'{config} failed:\n{result.stderr[-4000:]}')
    return seconds


def last_scalar(work_dir: str, key: str) -> float:
    paths = sorted(
        glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    value = None
    with open(paths[-1]) as f:
        for line in f:
            record = json.loads(line)
            if key in record:
                value = record[key]
    return value


def main():
    args = parse_args()
    rows = []
    transfers = (('linear', 'linear_1xb256-coslr-10e_fashion-mnist-64px'),
                 ('fine-tune', '1xb64-coslr-6e_fashion-mnist-64px'))
    for seed in args.seeds:
        for objective in args.objectives:
            run_dir = osp.join(args.work_dir, f'seed{seed}', objective)
            row = dict(objective=objective, seed=seed)
            checkpoint = None
            if objective != 'none':
                pretrain_dir = osp.join(run_dir, 'pretrain')
                row['pretrain_s'] = run(
                    pretrain_config(objective, args, seed), pretrain_dir)
                row['pretrain_loss'] = last_scalar(pretrain_dir, 'loss_pixel')
                checkpoint = osp.join(pretrain_dir,
                                      f'epoch_{args.pretrain_epochs}.pth')
            for name, kind in transfers:
                transfer_dir = osp.join(run_dir, name)
                row[f'{name}_s'] = run(
                    transfer_config(kind, checkpoint, args, seed),
                    transfer_dir)
                row[name] = last_scalar(transfer_dir, 'accuracy/top1')
            rows.append(row)
            print(json.dumps(row), flush=True)
    write_table(args, rows)


def write_table(args, rows):
    lines = [
        '# iTPN on Fashion-MNIST: a small reproduction on CPU', '',
        'Generated by `python tools/analysis_tools/fashion_mnist_study.py '
        f'--seeds {" ".join(map(str, args.seeds))}` (see its docstring for '
        'the setup). HiViT 128-d (1 + 1 MLP blocks, 4 attention blocks), '
        f'64 px, the first {args.train_images} training images for every '
        f'stage, {args.pretrain_epochs} pretraining epochs, '
        f'{args.linear_epochs} linear-probe epochs, {args.finetune_epochs} '
        'fine-tuning epochs; top-1 on the 10,000 test images; wall times on '
        'this machine (2 CPU cores).', '',
        '| pretraining | seed | final pixel loss | linear probe top-1 | '
        'fine-tune top-1 | pretrain time | probe time | fine-tune time |',
        '|---|---|---|---|---|---|---|---|'
    ]
    for row in rows:
        loss = row.get('pretrain_loss')
        lines.append(f'| {row["objective"]} | {row["seed"]} | '
                     f'{"-" if loss is None else f"{loss:.4f}"} | '
                     f'{row["linear"]:.2f} | {row["fine-tune"]:.2f} | '
                     f'{row.get("pretrain_s", 0) / 60:.1f} min | '
                     f'{row["linear_s"] / 60:.1f} min | '
                     f'{row["fine-tune_s"] / 60:.1f} min |')
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
