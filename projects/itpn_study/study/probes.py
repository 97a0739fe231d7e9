# Copyright (c) mmitpn contributors. All rights reserved.
"""Converged linear probes of frozen features (``mmitpn.evaluation``):
closed-form ridge on every feature set as the fast check, Newton logistic
regression on mean-pooled features as the headline, both with penalties
chosen on a validation split fixed by the data, never on the test split."""
import time
from typing import Optional

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


def fit_probes(study, name: str, features, data, pool: str) -> dict:
    """Ridge on every feature set and logistic regression on mean-pooled
    ones; a refusal is recorded as such, never as a number."""
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


def probe_checkpoint(study,
                     objective: str,
                     seed: int,
                     data,
                     epoch: Optional[int] = None) -> dict:
    """Probes of the backbone (and pyramid) features of a run's checkpoint
    after ``epoch`` epochs (named ``objective@epoch``; default: the last,
    named ``objective``); ``none`` probes the seed's random
    initialisation."""
    from mmitpn.evaluation import FrozenFeatureExtractor, extract_features
    arch = CONTINUATIONS.get(objective, objective)
    name = objective if epoch is None else f'{objective}@{epoch}'

    def fn(work_dir):
        torch.manual_seed(seed)
        model_cfg = pretrain_model('itpn-pixel' if arch == 'none' else arch,
                                   study.args.mask_ratio)
        extractor = FrozenFeatureExtractor(
            model_cfg, study.checkpoint(objective, seed, epoch))
        kinds = ['backbone']
        if model_cfg['neck'] is not None:
            kinds.append('pyramid')
        probes = {}
        for kind in kinds:
            for pool in ('mean', 'grid'):
                features = [
                    extract_features(extractor, images, kind=kind, pool=pool)
                    for images, _ in data
                ]
                probes.update(
                    fit_probes(study, f'{kind}/{pool}', features, data, pool))
        return dict(probes=probes)

    return study.run('probe', name, seed, fn)


def probe_raw_pixels(study, seed: int, data) -> dict:
    """The probe of the raw input pixels (12,288 values per image)."""
    from mmitpn.evaluation import extract_features

    def fn(work_dir):
        features = [extract_features(None, images) for images, _ in data]
        return dict(probes=fit_probes(study, 'pixels/-', features, data, '-'))

    return study.run('probe', 'raw-pixels', seed, fn)
