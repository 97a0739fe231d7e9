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


def check_checkpoint_shapes(module: nn.Module,
                            state_dict: dict,
                            prefix: str,
                            resizable: tuple = ()) -> None:
    """Raise if tensors of ``state_dict`` do not fit ``module``.

    PyTorch only records size mismatches as messages, which mmengine's
    non-strict loading (``init_cfg=dict(type='Pretrained')``) turns into a
    warning; a checkpoint of another architecture must stop the run.

    Args:
        module (nn.Module): The module being loaded.
        state_dict (dict): The checkpoint tensors, as passed to
            ``_load_from_state_dict``.
        prefix (str): The module's prefix in ``state_dict``.
        resizable (tuple[str]): Name endings the module resizes on load.
    """
    own = dict(module.named_parameters())
    own.update(module.named_buffers())
    mismatched = [
        f'{prefix}{name}: checkpoint {tuple(state_dict[prefix + name].shape)}'
        f', model {tuple(tensor.shape)}' for name, tensor in own.items()
        if prefix + name in state_dict and not name.endswith(resizable)
        and state_dict[prefix + name].shape != tensor.shape
    ]
    if mismatched:
        raise ValueError(
            f'The checkpoint does not fit this {type(module).__name__} (a '
            f'checkpoint of another architecture?): {len(mismatched)} '
            'tensors differ in shape: ' + '; '.join(mismatched[:8]))
