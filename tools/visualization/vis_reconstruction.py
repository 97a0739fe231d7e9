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

Example:
    python tools/visualization/vis_reconstruction.py CONFIG CHECKPOINT \
        img1.png img2.jpg --out-dir work_dirs/vis
"""
import argparse
import os
import os.path as osp
from typing import Tuple

import numpy as np
import torch
from mmengine.config import Config
from PIL import Image, ImageDraw

from mmitpn.models.heads.itpn_pixel_head import patchify, unpatchify
from mmitpn.registry import MODELS
from mmitpn.utils import extract_state_dict, load_checkpoint_file


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
    return parser.parse_args()


def load_model(config: str, checkpoint: str):
    cfg = Config.fromfile(config)
    model = MODELS.build(cfg.model)
    if not hasattr(model, 'reconstruct'):
        raise TypeError(f'{config} builds {type(model).__name__}, which does '
                        'not reconstruct pixels; use an iTPN pixel config.')
    state_dict = extract_state_dict(load_checkpoint_file(checkpoint))
    result = model.load_state_dict(state_dict, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise ValueError(f'{checkpoint} does not match {config}: missing '
                         f'{result.missing_keys[:5]}, unexpected '
                         f'{result.unexpected_keys[:5]}.')
    return model.eval()


def load_image(path: str, size) -> torch.Tensor:
    """RGB image, resized (shorter side) and centre-cropped: (1, 3, H, W)."""
    try:
        image = Image.open(path).convert('RGB')
    except OSError as error:
        raise ValueError(f'Cannot read image {path}: {error}') from error
    height, width = size
    scale = max(height / image.height, width / image.width)
    image = image.resize((max(width, round(
        image.width * scale)), max(height, round(image.height * scale))),
                         Image.BICUBIC)
    left = (image.width - width) // 2
    top = (image.height - height) // 2
    image = image.crop((left, top, left + width, top + height))
    array = torch.from_numpy(np.asarray(image, dtype=np.float32))
    return array.permute(2, 0, 1).unsqueeze(0)


def to_uint8(image: torch.Tensor) -> np.ndarray:
    return image[0].permute(1, 2, 0).clamp(0, 255).round().byte().numpy()


def visible_statistics(
        target: torch.Tensor,
        mask: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Average over the visible units of each image of the unit mean and
    standard deviation, computed as the per-unit normalisation of the
    target does (over all pixels and channels of the unit); ``(B, 1, 1)``
    each, to map normalised predictions back to pixels."""
    visible = 1 - mask
    count = visible.sum(dim=1).clamp_min(1)
    means = target.mean(dim=-1)
    stds = (target.var(dim=-1) + 1e-6).sqrt()
    mean = (means * visible).sum(dim=1) / count
    std = (stds * visible).sum(dim=1) / count
    return mean.view(-1, 1, 1), std.view(-1, 1, 1)


def pattern(patches: torch.Tensor, channels: int) -> torch.Tensor:
    """Channel mean of per-unit normalised values as grey levels
    ``128 + 64 * value``, repeated over ``channels``."""
    grey = patches.view(*patches.shape[:2], -1, channels).mean(dim=-1)
    grey = (128. + 64. * grey).clamp(0, 255)
    return grey[..., None].expand(-1, -1, -1, channels).reshape(patches.shape)


def label(panel: np.ndarray, text: str) -> np.ndarray:
    """Put ``text`` in a white strip above ``panel``."""
    strip = Image.new('RGB', (panel.shape[1], 14), (255, 255, 255))
    ImageDraw.Draw(strip).text((2, 1), text, fill=(0, 0, 0))
    return np.concatenate([np.asarray(strip), panel], axis=0)


@torch.no_grad()
def visualise(model,
              raw: torch.Tensor,
              true_unit_stats: bool = False) -> np.ndarray:
    preprocessor = model.data_preprocessor
    normalised = (raw - preprocessor.mean) / preprocessor.std
    pred, mask = model.reconstruct(normalised)
    pred = pred.float()
    grid = model.backbone.grid_of(*raw.shape[2:])
    channels = raw.shape[1]
    target = patchify(normalised)
    unit_mask = mask[..., None].expand_as(target).bool()

    def to_image(patches: torch.Tensor) -> np.ndarray:
        """Visible units from the input, hidden ones from ``patches``
        (normalised like the input)."""
        image = unpatchify(torch.where(unit_mask, patches, target), grid)
        return to_uint8(image * preprocessor.std + preprocessor.mean)

    masked = unpatchify(target, grid) * preprocessor.std + preprocessor.mean
    masked = torch.where(
        unpatchify(unit_mask.float(), grid).bool(),
        torch.full_like(masked, 127.), masked)
    columns = [('input', to_uint8(raw)), ('masked', to_uint8(masked))]
    if model.head.norm_pix:
        mean, std = visible_statistics(target, mask)
        columns.append(('prediction', to_image(pred * std + mean)))
        grey = torch.where(unit_mask, pattern(pred, channels), patchify(raw))
        columns.append(('pattern', to_uint8(unpatchify(grey, grid))))
        if true_unit_stats:
            unit_mean = target.mean(dim=-1, keepdim=True)
            unit_var = target.var(dim=-1, keepdim=True)
            columns.append(
                ('true unit stats',
                 to_image(pred * (unit_var + 1e-6)**.5 + unit_mean)))
    else:
        columns.append(('prediction', to_image(pred)))
    return np.concatenate([label(image, name) for name, image in columns],
                          axis=1)


def main():
    args = parse_args()
    model = load_model(args.config, args.checkpoint)
    os.makedirs(args.out_dir, exist_ok=True)
    torch.manual_seed(args.seed)
    for path in args.images:
        panel = visualise(model, load_image(path, model.backbone.img_size),
                          args.true_unit_stats)
        out = osp.join(args.out_dir,
                       osp.splitext(osp.basename(path))[0] + '_recon.png')
        Image.fromarray(panel).save(out)
        print(f'{path} -> {out}')


if __name__ == '__main__':
    main()
