# Copyright (c) mmitpn contributors. All rights reserved.
"""From a pretraining checkpoint (or an official fine-tuned one) to an
mmpretrain classifier."""
import math

import pytest
import torch
import torch.nn.functional as F
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS
from mmpretrain.structures import DataSample
from tiny_models import tiny_arch

from mmitpn.converters import convert_official

TINY = tiny_arch(embed_dims=64, stem_mlp_blocks=(1, 1))


def classifier(checkpoint, **backbone):
    cfg = dict(
        type='ImageClassifier',
        backbone=dict(
            type='mmitpn.HiViT',
            arch=TINY,
            img_size=64,
            rel_pos_type='bias_table',
            out_type='avg_featmap',
            init_cfg=dict(
                type='Pretrained', checkpoint=checkpoint, prefix='backbone.')),
        head=dict(type='LinearClsHead', num_classes=10, in_channels=64))
    cfg['backbone'].update(backbone)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MMPRETRAIN_MODELS.build(cfg)


def test_pretraining_checkpoint_loads_and_lists_fresh_parameters(
        pretraining_checkpoint, mm_log):
    path, pretrained = pretraining_checkpoint('epoch_1.pth')
    model = classifier(path)
    model.init_weights()
    for name, value in pretrained.backbone.state_dict().items():
        assert torch.equal(model.backbone.state_dict()[name], value), name
    log = mm_log.getvalue()
    missing = log[log.index('missing keys in source state_dict'):]
    missing = missing.splitlines()[0]
    # No pretraining relative position tables, no fc_norm: initialised.
    assert 'blocks.4.attn.relative_position_bias_table' in missing
    assert 'fc_norm.weight' in missing
    assert 'blocks.0.mlp.fc1.weight' not in missing


def test_bad_checkpoints_are_named(check_checkpoint_errors):
    check_checkpoint_errors(classifier)


def test_linear_probe_keeps_backbone_and_pyramid_frozen(
        pretraining_checkpoint):
    path, _ = pretraining_checkpoint('epoch_1.pth')
    cfg = dict(
        type='ImageClassifier',
        backbone=dict(
            type='mmitpn.HiViT',
            arch=TINY,
            img_size=64,
            out_indices=(0, 1, 2),
            frozen_stages=3,
            init_cfg=dict(
                type='Pretrained', checkpoint=path, prefix='backbone.')),
        neck=dict(
            type='mmitpn.iTPNLinearProbeNeck',
            pyramid=dict(
                type='iTPNPyramid',
                embed_dims=64,
                fpn_dim=32,
                init_cfg=dict(
                    type='Pretrained', checkpoint=path, prefix='neck.'))),
        head=dict(
            type='LinearClsHead', num_classes=10, in_channels=3 * 32 + 64))
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MMPRETRAIN_MODELS.build(cfg)
    model.init_weights()
    frozen = {
        **{
            f'backbone.{k}': v.clone()
            for k, v in model.backbone.state_dict().items()
        },
        **{
            f'pyramid.{k}': v.clone()
            for k, v in model.neck.pyramid.state_dict().items()
        }
    }
    optim = build_optim_wrapper(
        model, dict(optimizer=dict(type='SGD', lr=1.0, momentum=0.9)))
    model.train()
    assert not model.backbone.blocks[0].training
    assert not model.neck.pyramid.training and model.neck.bn.training
    bn_mean = model.neck.bn.running_mean.clone()
    head_weight = model.head.fc.weight.detach().clone()
    samples = [DataSample().set_gt_label(i) for i in range(4)]
    data = dict(inputs=torch.randn(4, 3, 64, 64) * 50, data_samples=samples)
    for _ in range(2):
        model.train_step(data, optim)
    assert not any(p.requires_grad for p in model.backbone.parameters())
    assert not any(p.requires_grad for p in model.neck.pyramid.parameters())
    assert all(p.grad is None for p in model.backbone.parameters())
    for name, value in model.backbone.state_dict().items():
        assert torch.equal(value, frozen[f'backbone.{name}']), name
    for name, value in model.neck.pyramid.state_dict().items():
        assert torch.equal(value, frozen[f'pyramid.{name}']), name
    assert not torch.equal(model.neck.bn.running_mean, bn_mean)
    assert not torch.equal(model.head.fc.weight, head_weight)


def official_forward(sd, images, eps=1e-6):
    """The official iTPN classifier, written out from the reference
    (independent of mmitpn's modules): 4x4 sub-tokens in 16x16 units, MLP
    blocks, PatchMerge, attention with a relative position bias table,
    mean pooling, fc_norm, head."""
    batch = images.shape[0]
    side = images.shape[2] // 16
    w = sd['patch_embed.proj.weight']
    x = F.conv2d(images, w, sd['patch_embed.proj.bias'], stride=4)
    x = x.reshape(batch, -1, side, 4, side, 4).permute(0, 2, 4, 3, 5, 1)
    x = x.reshape(batch, side * side, 4, 4, -1)
    x = F.layer_norm(x, x.shape[-1:], sd['patch_embed.norm.weight'],
                     sd['patch_embed.norm.bias'], eps)
    coords = torch.stack(
        torch.meshgrid(torch.arange(side), torch.arange(side),
                       indexing='ij')).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0)
    index = (rel[..., 0] + side - 1) * (2 * side - 1) + rel[..., 1] + side - 1

    def ln(t, p):
        return F.layer_norm(t, t.shape[-1:], sd[p + '.weight'],
                            sd[p + '.bias'], eps)

    def mlp(t, p):
        t = F.gelu(F.linear(t, sd[p + '.fc1.weight'], sd[p + '.fc1.bias']))
        return F.linear(t, sd[p + '.fc2.weight'], sd[p + '.fc2.bias'])

    def scale(t, key):  # layer scale of the CLIP variants
        return t * sd[key] if key in sd else t

    i = 0
    while f'blocks.{i}.norm2.weight' in sd or \
            f'blocks.{i}.reduction.weight' in sd:
        p = f'blocks.{i}'
        if p + '.reduction.weight' in sd:
            x = torch.cat([
                x[..., 0::2, 0::2, :], x[..., 1::2, 0::2, :],
                x[..., 0::2, 1::2, :], x[..., 1::2, 1::2, :]
            ], -1)
            x = F.linear(ln(x, p + '.norm'), sd[p + '.reduction.weight'])
            if x.shape[2] == 1:
                x = x[:, :, 0, 0] + sd['absolute_pos_embed']
        elif p + '.attn.qkv.weight' in sd:
            table = sd[p + '.attn.relative_position_bias_table']
            heads = table.shape[1]
            y = F.linear(
                ln(x, p + '.norm1'), sd[p + '.attn.qkv.weight'],
                sd[p + '.attn.qkv.bias'])
            q, k, v = y.reshape(batch, x.shape[1], 3, heads,
                                -1).permute(2, 0, 3, 1, 4)
            attn = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
            attn = attn + table[index].permute(2, 0, 1)
            y = (attn.softmax(-1) @ v).transpose(1, 2).flatten(2)
            y = F.linear(y, sd[p + '.attn.proj.weight'],
                         sd[p + '.attn.proj.bias'])
            x = x + scale(y, p + '.gamma_1')
            x = x + scale(mlp(ln(x, p + '.norm2'), p + '.mlp'), p + '.gamma_2')
        else:
            x = x + scale(mlp(ln(x, p + '.norm2'), p + '.mlp'), p + '.gamma_2')
        i += 1
    x = ln(x.mean(1), 'fc_norm')
    return F.linear(x, sd['head.weight'], sd['head.bias'])


@pytest.mark.parametrize('listing',
                         ['keys_pixel_ft_base.txt', 'keys_clip_ft_base.txt'])
def test_converted_official_finetuned_checkpoint_reproduces_logits(
        listing, key_listing):
    state_dict = key_listing(listing, realistic=True)
    conversion = convert_official(state_dict)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MMPRETRAIN_MODELS.build(
            dict(
                type='ImageClassifier',
                backbone=dict(type='mmitpn.HiViT', **conversion.backbone),
                head=dict(
                    type='LinearClsHead', num_classes=1000, in_channels=512)))
    model.load_state_dict(conversion.state_dict, strict=True)
    model.eval()
    images = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        expected = official_forward(state_dict, images)
        actual = model(images, mode='tensor')
    assert expected.abs().max() > 0.1
    assert (actual - expected).abs().max() < 1e-4
