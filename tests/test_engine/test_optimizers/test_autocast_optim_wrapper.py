# Copyright (c) mmitpn contributors. All rights reserved.
import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from tiny_models import tiny_arch, tiny_pixel_itpn

from mmitpn.registry import MODELS
from mmitpn.utils import adapt_cfg_to_device

TINY_ITPN = tiny_pixel_itpn(tiny_arch(), rel_pos_type='bias_table')


def train_losses(wrapper_type, steps=30):
    torch.manual_seed(0)
    model = MODELS.build(TINY_ITPN)
    optim_wrapper = build_optim_wrapper(
        model,
        dict(
            type=wrapper_type,
            optimizer=dict(type='AdamW', lr=2e-3, fused=True),
            constructor='mmitpn.LayerDecayOptimWrapperConstructor',
            paramwise_cfg=dict(layer_decay_rate=1.0)))
    images = torch.nn.functional.interpolate(
        torch.randn(4, 3, 4, 4), size=64, mode='bilinear')
    losses = []
    for step in range(steps):
        torch.manual_seed(step)
        with optim_wrapper.optim_context(model):
            loss = model.loss(images)['loss_pixel']
        optim_wrapper.update_params(loss)
        losses.append(loss.item())
    return losses, model


def test_bf16_autocast_on_cpu_tracks_fp32():
    fp32, _ = train_losses('OptimWrapper')
    bf16, model = train_losses('mmitpn.AutocastOptimWrapper')
    # Every step draws a new mask: compare means over windows of 10 steps.
    windows = [(sum(run[i:i + 10]) / 10 for i in (0, 10, 20))
               for run in (fp32, bf16)]
    fp32_means, bf16_means = (list(w) for w in windows)
    for a, b in zip(fp32_means, bf16_means):
        assert abs(a - b) < 0.05 * a
    assert bf16_means[-1] < 0.93 * bf16_means[0]
    assert fp32_means[-1] < 0.93 * fp32_means[0]
    # Master weights stay in float32.
    assert model.backbone.blocks[0].mlp.fc1.weight.dtype == torch.float32


def test_autocast_really_computes_in_bf16():
    model = MODELS.build(TINY_ITPN)
    optim_wrapper = build_optim_wrapper(
        model,
        dict(
            type='mmitpn.AutocastOptimWrapper',
            optimizer=dict(type='SGD', lr=0.1)))
    with optim_wrapper.optim_context(model):
        levels = model(torch.randn(1, 3, 64, 64), mode='tensor')
    assert levels[0].dtype == torch.bfloat16


def force_native_bf16(monkeypatch, native: bool) -> None:
    for name in ('_is_avx512_bf16_supported', '_is_amx_tile_supported'):
        monkeypatch.setattr(torch.cpu, name, lambda: native)


@pytest.mark.skipif(torch.cuda.is_available(), reason='CPU behaviour')
def test_device_adaptation_on_cpu(monkeypatch):
    force_native_bf16(monkeypatch, True)
    cfg = Config(
        dict(
            optim_wrapper=dict(
                type='AmpOptimWrapper',
                loss_scale='dynamic',
                optimizer=dict(type='AdamW')),
            env_cfg=dict(dist_cfg=dict(backend='nccl')),
            launcher='pytorch'))
    fp32 = adapt_cfg_to_device(cfg.copy())
    assert fp32.optim_wrapper.type == 'OptimWrapper'
    assert 'loss_scale' not in fp32.optim_wrapper
    assert fp32.env_cfg.dist_cfg.backend == 'gloo'
    assert fp32.model_wrapper_cfg.device_ids is None
    amp = adapt_cfg_to_device(cfg.copy(), amp=True)
    assert amp.optim_wrapper.type == 'mmitpn.AutocastOptimWrapper'
    assert amp.optim_wrapper.dtype == 'bfloat16'


@pytest.mark.skipif(torch.cuda.is_available(), reason='CPU behaviour')
def test_amp_without_native_bf16_runs_fp32_and_says_why(monkeypatch, mm_log):
    force_native_bf16(monkeypatch, False)
    cfg = Config(
        dict(
            optim_wrapper=dict(
                type='AmpOptimWrapper',
                loss_scale='dynamic',
                optimizer=dict(type='AdamW'))))
    amp = adapt_cfg_to_device(cfg, amp=True)
    assert amp.optim_wrapper.type == 'OptimWrapper'
    assert 'loss_scale' not in amp.optim_wrapper
    log = mm_log.getvalue()
    assert 'fp32: --amp ignored' in log and 'no native bf16' in log
