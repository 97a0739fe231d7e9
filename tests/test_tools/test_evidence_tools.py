# Copyright (c) mmitpn contributors. All rights reserved.
"""The probe CLI and honest reconstruction pictures."""
import gzip
import json
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import torch
from mmengine.config import Config
from PIL import Image

from mmitpn.visualization import draw_reconstruction

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOLS = osp.join(REPO, 'tools')
FASHION_MNIST = osp.join(REPO, 'configs', 'cls', 'demo', '_base_',
                         'fashion-mnist_64px.py')
TINY_HIVIT = dict(embed_dims=64, stem_mlp_blocks=(1, 1), depth=2, num_heads=4)


def run(*args, cwd=REPO):
    result = subprocess.run([sys.executable, *args],
                            capture_output=True,
                            text=True,
                            cwd=cwd)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    return output


def tiny_pixel_config(tmp_path, fpn_dim=32):
    cfg = Config(
        dict(
            model=dict(
                type='iTPN',
                backbone=dict(type='HiViT', arch=TINY_HIVIT, img_size=64),
                neck=dict(
                    type='iTPNPyramid',
                    embed_dims=TINY_HIVIT['embed_dims'],
                    fpn_dim=fpn_dim,
                    fpn_depth=2),
                head=dict(
                    type='iTPNPixelHead',
                    fpn_dim=fpn_dim,
                    decoder_embed_dims=32,
                    decoder_depth=1,
                    decoder_num_heads=2,
                    img_size=64))))
    path = str(tmp_path / 'tiny_pixel.py')
    cfg.dump(path)
    return path


def learnable_fashion_mnist(folder, count):
    """IDX files in Debian's layout whose images show their class (a
    brightness step per class, plus noise), so every probe has an
    interior optimum to find."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    labels = (np.arange(count) % 10).astype(np.uint8)
    for prefix in ('train', 't10k'):
        images = labels[:, None, None] * 24. + rng.normal(
            0, 30, (count, 28, 28))
        images = images.clip(0, 255).astype(np.uint8)
        header = (0x0803).to_bytes(4, 'big') + b''.join(
            n.to_bytes(4, 'big') for n in (count, 28, 28))
        with gzip.open(folder / f'{prefix}-images-idx3-ubyte.gz', 'wb') as f:
            f.write(header + images.tobytes())
        header = (0x0801).to_bytes(4, 'big') + count.to_bytes(4, 'big')
        with gzip.open(folder / f'{prefix}-labels-idx1-ubyte.gz', 'wb') as f:
            f.write(header + labels.tobytes())
    return str(folder)


def test_feature_probe_tool_reports_baselines(tmp_path,
                                              pretraining_checkpoint):
    checkpoint, _ = pretraining_checkpoint()
    root = learnable_fashion_mnist(tmp_path / 'fm', 60)
    data = Config.fromfile(FASHION_MNIST)
    for loader in ('train_dataloader', 'test_dataloader'):
        data[loader].dataset.data_root = root
    data_path = str(tmp_path / 'data.py')
    data.dump(data_path)
    out = str(tmp_path / 'probe.json')
    log = run(
        osp.join(TOOLS, 'analysis_tools', 'feature_probe.py'),
        tiny_pixel_config(tmp_path), checkpoint, '--data', data_path,
        '--features', 'backbone', 'pyramid', '--pool', 'mean', 'grid',
        '--weight-decays', '1e-2', '1e-1', '1', '--baselines', 'random',
        '--out', out)
    rows = json.load(open(out))
    models = [(r['model'], r['features'], r['pool']) for r in rows]
    assert models == [('pretrain.pth', 'backbone', 'mean'),
                      ('pretrain.pth', 'backbone', 'grid'),
                      ('pretrain.pth', 'pyramid', 'mean'),
                      ('pretrain.pth', 'pyramid', 'grid'),
                      ('random init', 'backbone', 'mean'),
                      ('random init', 'backbone', 'grid'),
                      ('random init', 'pyramid', 'mean'),
                      ('random init', 'pyramid', 'grid')]
    assert rows[0]['dims'] == 64 and rows[1]['dims'] == 64 * 16
    reported = [r for r in rows if 'refused' not in r]
    assert reported, rows
    for row in reported:
        assert row['method'] == 'logistic'
        assert row['grad_norm'] <= row['tolerance'] == 1e-4
        assert min(map(float, row['val_top1'])) < row['weight_decay'] < \
            max(map(float, row['val_top1']))
    # Every model was probed on the same fit / validation split.
    assert len({r['split_id'] for r in reported}) == 1
    assert '60 training and 60 test images' in log
    assert 'missing keys []' in log and '| random init | pyramid |' in log


def test_reconstruction_never_uses_hidden_units(tmp_path,
                                                pretraining_checkpoint):
    checkpoint, model = pretraining_checkpoint()
    model.eval()
    torch.manual_seed(0)
    image = torch.rand(1, 3, 64, 64) * 255
    torch.manual_seed(1)
    _, mask = model.reconstruct(torch.zeros(1, 3, 64, 64))
    hidden = int(mask[0].nonzero()[0])
    row, col = divmod(hidden, 4)
    changed = image.clone()
    box = (slice(None), slice(None), slice(row * 16, row * 16 + 16),
           slice(col * 16, col * 16 + 16))
    changed[box] = changed[box] * 0.2 + 100  # other contrast and brightness

    def columns(img):
        torch.manual_seed(1)  # the same mask
        panel = draw_reconstruction(model, img, True)[14:]
        return np.split(panel, 5, axis=1)

    original, modified = columns(image), columns(changed)
    unit = (slice(row * 16, row * 16 + 16), slice(col * 16, col * 16 + 16))
    # input, masked, prediction, pattern, true unit stats
    assert not np.array_equal(original[0][unit], modified[0][unit])
    assert np.array_equal(original[1], modified[1])
    assert np.array_equal(original[2][unit], modified[2][unit])
    assert np.array_equal(original[3][unit], modified[3][unit])
    assert not np.array_equal(original[4][unit], modified[4][unit])
    out = run(
        osp.join(TOOLS, 'visualization', 'vis_reconstruction.py'),
        tiny_pixel_config(tmp_path), checkpoint,
        *[str(p) for p in write_images(tmp_path)], '--out-dir',
        str(tmp_path / 'vis'))
    picture = Image.open(tmp_path / 'vis' / 'a_recon.png')
    assert picture.size == (4 * 64, 14 + 64) and 'a_recon.png' in out
    assert 'pattern R2 of the hidden units of 1 image(s): ' in out


def write_images(tmp_path):
    path = tmp_path / 'a.png'
    Image.fromarray(
        np.random.default_rng(0).integers(0, 255, (80, 70, 3),
                                          dtype=np.uint8)).save(path)
    return [path]


def test_reconstruction_scores_all_images_and_draws_a_few(
        tmp_path, pretraining_checkpoint):
    checkpoint, _ = pretraining_checkpoint()
    images = []
    for index in range(3):
        path = tmp_path / f'img{index}.png'
        Image.fromarray(
            np.random.default_rng(index).integers(
                0, 255, (64, 64, 3), dtype=np.uint8)).save(path)
        images.append(str(path))
    tool = osp.join(TOOLS, 'visualization', 'vis_reconstruction.py')
    config = tiny_pixel_config(tmp_path)
    out = run(tool, config, checkpoint, *images, '--draw', '2', '--out-dir',
              str(tmp_path / 'vis'), '--montage',
              str(tmp_path / 'montage' / 'all.png'))
    assert 'pattern R2 of the hidden units of 3 image(s): ' in out
    drawn = sorted(os.listdir(tmp_path / 'vis'))
    assert drawn == ['img0_recon.png', 'img1_recon.png']
    montage = Image.open(tmp_path / 'montage' / 'all.png')
    assert montage.size == (4 * 64, 2 * (14 + 64))
