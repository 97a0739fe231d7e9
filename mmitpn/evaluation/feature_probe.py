# Copyright (c) mmitpn contributors. All rights reserved.
"""Converged linear probes on frozen HiViT / Fast-iTPN (iTPN) features.

A linear probe trained by SGD for a fixed budget measures how far its head
got as much as the features (MAE's LARS recipe needs batch 16,384 and 90
epochs). Here features are extracted once and a linear classifier is
solved to optimality for every L2 penalty of a grid, the penalty is chosen
on a fixed validation part of the training features, and the chosen
penalty is refitted on all training features before the test split is
scored, once:

- ``'logistic'`` (the headline): multinomial logistic regression (mean
  cross-entropy + ``penalty / 2 * |W|^2``, bias unpenalised), solved by
  SciPy's trust-region Newton-CG with the exact gradient and
  Hessian-vector products until the gradient norm of that objective is
  below a stated tolerance; a fit that does not get there raises instead
  of reporting;
- ``'ridge'`` (a fast check): least squares on one-hot targets in closed
  form, ``|X W - Y|^2 / N + penalty * |W|^2``, one exact Cholesky solve per
  penalty of one float64 Gram matrix (of the features, or of the samples
  when there are more features than samples).

Why not scikit-learn (not a dependency of mmitpn):
``LogisticRegression`` stops on a tolerance of its own (C-scaled)
objective and reports no certificate, and ``RidgeClassifierCV`` selects by
leave-one-out on the fit data rather than on one held-out split shared by
every model; the solvers here report the gradient norm (or normal-equation
residual) of the exact objective they claim to minimise, for every
penalty of the path, and warm-start along it. L-BFGS (``torch.optim``)
was the logistic solver before: it stalled above the tolerance on 12 of 15
probes at penalties <= 1e-6 of the 3-epoch re-run; Newton steps converge
quadratically near the optimum however small the penalty.

A best validation score found only on an edge of the grid means the
optimum may lie outside it: the grid is extended by decades on that side (a
bounded number of times) and a result still on the edge raises
:class:`ProbeGridError`; it is never reported.
"""
import copy
import zlib
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from scipy import optimize
from torch import Tensor, nn

from mmitpn.models.backbones.unit_pyramid_backbone import UnitPyramidBackbone
from mmitpn.models.utils.builder import build_part
from mmitpn.registry import MODELS
from mmitpn.utils import extract_state_dict, load_checkpoint_file

FEATURE_KINDS = ('backbone', 'pyramid', 'both')
POOLINGS = ('mean', 'grid')
# Per-sample L2 penalties, one per decade: wide enough that converged probes
# of weak and strong features alike choose an interior value.
PENALTY_GRID = tuple(10.**e for e in range(-7, 2))
PROBE_METHODS = ('logistic', 'ridge')
GRAD_TOLERANCE = 1e-4
MAX_GRID_EXTENSIONS = 3


class ProbeGridError(ValueError):
    """The chosen penalty stayed on an edge of the (extended) grid."""


class ProbeConvergenceError(RuntimeError):
    """A logistic fit did not reach its gradient tolerance."""


@dataclass
class ProbeResult:
    """Outcome of :func:`fit_linear_probe`.

    Attributes:
        top1 (float): Test top-1 accuracy in percent (the only use of the
            test split).
        top5 (float): Test top-5 accuracy in percent.
        train_top1 (float): Accuracy on all training features.
        weight_decay (float): The per-sample L2 penalty chosen on the
            validation split.
        val_top1 (dict): Validation top-1 of every penalty tried.
        iterations (int): Newton iterations of the final fit (0 for
            ridge).
        grad_norm (float): Convergence certificate of the final fit: the
            gradient norm of the logistic objective, or the relative
            residual of ridge's normal equations.
        dims (int): Feature dimension.
        method (str): ``'logistic'`` or ``'ridge'``.
        tolerance (float): Gradient-norm tolerance every logistic fit met
            (0 for ridge).
        extensions (int): Decades added to the grid because the chosen
            penalty was on its edge.
        num_fit (int): Training features the penalties were fitted on.
        num_val (int): Training features they were scored on.
        split_id (int): Checksum of the validation indices: equal across
            models exactly when they shared the split.
        convergence (dict): Per penalty tried on the fit part, the
            certificate of its fit (``grad_norm``) and its iterations
            (0 for ridge).
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
    tolerance: float = 0.
    extensions: int = 0
    num_fit: int = 0
    num_val: int = 0
    split_id: int = 0
    convergence: Dict[float, Dict[str, float]] = field(default_factory=dict)

    def as_dict(self) -> dict:
        result = asdict(self)
        for key in ('val_top1', 'convergence'):
            result[key] = {str(k): v for k, v in result[key].items()}
        return result


def fixed_split(labels: Tensor,
                val_fraction: float = 0.2) -> Tuple[Tensor, Tensor]:
    """The fit / validation split of a labelled training set.

    Seeded by the data (a checksum of the label sequence), not by a model
    or run seed, so every model probed on the same training images gets the
    same split, run after run.

    Args:
        labels (Tensor): ``(N, )`` integer labels of the training set.
        val_fraction (float): Part held out for choosing the penalty.

    Returns:
        tuple[Tensor]: ``fit_ids`` and ``val_ids`` (sorted indices).
    """
    if not 0 < val_fraction < 1:
        raise ValueError(f'val_fraction must be in (0, 1), got '
                         f'{val_fraction}.')
    labels = labels.detach().cpu().to(torch.int64).contiguous()
    seed = zlib.crc32(labels.numpy().tobytes()) ^ len(labels)
    order = torch.randperm(
        len(labels), generator=torch.Generator().manual_seed(seed))
    num_val = max(1, int(round(val_fraction * len(order))))
    return order[num_val:].sort().values, order[:num_val].sort().values


def _split_id(val_ids: Tensor) -> int:
    return zlib.crc32(val_ids.cpu().to(torch.int64).numpy().tobytes())


def _topk(logits: Tensor, labels: Tensor, k: int) -> float:
    k = min(k, logits.shape[1])
    hits = logits.topk(k, dim=1).indices.eq(labels[:, None]).any(dim=1)
    return 100. * hits.float().mean().item()


def _logistic_parts(features: Tensor, labels: Tensor, num_classes: int,
                    weight_decay: float):
    """Objective, gradient and Hessian-vector product of the multinomial
    logistic probe as functions of one flat float64 vector (the ``(D, C)``
    weights, then the ``C`` biases), computed with torch on the features'
    device."""
    num, dims = features.shape
    features = features.double()
    onehot = F.one_hot(labels.to(features.device), num_classes).double()

    def unpack(vector: np.ndarray):
        flat = torch.from_numpy(vector).to(features.device)
        return (flat[:dims * num_classes].view(dims, num_classes),
                flat[dims * num_classes:])

    def pack(weight: Tensor, bias: Tensor) -> np.ndarray:
        return torch.cat([weight.flatten(), bias]).cpu().numpy()

    cache = {}

    def probabilities(vector: np.ndarray) -> Tensor:
        key = vector.tobytes()
        if cache.get('key') != key:
            weight, bias = unpack(vector)
            cache.update(
                key=key, probs=torch.softmax(features @ weight + bias, 1))
        return cache['probs']

    def fun(vector: np.ndarray):
        weight, bias = unpack(vector)
        log_probs = torch.log_softmax(features @ weight + bias, 1)
        loss = -(onehot * log_probs).sum() / num + \
            0.5 * weight_decay * weight.square().sum()
        probs = log_probs.exp()
        cache.update(key=vector.tobytes(), probs=probs)
        residual = (probs - onehot) / num
        grad = pack(features.T @ residual + weight_decay * weight,
                    residual.sum(0))
        return loss.item(), grad

    def hessp(vector: np.ndarray, direction: np.ndarray) -> np.ndarray:
        probs = probabilities(vector)
        d_weight, d_bias = unpack(direction)
        change = features @ d_weight + d_bias
        curvature = probs * (change - (probs * change).sum(1, keepdim=True))
        curvature = curvature / num
        return pack(features.T @ curvature + weight_decay * d_weight,
                    curvature.sum(0))

    return fun, hessp, unpack, pack


def solve_logistic(features: Tensor,
                   labels: Tensor,
                   num_classes: int,
                   weight_decay: float,
                   tolerance: float = GRAD_TOLERANCE,
                   max_iter: int = 1000,
                   init: Optional[Tuple[Tensor, Tensor]] = None):
    """Minimise mean cross-entropy + ``weight_decay / 2 * |W|^2`` (bias
    unpenalised) until the Euclidean norm of the gradient (weights and bias
    together) is at most ``tolerance``.

    The solver is SciPy's trust-region Newton-CG
    (``scipy.optimize.minimize(method='trust-ncg')``, which stops on that
    gradient norm, ``gtol``), given the exact gradient and Hessian-vector
    products of the objective: Newton steps converge quadratically near
    the optimum at any penalty, where L-BFGS stalled on the
    ill-conditioned problems of penalties <= 1e-6.

    Returns:
        tuple: ``weight`` ``(D, C)``, ``bias`` ``(C, )`` (float64, on the
        features' device), Newton iterations and the final gradient norm.

    Raises:
        ProbeConvergenceError: ``max_iter`` Newton iterations, or a trust
            region that can no longer shrink, leave the gradient norm above
            ``tolerance``.
    """
    fun, hessp, unpack, pack = _logistic_parts(features, labels, num_classes,
                                               weight_decay)
    dims = features.shape[1]
    if init is None:
        start = np.zeros(dims * num_classes + num_classes)
    else:
        start = pack(init[0].double().to(features.device),
                     init[1].double().to(features.device))
    result = optimize.minimize(
        fun,
        start,
        jac=True,
        hessp=hessp,
        method='trust-ncg',
        options=dict(gtol=tolerance, maxiter=max_iter))
    _, grad = fun(result.x)
    norm = float(np.linalg.norm(grad))
    if not norm <= tolerance:
        raise ProbeConvergenceError(
            f'logistic probe (L2 {weight_decay:g}) stopped at gradient norm '
            f'{norm:.2e} > tolerance {tolerance:g} after {result.nit} '
            f'Newton iterations ({result.message}); raise max_iter or the '
            'tolerance.')
    weight, bias = unpack(result.x)
    return weight.clone(), bias.clone(), int(result.nit), norm


class _RidgePath:
    """Ridge solutions for several penalties from one float64 Gram matrix.

    Minimises ``|X W - Y|^2 / N + alpha |W|^2`` for centred features ``X``
    and centred one-hot targets ``Y`` (the bias is the target mean), by a
    Cholesky solve of the normal equations, in the dual form when there are
    more features than samples.
    """

    def __init__(self, features: Tensor, targets: Tensor) -> None:
        self.num = features.shape[0]
        self.dual = features.shape[1] > features.shape[0]
        self.features = features
        self.gram = features @ features.T if self.dual else \
            features.T @ features
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


class _RidgeFitter:
    """Centred ridge fits of one set of training features."""

    def __init__(self, features: Tensor, labels: Tensor,
                 num_classes: int) -> None:
        onehot = F.one_hot(labels, num_classes).to(features.dtype)
        self.x_mean, self.y_mean = features.mean(0), onehot.mean(0)
        self.x = features - self.x_mean
        self.y = onehot - self.y_mean
        self.path = _RidgePath(self.x, self.y)

    def __call__(self, alpha: float):
        weight = self.path.weight(alpha)
        return weight, self.y_mean - self.x_mean @ weight

    def residual(self, weight: Tensor, alpha: float) -> float:
        return _ridge_residual(self.x, self.y, weight, alpha)


def choose_penalty(
    score: Callable[[float], float],
    grid: Sequence[float],
    max_extensions: int = MAX_GRID_EXTENSIONS
) -> Tuple[float, Dict[float, float], int]:
    """The largest interior penalty with the best validation score, the
    grid extended by a decade on each edge that scores best.

    A best score shared by an edge and an interior penalty is a plateau the
    grid already contains (features so easy, or so weak, that the penalty
    hardly matters there); a best score found only on an edge means the
    optimum may lie beyond it. ``score`` is called once per penalty, from
    the largest down (a logistic path warm-starts that way), and the
    descent stops once two penalties in a row score below the best so far
    (the smaller ones, the slowest to fit, could only matter to a
    validation curve with two maxima).

    Returns:
        tuple: The chosen penalty, the score of every penalty tried and the
        number of extensions.

    Raises:
        ProbeGridError: After ``max_extensions`` extensions the best score
            is still found only on an edge.
    """
    grid = sorted({float(p) for p in grid}, reverse=True)
    if len(grid) < 3 or grid[-1] <= 0:
        raise ValueError('The penalty grid needs at least 3 positive values '
                         f'(an edge on each side), got {grid}.')
    scores: Dict[float, float] = {}
    for penalty in grid:
        scores[penalty] = score(penalty)
        # Two smaller penalties in a row below the best so far: the best
        # is inside the grid and weaker penalties (the slowest fits) are
        # not needed.
        best = max(scores.values())
        if len(scores) >= 3 and all(v < best
                                    for v in list(scores.values())[-2:]):
            break
    extensions = 0
    while True:
        low, high = min(scores), max(scores)
        top = max(scores.values())
        inner = [p for p, v in scores.items() if low < p < high and v == top]
        if inner:
            return max(inner), scores, extensions
        if extensions == max_extensions:
            side = 'smallest' if scores[low] == top else 'largest'
            best = low if scores[low] == top else high
            raise ProbeGridError(
                f'the chosen L2 penalty {best:g} is the {side} tried '
                f'({low:g} ... {high:g}, {extensions} decade(s) added): the '
                'optimum lies outside the grid; pass a wider grid '
                '(weight_decays) or more extensions.')
        for edge, new in ((high, high * 10), (low, low / 10)):
            if scores[edge] == top:
                scores[new] = score(new)
        extensions += 1


def _standardise(train: Tensor, test: Tensor):
    train, test = train.double(), test.double()
    mean = train.mean(dim=0)
    std = train.std(dim=0).clamp_min(1e-6)
    return (train - mean) / std, (test - mean) / std


def fit_linear_probe(train_features: Tensor,
                     train_labels: Tensor,
                     test_features: Tensor,
                     test_labels: Tensor,
                     weight_decays: Optional[Sequence[float]] = None,
                     method: str = 'logistic',
                     split: Optional[Tuple[Tensor, Tensor]] = None,
                     val_fraction: float = 0.2,
                     tolerance: float = GRAD_TOLERANCE,
                     max_iter: int = 1000,
                     max_extensions: int = MAX_GRID_EXTENSIONS) -> ProbeResult:
    """Fit a converged linear classifier, choose its penalty on a fixed
    validation split, refit on all training features and test once.

    Features are standardised with the training statistics. Each penalty
    is fitted on the fit part of ``split`` and scored on its validation
    part (logistic: largest first, each fit warm-started from the previous
    one); the grid is extended where the best is on an edge (see
    :func:`choose_penalty`); the chosen penalty is refitted on all training
    features, and only that fit sees the test features.

    Args:
        train_features (Tensor): ``(N, D)`` training features.
        train_labels (Tensor): ``(N, )`` integer labels.
        test_features (Tensor): ``(M, D)`` test features.
        test_labels (Tensor): ``(M, )`` integer labels.
        weight_decays (Sequence[float], optional): Per-sample L2 penalties
            to start from. Defaults to :data:`PENALTY_GRID`.
        method (str): ``'logistic'`` (default) or ``'ridge'``.
        split (tuple[Tensor], optional): ``(fit_ids, val_ids)`` into the
            training features. Defaults to :func:`fixed_split` of the
            labels, the same for every model on the same data.
        val_fraction (float): Validation part of the default split.
        tolerance (float): Gradient-norm tolerance of every logistic fit.
        max_iter (int): Newton iteration limit of one logistic fit.
        max_extensions (int): Decades the grid may grow by.

    Returns:
        ProbeResult: Accuracies, the chosen penalty and the convergence
        certificate of the final fit.

    Raises:
        ProbeGridError: The chosen penalty stays on the grid's edge.
        ProbeConvergenceError: A logistic fit misses its tolerance.
    """
    if train_features.shape[0] != train_labels.shape[0] or \
            test_features.shape[0] != test_labels.shape[0]:
        raise ValueError('Features and labels differ in length: '
                         f'{train_features.shape[0]} vs '
                         f'{train_labels.shape[0]} (train), '
                         f'{test_features.shape[0]} vs '
                         f'{test_labels.shape[0]} (test).')
    if method not in PROBE_METHODS:
        raise ValueError(f'method must be one of {PROBE_METHODS}, got '
                         f'{method!r}.')
    fit_ids, val_ids = split if split is not None else fixed_split(
        train_labels, val_fraction)
    train, test = _standardise(train_features, test_features)
    num_classes = int(max(train_labels.max(), test_labels.max())) + 1
    x_fit, y_fit = train[fit_ids], train_labels[fit_ids]
    x_val, y_val = train[val_ids], train_labels[val_ids]
    grid = weight_decays or PENALTY_GRID
    convergence: Dict[float, Dict[str, float]] = {}

    if method == 'ridge':
        fit_part = _RidgeFitter(x_fit, y_fit, num_classes)

        def score(alpha):
            weight, bias = fit_part(alpha)
            convergence[alpha] = dict(
                grad_norm=fit_part.residual(weight, alpha), iterations=0)
            return _topk(x_val @ weight + bias, y_val, 1)

        best, val_top1, extensions = choose_penalty(score, grid,
                                                    max_extensions)
        final = _RidgeFitter(train, train_labels, num_classes)
        weight, bias = final(best)
        certificate, iterations = final.residual(weight, best), 0
    else:
        # Warm starts come from the nearest larger penalty already solved.
        solved: Dict[float, Tuple[Tensor, Tensor]] = {}

        def score(weight_decay):
            larger = [p for p in solved if p > weight_decay]
            init = solved[min(larger)] if larger else None
            weight, bias, steps, norm = solve_logistic(x_fit, y_fit,
                                                       num_classes,
                                                       weight_decay, tolerance,
                                                       max_iter, init)
            solved[weight_decay] = (weight, bias)
            convergence[weight_decay] = dict(grad_norm=norm, iterations=steps)
            return _topk(x_val @ weight + bias, y_val, 1)

        best, val_top1, extensions = choose_penalty(score, grid,
                                                    max_extensions)
        weight, bias, iterations, certificate = solve_logistic(
            train, train_labels, num_classes, best, tolerance, max_iter,
            solved[best])
    test_logits = test @ weight + bias
    return ProbeResult(
        top1=_topk(test_logits, test_labels, 1),
        top5=_topk(test_logits, test_labels, 5),
        train_top1=_topk(train @ weight + bias, train_labels, 1),
        weight_decay=best,
        val_top1=dict(sorted(val_top1.items())),
        iterations=iterations,
        grad_norm=certificate,
        dims=train.shape[1],
        method=method,
        tolerance=tolerance if method == 'logistic' else 0.,
        extensions=extensions,
        num_fit=len(fit_ids),
        num_val=len(val_ids),
        split_id=_split_id(val_ids),
        convergence=dict(sorted(convergence.items())))


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
    """A HiViT-family backbone (:class:`HiViT`, :class:`FastiTPN`) and its
    iTPN pyramid, when the config has one, in eval mode, returning pooled
    features of full images.

    Args:
        model_cfg (dict): A model config whose ``backbone`` is a subclass of
            ``UnitPyramidBackbone`` (HiViT, FastiTPN) and
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
        backbone_type = backbone.get('type')
        backbone_cls = MODELS.get(backbone_type) if isinstance(
            backbone_type, str) else backbone_type
        if not (isinstance(backbone_cls, type)
                and issubclass(backbone_cls, UnitPyramidBackbone)):
            raise ValueError(
                'The probe needs a backbone of the HiViT family '
                f'(mmitpn.HiViT, mmitpn.FastiTPN); the config has '
                f'{backbone_type!r}.')
        for key in ('init_cfg', 'frozen_stages', 'window_size',
                    'global_blocks'):
            backbone.pop(key, None)
        backbone.update(
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
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import DATASETS
    cfg = dict(copy.deepcopy(dataset_cfg), pipeline=list(pipeline))
    if limit is not None:
        cfg['indices'] = limit
    # ``scope`` only while building, and only where none is set: the
    # caller's default scope stays as it was.
    unset = DefaultScope.get_current_instance() is None
    with DefaultScope.overwrite_default_scope(scope if unset else None):
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
