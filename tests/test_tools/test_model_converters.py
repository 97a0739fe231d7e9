# Copyright (c) mmitpn contributors. All rights reserved.
import argparse
import os.path as osp
import pathlib
import subprocess
import sys

import torch
from tiny_models import tiny_arch

from mmitpn.models import HiViT

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY = tiny_arch(embed_dims=64, stem_mlp_blocks=(1, 1))


def run_tool(name, *args):
    return subprocess.run([
        sys.executable,
        osp.join(REPO, 'tools', 'model_converters', name), *args
    ],
                          capture_output=True,
                          text=True)


def official_checkpoint(path, extra=None):
    """An official-style classification checkpoint: {'model': ...}."""
    model = HiViT(
        TINY, img_size=32, rel_pos_type='bias_table', out_type='avg_featmap')
    state_dict = dict(model.state_dict())
    state_dict['head.weight'] = torch.randn(10, 64)
    state_dict['head.bias'] = torch.randn(10)
    state_dict['relative_position_index'] = torch.zeros(4, 4).long()
    checkpoint = dict(model=state_dict, epoch=99, **(extra or {}))
    torch.save(checkpoint, path)
    return state_dict


def test_official_converter_round_trip(tmp_path):
    src, dst = str(tmp_path / 'official.pth'), str(tmp_path / 'out.pth')
    # MAE/BEiT-style checkpoints carry their argparse arguments: those are
    # replaced by inert placeholders, never rebuilt.
    state_dict = official_checkpoint(src,
                                     dict(args=argparse.Namespace(lr=1e-3)))
    result = run_tool('itpn_to_mmitpn.py', src, dst)
    assert result.returncode == 0, result.stderr
    assert 'missing keys: none, unexpected keys: none' in result.stdout
    assert 'left out relative_position_index' in result.stdout
    converted = torch.load(dst, weights_only=True)
    assert torch.equal(converted['state_dict']['head.fc.weight'],
                       state_dict['head.weight'])
    assert converted['meta']['backbone']['arch']['stem_mlp_blocks'] == (1, 1)


def test_pickled_objects_need_explicit_opt_in(tmp_path):
    src, dst = str(tmp_path / 'official.pth'), str(tmp_path / 'out.pth')
    official_checkpoint(src, dict(data_root=pathlib.PosixPath('/data')))
    refused = run_tool('itpn_to_mmitpn.py', src, dst)
    assert refused.returncode != 0
    assert 'tensors-only load refused' in refused.stderr
    assert src in refused.stderr and not osp.exists(dst)
    accepted = run_tool('itpn_to_mmitpn.py', src, dst, '--unsafe-load')
    assert accepted.returncode == 0, accepted.stderr


def test_missing_source_is_named(tmp_path):
    missing = str(tmp_path / 'nowhere.pth')
    result = run_tool('mmpretrain_to_mmitpn.py', missing,
                      str(tmp_path / 'out.pth'))
    assert result.returncode != 0
    assert f'Checkpoint file not found: {missing}' in result.stderr


def fast_checkpoint(path, **kwargs):
    from mmitpn.models import FastiTPN
    model = FastiTPN(TINY, img_size=32, out_type='avg_featmap', **kwargs)
    torch.save(dict(model=model.state_dict()), path)
    return model


def test_mlp_ratios_are_read_off_the_keys(tmp_path):
    """A Fast-iTPN of the official class with stem ratio 3 and main ratio
    2.5 rebuilds with those ratios, and loads strictly."""
    from mmitpn.converters import convert_fast_itpn
    from mmitpn.models import FastiTPN
    src, dst = str(tmp_path / 'fast.pth'), str(tmp_path / 'out.pth')
    model = fast_checkpoint(src, mlp_ratio=2.5)
    conversion = convert_fast_itpn(model.state_dict())
    assert conversion.backbone['stem_mlp_ratio'] == 3
    assert conversion.backbone['mlp_ratio'] == 2.5
    rebuilt = FastiTPN(**conversion.backbone)
    rebuilt.load_state_dict(conversion.part('backbone'), strict=True)
    result = run_tool('fast_itpn_to_mmitpn.py', src, dst)
    assert result.returncode == 0, result.stderr
    assert "'mlp_ratio': 2.5" in result.stdout
    assert 'missing keys: none, unexpected keys: none' in result.stdout


def test_the_other_family_gets_one_line_naming_the_converter(tmp_path):
    fast, hivit = str(tmp_path / 'fast.pth'), str(tmp_path / 'hivit.pth')
    fast_checkpoint(fast)
    official_checkpoint(hivit)
    for tool, src, family, converter in (
        ('itpn_to_mmitpn.py', fast, 'Fast-iTPN', 'fast_itpn_to_mmitpn.py'),
        ('fast_itpn_to_mmitpn.py', hivit, 'iTPN/HiViT', 'itpn_to_mmitpn.py'),
    ):
        result = run_tool(tool, src, str(tmp_path / 'out.pth'))
        assert result.returncode != 0
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith(f'error: {src}: This looks like a '
                                   f'{family} checkpoint')
        assert converter in lines[0]
