# Copyright (c) mmitpn contributors. All rights reserved.
import math

import pytest
import torch
import torch.nn.functional as F
from scipy import optimize
from tiny_models import tiny_arch

from mmitpn.evaluation import (PENALTY_GRID, FrozenFeatureExtractor,
                               ProbeConvergenceError, ProbeGridError,
                               choose_penalty, extract_features,
                               fit_linear_probe, fixed_split, solve_logistic)
from mmitpn.utils import extract_state_dict, load_checkpoint_file

TINY = tiny_arch(embed_dims=64)


def clusters(num, dims=8, classes=3, seed=0, spread=1.5):
    generator = torch.Generator().manual_seed(seed)
    centres = torch.randn(
        classes, dims, generator=torch.Generator().manual_seed(100)) * 3
    labels = torch.arange(num) % classes
    features = centres[labels] + spread * torch.randn(
        num, dims, generator=generator)
    return features, labels


def test_logistic_probe_converges_to_its_tolerance():
    train, train_labels = clusters(90, dims=2)
    test, test_labels = clusters(60, dims=2, seed=1)
    result = fit_linear_probe(
        train,
        train_labels,
        test,
        test_labels,
        weight_decays=[1e-1, 1e-2, 1e-3, 1e-4, 1e-5],
        tolerance=1e-7)
    assert result.method == 'logistic' and result.tolerance == 1e-7
    assert result.grad_norm <= 1e-7 and result.iterations > 0
    assert 1e-5 < result.weight_decay < 1e-1
    assert result.dims == 2 and result.top5 == 100.
    # The same objective minimised by plain gradient descent for long
    # enough gives the same weights and test predictions.
    x = (train.double() - train.double().mean(0)) / train.double().std(0)
    xt = (test.double() - train.double().mean(0)) / train.double().std(0)
    weight = torch.zeros(2, 3, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    penalty = result.weight_decay
    for _ in range(20000):
        loss = F.cross_entropy(x @ weight + bias, train_labels) + \
            0.5 * penalty * weight.square().sum()
        grad_w, grad_b = torch.autograd.grad(loss, (weight, bias))
        with torch.no_grad():
            weight -= 0.5 * grad_w
            bias -= 0.5 * grad_b
    solved, _, _, norm = solve_logistic(x, train_labels, 3, penalty, 1e-8)
    assert norm <= 1e-8
    assert torch.allclose(solved, weight.detach(), atol=1e-5)
    top1 = ((xt @ weight + bias).argmax(1) == test_labels).double().mean()
    assert result.top1 == pytest.approx(100. * top1.item())


@pytest.mark.parametrize('penalty', PENALTY_GRID)
def test_logistic_solver_reaches_the_known_optimum(penalty):
    # Two points x = -1 (class 0) and x = +1 (class 1): by symmetry the
    # optimum is W = (-a, a), equal biases, where a solves the stationarity
    # condition penalty * a = sigmoid(-2 a) (a root found independently).
    features = torch.tensor([[-1.], [1.]], dtype=torch.float64)
    labels = torch.tensor([0, 1])
    root = optimize.brentq(lambda a: penalty * a - 1 / (1 + math.exp(2 * a)),
                           0., 50.)
    weight, bias, iterations, norm = solve_logistic(features, labels, 2,
                                                    penalty, 1e-10)
    assert norm <= 1e-10 and iterations > 0
    assert weight.flatten().tolist() == pytest.approx([-root, root], rel=1e-8)
    assert (bias[1] - bias[0]).item() == pytest.approx(0., abs=1e-8)


def test_logistic_probe_converges_at_every_penalty_of_the_grid():
    # Nearly separable, strongly correlated features: the ill-conditioned
    # case where L-BFGS stalled above its tolerance at penalties <= 1e-6.
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(600) % 5
    mixing = torch.randn(30, 30, generator=generator)
    features = (torch.randn(5, 30, generator=generator)[labels] +
                0.3 * torch.randn(600, 30, generator=generator)) @ mixing
    features = ((features - features.mean(0)) / features.std(0)).double()
    init = None
    for penalty in sorted(PENALTY_GRID, reverse=True):
        weight, bias, _, norm = solve_logistic(
            features, labels, 5, penalty, 1e-4, init=init)
        init = (weight, bias)
        # The certificate is the gradient of the stated objective.
        w = weight.clone().requires_grad_(True)
        b = bias.clone().requires_grad_(True)
        loss = F.cross_entropy(features @ w + b, labels) + \
            0.5 * penalty * w.square().sum()
        grads = torch.autograd.grad(loss, (w, b))
        exact = torch.cat([g.flatten() for g in grads]).norm().item()
        assert exact == pytest.approx(norm, rel=1e-6, abs=1e-12)
        assert norm <= 1e-4, penalty
    # The probe records the certificate of every penalty it tried.
    test_labels = torch.arange(100) % 5
    result = fit_linear_probe(features[:500], labels[:500], features[500:],
                              test_labels)
    assert set(result.convergence) == set(result.val_top1)
    assert all(c['grad_norm'] <= 1e-4 and c['iterations'] >= 0
               for c in result.convergence.values())
    assert set(
        result.as_dict()['convergence']) == {str(p)
                                             for p in result.val_top1}


def test_logistic_probe_refuses_an_unconverged_fit():
    train, labels = clusters(60, dims=4)
    with pytest.raises(ProbeConvergenceError, match='gradient norm'):
        solve_logistic(train.double(), labels, 3, 1e-6, 1e-12, max_iter=3)


def test_penalty_on_the_edge_is_extended_or_refused():
    calls = []

    def peaked(optimum):

        def score(penalty):
            calls.append(penalty)
            return -abs(math.log10(penalty) - math.log10(optimum))

        return score

    best, scores, extensions = choose_penalty(peaked(1e-2), [1e-3, 1e-1, 1])
    assert (best, extensions) == (1e-1, 0)  # a tie goes to the larger
    # Optimum below the grid: one decade added at the bottom, then interior.
    calls.clear()
    best, scores, extensions = choose_penalty(peaked(1e-4), [1e-3, 1e-2, 1e-1])
    assert extensions == 2 and best == pytest.approx(1e-4)
    assert calls == [
        1e-1, 1e-2, 1e-3,
        pytest.approx(1e-4),
        pytest.approx(1e-5)
    ]
    # Above the grid too.
    best, _, extensions = choose_penalty(peaked(100.), [1e-2, 1e-1, 1.])
    assert extensions == 3 and best == pytest.approx(100.)
    # Still on the edge after the allowed extensions: refused.
    with pytest.raises(ProbeGridError, match='smallest tried'):
        choose_penalty(peaked(1e-9), [1e-3, 1e-2, 1e-1], max_extensions=2)
    with pytest.raises(ValueError, match='at least 3 positive'):
        choose_penalty(peaked(1.), [1e-2, 1e-1])
    # The descent stops two penalties below the best: no slow weak fits.
    calls.clear()
    best, scores, extensions = choose_penalty(peaked(1e-2), PENALTY_GRID)
    assert (best, extensions) == (pytest.approx(1e-2), 0)
    assert calls == pytest.approx([10., 1., 1e-1, 1e-2, 1e-3, 1e-4])
    # Ties go to the larger penalty: a flat low end is not an edge.
    best, _, extensions = choose_penalty(lambda p: float(p <= 1e-2),
                                         [1e-3, 1e-2, 1e-1])
    assert (best, extensions) == (1e-2, 0)


def collinear(num, seed):
    """Two standardised features whose difference alone carries the class:
    the less the penalty, the better, down to the least-squares limit."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(num) % 3
    common = 10 * torch.randn(num, generator=generator)
    signal = labels + 0.2 * torch.randn(num, generator=generator)
    return torch.stack([common, common + signal], 1), labels


@pytest.mark.parametrize('method', ['ridge', 'logistic'])
def test_probe_extends_or_refuses_a_penalty_on_the_edge(method):
    train, train_labels = collinear(300, 0)
    test, test_labels = collinear(300, 1)
    grid = [1e-2, 1e-1, 1.]
    with pytest.raises(ProbeGridError, match='0.01 is the smallest tried'):
        fit_linear_probe(
            train,
            train_labels,
            test,
            test_labels,
            weight_decays=grid,
            method=method,
            max_extensions=0)
    result = fit_linear_probe(
        train,
        train_labels,
        test,
        test_labels,
        weight_decays=grid,
        method=method)
    assert result.extensions > 0 and result.weight_decay < 1e-2
    assert min(result.val_top1) < result.weight_decay
    assert result.val_top1[result.weight_decay] > result.val_top1[1e-2]


def test_split_is_fixed_by_the_data_and_shared_by_every_model():
    labels = torch.arange(200) % 3
    fit_ids, val_ids = fixed_split(labels)
    assert len(val_ids) == 40 and len(fit_ids) == 160
    assert set(fit_ids.tolist()).isdisjoint(val_ids.tolist())
    assert sorted(fit_ids.tolist() + val_ids.tolist()) == list(range(200))
    torch.manual_seed(123)  # a model's seed does not move the split
    again = fixed_split(labels.clone())
    assert torch.equal(again[1], val_ids)
    other = fixed_split(labels.roll(1))  # other data, other split
    assert not torch.equal(other[1], val_ids)
    # Two models (different features, same data) probe on the same split.
    test, test_labels = clusters(60, dims=8, seed=1)
    features = [clusters(200, dims=8, seed=s)[0] for s in (2, 3)]
    results = [
        fit_linear_probe(f, labels, test, test_labels, method='ridge')
        for f in features
    ]
    assert results[0].split_id == results[1].split_id
    assert results[0].num_val == 40 and results[0].num_fit == 160
    with pytest.raises(ValueError, match='val_fraction'):
        fixed_split(labels, 1.)


@pytest.mark.parametrize('dims', [40, 500])  # primal and dual ridge
def test_ridge_probe_is_the_closed_form_solution(dims):
    train, train_labels = clusters(300, dims=dims, spread=4.)
    test, test_labels = clusters(300, dims=dims, seed=1, spread=4.)
    result = fit_linear_probe(
        train, train_labels, test, test_labels, method='ridge')
    assert result.method == 'ridge' and result.grad_norm < 1e-8
    assert set(PENALTY_GRID) <= set(result.val_top1)
    assert min(result.val_top1) < result.weight_decay < max(result.val_top1)
    assert result.val_top1[result.weight_decay] == max(
        result.val_top1.values())
    # The normal equations solved directly give the same test top-1.
    x = train.double()
    mean, std = x.mean(0), x.std(0)
    x = (x - mean) / std
    onehot = F.one_hot(train_labels, 3).double()
    xc, yc = x - x.mean(0), onehot - onehot.mean(0)
    alpha = result.weight_decay * len(x)
    weight = torch.linalg.solve(xc.T @ xc + alpha * torch.eye(dims), xc.T @ yc)
    bias = onehot.mean(0) - x.mean(0) @ weight
    logits = ((test.double() - mean) / std) @ weight + bias
    top1 = (logits.argmax(1) == test_labels).double().mean().item()
    assert result.top1 == pytest.approx(100. * top1)
    assert result.top1 > 70
    with pytest.raises(ValueError, match='differ in length'):
        fit_linear_probe(train, train_labels[:-1], test, test_labels)
    with pytest.raises(ValueError, match='method must be one of'):
        fit_linear_probe(train, train_labels, test, test_labels, method='svm')


def pixel_model_cfg(fpn_dim=32):
    return dict(
        type='iTPN',
        backbone=dict(type='HiViT', arch=TINY, img_size=64),
        neck=dict(type='iTPNPyramid', embed_dims=64, fpn_dim=fpn_dim))


def test_extractor_loads_backbone_and_pyramid(pretraining_checkpoint, mm_log):
    path, _ = pretraining_checkpoint(arch=TINY)
    extractor = FrozenFeatureExtractor(pixel_model_cfg(), path)
    state = extract_state_dict(load_checkpoint_file(path))
    for prefix, module in (('backbone.', extractor.backbone),
                           ('neck.', extractor.pyramid)):
        for name, value in module.state_dict().items():
            if prefix + name in state:
                assert torch.equal(value, state[prefix + name]), name
    log = mm_log.getvalue()
    assert 'load backbone.* from' in log and 'load neck.* from' in log
    assert 'unexpected keys []' in log
    images = torch.randn(3, 3, 64, 64)
    sizes = {
        (kind, pool): extractor(images, kind, pool).shape
        for kind in ('backbone', 'pyramid', 'both')
        for pool in ('mean', 'grid')
    }
    assert sizes[('backbone', 'mean')] == (3, 64)
    assert sizes[('backbone', 'grid')] == (3, 64 * 16)
    assert sizes[('pyramid', 'mean')] == (3, 32 * 3)
    assert sizes[('pyramid', 'grid')] == (3, 32 * 3 * 16)
    assert sizes[('both', 'mean')] == (3, 64 + 96)
    batched = extract_features(extractor, images, batch_size=2, kind='both')
    assert torch.allclose(batched, extractor(images, 'both'), atol=1e-6)
    assert extract_features(None, images).shape == (3, 3 * 64 * 64)


def test_extractor_errors_name_what_is_wrong(pretraining_checkpoint, tmp_path):
    path, _ = pretraining_checkpoint(arch=TINY)
    no_pyramid = dict(pixel_model_cfg(), neck=None)
    with pytest.raises(ValueError, match='no iTPN pyramid'):
        FrozenFeatureExtractor(no_pyramid, path)(torch.randn(1, 3, 64, 64),
                                                 'pyramid')
    other = str(tmp_path / 'other.pth')
    torch.save({'state_dict': {'encoder.w': torch.zeros(1)}}, other)
    with pytest.raises(KeyError, match=r'other.pth has no backbone\.\*'):
        FrozenFeatureExtractor(pixel_model_cfg(), other)
    with pytest.raises(ValueError, match="HiViT family.*'ResNet'"):
        FrozenFeatureExtractor(
            dict(backbone=dict(type='ResNet', depth=18)), None)
    with pytest.raises(ValueError, match="pool must be one of"):
        FrozenFeatureExtractor(pixel_model_cfg())(
            torch.randn(1, 3, 64, 64), pool='max')


def test_extractor_takes_fast_itpn(tmp_path):
    arch = tiny_arch(depth=1, embed_dims=64, num_heads=2)
    cfg = dict(
        backbone=dict(type='mmitpn.FastiTPN', arch=arch, img_size=32),
        neck=dict(type='iTPNPyramid', embed_dims=64, fpn_dim=32))
    source = FrozenFeatureExtractor(cfg)
    state = {
        f'backbone.{k}': v
        for k, v in source.backbone.state_dict().items()
    }
    state.update({
        f'neck.{k}': v
        for k, v in source.pyramid.state_dict().items()
    })
    path = str(tmp_path / 'fast.pth')
    torch.save({'state_dict': state}, path)
    torch.manual_seed(1)  # another random init, overwritten by the load
    extractor = FrozenFeatureExtractor(cfg, path)
    assert type(extractor.backbone).__name__ == 'FastiTPN'
    images = torch.randn(2, 3, 32, 32)
    for kind, pool, dims in (('backbone', 'mean', 64), ('backbone', 'grid',
                                                        64 * 4),
                             ('pyramid', 'mean', 32 * 3), ('pyramid', 'grid',
                                                           32 * 3 * 4)):
        features = extractor(images, kind, pool)
        assert features.shape == (2, dims)
        assert torch.allclose(features, source(images, kind, pool))
