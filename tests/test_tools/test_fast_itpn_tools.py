# Copyright (c) mmitpn contributors. All rights reserved.
"""The reconstruction tool runs on a Fast-iTPN pixel checkpoint as it does
on HiViT's (the hook: tests/test_engine/test_hooks)."""
import os.path as osp
import subprocess
import sys

import numpy as np
import torch
from mmengine.config import Config
from PIL import Image
from tiny_models import tiny_arch, tiny_pixel_itpn

from mmitpn.registry import MODELS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
FAST_PIXEL = tiny_pixel_itpn(tiny_arch(), backbone='FastiTPN')


def write_image(path):
    Image.fromarray(
        np.random.default_rng(0).integers(0, 255, (80, 70, 3),
                                          dtype=np.uint8)).save(path)
    return str(path)


def test_vis_reconstruction_on_a_fast_itpn_checkpoint(tmp_path):
    config = str(tmp_path / 'fast_pixel.py')
    Config(dict(model=FAST_PIXEL)).dump(config)
    model = MODELS.build(FAST_PIXEL)
    checkpoint = str(tmp_path / 'fast.pth')
    torch.save(
        dict(meta=dict(epoch=1), state_dict=model.state_dict()), checkpoint)
    image = write_image(tmp_path / 'a.png')
    result = subprocess.run([
        sys.executable,
        osp.join(REPO, 'tools', 'visualization', 'vis_reconstruction.py'),
        config, checkpoint, image, '--out-dir',
        str(tmp_path / 'vis')
    ],
                            capture_output=True,
                            text=True,
                            cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'pattern R2 of the hidden units of 1 image(s): ' in result.stdout
    assert Image.open(tmp_path / 'vis' / 'a_recon.png').size == (4 * 64,
                                                                 14 + 64)
