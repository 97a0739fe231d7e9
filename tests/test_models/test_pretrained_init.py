# Copyright (c) mmitpn contributors. All rights reserved.
"""``init_cfg=dict(type='Pretrained')`` of the backbone and the pyramid:
a missing, truncated or code-carrying file stops with one line that names
it and the module; whole files, in the zip or the legacy format, load."""
import os

import pytest
import torch
from tiny_models import tiny_arch

from mmitpn.models import HiViT, iTPNPyramid
from mmitpn.utils.checkpoint import UnsafeCheckpointError


class Gadget:
    """An object a weights-only load refuses to rebuild."""


def build(kind, checkpoint, prefix):
    init_cfg = dict(
        type='Pretrained', checkpoint=str(checkpoint), prefix=prefix)
    if kind == 'backbone':
        return HiViT(arch=tiny_arch(), img_size=64, init_cfg=init_cfg)
    return iTPNPyramid(embed_dims=64, fpn_dim=32, init_cfg=init_cfg)


def save_whole(module, path, prefix, **kwargs):
    state = {prefix + key: value for key, value in module.state_dict().items()}
    torch.save(dict(state_dict=state), path, **kwargs)


@pytest.mark.parametrize('kind, prefix', [('backbone', 'backbone.'),
                                          ('pyramid', 'neck.')])
def test_unreadable_files_are_named_in_one_line(kind, prefix, tmp_path):
    missing = tmp_path / 'missing.pth'
    with pytest.raises(FileNotFoundError) as error:
        build(kind, missing, prefix).init_weights()
    assert str(missing) in str(error.value)
    assert '\n' not in str(error.value)

    truncated = tmp_path / 'truncated.pth'
    save_whole(build(kind, missing, prefix), truncated, prefix)
    size = os.path.getsize(truncated)
    with open(truncated, 'r+b') as f:
        f.truncate(size // 2)
    with pytest.raises(ValueError) as error:
        build(kind, truncated, prefix).init_weights()
    message = str(error.value)
    assert str(truncated) in message and '\n' not in message
    assert 'init_cfg.checkpoint of' in message

    carrying = tmp_path / 'carrying.pth'
    torch.save(dict(state_dict={}, meta=Gadget()), carrying)
    with pytest.raises(UnsafeCheckpointError) as error:
        build(kind, carrying, prefix).init_weights()
    assert str(carrying) in str(error.value)
    assert '\n' not in str(error.value)


@pytest.mark.parametrize('legacy', [False, True], ids=['zip', 'legacy'])
def test_whole_files_load(legacy, tmp_path):
    source = HiViT(arch=tiny_arch(), img_size=64)
    path = tmp_path / 'whole.pth'
    save_whole(
        source, path, 'backbone.', _use_new_zipfile_serialization=not legacy)
    model = build('backbone', path, 'backbone.')
    model.init_weights()
    for key, value in source.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
