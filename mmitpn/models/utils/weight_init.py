# Copyright (c) mmitpn contributors. All rights reserved.
"""Weight initialisation shared by mmitpn's modules."""
from typing import List, Optional, Union

from mmengine.model.weight_init import trunc_normal_
from torch import nn

from mmitpn.utils.checkpoint import (checkpoint_problem,
                                     refuse_unsafe_checkpoint)


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


def check_pretrained_file(init_cfg: Optional[Union[dict, List[dict]]],
                          owner: str) -> None:
    """Raise a one-line error naming the file if ``init_cfg`` asks for a
    ``Pretrained`` checkpoint that cannot be read as weights.

    mmengine's ``PretrainedInit`` would stop on the same file with torch's
    multi-line message, which names neither the file nor the module. Local
    paths only; URLs and ``prefix://`` schemes are left to mmengine.

    Args:
        init_cfg: The module's ``init_cfg``.
        owner: The module's class name, for the message.

    Raises:
        FileNotFoundError: The checkpoint does not exist.
        ValueError: The checkpoint is truncated or not a torch file.
        UnsafeCheckpointError: Its pickle names objects that a weights-only
            load refuses.
    """
    for cfg in init_cfg if isinstance(init_cfg, list) else [init_cfg]:
        if not cfg or cfg.get('type') != 'Pretrained':
            continue
        path = str(cfg.get('checkpoint', ''))
        if not path or '://' in path:
            continue
        problem = checkpoint_problem(path)
        where = f'init_cfg.checkpoint of {owner}'
        if problem == 'no such file':
            raise FileNotFoundError(
                f'Checkpoint file not found: {path} ({where}); train or '
                'convert it first, or point the config at the file.')
        if problem and not _legacy_torch_file(path):
            raise ValueError(
                f'Cannot read checkpoint {path} ({where}): {problem}; fetch '
                'or save it again.')
        refuse_unsafe_checkpoint(path)


def _legacy_torch_file(path: str) -> bool:
    """Whether ``path`` starts as a pickle, as files that torch wrote before
    its zip format do (not a zip archive, but readable by ``torch.load``)."""
    with open(path, 'rb') as f:
        return f.read(1) == b'\x80'
