# Copyright (c) mmitpn contributors. All rights reserved.
"""Converged linear probes on frozen HiViT / iTPN features.

A linear probe trained by SGD for a fixed budget measures how far its head
got as much as the features (MAE's LARS recipe needs batch 16,384 and 90
epochs). Here features are extracted once and a linear classifier is
solved exactly, with its L2 penalty chosen on a held-out part of the
training features before it is refitted on all of them:

- ``'ridge'`` (default): least squares on one-hot targets in closed form,
  a Cholesky solve per penalty of one Gram matrix (of the features, or of
  the samples when there are more features than samples);
- ``'logistic'``: multinomial logistic regression, a strictly convex
  problem, solved by L-BFGS to a small gradient norm (slower: hundreds of
  iterations on weakly regularised problems).
"""
import copy
from dataclasses import asdict, dataclass
from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from torch import Tensor, nn

from mmitpn.models.utils.builder import build_part
from mmitpn.utils import extract_state_dict, load_checkpoint_file

FEATURE_KINDS = ('backbone', 'pyramid', 'both')
POOLINGS = ('mean', 'grid')
DEFAULT_WEIGHT_DECAYS = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1)
RIDGE_PENALTIES = (1e-3, 1e-2, 1e-1, 1., 10., 100.)
PROBE_METHODS = ('ridge', 'logistic')


@dataclass
class ProbeResult:
    """Outcome of :func:`fit_linear_probe`.

    Attributes:
        top1 (float): Test top-1 accuracy in percent.
        top5 (float): Test top-5 accuracy in percent.
        train_top1 (float): Accuracy on the training features.
        weight_decay (float): The L2 penalty chosen on the held-out split
            (ridge: per training sample, i.e. ``lambda / N``).
        val_top1 (dict): Held-out top-1 of every penalty tried.
        iterations (int): L-BFGS iterations of the final fit (0 for ridge).
        grad_norm (float): Convergence certificate of the final fit: the
            gradient norm of the logistic objective, or the relative
            residual of ridge's normal equations.
        dims (int): Feature dimension.
        method (str): ``'ridge'`` or ``'logistic'``.
    """
    top1: float
    top5: float
    train_top1: float
    weight_decay: float
    val_top1: Dict[float, float]
    iterations: int
    grad_norm: float
    dims: int
    method: str = 'logistic'

    def as_dict(self) -> dict:
        result = asdict(self)
        result['val_top1'] = {str(k): v for k, v in self.val_top1.items()}
        return result


def _topk(logits: Tensor, labels: Tensor, k: int) -> float:
    k = min(k, logits.shape[1])
    hits = logits.topk(k, dim=1).indices.eq(labels[:, None]).any(dim=1)
    return 100. * hits.float().mean().item()


def _solve(features: Tensor,
           labels: Tensor,
           num_classes: int,
           weight_decay: float,
           max_iter: int,
           init: Optional[Tuple[Tensor, Tensor]] = None):
    """L-BFGS on the mean cross-entropy + weight_decay / 2 * |W|^2."""
    dims = features.shape[1]
    weight = torch.zeros(dims, num_classes, dtype=features.dtype)
    bias = torch.zeros(num_classes, dtype=features.dtype)
    if init is not None:
        weight.copy_(init[0])
        bias.copy_(init[1])
    weight.requires_grad_(True)
    bias.requires_grad_(True)
    optimizer = torch.optim.LBFGS([weight, bias],
                                  lr=1,
                                  max_iter=max_iter,
                                  history_size=20,
                                  tolerance_grad=1e-6,
                                  tolerance_change=1e-10,
                                  line_search_fn='strong_wolfe')

    def objective() -> Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(features @ weight + bias, labels) + \
            0.5 * weight_decay * weight.square().sum()
        loss.backward()
        return loss

    optimizer.step(objective)
    objective()
    grad_norm = torch.cat([weight.grad.flatten(),
                           bias.grad.flatten()]).norm().item()
    iterations = optimizer.state[weight].get('n_iter', 0)
    return weight.detach(), bias.detach(), iterations, grad_norm


class _RidgePath:
    """Ridge solutions for several penalties from one Gram matrix.

    Minimises ``|X W - Y|^2 / N + alpha |W|^2`` for centred features ``X``
    and centred one-hot targets ``Y`` (the bias is the target mean), by a
    Cholesky solve of the normal equations, in the dual form when there are
    more features than samples.
    """

    def __init__(self, features: Tensor, targets: Tensor) -> None:
        self.num = features.shape[0]
        self.dual = features.shape[1] > features.shape[0]
        self.features = features
        # The Gram matrix is the costly product: float32 is accurate enough
        # for standardised features and penalties >= 1e-3 per sample.
        single = features.float()
        gram = single @ single.T if self.dual else single.T @ single
        self.gram = gram.to(features.dtype)
        self.rhs = targets if self.dual else features.T @ targets

    def weight(self, alpha: float) -> Tensor:
        system = self.gram.clone()
        system.diagonal().add_(alpha * self.num)
        coefs = torch.cholesky_solve(self.rhs, torch.linalg.cholesky(system))
        return self.features.T @ coefs if self.dual else coefs


def _ridge_residual(features: Tensor, targets: Tensor, weight: Tensor,
                    alpha: float) -> float:
    rhs = features.T @ targets
    lhs = features.T @ (features @ weight) + alpha * features.shape[0] * weight
    return ((lhs - rhs).norm() / rhs.norm().clamp_min(1e-12)).item()


def _fit_ridge(train, labels, num_classes, penalties, fit_ids, val_ids):
    onehot = F.one_hot(labels, num_classes).to(train.dtype)

    def centred(ids):
        x, y = train[ids], onehot[ids]
        return x, x.mean(0), y, y.mean(0)

    x, x_mean, y, y_mean = centred(fit_ids)
    path = _RidgePath(x - x_mean, y - y_mean)
    val_top1 = {}
    for alpha in penalties:
        weight = path.weight(alpha)
        bias = y_mean - x_mean @ weight
        val_top1[alpha] = _topk(train[val_ids] @ weight + bias,
                                labels[val_ids], 1)
    best = max(val_top1, key=lambda a: (val_top1[a], a))
    all_ids = torch.arange(train.shape[0])
    x, x_mean, y, y_mean = centred(all_ids)
    path = _RidgePath(x - x_mean, y - y_mean)
    weight = path.weight(best)
    residual = _ridge_residual(x - x_mean, y - y_mean, weight, best)
    return weight, y_mean - x_mean @ weight, best, val_top1, 0, residual


def _fit_logistic(train, labels, num_classes, penalties, fit_ids, val_ids,
                  max_iter):
    val_top1 = {}
    init = None
    for weight_decay in sorted(penalties, reverse=True):
        weight, bias, _, _ = _solve(train[fit_ids], labels[fit_ids],
                                    num_classes, weight_decay, max_iter, init)
        init = (weight, bias)
        logits = train[val_ids] @ weight + bias
        val_top1[weight_decay] = _topk(logits, labels[val_ids], 1)
    best = max(val_top1, key=lambda wd: (val_top1[wd], wd))
    weight, bias, iterations, grad_norm = _solve(train, labels, num_classes,
                                                 best, max_iter)
    return weight, bias, best, val_top1, iterations, grad_norm


def fit_linear_probe(train_features: Tensor,
                     train_labels: Tensor,
                     test_features: Tensor,
                     test_labels: Tensor,
                     weight_decays: Optional[Sequence[float]] = None,
                     val_fraction: float = 0.2,
                     max_iter: int = 1000,
                     seed: int = 0,
                     method: str = 'ridge') -> ProbeResult:
    """Fit a converged linear classifier and test it.

    Features are standardised with the training statistics. Each penalty of
    ``weight_decays`` is fitted on ``1 - val_fraction`` of the training
    features and scored on the rest (logistic: largest first, each fit
    warm-started from the previous one); the best is refitted on all
    training features.

    Args:
        train_features (Tensor): ``(N, D)`` training features.
        train_labels (Tensor): ``(N, )`` integer labels.
        test_features (Tensor): ``(M, D)`` test features.
        test_labels (Tensor): ``(M, )`` integer labels.
        weight_decays (Sequence[float], optional): L2 penalties to choose
            from; defaults to :data:`RIDGE_PENALTIES` (ridge, per sample) or
            :data:`DEFAULT_WEIGHT_DECAYS` (logistic).
        val_fraction (float): Held-out part of the training features.
        max_iter (int): L-BFGS iteration limit of one fit.
        seed (int): Seed of the held-out split.
        method (str): ``'ridge'`` or ``'logistic'``.

    Returns:
        ProbeResult: Accuracies, the chosen penalty and the convergence
        certificate of the final fit.
    """
    if train_features.shape[0] != train_labels.shape[0] or \
            test_features.shape[0] != test_labels.shape[0]:
        raise ValueError('Features and labels differ in length: '
                         f'{train_features.shape[0]} vs '
                         f'{train_labels.shape[0]} (train), '
                         f'{test_features.shape[0]} vs '
                         f'{test_labels.shape[0]} (test).')
    if not 0 < val_fraction < 1:
        raise ValueError(f'val_fraction must be in (0, 1), got '
                         f'{val_fraction}.')
    train_features = train_features.double()
    test_features = test_features.double()
    mean = train_features.mean(dim=0)
    std = train_features.std(dim=0).clamp_min(1e-6)
    train_features = (train_features - mean) / std
    test_features = (test_features - mean) / std
    num_classes = int(max(train_labels.max(), test_labels.max())) + 1

    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(train_features.shape[0], generator=generator)
    num_val = max(1, int(round(val_fraction * len(order))))
    val_ids, fit_ids = order[:num_val], order[num_val:]
    if method == 'ridge':
        weight, bias, best, val_top1, iterations, certificate = _fit_ridge(
            train_features, train_labels, num_classes, weight_decays
            or RIDGE_PENALTIES, fit_ids, val_ids)
    elif method == 'logistic':
        weight, bias, best, val_top1, iterations, certificate = \
            _fit_logistic(train_features, train_labels, num_classes,
                          weight_decays or DEFAULT_WEIGHT_DECAYS, fit_ids,
                          val_ids, max_iter)
    else:
        raise ValueError(f'method must be one of {PROBE_METHODS}, got '
                         f'{method!r}.')
    test_logits = test_features @ weight + bias
    train_logits = train_features @ weight + bias
    return ProbeResult(
        top1=_topk(test_logits, test_labels, 1),
        top5=_topk(test_logits, test_labels, 5),
        train_top1=_topk(train_logits, train_labels, 1),
        weight_decay=best,
        val_top1=val_top1,
        iterations=iterations,
        grad_norm=certificate,
        dims=train_features.shape[1],
        method=method)


def _pyramid_cfg(neck: Optional[dict]) -> Optional[dict]:
    """The iTPNPyramid config inside a model's neck config, if any."""
    if neck is None:
        return None
    neck_type = str(neck.get('type', '')).split('.')[-1]
    if neck_type == 'iTPNPyramid':
        pyramid = dict(neck)
    elif neck_type == 'iTPNLinearProbeNeck':
        pyramid = dict(neck['pyramid'])
    else:
        return None
    pyramid.pop('init_cfg', None)
    pyramid.update(num_outs=3, concat_inputs=False)
    return pyramid


class FrozenFeatureExtractor(nn.Module):
    """HiViT (and its iTPN pyramid, when the config has one) in eval mode,
    returning pooled features of full images.

    Args:
        model_cfg (dict): A model config whose ``backbone`` is a HiViT and
            whose ``neck`` (optional) is an ``iTPNPyramid`` or an
            ``iTPNLinearProbeNeck``: pretraining, classification and
            linear-probe configs all qualify.
        checkpoint (str, optional): Checkpoint with ``backbone.*`` (and
            ``neck.*``) weights, read tensors-only. None keeps the random
            initialisation (the random-init baseline).
        logger (str): Where to report missing and unexpected keys.
    """

    def __init__(self,
                 model_cfg: dict,
                 checkpoint: Optional[str] = None,
                 logger: str = 'current') -> None:
        super().__init__()
        backbone = copy.deepcopy(dict(model_cfg['backbone']))
        if str(backbone.get('type', '')).split('.')[-1] != 'HiViT':
            raise ValueError('The probe needs a HiViT backbone, the config '
                             f"has {backbone.get('type')!r}.")
        for key in ('init_cfg', 'frozen_stages', 'window_size',
                    'global_blocks'):
            backbone.pop(key, None)
        backbone.update(
            type='HiViT',
            out_indices=(0, 1, 2),
            out_type='featmap',
            drop_path_rate=0.,
            with_cp=False)
        self.backbone = build_part(backbone)
        pyramid = _pyramid_cfg(model_cfg.get('neck'))
        self.pyramid = build_part(pyramid) if pyramid is not None else None
        if checkpoint is not None:
            self._load(checkpoint, logger)
        self.requires_grad_(False)
        self.eval()

    def _load(self, checkpoint: str, logger: str) -> None:
        state_dict = extract_state_dict(load_checkpoint_file(checkpoint))
        parts = [('backbone.', self.backbone)]
        if self.pyramid is not None:
            parts.append(('neck.', self.pyramid))
        for prefix, module in parts:
            weights = {
                k[len(prefix):]: v
                for k, v in state_dict.items() if k.startswith(prefix)
            }
            if not weights:
                raise KeyError(
                    f'{checkpoint} has no {prefix}* weights; '
                    f'found prefixes '
                    f'{sorted({k.split(".")[0] for k in state_dict})}.')
            result = module.load_state_dict(weights, strict=False)
            print_log(
                f'load {prefix}* from {checkpoint}: missing keys '
                f'{result.missing_keys}, unexpected keys '
                f'{result.unexpected_keys}',
                logger=logger)

    @torch.no_grad()
    def forward(self,
                images: Tensor,
                kind: str = 'backbone',
                pool: str = 'mean') -> Tensor:
        """Pooled features ``(B, D)`` of normalised images.

        Args:
            images (Tensor): ``(B, C, H, W)`` normalised images.
            kind (str): ``'backbone'`` (stride-16 tokens), ``'pyramid'``
                (every pyramid level) or ``'both'``.
            pool (str): ``'mean'`` averages each map over space (MAE's
                probe); ``'grid'`` averages it to the unit grid and keeps
                every unit, a spatial probe comparable to raw pixels.
        """
        if kind not in FEATURE_KINDS:
            raise ValueError(f'kind must be one of {FEATURE_KINDS}, got '
                             f'{kind!r}.')
        if pool not in POOLINGS:
            raise ValueError(f'pool must be one of {POOLINGS}, got {pool!r}.')
        if kind != 'backbone' and self.pyramid is None:
            raise ValueError('This config has no iTPN pyramid (neck); probe '
                             "kind='backbone'.")
        outs = self.backbone(images)
        maps = []
        if kind in ('backbone', 'both'):
            maps.append(outs[2])
        if kind in ('pyramid', 'both'):
            maps.extend(self.pyramid(outs))
        grid = outs[2].shape[2:]
        if pool == 'mean':
            pooled = [m.mean(dim=(2, 3)) for m in maps]
        else:
            pooled = [F.adaptive_avg_pool2d(m, grid).flatten(1) for m in maps]
        return torch.cat(pooled, dim=1)


def load_labelled_images(dataset_cfg: dict,
                         pipeline: Sequence[dict],
                         preprocessor_cfg: dict,
                         limit: Optional[int] = None,
                         scope: str = 'mmpretrain') -> Tuple[Tensor, Tensor]:
    """Images and labels of a classification dataset, normalised.

    Args:
        dataset_cfg (dict): mmpretrain dataset config (its own pipeline is
            replaced by ``pipeline``).
        pipeline (Sequence[dict]): A deterministic pipeline ending in
            ``PackInputs`` (a config's test pipeline).
        preprocessor_cfg (dict): ``mean``, ``std`` and ``to_rgb`` of the
            classifier's data preprocessor.
        limit (int, optional): Keep the first ``limit`` samples.
        scope (str): Registry scope of unprefixed types.

    Returns:
        tuple[Tensor]: ``(N, C, H, W)`` float images and ``(N, )`` labels.
    """
    from mmengine.registry import DefaultScope, init_default_scope
    from mmpretrain.registry import DATASETS
    cfg = dict(copy.deepcopy(dataset_cfg), pipeline=list(pipeline))
    if limit is not None:
        cfg['indices'] = limit
    if DefaultScope.get_current_instance() is None:
        init_default_scope(scope)
    dataset = DATASETS.build(cfg)
    images, labels = [], []
    for index in range(len(dataset)):
        sample = dataset[index]
        images.append(sample['inputs'])
        labels.append(int(sample['data_samples'].gt_label))
    images = torch.stack(images).float()
    if preprocessor_cfg.get('to_rgb', False) and images.shape[1] == 3:
        images = images.flip(1)
    mean = torch.tensor(preprocessor_cfg['mean']).view(1, -1, 1, 1)
    std = torch.tensor(preprocessor_cfg['std']).view(1, -1, 1, 1)
    return (images - mean) / std, torch.tensor(labels)


def extract_features(extractor,
                     images: Tensor,
                     batch_size: int = 256,
                     **kwargs) -> Tensor:
    """Run ``extractor`` over ``images`` in batches (``kwargs`` are passed
    on, e.g. ``kind`` and ``pool``); ``extractor=None`` returns the
    flattened images themselves (the raw-pixel baseline)."""
    if extractor is None:
        return images.flatten(1).float()
    chunks = [
        extractor(images[start:start + batch_size], **kwargs).float()
        for start in range(0, images.shape[0], batch_size)
    ]
    return torch.cat(chunks)


def log_probe(name: str, result: ProbeResult, logger: str = 'current'):
    """One log line per probe: accuracy and the convergence certificate."""
    print_log(
        f'{name}: top-1 {result.top1:.2f}, top-5 {result.top5:.2f} '
        f'({result.method}; train {result.train_top1:.2f}; L2 '
        f'{result.weight_decay:g}; {result.dims} dims; '
        f'{result.iterations} iterations, certificate '
        f'{result.grad_norm:.1e})',
        logger=logger)
