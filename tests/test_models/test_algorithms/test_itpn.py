# Copyright (c) mmitpn contributors. All rights reserved.
import copy

import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.optim import build_optim_wrapper
from mmpretrain.structures import DataSample
from tiny_models import tiny_arch, tiny_pixel_itpn

from mmitpn.registry import MODELS

TINY = tiny_arch(depth=4, embed_dims=64)
PIXEL = tiny_pixel_itpn(TINY, fpn_dim=32)
MFM_HEAD = dict(
    type='iTPNMFMHead',
    fpn_dim=32,
    teacher_dims=(16, 32, 64),
    embed_dims=32,
    depth=1,
    num_heads=2,
    img_size=64)


def pixel_cfg(**kwargs):
    cfg = copy.deepcopy(PIXEL)
    cfg.update(kwargs)
    return cfg


@pytest.fixture(autouse=True)
def max_iters():
    MessageHub.get_current_instance().update_info('max_iters', 100)


FAST = dict(type='FastiTPN', arch=TINY, img_size=64)


@pytest.mark.parametrize(
    'backbone', [
        PIXEL['backbone'], FAST,
        dict(PIXEL['backbone'], rel_pos_type='decomposed')
    ],
    ids=['HiViT', 'FastiTPN', 'HiViT-decomposed-positions'])
def test_pixel_pretraining_learns(backbone):
    torch.manual_seed(0)
    model = MODELS.build(pixel_cfg(backbone=backbone))
    optim = build_optim_wrapper(model,
                                dict(optimizer=dict(type='AdamW', lr=3e-3)))
    # Smooth images: masked units are predictable from visible ones.
    images = torch.nn.functional.interpolate(
        torch.randn(4, 3, 3, 3), size=64, mode='bilinear')
    losses = []
    for _ in range(30):
        torch.manual_seed(1)  # the same mask every step
        loss = model.loss(images)['loss_pixel']
        optim.update_params(loss)
        losses.append(loss.item())
    assert losses[-1] < 0.75 * losses[0]


def test_mask_marks_exactly_the_dropped_units():
    model = MODELS.build(pixel_cfg())
    torch.manual_seed(3)
    ids_keep, ids_restore, mask = model.random_masking(8, (4, 4), 'cpu')
    assert ids_keep.shape == (8, 4)
    for sample in range(8):
        kept = set(ids_keep[sample].tolist())
        dropped = {i for i in range(16) if mask[sample, i] == 1}
        assert len(kept) == 4 and not kept & dropped
        assert kept | dropped == set(range(16))
        # ids_restore undoes the shuffle: visible units come first.
        order = ids_restore[sample].argsort()
        assert set(order[:4].tolist()) == kept


def test_masked_units_only_count_in_the_pixel_loss():
    torch.manual_seed(0)
    model = MODELS.build(pixel_cfg()).eval()
    images = torch.randn(2, 3, 64, 64)
    torch.manual_seed(3)
    ids_keep, ids_restore, mask = model.random_masking(2, (4, 4), 'cpu')
    assert mask.sum(1).tolist() == [12., 12.]
    levels = model.neck(model.backbone(images, ids_keep))
    loss = model.head.loss(levels, images, mask, ids_restore)
    pred = model.head(levels, ids_restore, (4, 4))
    # The loss written out unit by unit: MSE to the unit's pixels (row-major
    # 16x16, channels last) normalised by their own mean and unbiased
    # variance, averaged over masked units only.
    errors = []
    for sample in range(2):
        for unit in range(16):
            if mask[sample, unit] == 0:
                continue
            row, col = divmod(unit, 4)
            pixels = images[sample, :, row * 16:(row + 1) * 16,
                            col * 16:(col + 1) * 16].permute(1, 2,
                                                             0).flatten()
            target = (pixels - pixels.mean()) / (pixels.var() + 1e-6)**.5
            errors.append((pred[sample, unit] - target).square().mean())
    assert torch.allclose(torch.stack(errors).mean(), loss, atol=1e-6)
    # Changing a visible unit's pixels leaves the loss unchanged.
    visible = ids_keep[0, 0].item()
    row, col = divmod(visible, 4)
    changed = images.clone()
    changed[0, :, row * 16:(row + 1) * 16, col * 16:(col + 1) * 16] = 0
    assert torch.allclose(
        model.head.loss(levels, changed, mask, ids_restore), loss)


@pytest.mark.parametrize(
    'backbone', [PIXEL['backbone'], FAST], ids=['HiViT', 'FastiTPN'])
def test_mfm_teacher_is_a_frozen_moving_average(backbone):
    torch.manual_seed(0)
    model = MODELS.build(
        pixel_cfg(
            backbone=backbone,
            mfm_head=MFM_HEAD,
            ema=dict(momentum=0.5, end_momentum=0.5)))
    model.train()
    assert not model.teacher.training
    assert not any(p.requires_grad for p in model.teacher.parameters())
    # The optimizer as the pretraining configs build it.
    optim = build_optim_wrapper(
        model,
        dict(
            optimizer=dict(type='SGD', lr=0.1),
            constructor='mmitpn.LayerDecayOptimWrapperConstructor',
            paramwise_cfg=dict(layer_decay_rate=1.0)))
    optimized = {
        id(p)
        for g in optim.optimizer.param_groups
        for p in g['params']
    }
    assert not optimized & {id(p) for p in model.teacher.parameters()}

    images = torch.randn(2, 3, 64, 64)
    losses = model.loss(images)  # first call copies the backbone
    assert set(losses) == {
        'loss_pixel', 'loss_mfm_s4', 'loss_mfm_s8', 'loss_mfm_s16'
    }
    optim.update_params(sum(losses.values()))
    teacher_before = model.teacher.module.blocks[0].mlp.fc1.weight.clone()
    student = model.backbone.blocks[0].mlp.fc1.weight.detach().clone()
    assert not torch.equal(teacher_before, student)
    model.loss(images)
    expected = 0.5 * teacher_before + 0.5 * student
    assert torch.allclose(model.teacher.module.blocks[0].mlp.fc1.weight,
                          expected)
    assert type(model.teacher.module) is type(model.backbone)


def test_full_image_features_and_tensor_mode():
    model = MODELS.build(pixel_cfg()).eval()
    p4, p8, p16 = model(torch.randn(1, 3, 64, 64), mode='tensor')
    assert p4.shape == (1, 16, 4, 4, 32) and p16.shape == (1, 16, 32)
    with pytest.raises(RuntimeError, match='predict'):
        model(torch.randn(1, 3, 64, 64), mode='predict')


@pytest.mark.parametrize('cfg,message', [
    (pixel_cfg(mask_ratio=1.0), r'mask_ratio must be in \(0, 1\)'),
    (pixel_cfg(mask_ratio=0.), r'mask_ratio must be in \(0, 1\)'),
    (pixel_cfg(mask_ratio=0.97), 'leaves no visible unit of the 4x4 grid'),
    (pixel_cfg(backbone=dict(type='HiViT', arch=TINY, img_size=72)),
     'multiples of 16, got 72x72'),
    (pixel_cfg(backbone=dict(type='HiViT', arch='hivit-huge')),
     "Unknown HiViT arch 'hivit-huge'"),
    (pixel_cfg(mfm_head=dict(MFM_HEAD, teacher_dims=(8, 16, 32))),
     r'teacher_dims=\(8, 16, 32\) does not match'),
    (pixel_cfg(ema=dict(momentum=0.1)), 'set mfm_head'),
    (pixel_cfg(neck=dict(type='iTPNPyramid', embed_dims=32)),
     'neck.embed_dims=32 does not match'),
    (pixel_cfg(backbone=dict(type='HiViT', arch=TINY, out_type='featmap')),
     "out_type='raw'"),
])
def test_bad_configs_fail_at_build_time(cfg, message):
    with pytest.raises(ValueError, match=message):
        MODELS.build(cfg)


@pytest.mark.parametrize('backbone,message', [
    (dict(FAST, window_size=2),
     'iTPN with backbone FastiTPN: masked pretraining .* remove window_size'),
    (dict(
        FAST,
        token_reduction=dict(type='migration', start_block=0, keep_ratio=0.5)),
     'masked pretraining .* gathering_tokens and token_reduction'),
])
def test_combinations_that_cannot_work_are_refused_at_build(backbone, message):
    with pytest.raises(ValueError, match=message):
        MODELS.build(pixel_cfg(backbone=backbone))


def test_other_backbones_are_refused_at_build():
    cfg = pixel_cfg(
        backbone=dict(
            type='mmpretrain.VisionTransformer',
            arch='deit-tiny',
            img_size=64,
            patch_size=16))
    with pytest.raises(TypeError, match='needs a HiViT-family backbone'):
        MODELS.build(cfg)


def tiny_clip(tmp_path, embed_dim=32, patch=16):
    from mmitpn.models.target_generators import build_vision_tower
    vision_cfg = dict(
        image_size=4 * patch,
        layers=1,
        width=32,
        head_width=16,
        patch_size=patch)
    tower = build_vision_tower(embed_dim, vision_cfg)
    path = tmp_path / f'clip_{embed_dim}_{patch}.pth'
    torch.save({f'visual.{k}': v for k, v in tower.state_dict().items()}, path)
    return dict(
        type='CLIPTeacher',
        vision_cfg=vision_cfg,
        embed_dim=embed_dim,
        ckpt=str(path)), tower


def clip_cfg(teacher, teacher_dims=32):
    return dict(
        type='iTPNCLIP',
        backbone=dict(
            type='HiViT',
            arch=TINY,
            img_size=64,
            rel_pos_type='bias_table',
            layer_scale_init_value=0.1),
        neck=dict(type='iTPNPyramid', embed_dims=64, fpn_dim=32, fpn_depth=1),
        head=dict(
            type='iTPNCLIPHead',
            embed_dims=64,
            fpn_dim=32,
            teacher_dims=teacher_dims,
            num_heads=4,
            grid_size=(4, 4)),
        teacher=teacher)


def samples_with_masks(batch, masked=6):
    samples = []
    for _ in range(batch):
        mask = torch.zeros(4, 4, dtype=torch.bool)
        mask.view(-1)[torch.randperm(16)[:masked]] = True
        sample = DataSample()
        sample.set_field(mask, 'mask')
        samples.append(sample)
    return samples


def test_clip_pretraining_loss_and_teacher(tmp_path):
    torch.manual_seed(0)
    teacher, tower = tiny_clip(tmp_path)
    model = MODELS.build(clip_cfg(teacher))
    assert model.aux_block == 3  # int(0.75 * 4)
    assert not model.teacher.training
    model.train()
    assert not model.teacher.training
    # The teacher holds exactly the checkpoint's weights.
    assert torch.equal(model.teacher.visual.conv1.weight, tower.conv1.weight)
    images = torch.randn(2, 3, 64, 64)
    losses = model.loss(images, samples_with_masks(2))
    assert set(losses) == {'loss_clip', 'loss_clip_aux'}
    sum(losses.values()).backward()
    assert model.mask_token.grad is not None
    assert model.teacher.visual.conv1.weight.grad is None
    with pytest.raises(ValueError, match='BEiTMaskGenerator'):
        model.loss(images, [DataSample(), DataSample()])


def test_clip_teacher_errors_name_the_file(tmp_path):
    teacher, _ = tiny_clip(tmp_path)
    missing = dict(teacher, ckpt=str(tmp_path / 'nowhere.pth'))
    with pytest.raises(FileNotFoundError, match='nowhere.pth'):
        MODELS.build(clip_cfg(missing))
    other, _ = tiny_clip(tmp_path, patch=14)
    wrong = dict(teacher, ckpt=other['ckpt'])
    with pytest.raises(ValueError, match='clip_32_14.pth does not hold'):
        MODELS.build(clip_cfg(wrong))
    with pytest.raises(
            ValueError, match='32-dim features but '
            'head.teacher_dims=768'):
        MODELS.build(clip_cfg(teacher, teacher_dims=768))
    with pytest.raises(ValueError, match='teacher_ckpt'):
        MODELS.build(clip_cfg(dict(teacher, ckpt=None)))


def test_mae_style_baseline_without_pyramid():
    model = MODELS.build(
        pixel_cfg(
            neck=None, head=dict(PIXEL['head'], fpn_dim=64, levels=(16, ))))
    assert model.neck is None and len(model.head.decoder_embed) == 1
    loss = model.loss(torch.randn(2, 3, 64, 64))['loss_pixel']
    loss.backward()
    assert model.backbone.blocks[0].mlp.fc1.weight.grad is not None
    with pytest.raises(ValueError, match='needs a neck'):
        MODELS.build(pixel_cfg(neck=None, mfm_head=MFM_HEAD))
    with pytest.raises(ValueError, match='levels'):
        MODELS.build(pixel_cfg(head=dict(PIXEL['head'], levels=(32, ))))


def test_clip_teacher_reads_openai_torchscript_archives(tmp_path):
    """OpenAI's ViT-B-16.pt / ViT-L-14.pt are TorchScript archives holding
    the whole CLIP model (``visual.*`` and the text tower)."""
    teacher, tower = tiny_clip(tmp_path)

    class OpenAIStyleCLIP(torch.nn.Module):

        def __init__(self):
            super().__init__()
            self.visual = tower
            self.token_embedding = torch.nn.Embedding(8, 4)

        def forward(self, images):
            return self.visual(images)

    archive = tmp_path / 'ViT-tiny.pt'
    torch.jit.trace(
        OpenAIStyleCLIP().eval(), torch.randn(1, 3, 64, 64),
        check_trace=False).save(str(archive))
    model = MODELS.build(clip_cfg(dict(teacher, ckpt=str(archive))))
    for name, value in tower.state_dict().items():
        assert torch.equal(model.teacher.visual.state_dict()[name], value)
    broken = tmp_path / 'broken.pt'
    broken.write_bytes(archive.read_bytes()[:2000])
    with pytest.raises(ValueError, match='broken.pt'):
        MODELS.build(clip_cfg(dict(teacher, ckpt=str(broken))))


def test_clip_target_is_the_projected_patch_tokens_of_the_student_crop(
        tmp_path, monkeypatch):
    """Hand computation of the target: the student's input un-normalised to
    [0, 1], CLIP-normalised, patch tokens (class token dropped) after
    ``ln_post`` and ``proj``; the head compares against their parameter-free
    LayerNorm."""
    from mmitpn.models.target_generators.clip_teacher import (CLIP_MEAN,
                                                              CLIP_STD)
    torch.manual_seed(0)
    teacher, tower = tiny_clip(tmp_path)
    model = MODELS.build(clip_cfg(teacher)).eval()
    images = torch.randn(2, 3, 64, 64)

    imagenet_mean = torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1)
    imagenet_std = torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1)
    pixels = (images * imagenet_std + imagenet_mean) / 255.
    clip_input = (pixels - torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)) / \
        torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    x = tower.conv1(clip_input).flatten(2).transpose(1, 2)
    cls = tower.class_embedding.expand(2, 1, -1)
    x = torch.cat([cls, x], dim=1) + tower.positional_embedding
    x = tower.transformer(tower.ln_pre(x))
    expected = tower.ln_post(x[:, 1:]) @ tower.proj

    captured = {}
    original = model.head.loss

    def spy(levels, aux_tokens, target, grid_size):
        captured['target'] = target
        return original(levels, aux_tokens, target, grid_size)

    monkeypatch.setattr(model.head, 'loss', spy)
    with torch.no_grad():
        losses = model.loss(images, samples_with_masks(2))
        torch.testing.assert_close(captured['target'], expected)
        levels = model.extract_feat(images)
        _, collected = model.backbone.forward_main(
            model.backbone.forward_stem(images)[1], (4, 4), collect=(3, ))
    assert losses['loss_clip'] > 0
    # The head compares against the parameter-free LayerNorm of the target.
    with torch.no_grad():
        main, aux = model.head(levels, collected[0], (4, 4))
        head_losses = original(levels, collected[0], expected, (4, 4))
    normalised = torch.nn.functional.layer_norm(expected, (32, ))
    torch.testing.assert_close(
        head_losses['loss_clip'],
        torch.nn.functional.smooth_l1_loss(main, normalised))
    torch.testing.assert_close(
        head_losses['loss_clip_aux'],
        torch.nn.functional.smooth_l1_loss(aux, normalised))


def test_clip_teacher_takes_its_own_view(tmp_path, monkeypatch):
    """With two views (student, teacher in [0, 1]) the teacher sees the
    second one as it is; the student sees only the first."""
    torch.manual_seed(0)
    teacher, _ = tiny_clip(tmp_path)
    model = MODELS.build(clip_cfg(teacher)).eval()
    student = torch.randn(2, 3, 64, 64)
    teacher_view = torch.rand(2, 3, 64, 64)
    seen = []
    forward = model.teacher.forward
    monkeypatch.setattr(model.teacher, 'forward',
                        lambda images: seen.append(images) or forward(images))
    with torch.no_grad():
        two = model.loss([student, teacher_view], samples_with_masks(2))
        assert seen[-1] is teacher_view
        one = model.loss(student, samples_with_masks(2))
        assert not torch.equal(seen[-1], teacher_view)
    assert set(two) == set(one) == {'loss_clip', 'loss_clip_aux'}
    for a, b in zip(
            model.extract_feat([student, teacher_view]),
            model.extract_feat(student)):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match='one view or two'):
        model.loss([student] * 3, samples_with_masks(2))


def test_clip_auxiliary_blocks_follow_the_official_code(tmp_path):
    """Auxiliary blocks continue the backbone's stochastic-depth ramp from
    the branching block and use LayerNorm eps 1e-5."""
    teacher, _ = tiny_clip(tmp_path)
    cfg = clip_cfg(teacher)
    cfg['backbone'].update(arch=dict(TINY, depth=8), drop_path_rate=0.1)
    model = MODELS.build(cfg)
    rates = model.backbone.drop_path_rates  # 2 stem blocks, 8 main blocks
    assert len(rates) == 10 and model.aux_block == 6
    step = rates[1] - rates[0]
    aux = [block.drop_path.drop_prob for block in model.head.cls_pt_layers]
    assert aux == pytest.approx([rates[2 + 7], rates[2 + 7] + step])
    assert aux[0] == pytest.approx(
        model.backbone.blocks[-1].drop_path.drop_prob)
    for block in model.head.cls_pt_layers:
        assert block.norm1.eps == block.norm2.eps == 1e-5
    assert model.head.norm_cls.eps == 1e-6
    fixed = MODELS.build(
        dict(cfg, head=dict(cfg['head'], aux_drop_path_rates=(0., 0.))))
    assert all(
        isinstance(b.drop_path, torch.nn.Identity)
        for b in fixed.head.cls_pt_layers)
