# Copyright (c) mmitpn contributors. All rights reserved.
"""Weight initialisation shared by mmitpn's modules."""
from mmengine.model.weight_init import trunc_normal_
from torch import nn


def init_linear_layers(module: nn.Module, std: float = .02) -> None:
    """Truncated-normal weights and zero biases for every ``nn.Linear`` in
    ``module``, as the official iTPN and HiViT code initialises them."""
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            trunc_normal_(layer.weight, std=std)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
