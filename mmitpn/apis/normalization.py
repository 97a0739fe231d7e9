# Copyright (c) mmitpn contributors. All rights reserved.
"""What a HiViT-family backbone expects of its input images."""
import math
from dataclasses import dataclass
from typing import Tuple

import torch
from torch import Tensor

CHANNEL_ORDERS = ('RGB', 'BGR')


@dataclass(frozen=True)
class ImageNormalization:
    """Per-channel mean and standard deviation of a backbone's input.

    The backbone takes ``(images - mean) / std`` with ``images`` in
    :attr:`channel_order` and pixel values in ``[0, value_range]``.

    Attributes:
        mean (tuple[float]): One value per input channel.
        std (tuple[float]): One value per input channel.
        channel_order (str): ``'RGB'`` or ``'BGR'`` (of the first three
            channels; OpenCV reads images as BGR).
        value_range (float): Largest pixel value ``mean`` and ``std`` are
            given for: 255 for 8-bit values, 1 for ``[0, 1]`` floats.
    """
    mean: Tuple[float, ...]
    std: Tuple[float, ...]
    channel_order: str = 'RGB'
    value_range: float = 255.

    def __post_init__(self) -> None:
        if len(self.mean) != len(self.std):
            raise ValueError(f'mean {self.mean} and std {self.std} must have '
                             'one value per channel each.')
        if self.channel_order not in CHANNEL_ORDERS:
            raise ValueError(f'channel_order must be one of {CHANNEL_ORDERS}, '
                             f'got {self.channel_order!r}.')

    @property
    def num_channels(self) -> int:
        return len(self.mean)

    def rescaled(self, value_range: float) -> 'ImageNormalization':
        """The same normalisation for pixel values in ``[0, value_range]``,
        e.g. ``rescaled(1.)`` for images already divided by 255."""
        scale = value_range / self.value_range
        return ImageNormalization(
            tuple(m * scale for m in self.mean),
            tuple(s * scale for s in self.std), self.channel_order,
            value_range)

    def for_channels(self, in_channels: int) -> 'ImageNormalization':
        """The statistics repeated over ``in_channels`` channels (RGB+X
        inputs: the extra channels take those of the RGB channel they
        follow, as the adapted patch embedding repeats the RGB filters)."""
        repeats = math.ceil(in_channels / self.num_channels)
        return ImageNormalization((self.mean * repeats)[:in_channels],
                                  (self.std * repeats)[:in_channels],
                                  self.channel_order, self.value_range)

    def __call__(self, images: Tensor) -> Tensor:
        """Normalise ``(B, C, H, W)`` images given in :attr:`channel_order`
        and ``[0, value_range]``."""
        if images.shape[1] != self.num_channels:
            raise ValueError(f'Expected {self.num_channels}-channel images '
                             f'(B, C, H, W), got shape {tuple(images.shape)}.')
        mean = torch.tensor(
            self.mean, dtype=images.dtype,
            device=images.device).view(1, -1, 1, 1)
        std = torch.tensor(
            self.std, dtype=images.dtype,
            device=images.device).view(1, -1, 1, 1)
        return (images - mean) / std


# ImageNet's mean and std, RGB, 0-255: what every mmitpn config's data
# preprocessor applies, for both families and every checkpoint kind; the
# official fine-tuning code uses the same values (timm's
# IMAGENET_DEFAULT_MEAN / STD on [0, 1] images; Fast-iTPN's fine-tuning
# commands pass --imagenet_default_mean_and_std). CLIP-supervised
# pretraining feeds its CLIP teacher a separate [0, 1] view, which the
# teacher normalises itself; the backbone sees these statistics.
IMAGENET_NORMALIZATION = ImageNormalization(
    mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375))
