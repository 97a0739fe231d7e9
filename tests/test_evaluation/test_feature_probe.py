# Copyright (c) mmitpn contributors. All rights reserved.
import pytest
import torch
import torch.nn.functional as F

from mmitpn.evaluation import (FrozenFeatureExtractor, extract_features,
                               fit_linear_probe)
from mmitpn.utils import extract_state_dict, load_checkpoint_file

TINY = dict(embed_dims=64, stem_mlp_blocks=(1, 1), depth=2, num_heads=4)


def clusters(num, dims=8, classes=3, seed=0, spread=1.5):
    generator = torch.Generator().manual_seed(seed)
    centres = torch.randn(
        classes, dims, generator=torch.Generator().manual_seed(100)) * 3
    labels = torch.arange(num) % classes
    features = centres[labels] + spread * torch.randn(
        num, dims, generator=generator)
    return features, labels


def test_probe_reaches_the_optimum_of_its_objective():
    train, train_labels = clusters(90, dims=2)
    test, test_labels = clusters(60, dims=2, seed=1)
    result = fit_linear_probe(
        train,
        train_labels,
        test,
        test_labels,
        weight_decays=[1e-2],
        method='logistic')
    assert result.weight_decay == 1e-2 and result.grad_norm < 1e-5
    assert result.method == 'logistic' and result.iterations > 0
    assert result.dims == 2 and result.top5 == 100.
    # The same objective minimised by plain gradient descent for long
    # enough gives the same test predictions.
    x = (train.double() - train.double().mean(0)) / train.double().std(0)
    xt = (test.double() - train.double().mean(0)) / train.double().std(0)
    weight = torch.zeros(2, 3, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    for _ in range(20000):
        loss = F.cross_entropy(x @ weight + bias, train_labels) + \
            0.5e-2 * weight.square().sum()
        grad_w, grad_b = torch.autograd.grad(loss, (weight, bias))
        with torch.no_grad():
            weight -= 0.5 * grad_w
            bias -= 0.5 * grad_b
    top1 = ((xt @ weight + bias).argmax(1) == test_labels).double().mean()
    assert result.top1 == pytest.approx(100. * top1.item())


@pytest.mark.parametrize('dims', [40, 500])  # primal and dual ridge
def test_ridge_probe_is_the_closed_form_solution(dims):
    train, train_labels = clusters(300, dims=dims, spread=4.)
    test, test_labels = clusters(300, dims=dims, seed=1, spread=4.)
    result = fit_linear_probe(train, train_labels, test, test_labels)
    assert result.method == 'ridge' and result.grad_norm < 1e-5
    assert set(result.val_top1) == {1e-3, 1e-2, 1e-1, 1., 10., 100.}
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
    with pytest.raises(ValueError, match='HiViT backbone'):
        FrozenFeatureExtractor(
            dict(backbone=dict(type='ResNet', depth=18)), None)
    with pytest.raises(ValueError, match="pool must be one of"):
        FrozenFeatureExtractor(pixel_model_cfg())(
            torch.randn(1, 3, 64, 64), pool='max')
