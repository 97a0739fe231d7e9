# Copyright (c) mmitpn contributors. All rights reserved.
"""``mmitpn.apis.create_backbone``: backbones by name, every checkpoint
layout loaded and reported, stride maps at any multiple of 16, RGB weights
adapted to more input channels, and the input normalisation."""
import os.path as osp
import re
from collections import OrderedDict

import pytest
import torch
from mmengine.config import Config
from tiny_models import tiny_arch, tiny_pixel_itpn

from mmitpn.apis import (IMAGENET_NORMALIZATION, ImageNormalization,
                         create_backbone, list_backbones,
                         load_backbone_checkpoint, read_backbone_checkpoint)
from mmitpn.models import FastiTPN, HiViT
from mmitpn.registry import MODELS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY = tiny_arch()
FAMILIES = ('HiViT', 'FastiTPN')


def tiny_itpn(family, **backbone_kwargs):
    """A tiny iTPN pixel-pretraining model: backbone, pyramid and head."""
    return MODELS.build(
        tiny_pixel_itpn(TINY, backbone=family, **backbone_kwargs)).eval()


def perturbed(module):
    """Make every tensor of ``module`` random, so that no weight goes
    unnoticed by a comparison of outputs."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for param in module.parameters():
            param.add_(0.05 * torch.randn(param.shape, generator=generator))
    return module


def maps(model, images):
    with torch.no_grad():
        return model(images)


def images(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def test_every_name_builds_its_family_and_architecture():
    names = list_backbones()
    assert names == sorted(list(HiViT.arch_zoo) + list(FastiTPN.arch_zoo))
    for name in names:
        with torch.device('meta'):
            model = create_backbone(name)
        family = FastiTPN if name.startswith('fast-itpn') else HiViT
        assert type(model) is family
        assert model.arch_settings == family.arch_zoo[name]
        assert model.out_indices == (0, 1, 2) and not model.training
        assert model.input_normalization == IMAGENET_NORMALIZATION


def test_a_fake_official_fast_itpn_release_fills_every_backbone_key(
        key_listing, tmp_path, mm_log):
    """Random tensors with the names and shapes of the official
    ``fast_itpn_tiny_1600e_1k.pt`` (``model`` container, classifier head
    and ``fc_norm`` included) load into a 6-channel 256 px encoder."""
    state_dict = key_listing('keys_fast_itpn_tiny_1112_patch16_224.txt')
    path = str(tmp_path / 'fast_itpn_tiny_1600e_1k.pt')
    torch.save(dict(model=state_dict), path)
    model = create_backbone(
        'fast-itpn-tiny', path, in_channels=6, img_size=256, strict=True)
    log = mm_log.getvalue().splitlines()
    assert f'{path}: Fast-iTPN backbone (prefix \'\')' in log
    assert 'missing keys: none' in log and 'unexpected keys: none' in log
    assert "adapted: patch_embed.proj.weight 3 -> 6 input channels (timm's " \
        'adapt_input_conv); pos_embed resized 14x14 -> 16x16' in log
    assert 'left out (not the backbone): head (2), fc_norm (2)' in log
    assert torch.equal(model.blocks[-1].mlp.w3.weight,
                       state_dict['blocks.15.mlp.w3.weight'])
    assert model.pos_embed.shape == (1, 256, 384)
    outs = maps(model, images(1, 6, 128, 128))
    assert [tuple(out.shape) for out in outs] == [(1, 96, 32, 32),
                                                  (1, 192, 16, 16),
                                                  (1, 384, 8, 8)]


def whole_model(model):
    """An mmitpn checkpoint of a whole model (``backbone.``, ``neck.``,
    ``head.``)."""
    return model.state_dict()


def official_detector(model):
    """The official detection code's layout: the pyramid inside the
    backbone, official names, mmdet heads beside it."""
    state_dict = OrderedDict()
    for key, value in model.state_dict().items():
        if key.startswith('neck.'):
            key = 'backbone.' + key[len('neck.'):]
        if key.startswith(('backbone.', 'head.')):
            state_dict[key] = value
    state_dict['rpn_head.rpn_cls.weight'] = torch.zeros(3, 32, 1, 1)
    return state_dict


def official_classifier(model):
    """An official fine-tuned release: bare backbone, ``fc_norm`` and
    ``head``, a derived ``relative_position_index``."""
    state_dict = OrderedDict((key[len('backbone.'):], value)
                             for key, value in model.state_dict().items()
                             if key.startswith('backbone.'))
    state_dict['fc_norm.weight'] = torch.ones(64)
    state_dict['fc_norm.bias'] = torch.zeros(64)
    state_dict['head.weight'] = torch.zeros(10, 64)
    state_dict['head.bias'] = torch.zeros(10)
    return state_dict


def mmpretrain_model(model):
    """mmpretrain's HiViT names: ``pos_embed`` and a relative position
    index buffer per attention block."""
    state_dict = OrderedDict()
    for key, value in model.state_dict().items():
        state_dict[key.replace('absolute_pos_embed', 'pos_embed')] = value
    state_dict['backbone.blocks.4.attn.relative_position_index'] = \
        torch.zeros(16, 16, dtype=torch.long)
    return state_dict


# layout: (checkpoint of a model, families, prefix, what is left out)
LAYOUTS = {
    'mmitpn whole model':
    (whole_model, FAMILIES, 'backbone.', r'neck \(\d+\), head \(\d+\)$'),
    # Official detectors and mmpretrain exist for iTPN (HiViT) only.
    'official detector':
    (official_detector, ('HiViT', ), 'backbone.',
     r'head \(\d+\), rpn_head \(1\), backbone.align_dim_16tofpn \(2\), .*'
     r'backbone.fpn_modules \(\d+\)$'),
    'official classifier':
    (official_classifier, FAMILIES, '', r'head \(2\), fc_norm \(2\)$'),
    'mmpretrain': (mmpretrain_model, ('HiViT', ), 'backbone.',
                   r'neck \(\d+\), head \(\d+\)$'),
}


@pytest.mark.parametrize('layout,family',
                         [(layout, family)
                          for layout, (_, families, _, _) in LAYOUTS.items()
                          for family in families])
def test_each_checkpoint_layout_gives_the_source_models_maps(
        layout, family, tmp_path, mm_log):
    make, _, prefix, left_out = LAYOUTS[layout]
    # The layout settings (relative position tables, layer scale) are read
    # off the checkpoint: none is passed to create_backbone.
    extra = dict(rel_pos_type='bias_table', layer_scale_init_value=0.1) \
        if family == 'HiViT' else {}
    source = perturbed(tiny_itpn(family, **extra))
    reference = MODELS.build(
        dict(
            type=family,
            arch=TINY,
            img_size=64,
            out_indices=(0, 1, 2),
            **extra)).eval()
    reference.load_state_dict(source.backbone.state_dict())
    path = str(tmp_path / 'checkpoint.pth')
    torch.save(dict(state_dict=make(source)), path)
    model = create_backbone(family, path, arch=TINY, img_size=64, strict=True)
    log = mm_log.getvalue()
    assert f"backbone (prefix '{prefix}')" in log
    assert 'missing keys: none\nunexpected keys: none' in log
    assert re.search('^left out \\(not the backbone\\): ' + left_out, log,
                     re.M)
    x = images(2, 3, 48, 80)
    for ours, theirs in zip(maps(model, x), maps(reference, x)):
        assert torch.equal(ours, theirs)


def test_maps_of_any_size_and_aspect_that_is_a_multiple_of_16():
    for family in FAMILIES:
        model = create_backbone(family, arch=TINY, img_size=64)
        for height, width in ((48, 80), (128, 96), (16, 32), (64, 64)):
            outs = maps(model, images(2, 3, height, width))
            assert [tuple(out.shape)
                    for out in outs] == [(2, 16, height // 4, width // 4),
                                         (2, 32, height // 8, width // 8),
                                         (2, 64, height // 16, width // 16)]
        # A size other than img_size interpolates the position embedding
        # at run time as loading resizes it: a backbone built for 96x128
        # from the 64 px weights gives the same maps.
        resized = create_backbone(family, arch=TINY, img_size=(96, 128))
        resized.load_state_dict(model.state_dict())
        x = images(1, 3, 96, 128)
        for ours, theirs in zip(maps(model, x), maps(resized, x)):
            torch.testing.assert_close(ours, theirs)
        with pytest.raises(ValueError, match='multiples of 16, got 40x64'):
            model(images(1, 3, 40, 64))


@pytest.mark.parametrize('family', FAMILIES)
def test_six_channels_start_from_the_rgb_weights(family, tmp_path):
    rgb = perturbed(create_backbone(family, arch=TINY, img_size=64))
    path = str(tmp_path / 'rgb.pth')
    torch.save(rgb.state_dict(), path)
    six = create_backbone(family, path, arch=TINY, img_size=64, in_channels=6)
    x = images(2, 3, 64, 48)
    # adapt_input_conv repeats the RGB filters and scales all by 3 / 6: an
    # RGB+X input whose X is zero gets half the RGB response of the patch
    # embedding's convolution (its first layer; the bias is unchanged) ...
    with_zeros = torch.cat([x, torch.zeros_like(x)], dim=1)
    proj_rgb, proj_six = rgb.patch_embed.proj, six.patch_embed.proj
    assert torch.equal(proj_six.bias, proj_rgb.bias)
    with torch.no_grad():
        torch.testing.assert_close(
            proj_six(with_zeros) - proj_six.bias[:, None, None],
            0.5 * (proj_rgb(x) - proj_rgb.bias[:, None, None]))
    # ... and the same image in both halves gives the RGB model's maps.
    doubled = torch.cat([x, x], dim=1)
    for ours, theirs in zip(maps(six, doubled), maps(rgb, x)):
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)
    assert six.input_normalization.mean == IMAGENET_NORMALIZATION.mean * 2
    assert six.input_normalization.std == IMAGENET_NORMALIZATION.std * 2


def test_normalization_is_what_every_config_applies():
    norm = IMAGENET_NORMALIZATION
    assert (norm.channel_order, norm.value_range) == ('RGB', 255.)
    for config in (
            'configs/cls/fast-itpn-base_clip-l-1600e-pre_32xb32-amp-coslr-'
            '20e_in1k.py',
            'configs/cls/itpn-base_pixel-1600e-pre_32xb32-amp-coslr-100e_'
            'in1k.py',
            'configs/pretrain/itpn-clip-b_itpn-base_64xb32-amp-coslr-800e_'
            'in1k.py',
            'configs/det/fast-itpn-base_clip-l-1600e-pre_mask-rcnn_32xb2-amp-'
            '1x_coco.py',
            'configs/seg/itpn-base_pixel-1600e-pre_upernet_8xb2-amp-160k_'
            'ade20k-512x512.py'):
        cfg = Config.fromfile(osp.join(REPO, config))
        preprocessor = cfg.model.get('data_preprocessor') or \
            cfg.data_preprocessor
        assert tuple(preprocessor.mean) == norm.mean, config
        assert tuple(preprocessor.std) == norm.std, config
        # Images are read as BGR and turned to RGB before normalising.
        assert preprocessor.get('to_rgb', preprocessor.get('bgr_to_rgb'))
    unit = norm.rescaled(1.)
    timm_constants = pytest.importorskip('timm.data')
    torch.testing.assert_close(
        torch.tensor(unit.mean),
        torch.tensor(timm_constants.IMAGENET_DEFAULT_MEAN))
    torch.testing.assert_close(
        torch.tensor(unit.std),
        torch.tensor(timm_constants.IMAGENET_DEFAULT_STD))
    pixels = torch.full((1, 3, 2, 2), 255.)
    torch.testing.assert_close(norm(pixels), unit(pixels / 255))
    with pytest.raises(ValueError, match='Expected 3-channel images'):
        norm(torch.zeros(1, 6, 2, 2))
    with pytest.raises(ValueError, match="channel_order must be one of"):
        ImageNormalization((0., ), (1., ), channel_order='RGBA')


def one_line_error(call, match):
    with pytest.raises(ValueError, match=match) as error:
        call()
    assert '\n' not in str(error.value)
    return str(error.value)


def test_bad_names_sizes_and_checkpoints_end_in_one_line(tmp_path):
    one_line_error(
        lambda: create_backbone('fast-itpn-bse'),
        r"Unknown backbone 'fast-itpn-bse' \(did you mean "
        r"'fast-itpn-base'\?\); choose one of")
    one_line_error(lambda: create_backbone('itpn-base', arch=TINY),
                   "'itpn-base' fixes the architecture")
    model = create_backbone('FastiTPN', arch=TINY, img_size=64)
    one_line_error(lambda: model(images(1, 3, 64, 72)),
                   'multiples of 16, got 64x72')

    other = str(tmp_path / 'resnet.pth')
    torch.save({'conv1.weight': torch.zeros(8, 3, 7, 7)}, other)
    one_line_error(
        lambda: create_backbone('FastiTPN', other, arch=TINY),
        f"{other}: no HiViT, iTPN or Fast-iTPN backbone under prefix ''")
    fast = str(tmp_path / 'fast.pth')
    torch.save(model.state_dict(), fast)
    one_line_error(
        lambda: create_backbone('itpn-base', fast),
        f'{fast} holds a Fast-iTPN backbone .* not \'itpn-base\': '
        r"create_backbone\('FastiTPN', arch=dict\(...\), checkpoint=...\)")
    one_line_error(
        lambda: create_backbone('FastiTPN', fast, arch=tiny_arch(depth=3)),
        'embed_dims 64, stem_mlp_blocks \\(1, 1\\), depth 2')
    truncated = str(tmp_path / 'truncated.pth')
    with open(fast, 'rb') as src, open(truncated, 'wb') as dst:
        dst.write(src.read()[:2000])
    one_line_error(lambda: create_backbone('FastiTPN', truncated, arch=TINY),
                   'truncated')
    # Strict loading names what is missing; non-strict reports it.
    partial = dict(model.state_dict())
    del partial['blocks.4.attn.q_proj.weight']
    torch.save(partial, fast)
    one_line_error(
        lambda: create_backbone('FastiTPN', fast, arch=TINY, strict=True),
        r'does not fill FastiTPN exactly \(strict\): missing keys: '
        r'blocks.4.attn.q_proj \(weight\); unexpected keys: none')
    report = load_backbone_checkpoint(
        create_backbone('FastiTPN', arch=TINY), fast, verbose=False)
    assert report.missing_keys == ['blocks.4.attn.q_proj.weight']


def test_prefix_and_the_checkpoint_reader(tmp_path):
    model = create_backbone('HiViT', arch=TINY, img_size=64)
    path = str(tmp_path / 'tracker.pth')
    torch.save({
        f'encoder.body.{k}': v
        for k, v in model.state_dict().items()
    }, path)
    checkpoint = read_backbone_checkpoint(path, prefix='encoder.body.')
    assert (checkpoint.family, checkpoint.layout) == ('HiViT', 'iTPN')
    assert checkpoint.arch['stem_mlp_blocks'] == (1, 1)
    assert checkpoint.img_size == 64
    assert checkpoint.settings == dict(
        stem_mlp_ratio=3.,
        mlp_ratio=4.,
        rel_pos_type=None,
        layer_scale_init_value=0.)
    loaded = create_backbone(
        'HiViT',
        path,
        arch=TINY,
        img_size=64,
        prefix='encoder.body.',
        strict=True)
    x = images(1, 3, 32, 32)
    for ours, theirs in zip(maps(loaded, x), maps(model, x)):
        assert torch.equal(ours, theirs)
