# Copyright (c) mmitpn contributors. All rights reserved.
"""Show what an iTPN pixel model reconstructs: original | masked | output.

For each image, a random 75 % (the model's mask ratio) of the 16x16 units is
hidden, the model predicts them, and a PNG puts side by side the input, the
input with the masked units greyed out, and the visible units completed with
the prediction (per-unit normalised predictions are mapped back with the
statistics of the true unit, as in MAE's visualisation).

Example:
    python tools/visualization/vis_reconstruction.py CONFIG CHECKPOINT \
        img1.png img2.jpg --out-dir work_dirs/vis
"""
import argparse
import os
import os.path as osp

import numpy as np
import torch
from mmengine.config import Config
from PIL import Image

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
    return image[0].permute(1, 2, 0).clamp(0, 255).byte().numpy()


@torch.no_grad()
def visualise(model, raw: torch.Tensor) -> np.ndarray:
    preprocessor = model.data_preprocessor
    normalised = (raw - preprocessor.mean) / preprocessor.std
    pred, mask = model.reconstruct(normalised)
    grid = model.backbone.grid_of(*raw.shape[2:])
    target = patchify(normalised)
    if model.head.norm_pix:
        mean = target.mean(dim=-1, keepdim=True)
        var = target.var(dim=-1, keepdim=True)
        pred = pred * (var + 1e-6)**.5 + mean
    unit_mask = mask[..., None].expand_as(target)
    completed = unpatchify(torch.where(unit_mask.bool(), pred, target), grid)
    completed = completed * preprocessor.std + preprocessor.mean
    masked = unpatchify(target * (1 - unit_mask), grid)
    masked = masked * preprocessor.std + preprocessor.mean
    masked = torch.where(
        unpatchify(unit_mask, grid).bool(), torch.full_like(masked, 127.),
        masked)
    return np.concatenate(
        [to_uint8(raw), to_uint8(masked),
         to_uint8(completed)], axis=1)


def main():
    args = parse_args()
    model = load_model(args.config, args.checkpoint)
    os.makedirs(args.out_dir, exist_ok=True)
    torch.manual_seed(args.seed)
    for path in args.images:
        panel = visualise(model, load_image(path, model.backbone.img_size))
        out = osp.join(args.out_dir,
                       osp.splitext(osp.basename(path))[0] + '_recon.png')
        Image.fromarray(panel).save(out)
        print(f'{path} -> {out} (original | masked | reconstruction)')


if __name__ == '__main__':
    main()
