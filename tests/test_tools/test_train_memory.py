# Copyright (c) mmitpn contributors. All rights reserved.
"""The training-memory count (``mmitpn.benchmarks.train_memory``) and its
tool, ``tools/analysis_tools/estimate_train_memory.py``."""
import json
import os.path as osp
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from mmitpn.benchmarks.train_memory import (SavedTensorCounter, combine,
                                            count_features, count_heads,
                                            count_training_forward,
                                            load_train_config)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(REPO, 'tools', 'analysis_tools', 'estimate_train_memory.py')
DET_DEMO = osp.join(
    REPO, 'configs', 'det', 'demo',
    'hivit-demo_skimage-pre_mask-rcnn_1xb4-6e_shapes-coco-128px.py')


class Block(nn.Module):
    """A pre-norm transformer block: every op kind the count treats apart
    (autocast's fp16 and fp32 lists, attention, an elementwise op)."""

    def __init__(self, dim: int = 32, heads: int = 4) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, 4 * dim)
        self.fc2 = nn.Linear(4 * dim, dim)

    def forward(self, x):
        batch, length, dim = x.shape
        qkv = self.qkv(self.norm1(x)).reshape(batch, length, 3, self.heads, -1)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        attn = F.scaled_dot_product_attention(q, k, v)
        x = x + self.proj(attn.transpose(1, 2).reshape(batch, length, dim))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class Stack(nn.Module):

    def __init__(self, with_cp: bool) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(Block() for _ in range(3))
        self.with_cp = with_cp

    def forward(self, x):
        for block in self.blocks:
            x = checkpoint(block, x, use_reentrant=False) \
                if self.with_cp else block(x)
        return x.sum()


def autograd_saved_bytes(model, x, autocast=False) -> int:
    """The reference: bytes of the storages autograd really saves (kept
    alive, so each is one storage), parameters excepted."""
    storages = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), \
            torch.autocast('cpu', torch.bfloat16, enabled=autocast):
        model(x)
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    return sum(n for ptr, n in storages.items() if ptr not in params)


@pytest.mark.parametrize('with_cp', [False, True])
def test_count_is_what_autograd_saves(with_cp):
    torch.manual_seed(0)
    model = Stack(with_cp)
    x = torch.randn(2, 50, 32)
    counted = count_training_forward(model, lambda: model(x))
    assert counted.saved == autograd_saved_bytes(model, x) > 0
    # The replayed fp16 autocast keeps what CPU bf16 autocast keeps where
    # their op lists agree (2-byte matrix-product inputs, fp32 norms).
    replayed = count_training_forward(model, lambda: model(x), amp=True)
    assert replayed.saved == autograd_saved_bytes(model, x, autocast=True)
    # Checkpointed, only the fp32 block inputs are kept.
    assert replayed.saved == counted.saved if with_cp else \
        replayed.saved < counted.saved


def test_checkpointing_keeps_only_block_inputs():
    torch.manual_seed(0)
    x = torch.randn(2, 50, 32)
    model = Stack(False)
    full = count_training_forward(model, lambda: model(x))
    model.with_cp = True
    checkpointed = count_training_forward(model, lambda: model(x))
    assert checkpointed.saved == 3 * x.numel() * 4
    assert checkpointed.saved < full.saved / 10


def test_attention_is_counted_as_a_fused_kernel():
    # With a bias, the CPU runs the math path and saves the (L, L)
    # weights; a GPU's memory-efficient kernel keeps q, k, v, the bias, the
    # output and a float32 log-sum-exp per row.
    q, k, v = (torch.randn(2, 4, 64, 8, requires_grad=True) for _ in 'qkv')
    bias = torch.randn(1, 4, 64, 64)
    model = nn.Identity()
    counted = count_training_forward(
        model, lambda: F.scaled_dot_product_attention(q, k, v, bias))
    assert counted.saved == 4 * (4 * q.numel() + bias.numel()) + 4 * 2 * 4 * 64
    half = count_training_forward(
        model, lambda: F.scaled_dot_product_attention(q, k, v, bias), amp=True)
    assert half.saved == 2 * (4 * q.numel() + bias.numel()) + 4 * 2 * 4 * 64


def test_counter_attributes_to_top_level_parts():
    torch.manual_seed(0)
    model = nn.Sequential()
    model.add_module('backbone', Stack(False))
    with SavedTensorCounter(model) as counter:
        model(torch.randn(1, 10, 32))
    result = counter.finish()
    assert set(result.by_part) == {'backbone'}
    assert result.by_part['backbone'] == result.saved


def demo_count(batch: int, with_cp: bool) -> int:
    cfg, amp = load_train_config(DET_DEMO, {'model.backbone.with_cp': with_cp})
    features = count_features(cfg, batch, (128, 128), amp)
    heads = count_heads(cfg, features.shapes, batch, (128, 128), amp)
    assert heads.saved > 0 and 'roi_head' in heads.by_part
    return combine(features.activations, heads).saved


def test_demo_detector_count_falls_with_checkpointing_and_grows_with_batch():
    one = demo_count(1, with_cp=False)
    assert one > 0
    assert demo_count(1, with_cp=True) < one
    assert demo_count(2, with_cp=False) > one


def test_tool_estimates_a_config(tmp_path):
    result = subprocess.run([
        sys.executable, TOOL, DET_DEMO, '--shape', '128', '--batch', '2',
        '--amp', '--cfg-options', 'model.backbone.with_cp=False', '--json',
        str(tmp_path / 'memory.json')
    ],
                            capture_output=True,
                            text=True,
                            cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'input: 2 x 3x128x128, fp16 mixed precision, AdamW' in \
        result.stdout
    assert 'fits 80 GB with 25% left free' in result.stdout
    saved = json.load(open(tmp_path / 'memory.json'))
    assert saved['amp'] and saved['batch'] == 2 and saved['fits']
    assert saved['saved_bytes'] == sum(saved['saved_bytes_by_part'].values())
    assert saved['estimate_gb'] > 1.2 * 16 * saved['params'] / 2**30


def test_tool_refuses_a_pretraining_config():
    config = osp.join(REPO, 'configs', 'pretrain', 'demo',
                      'itpn-pixel_hivit-demo_1xb32-coslr-40e_skimage-96px.py')
    result = subprocess.run([sys.executable, TOOL, config],
                            capture_output=True,
                            text=True,
                            cwd=REPO)
    assert result.returncode == 1
    assert 'is not a detection, segmentation or classification config' in \
        result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
