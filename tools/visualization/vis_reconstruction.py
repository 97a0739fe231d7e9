# Copyright (c) mmitpn contributors. All rights reserved.
"""Show what an iTPN pixel model reconstructs, and only that.

For each image, a random share (the model's mask ratio) of the 16x16 units
is hidden and the model predicts them. The PNG has a labelled column each:

- ``input``: the image;
- ``masked``: what the model sees (hidden units grey);
- ``prediction``: the visible units completed with the model's output.
  A model trained on raw pixels (``norm_pix=False``) is shown as it is. A
  model trained on per-unit normalised pixels predicts every unit's
  *pattern* but not its brightness and contrast; these are taken from the
  visible units of the same image (the average of their unit means and
  standard deviations), which the model sees, never from the hidden units;
- ``pattern``: the normalised prediction of each hidden unit averaged over
  the colour channels, drawn as ``128 + 64 * value`` grey levels (a true
  unit's normalised pixels have standard deviation 1): the spatial
  structure (edges, shapes) the model predicts and how strongly, with no
  outside information at all (flat mid-grey: no structure predicted);
- ``true unit stats`` (only with ``--true-unit-stats``): MAE's picture,
  each normalised prediction mapped back with the mean and standard
  deviation of the *hidden* unit itself, i.e. colour and contrast taken
  from the ground truth; labelled as such on the picture.

It also prints the hidden units' pattern R² of the images
(:func:`mmitpn.visualization.pattern_r2`: the share of the hidden units'
spatial structure the prediction explains; 0 for a flat pattern column).

Example:
    python tools/visualization/vis_reconstruction.py CONFIG CHECKPOINT \
        img1.png img2.jpg --out-dir work_dirs/vis

Scoring many held-out images and drawing a few of them in one picture:
    python tools/visualization/vis_reconstruction.py CONFIG CHECKPOINT \
        data/objects/test/*.png --draw 6 --montage work_dirs/vis/all.png
"""
import argparse
import os
import os.path as osp

import numpy as np
import torch
from PIL import Image

from mmitpn.utils.cli import add_debug_argument, run_tool
from mmitpn.visualization import (draw_reconstruction, load_image,
                                  load_reconstruction_model, pattern_r2)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='pretraining config (iTPN pixel)')
    parser.add_argument('checkpoint', help='checkpoint of that config')
    parser.add_argument('images', nargs='+', help='image files')
    parser.add_argument(
        '--out-dir', default='work_dirs/reconstructions', help='output dir')
    parser.add_argument('--seed', type=int, default=0, help='mask seed')
    parser.add_argument(
        '--true-unit-stats',
        action='store_true',
        help="add MAE's view (hidden units' own mean/std), labelled")
    parser.add_argument(
        '--draw',
        type=int,
        help='draw only the first N images (default: all); the pattern R2 '
        'is always computed over all of them')
    parser.add_argument(
        '--montage',
        help='also write the drawn panels, stacked top to bottom, into this '
        'one PNG file')
    add_debug_argument(parser)
    args = parser.parse_args()
    if args.draw is not None and args.draw < 0:
        parser.error(f'--draw must be 0 or more, got {args.draw}.')
    return args


def main():
    args = parse_args()
    model = load_reconstruction_model(args.config, args.checkpoint)
    os.makedirs(args.out_dir, exist_ok=True)
    images = [
        load_image(path, model.backbone.img_size) for path in args.images
    ]
    torch.manual_seed(args.seed)
    panels = []
    for path, image in list(zip(args.images, images))[:args.draw]:
        panel = draw_reconstruction(model, image, args.true_unit_stats)
        out = osp.join(args.out_dir,
                       osp.splitext(osp.basename(path))[0] + '_recon.png')
        Image.fromarray(panel).save(out)
        panels.append(panel)
        print(f'{path} -> {out}')
    if args.montage and panels:
        folder = osp.dirname(args.montage)
        if folder:
            os.makedirs(folder, exist_ok=True)
        Image.fromarray(np.concatenate(panels)).save(args.montage)
        print(f'{len(panels)} panel(s) -> {args.montage}')
    torch.manual_seed(args.seed)
    score = pattern_r2(model, torch.cat(images))
    print(f'pattern R2 of the hidden units of {len(images)} image(s): '
          f'{score:.4f} (0: flat pattern column, 1: exact structure)')


if __name__ == '__main__':
    run_tool(main)
