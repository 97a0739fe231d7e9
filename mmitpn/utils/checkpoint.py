# Copyright (c) mmitpn contributors. All rights reserved.
"""Safe checkpoint reading shared by converters, initialisation and tools."""
import os.path as osp
import pickle
from collections import OrderedDict
from typing import Dict, Mapping

import torch
from torch import Tensor

CONTAINER_KEYS = ('state_dict', 'model', 'module')


class UnsafeCheckpointError(RuntimeError):
    """A checkpoint holds Python objects that a tensors-only load refuses."""


def load_checkpoint_file(path: str,
                         allow_pickle: bool = False,
                         map_location: str = 'cpu') -> dict:
    """Read a checkpoint file, tensors and plain containers only by default.

    Args:
        path (str): Local file path; nothing is ever downloaded.
        allow_pickle (bool): Load arbitrary pickled objects. Only for files
            from a trusted source: unpickling can run code. Defaults to
            False (``torch.load(weights_only=True)``).
        map_location (str): Device to map tensors to. Defaults to ``'cpu'``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        UnsafeCheckpointError: The file needs ``allow_pickle=True``.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'Checkpoint file not found: {path}')
    try:
        return torch.load(
            path, map_location=map_location, weights_only=not allow_pickle)
    except pickle.UnpicklingError as error:
        reason = str(error).strip().splitlines()[0]
        raise UnsafeCheckpointError(
            f'{path} holds Python objects besides tensors, so a tensors-only '
            f'load refused it ({reason}). If you trust where the file comes '
            'from, opt in to a full pickle load (--unsafe-load on the '
            'converters, allow_pickle=True in Python).') from error


def extract_state_dict(checkpoint: Mapping) -> Dict[str, Tensor]:
    """Return the tensors of a checkpoint as a flat state dict.

    Accepts ``{'state_dict': ...}`` (OpenMMLab), ``{'model': ...}`` (MAE,
    BEiT and the official iTPN), ``{'module': ...}`` (DeepSpeed) or a bare
    state dict, and strips a leading ``module.`` (DataParallel) from keys.
    """
    for key in CONTAINER_KEYS:
        if key in checkpoint and isinstance(checkpoint[key], Mapping):
            checkpoint = checkpoint[key]
            break
    state_dict = OrderedDict()
    for name, value in checkpoint.items():
        if not isinstance(value, Tensor):
            raise ValueError(
                f'Entry {name!r} of the checkpoint is a '
                f'{type(value).__name__}, not a tensor; expected a state '
                f"dict or a container with one of {CONTAINER_KEYS}.")
        if name.startswith('module.'):
            name = name[len('module.'):]
        state_dict[name] = value
    return state_dict
