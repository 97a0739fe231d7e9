# Copyright (c) mmitpn contributors. All rights reserved.
"""Checkpoint reading that never runs code from the file.

Checkpoints are read with torch's weights-only unpickler
(``torch.load(weights_only=True)``): it rebuilds tensors, plain containers
and the globals on its allow-list, and refuses any other global that a
pickle names, so a checkpoint from the internet cannot run code. Full
unpickling happens only when the caller opts in.

**mmengine's training state, exactly.** Besides tensors, a checkpoint
written by mmengine's Runner pickles its message hub: history buffers
holding numpy arrays, and numpy scalars among the runtime information
(``eta``). :data:`MMENGINE_STATE_GLOBALS` admits exactly the globals that
these pickles name, all of which build data from data:

- ``mmengine.logging.HistoryBuffer``: created without ``__init__`` and
  filled by its own ``__setstate__`` (arrays, maximum length, statistics
  methods).
- numpy's ``ndarray`` and the ``_reconstruct`` and ``scalar`` functions
  that its pickling names (as ``numpy._core.multiarray`` under numpy 2,
  ``numpy.core.multiarray`` under numpy 1), ``numpy.dtype`` and the dtype
  classes of booleans, numbers and strings: arrays and scalars rebuilt from
  their raw bytes.
- ``builtins.getattr``, bound to :func:`history_buffer_statistics`.
  ``HistoryBuffer.__getstate__`` stores the class's statistics methods,
  which pickle protocol 2 (``torch.save``'s) writes as
  ``getattr(HistoryBuffer, 'mean')``. The real ``getattr`` would hand a
  pickle any attribute of anything it holds (``getattr.__self__`` is the
  ``builtins`` module, so ``exec`` is two calls away, and torch's rebuild
  of tensor subclasses calls whatever function it is given; a function's
  ``__globals__`` is its module's namespace, and the unpickler lets a
  pickle write into any dict). The replacement returns HistoryBuffer's
  four default statistics methods and refuses any other object or name.

Collections (``OrderedDict``, ``Counter``) and bytes (``_codecs.encode``)
are on torch's own allow-list. What a pickle can build with these is data:
tensors, containers, arrays, scalars, history buffers. (A history buffer's
state may also name statistics methods, which mmengine keeps for its class;
a pickle can put only admitted objects there, which run no code from the
file.)

**At import.** ``import mmitpn`` adds these globals to torch's allow-list
(:func:`register_mmengine_state_globals`, through torch's public
``torch.serialization.add_safe_globals``), as registering modules in a
registry does for configs. It adds types and the restricted ``getattr``,
never code; it replaces no loader and patches nothing, and it only widens
what weights-only loads accept by mmengine's own state. mmengine's loader
then restores any Runner checkpoint exactly (mmengine 0.10.7 calls
``torch.load`` without ``weights_only``, which torch >= 2.6 reads as
weights only and so refuses every Runner checkpoint), and still refuses
any other global.

**Files from elsewhere.** :func:`load_checkpoint_file`, which converters,
tools and pretrained-weight readers use, reads the same way and also
replaces the ``argparse.Namespace`` that MAE-style checkpoints carry by an
inert :class:`Ignored` placeholder; a file it refuses gets a one-line error
naming the file, what was refused and how to opt in to a full load.
:func:`refuse_unsafe_checkpoint` gives that error before a Runner loads a
file through mmengine's loader.
"""
import logging
import os
import os.path as osp
import pickle
import reprlib
import zipfile
from collections import OrderedDict
from contextlib import contextmanager
from typing import Callable, Dict, Iterator, List, Mapping, Optional

import numpy as np
import torch
from mmengine.logging import HistoryBuffer, print_log
from torch import Tensor

CONTAINER_KEYS = ('state_dict', 'model', 'module')

# mmengine's default statistics methods, pickled with every HistoryBuffer.
HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')

# Non-tensor objects of MAE/BEiT-style checkpoints (their arguments), which
# load_checkpoint_file reads as placeholders.
PLACEHOLDER_GLOBALS = ('argparse.Namespace', )

# How torch's weights-only unpickler words a refusal (other unpickling
# errors mean a damaged file).
REFUSALS = ('GLOBAL', 'Can only', 'Trying to call reduce')

OPT_IN = ('If you trust where the file comes from, opt in to a full pickle '
          'load: --unsafe-load (converters, publish_model.py), '
          'allow_pickle=True (load_checkpoint_file) or '
          "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 (a Runner's load_from or "
          'resume).')


class UnsafeCheckpointError(RuntimeError):
    """A checkpoint holds Python objects that a tensors-only load refuses."""


class Ignored:
    """Inert stand-in for an object of a foreign checkpoint that is not
    rebuilt (:data:`PLACEHOLDER_GLOBALS`).

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


def history_buffer_statistics(owner, name) -> Callable:
    """``builtins.getattr`` as a tensors-only load admits it.

    Args:
        owner: The object the pickle asks an attribute of.
        name: The attribute's name.

    Returns:
        Callable: ``getattr(HistoryBuffer, name)`` for mmengine's default
        statistics methods (:data:`HISTORY_BUFFER_STATISTICS`).

    Raises:
        UnsafeCheckpointError: For any other object or name.
    """
    if owner is HistoryBuffer and isinstance(name, str) and \
            name in HISTORY_BUFFER_STATISTICS:
        return getattr(HistoryBuffer, name)
    if owner is history_buffer_statistics:
        owner_name = 'getattr'
    elif isinstance(owner, type):
        owner_name = owner.__qualname__
    else:
        owner_name = f'<{type(owner).__name__}>'
    raise UnsafeCheckpointError(
        f"the checkpoint's pickle asks for getattr({owner_name}, "
        f'{reprlib.repr(name)}), and weights-only loads admit getattr only '
        f'for HistoryBuffer.{"/".join(HISTORY_BUFFER_STATISTICS)}')


def _numpy_globals() -> list:
    """numpy's array and scalar rebuilders under the names its pickling
    writes (numpy 1 and 2), and the dtypes whose state a pickle sets."""
    rebuilders = (np.ndarray(0).__reduce__()[0], np.float64(0).__reduce__()[0])
    named = [(rebuild, f'{module}.{rebuild.__name__}')
             for rebuild in rebuilders
             for module in ('numpy.core.multiarray', 'numpy._core.multiarray')]
    codes = '?' + np.typecodes['AllInteger'] + np.typecodes['AllFloat'] + 'SU'
    dtypes = sorted({type(np.dtype(code)) for code in codes}, key=str)
    return [np.ndarray, np.dtype, *named, *dtypes]


#: Globals of mmengine Runner checkpoints beyond torch's own allow-list.
MMENGINE_STATE_GLOBALS = (
    HistoryBuffer,
    (history_buffer_statistics, 'builtins.getattr'),
    *_numpy_globals(),
)


def register_mmengine_state_globals() -> None:
    """Admit :data:`MMENGINE_STATE_GLOBALS` to every weights-only load, so
    that mmengine's own loader restores Runner checkpoints exactly."""
    torch.serialization.add_safe_globals(list(MMENGINE_STATE_GLOBALS))


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
    """Read a checkpoint file without running code from it by default.

    Tensors, plain containers and mmengine's training state
    (:data:`MMENGINE_STATE_GLOBALS`) are rebuilt exactly, the arguments of
    MAE-style checkpoints become :class:`Ignored` placeholders, and any other
    pickled object is refused.

    Args:
        path (str): Local file path; nothing is ever downloaded.
        allow_pickle (bool): Rebuild arbitrary pickled objects. Only for
            files from a trusted source: unpickling can run code. Defaults
            to False.
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
    with _errors_naming(path):
        if allow_pickle:
            return torch.load(
                path, map_location=map_location, weights_only=False)
        placeholders = [(Ignored, name) for name in PLACEHOLDER_GLOBALS]
        with _admitted([*MMENGINE_STATE_GLOBALS, *placeholders]):
            _refuse_unadmitted_globals(path)
            return torch.load(
                path, map_location=map_location, weights_only=True)


def refuse_unsafe_checkpoint(path: str) -> None:
    """Raise a one-line error naming ``path`` if a weights-only load with
    mmitpn's admitted globals would refuse it.

    For hooks that know which file a Runner will load: mmengine 0.10.7's
    loader would refuse the same file with torch's message, which names
    neither the file nor mmitpn's opt-ins, and onedl-mmengine's loader
    admits ``getattr`` itself and falls back to full unpickling when a
    weights-only load fails, so this check is what keeps such a file out
    there. The pickle's global references are checked first (nothing
    rebuilt), then it is read by the weights-only unpickler with tensor
    storages memory-mapped, not read, which refuses a ``getattr`` that is
    not one of HistoryBuffer's statistics. The admitted globals are
    admitted for the check itself, whatever another library's loader
    removed from torch's allow-list since ``import mmitpn`` added them.
    ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1``, the opt-in to full unpickling
    through mmengine's loader, skips the check.

    Raises:
        UnsafeCheckpointError: The file names a global that is not admitted,
            or asks ``getattr`` for another attribute.
        ValueError: The file is not a readable checkpoint.
    """
    opted_in = os.environ.get('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '0')
    if opted_in.lower() in ('1', 'y', 'yes', 'true'):
        return
    with _errors_naming(path), _admitted(list(MMENGINE_STATE_GLOBALS)):
        _refuse_unadmitted_globals(path)
        if zipfile.is_zipfile(path):
            torch.load(path, map_location='cpu', weights_only=True, mmap=True)


def _refuse_unadmitted_globals(path: str) -> None:
    """Raise if ``path``'s pickle names globals that the weights-only
    unpickler does not admit now (torch's static scan: all of them at once,
    before anything is built). Legacy files, which are not zip archives,
    are left to the load."""
    if not zipfile.is_zipfile(path):
        return
    refused = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    if refused:
        raise UnsafeCheckpointError(', '.join(sorted(refused)))


@contextmanager
def _admitted(entries: list) -> Iterator[None]:
    """Admit ``entries`` to weights-only loads for a while, leaving those
    admitted before in place (``torch.serialization.safe_globals`` removes
    on exit all it was given)."""
    before = set(torch.serialization.get_safe_globals())
    added = [entry for entry in entries if entry not in before]
    with torch.serialization.safe_globals(added):
        yield


@contextmanager
def _errors_naming(path: str) -> Iterator[None]:
    """Turn errors of reading ``path`` into one line that names it."""
    try:
        yield
    except UnsafeCheckpointError as error:
        raise UnsafeCheckpointError(_refusal(path, str(error))) from error
    except (RuntimeError, OSError, EOFError, ValueError,
            pickle.UnpicklingError) as error:
        lines = [line.strip() for line in str(error).splitlines()]
        lines = [line for line in lines if line] or [type(error).__name__]
        refusal = next(
            (line for line in lines if any(sign in line for sign in REFUSALS)),
            None)
        if isinstance(error, pickle.UnpicklingError) and refusal:
            raise UnsafeCheckpointError(_refusal(path, refusal)) from error
        raise ValueError(
            f'Cannot read checkpoint {path} ({osp.getsize(path)} bytes): '
            f'{lines[-1] if len(lines) < 3 else lines[1]}. The file is '
            'truncated (an interrupted download, copy or save) or not a '
            'PyTorch checkpoint; fetch or save it again.') from error


def _refusal(path: str, refused: str) -> str:
    return (f'{path} holds Python objects besides tensors, so a tensors-only '
            f'load refused it ({refused}). {OPT_IN}')


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
