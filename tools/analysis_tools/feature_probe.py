# Copyright (c) mmitpn contributors. All rights reserved.
"""Converged linear probe of frozen HiViT / Fast-iTPN features, with
baselines.

Frozen features of a checkpoint (stride-16 backbone tokens, the pretrained
pyramid levels, or both; mean-pooled or kept per unit) are extracted once
from the labelled data of a classification data config (its test pipeline,
for training and test images alike), and a linear classifier is solved to
a stated tolerance (trust-region Newton logistic regression, the default;
closed-form ridge as a fast check). Its L2 penalty is chosen on a fixed
20 % of the training features (the same split for every model on the same
data) from a grid of 1e-7 ... 10 per sample that is extended where the
choice is on its edge; the test split is scored once, by the refitted
probe. The same probe on the raw input pixels and on a randomly
initialised model of the same config is reported in the same table.

Example (the checkpoint of the photograph demo, ``make demo-photos``, on
Fashion-MNIST):
    CFG=configs/pretrain/demo/itpn-pixel_hivit-demo_1xb32-coslr-40e_skimage-96px.py
    python tools/analysis_tools/feature_probe.py $CFG \
        work_dirs/demo/epoch_40.pth --features backbone pyramid
"""
import argparse
import json
import os
import os.path as osp
import time

import torch
from mmengine.config import Config, DictAction
from mmengine.logging import MMLogger

from mmitpn.evaluation import (FEATURE_KINDS, GRAD_TOLERANCE, POOLINGS,
                               PROBE_METHODS, FrozenFeatureExtractor,
                               ProbeConvergenceError, ProbeGridError,
                               extract_features, fit_linear_probe,
                               load_labelled_images, log_probe)
from mmitpn.utils.cli import add_debug_argument, run_tool

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEFAULT_DATA = osp.join(REPO, 'configs', 'cls', 'demo', '_base_',
                        'fashion-mnist_64px.py')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        'config',
        help='model config with a HiViT or FastiTPN backbone (pretraining, '
        'classification or linear-probe config)')
    parser.add_argument(
        'checkpoint', help="checkpoint, or 'none' for the baselines only")
    parser.add_argument(
        '--data',
        default=DEFAULT_DATA,
        help='classification data config (train/test dataloaders, '
        'test pipeline, data_preprocessor); default: Fashion-MNIST 64 px')
    parser.add_argument(
        '--data-options',
        nargs='+',
        action=DictAction,
        default={},
        help='override keys of the data config, e.g. '
        'train_dataloader.dataset.data_root=DIR')
    parser.add_argument(
        '--features',
        nargs='+',
        choices=FEATURE_KINDS,
        default=['backbone'],
        help='which frozen features to probe')
    parser.add_argument(
        '--pool', nargs='+', choices=POOLINGS, default=['mean'])
    parser.add_argument(
        '--baselines',
        nargs='*',
        choices=('raw', 'random'),
        default=['raw', 'random'],
        help='probe raw pixels / a randomly initialised model too')
    parser.add_argument('--train-images', type=int, default=10000)
    parser.add_argument('--test-images', type=int, default=None)
    parser.add_argument(
        '--seed',
        type=int,
        default=0,
        help='seed of the random-init baseline (the fit / validation split '
        'is fixed by the data)')
    parser.add_argument(
        '--method',
        choices=PROBE_METHODS,
        default='logistic',
        help='Newton logistic regression (default) or closed-form ridge '
        '(a fast check)')
    parser.add_argument(
        '--weight-decays',
        type=float,
        nargs='+',
        help='per-sample L2 penalties to start from (default: 1e-7 ... 10, '
        'one per decade)')
    parser.add_argument(
        '--tolerance',
        type=float,
        default=GRAD_TOLERANCE,
        help='gradient-norm tolerance of every logistic fit')
    parser.add_argument('--out', help='write the results as JSON here')
    add_debug_argument(parser)
    return parser.parse_args()


def load_data(data_cfg: Config, train_images, test_images):
    pipeline = data_cfg.test_dataloader.dataset.pipeline
    preprocessor = data_cfg.data_preprocessor
    train = load_labelled_images(data_cfg.train_dataloader.dataset, pipeline,
                                 preprocessor, train_images)
    test = load_labelled_images(data_cfg.test_dataloader.dataset, pipeline,
                                preprocessor, test_images)
    return train, test


def probe_model(name, extractor, train, test, kinds, pools, args, logger):
    rows = []
    for kind in kinds:
        for pool in pools:
            start = time.perf_counter()
            options = {} if extractor is None else dict(kind=kind, pool=pool)
            features = [
                extract_features(extractor, images, **options)
                for images, _ in (train, test)
            ]
            label = name if extractor is None else f'{name}, {kind}, {pool}'
            row = dict(
                model=name,
                features='pixels' if extractor is None else kind,
                pool='-' if extractor is None else pool)
            try:
                result = fit_linear_probe(
                    features[0],
                    train[1],
                    features[1],
                    test[1],
                    weight_decays=args.weight_decays,
                    method=args.method,
                    tolerance=args.tolerance)
            except (ProbeGridError, ProbeConvergenceError) as error:
                # Refused, never reported as a number.
                logger.warning(f'{label}: refused: {error}')
                row.update(refused=str(error), dims=features[0].shape[1])
            else:
                log_probe(label, result, logger=logger.instance_name)
                row.update(result.as_dict())
            rows.append(dict(row, seconds=time.perf_counter() - start))
            if extractor is None:
                return rows
    return rows


def table_row(row: dict) -> str:
    head = f'| {row["model"]} | {row["features"]} | {row["pool"]} | ' \
        f'{row["dims"]} | '
    if 'refused' in row:
        return head + f'refused: {row["refused"]} | | | | |'
    return head + (f'{row["top1"]:.2f} | {row["top5"]:.2f} | '
                   f'{row["weight_decay"]:g} | {row["iterations"]} | '
                   f'{row["grad_norm"]:.1e} |')


def main():
    args = parse_args()
    logger = MMLogger.get_instance('feature_probe', log_level='INFO')
    torch.manual_seed(args.seed)
    cfg = Config.fromfile(args.config)
    data_cfg = Config.fromfile(args.data)
    data_cfg.merge_from_dict(args.data_options)
    train, test = load_data(data_cfg, args.train_images, args.test_images)
    logger.info(f'{len(train[1])} training and {len(test[1])} test images '
                f'of {tuple(train[0].shape[1:])} from {args.data}')
    rows = []
    if args.checkpoint != 'none':
        extractor = FrozenFeatureExtractor(
            cfg.model, args.checkpoint, logger=logger.instance_name)
        rows += probe_model(
            osp.basename(args.checkpoint), extractor, train, test,
            args.features, args.pool, args, logger)
    if 'random' in args.baselines:
        torch.manual_seed(args.seed)
        rows += probe_model('random init', FrozenFeatureExtractor(cfg.model),
                            train, test, args.features, args.pool, args,
                            logger)
    if 'raw' in args.baselines:
        rows += probe_model('raw pixels', None, train, test, ['pixels'], ['-'],
                            args, logger)
    print('\n| model | features | pool | dims | top-1 | top-5 | L2 | '
          'iterations | certificate |')
    print('|---|---|---|---|---|---|---|---|---|')
    for row in rows:
        print(table_row(row))
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(rows, f, indent=1)
        logger.info(f'wrote {args.out}')


if __name__ == '__main__':
    run_tool(main)
