# Copyright (c) mmitpn contributors. All rights reserved.
"""Reconstruction pictures of iTPN pixel models that show only what the
model computes (see ``tools/visualization/vis_reconstruction.py``).

Columns: ``input``; ``masked`` (hidden units grey); ``prediction`` (visible
units from the input; hidden units from the model, mapped back from per-unit
normalised pixels with the *visible* units' average mean and standard
deviation, never the hidden units'); ``pattern`` (the normalised prediction
as ``128 + 64 * value`` grey levels: the structure the model predicts, with
no outside information); optionally ``true unit stats`` (MAE's picture,
colour from the ground truth, labelled as such).

:func:`pattern_r2` puts a number on the ``pattern`` column: the share of
the hidden units' spatial structure the prediction explains.
"""
from typing import Tuple

import numpy as np
import torch
from mmengine.config import Config
from PIL import Image, ImageDraw

from mmitpn.models.utils.unit_ops import (normalize_patches, patchify,
                                          unpatchify)
from mmitpn.registry import MODELS
from mmitpn.utils import extract_state_dict, load_checkpoint_file


def load_reconstruction_model(config: str, checkpoint: str):
    """A config's pixel model with a checkpoint's weights, in eval mode.

    Raises:
        TypeError: The config's model does not reconstruct pixels.
        ValueError: The checkpoint lacks tensors of the model or holds
            others (the first five of each are named).
    """
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
    return image[0].permute(1, 2, 0).clamp(0, 255).round().byte().cpu().numpy()


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


def channel_mean(patches: torch.Tensor, channels: int) -> torch.Tensor:
    """Mean over the colour channels of each pixel of each unit:
    ``(B, N, pixels * channels)`` -> ``(B, N, pixels)``."""
    return patches.view(*patches.shape[:2], -1, channels).mean(dim=-1)


def pattern(patches: torch.Tensor, channels: int) -> torch.Tensor:
    """Channel mean of per-unit normalised values as grey levels
    ``128 + 64 * value``, repeated over ``channels``."""
    grey = (128. + 64. * channel_mean(patches, channels)).clamp(0, 255)
    return grey[..., None].expand(-1, -1, -1, channels).reshape(patches.shape)


def label(panel: np.ndarray, text: str) -> np.ndarray:
    """Put ``text`` in a white strip above ``panel``."""
    strip = Image.new('RGB', (panel.shape[1], 14), (255, 255, 255))
    ImageDraw.Draw(strip).text((2, 1), text, fill=(0, 0, 0))
    return np.concatenate([np.asarray(strip), panel], axis=0)


@torch.no_grad()
def draw_reconstruction(model,
                        raw: torch.Tensor,
                        true_unit_stats: bool = False) -> np.ndarray:
    """One labelled row ``input | masked | prediction | pattern`` (and
    ``true unit stats`` when asked) for an image ``(1, 3, H, W)`` in 0-255,
    on the model's device; the mask is drawn from torch's global generator.
    """
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


def centred_patterns(patches: torch.Tensor, channels: int) -> torch.Tensor:
    """Channel mean of each unit's values minus the unit's average: the
    spatial pattern without the unit's colour and brightness,
    ``(B, N, pixels)``."""
    grey = channel_mean(patches, channels)
    return grey - grey.mean(dim=-1, keepdim=True)


@torch.no_grad()
def pattern_r2(model, raw: torch.Tensor) -> float:
    """How much of the hidden units' spatial structure the model predicts.

    ``1 - sum (t - p)^2 / sum t^2`` over the hidden units of ``raw``
    (``(B, 3, H, W)`` in 0-255), where ``t`` and ``p`` are the centred
    grey patterns (:func:`centred_patterns`) of the target (per-unit
    normalised when the model's head normalises) and of the prediction.
    0 means a flat pattern column (colour at most), 1 an exact one; the
    masks are drawn from torch's global generator.
    """
    preprocessor = model.data_preprocessor
    normalised = (raw - preprocessor.mean) / preprocessor.std
    pred, mask = model.reconstruct(normalised)
    target = patchify(normalised)
    if model.head.norm_pix:
        target = normalize_patches(target)
    channels = raw.shape[1]
    truth = centred_patterns(target, channels)
    error = truth - centred_patterns(pred.float(), channels)
    hidden = mask.bool()
    return float(1 - error[hidden].pow(2).sum() / truth[hidden].pow(2).sum())
