# Copyright (c) mmitpn contributors. All rights reserved.
"""Converged linear probes of frozen features (``mmitpn.evaluation``):
closed-form ridge on every feature set as the fast check, Newton logistic
regression on mean-pooled features as the headline, both with penalties
chosen on a validation split fixed by the data, never on the test split."""
import time
from typing import Optional, Sequence

import torch
from mmengine.config import Config

from .configs import CLS_DATA, pretrain_model, with_root
from .plan import CONTINUATIONS, LOGISTIC_POOLS


def load_probe_data(args) -> list:
    """``[(train images, labels), (test images, labels)]`` of the probes:
    the first ``probe_train_images`` training and ``test_images`` test
    images of Fashion-MNIST, through the test pipeline."""
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


class NormalisedImages:
    """uint8 images ``(N, C, H, W)`` kept as they are (a quarter of the
    memory of float ones) and normalised slice by slice when read, as
    :func:`mmitpn.evaluation.load_labelled_images` normalises them all.

    Args:
        images (Tensor): uint8 images.
        preprocessor_cfg (dict): ``mean`` and ``std`` of the classifier's
            data preprocessor.
    """

    def __init__(self, images: torch.Tensor, preprocessor_cfg: dict) -> None:
        self.images = images
        self.mean = torch.tensor(preprocessor_cfg['mean']).view(1, -1, 1, 1)
        self.std = torch.tensor(preprocessor_cfg['std']).view(1, -1, 1, 1)

    @property
    def shape(self) -> torch.Size:
        return self.images.shape

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index) -> torch.Tensor:
        return (self.images[index].float() - self.mean) / self.std


def load_uint8_images(dataset_cfg: dict, pipeline: list) -> tuple:
    """uint8 images and labels of a Fashion-MNIST dataset config through a
    deterministic ``pipeline`` ending in ``PackInputs``."""
    from mmengine.registry import DATASETS, DefaultScope
    cfg = dict(dataset_cfg, pipeline=list(pipeline))
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        dataset = DATASETS.build(cfg)
    images, labels = [], []
    for index in range(len(dataset)):
        sample = dataset[index]
        images.append(sample['inputs'])
        labels.append(int(sample['data_samples'].gt_label))
    return torch.stack(images), torch.tensor(labels)


def _split_size(dataset_cfg: dict) -> int:
    """Images in the whole split of a dataset config (its ``indices``
    aside)."""
    from mmengine.registry import DATASETS, DefaultScope
    cfg = dict(dataset_cfg, pipeline=[])
    cfg.pop('indices', None)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return len(DATASETS.build(cfg))


def load_held_out_probe_data(args) -> list:
    """``[(train images, labels), (test images, labels)]`` of the plan
    ``decide``'s probes: training features from the first
    ``probe_train_images`` training images (all inside the pretraining
    images), the test from images pretraining never saw: the
    ``held_out_images`` training images after the first
    ``pretrain_images``, then the first ``test_images`` test images."""
    if args.probe_train_images > args.pretrain_images:
        raise ValueError(
            f'--probe-train-images {args.probe_train_images} exceeds '
            f'--pretrain-images {args.pretrain_images}: the probe trains on '
            'pretraining images only.')
    data_cfg = Config.fromfile(CLS_DATA)
    pipeline = data_cfg.test_dataloader.dataset.pipeline
    train = with_root(data_cfg.train_dataloader.dataset, args)
    test = with_root(data_cfg.test_dataloader.dataset, args)
    end = args.pretrain_images + args.held_out_images
    available = _split_size(train)
    if available < end:
        raise ValueError(
            f'the training split has {available} images, fewer than '
            f'--pretrain-images {args.pretrain_images} + --held-out-images '
            f'{args.held_out_images}.')
    parts = [
        load_uint8_images(
            dict(train, indices=args.probe_train_images), pipeline),
        load_uint8_images(
            dict(train, indices=list(range(args.pretrain_images, end))),
            pipeline),
        load_uint8_images(dict(test, indices=args.test_images), pipeline)
    ]
    preprocessor = data_cfg.data_preprocessor
    test_images = torch.cat([parts[1][0], parts[2][0]])
    test_labels = torch.cat([parts[1][1], parts[2][1]])
    return [(NormalisedImages(parts[0][0], preprocessor), parts[0][1]),
            (NormalisedImages(test_images, preprocessor), test_labels)]


def fit_probes(study,
               name: str,
               features,
               data,
               pool: str,
               logistic: bool = True) -> dict:
    """Ridge on every feature set and logistic regression on mean-pooled
    ones (unless ``logistic`` is False); a refusal is recorded as such,
    never as a number."""
    from mmitpn.evaluation import (ProbeConvergenceError, ProbeGridError,
                                   fit_linear_probe)
    methods = ['ridge'] + (['logistic']
                           if logistic and pool in LOGISTIC_POOLS else [])
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
                max_iter=study.args.probe_max_iter).as_dict()
        except (ProbeGridError, ProbeConvergenceError) as error:
            result = dict(method=method, refused=str(error))
            study.log(f'  {key}: refused: {error}')
        else:
            study.log(f'  {key}: top-1 {result["top1"]:.2f} (L2 '
                      f'{result["weight_decay"]:g}, '
                      f'{result["extensions"]} extension(s), '
                      f'certificate {result["grad_norm"]:.1e})')
        result['fit_s'] = time.perf_counter() - start
        probes[key] = result
    return probes


def probe_checkpoint(
    study,
    objective: str,
    seed: int,
    data,
    epoch: Optional[int] = None,
    pools: Sequence[str] = ('mean', 'grid'),
    none_model: str = 'itpn-pixel',
    logistic_kinds: Sequence[str] = ('backbone', 'pyramid')
) -> dict:
    """Probes of the backbone (and pyramid) features of a run's checkpoint
    after ``epoch`` epochs (named ``objective@epoch``; default: the last,
    named ``objective``), pooled each way of ``pools``; ``none`` probes
    the seed's random initialisation (``study.checkpoint`` names its
    file, or None: the model built from the seed) of the model of
    ``none_model`` (``'mae'``: the backbone alone). Logistic regression
    probes the features of ``logistic_kinds`` only (ridge all)."""
    from mmitpn.evaluation import FrozenFeatureExtractor, extract_features
    arch = CONTINUATIONS.get(objective, objective)
    name = objective if epoch is None else f'{objective}@{epoch}'

    def fn(work_dir):
        torch.manual_seed(seed)
        model_cfg = pretrain_model(none_model if arch == 'none' else arch,
                                   study.args.mask_ratio)
        extractor = FrozenFeatureExtractor(
            model_cfg, study.checkpoint(objective, seed, epoch))
        kinds = ['backbone']
        if model_cfg['neck'] is not None:
            kinds.append('pyramid')
        probes = {}
        for kind in kinds:
            for pool in pools:
                features = [
                    extract_features(extractor, images, kind=kind, pool=pool)
                    for images, _ in data
                ]
                probes.update(
                    fit_probes(study, f'{kind}/{pool}', features, data, pool,
                               kind in logistic_kinds))
        return dict(probes=probes)

    return study.run('probe', name, seed, fn)


def probe_raw_pixels(study, seed: int, data) -> dict:
    """The probe of the raw input pixels (12,288 values per image)."""
    from mmitpn.evaluation import extract_features

    def fn(work_dir):
        features = [extract_features(None, images) for images, _ in data]
        return dict(probes=fit_probes(study, 'pixels/-', features, data, '-'))

    return study.run('probe', 'raw-pixels', seed, fn)
