# Copyright (c) mmitpn contributors. All rights reserved.
"""Safe checkpoint reading shared by converters, initialisation and tools.

By default only tensors and plain containers are unpickled
(``torch.load(weights_only=True)``): a checkpoint from the internet cannot
run code. A few objects that OpenMMLab and MAE-style checkpoints carry
besides their weights (mmengine's message hub, numpy scalars, argparse
arguments) are replaced by inert :class:`Ignored` placeholders instead of
being rebuilt, so such files still load their tensors. Full unpickling is
only done when the caller opts in. A run's own checkpoints need no trust:
:class:`~mmitpn.engine.hooks.SafeCheckpointHook` writes them as tensors and
plain data, which a tensors-only load reads exactly.
"""
import logging
import os.path as osp
import pickle
import zipfile
from collections import OrderedDict
from typing import Dict, List, Mapping, Optional

import torch
from mmengine.logging import print_log
from torch import Tensor

CONTAINER_KEYS = ('state_dict', 'model', 'module')

# Non-tensor globals found in mmengine Runner checkpoints (message hub
# history buffers, numpy scalars) and in MAE/BEiT-style ones (their args).
IGNORED_GLOBALS = (
    'mmengine.logging.history_buffer.HistoryBuffer',
    'numpy.dtype',
    'numpy.ndarray',
    'numpy.core.multiarray._reconstruct',
    'numpy.core.multiarray.scalar',
    'numpy._core.multiarray._reconstruct',
    'numpy._core.multiarray.scalar',
    '_codecs.encode',
    'builtins.getattr',
    '__builtin__.getattr',
    'argparse.Namespace',
)


class Ignored:
    """Inert stand-in for a non-tensor object of a checkpoint.

    It accepts whatever the unpickler passes and does nothing, so no code of
    the original class (or function) is ever run.
    """

    def __init__(self, *args, **kwargs) -> None:
        pass

    def __setstate__(self, state) -> None:
        pass

    def __call__(self, *args, **kwargs) -> 'Ignored':
        return Ignored()

    def __repr__(self) -> str:
        return 'Ignored()'


class UnsafeCheckpointError(RuntimeError):
    """A checkpoint holds Python objects that a tensors-only load refuses."""


def checkpoint_problem(path: str) -> Optional[str]:
    """Why ``path`` is not a readable checkpoint, or None if it looks whole.

    Reads only the zip directory at the end of the file (what
    ``torch.save`` writes), so a truncated file is caught without loading
    its tensors.
    """
    if not osp.isfile(path):
        return 'no such file'
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError) as error:
        return f'{osp.getsize(path)} bytes, truncated or not a checkpoint: ' \
            f'{error}'
    if not any(name.endswith('data.pkl') for name in names):
        return 'a zip file without a PyTorch checkpoint inside'
    return None


def load_checkpoint_file(path: str,
                         allow_pickle: bool = False,
                         map_location='cpu') -> dict:
    """Read a checkpoint file, tensors and plain containers only by default.

    Args:
        path (str): Local file path; nothing is ever downloaded.
        allow_pickle (bool): Rebuild arbitrary pickled objects. Only for
            files from a trusted source: unpickling can run code. Defaults
            to False (tensors only; see :data:`IGNORED_GLOBALS`).
        map_location: Where to map tensors. Defaults to ``'cpu'``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        UnsafeCheckpointError: The file holds other objects and needs
            ``allow_pickle=True``.
        ValueError: The file is not a readable checkpoint (truncated by an
            interrupted copy or save, or not a torch file).
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'Checkpoint file not found: {path}')
    try:
        return _load(path, allow_pickle, map_location)
    except (RuntimeError, OSError, EOFError, ValueError,
            pickle.UnpicklingError) as error:
        if isinstance(error, UnsafeCheckpointError):
            raise
        raise ValueError(
            f'Cannot read checkpoint {path} ({osp.getsize(path)} bytes): '
            f'{str(error).strip().splitlines()[0]}. The file is truncated '
            '(an interrupted download, copy or save) or not a PyTorch '
            'checkpoint; fetch or save it again.') from error


def _load(path: str, allow_pickle: bool, map_location) -> dict:
    if allow_pickle:
        return torch.load(path, map_location=map_location, weights_only=False)
    try:
        with torch.serialization.safe_globals([(Ignored, name)
                                               for name in IGNORED_GLOBALS]):
            return torch.load(
                path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        reason = str(error).strip().splitlines()
        detail = next((line for line in reason if 'GLOBAL' in line), None)
        if detail is None:  # not a pickle of allowed types: corrupt
            raise ValueError(reason[-1] if len(reason) < 3 else next(
                line for line in reason[1:] if line.strip())) from error
        raise UnsafeCheckpointError(
            f'{path} holds Python objects besides tensors, so a tensors-only '
            f'load refused it ({detail.strip()}). If you trust where the '
            'file comes from, opt in to a full pickle load (--unsafe-load on '
            'the converters, allow_pickle=True in Python).') from error


def load_local_checkpoint(filename: str, map_location=None) -> dict:
    """mmengine loader for local files: tensors only, whatever the file
    (resume, pretrained init, ``load_from``)."""
    return load_checkpoint_file(
        osp.expanduser(filename), map_location=map_location)


def register_checkpoint_loader() -> None:
    """Make mmengine read local checkpoints through
    :func:`load_local_checkpoint` (mmengine 0.10.7 calls ``torch.load``
    without ``weights_only``, which torch >= 2.6 turns into a load that
    fails on every Runner checkpoint)."""
    from mmengine.runner import CheckpointLoader
    CheckpointLoader.register_scheme(
        prefixes='', loader=load_local_checkpoint, force=True)


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


class MissingWeightsError(ValueError):
    """A checkpoint lacks tensors that the model it is loaded into needs."""


def summarise_keys(keys: List[str], limit: int = 6) -> str:
    """``head.fc (weight, bias), ...``: keys grouped by module, one line."""
    groups: Dict[str, List[str]] = OrderedDict()
    for key in keys:
        module, _, name = key.rpartition('.')
        groups.setdefault(module or key, []).append(name)
    parts = [
        f'{module} ({", ".join(names)})'
        for module, names in list(groups.items())[:limit]
    ]
    if len(groups) > limit:
        parts.append(f'and {len(groups) - limit} more modules')
    return ', '.join(parts)


def require_weights(model: torch.nn.Module,
                    path: str,
                    allow_missing: bool = False) -> List[str]:
    """Check that checkpoint ``path`` holds every tensor of ``model``.

    Evaluating a model whose head, decoder or norms keep their random
    initialisation gives meaningless numbers without any error (mmengine
    only logs the missing keys), e.g. a pretraining checkpoint, which has
    no classification head, given to a classifier.

    Args:
        model (nn.Module): The model the checkpoint is for.
        path (str): Local checkpoint file, read as tensors only.
        allow_missing (bool): Only warn. Defaults to False.

    Returns:
        list[str]: The missing keys (empty if none).

    Raises:
        MissingWeightsError: Some are missing and ``allow_missing`` is
            False; the message names them.
    """
    state_dict = extract_state_dict(load_checkpoint_file(path))
    missing = [key for key in model.state_dict() if key not in state_dict]
    if not missing:
        return missing
    message = (f'{path} lacks {len(missing)} of the '
               f'{len(model.state_dict())} tensors the model needs: '
               f'{summarise_keys(missing)}')
    if not allow_missing:
        raise MissingWeightsError(
            f'{message}. They would keep their random initialisation. Pass a '
            'checkpoint trained with this config (a pretraining checkpoint '
            'has no head), or --allow-missing to run anyway.')
    print_log(
        f'{message}; they keep their random initialisation '
        '(--allow-missing).',
        logger='current',
        level=logging.WARNING)
    return missing
