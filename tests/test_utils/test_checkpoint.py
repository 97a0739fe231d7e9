# Copyright (c) mmitpn contributors. All rights reserved.
import builtins
import fractions
import os
import os.path as osp
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer, history_buffer
from mmengine.runner import CheckpointLoader

from mmitpn.utils import (UnsafeCheckpointError, load_checkpoint_file,
                          refuse_unsafe_checkpoint)

MARK = 'mmitpn_gadget'


def test_truncated_checkpoint_names_the_file(tmp_path):
    path = tmp_path / 'epoch_3.pth'
    torch.save({'state_dict': {'w': torch.randn(64, 64)}}, path)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(ValueError, match=r'epoch_3\.pth .*truncated'):
        load_checkpoint_file(str(path))
    with pytest.raises(ValueError, match=r'epoch_3\.pth'):
        load_checkpoint_file(str(path), allow_pickle=True)
    not_torch = tmp_path / 'notes.pth'
    not_torch.write_text('not a checkpoint')
    with pytest.raises(ValueError, match='notes.pth'):
        load_checkpoint_file(str(not_torch))


def test_numpy_1_names_of_mmengine_state_load(tmp_path):
    """A checkpoint written under numpy 1 names numpy.core.multiarray."""
    numpy_2, numpy_1 = str(tmp_path / 'numpy_2.pth'), tmp_path / 'numpy_1.pth'
    torch.save(
        dict(hub=HistoryBuffer([1.5, 2.5], [1, 2]), eta=np.float64(3.0)),
        numpy_2)
    with zipfile.ZipFile(numpy_2) as source, \
            zipfile.ZipFile(numpy_1, 'w') as target:
        for name in source.namelist():
            data = source.read(name)
            if name.endswith('data.pkl'):
                data = data.replace(b'numpy._core.', b'numpy.core.')
                assert b'numpy.core.multiarray\n_reconstruct' in data
            target.writestr(name, data)
    for checkpoint in (load_checkpoint_file(str(numpy_1)),
                       CheckpointLoader.load_checkpoint(str(numpy_1))):
        logs, counts = checkpoint['hub'].data
        assert logs.tolist() == [1.5, 2.5] and counts.tolist() == [1, 2]
        assert type(checkpoint['eta']) is np.float64
        assert checkpoint['eta'] == 3.0


class WritesMarker:
    """Unpickling this would create ``path``."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, 'w'))


def assert_one_line_refusal(error, path, refused):
    message = str(error.value)
    assert '\n' not in message
    assert message.startswith(f'{path} holds Python objects'), message
    assert refused in message
    assert '--unsafe-load' in message and 'allow_pickle=True' in message


def mmengine_loader_is_weights_only(tmp_path) -> bool:
    """Whether the installed mmengine's own loader refuses a pickled object
    that weights-only loads do not admit (a harmless ``Fraction``).

    mmengine 0.10.7's does (torch's weights-only default, with the globals
    mmitpn admits at import). onedl-mmengine's falls back to full unpickling
    with a warning, and admits the real ``getattr`` while it loads: on that
    stack, :func:`refuse_unsafe_checkpoint`, which mmitpn runs before a
    Runner loads a file, is what refuses such files.
    """
    path = str(tmp_path / 'fraction.pth')
    torch.save(dict(value=fractions.Fraction(1, 3)), path)
    try:
        CheckpointLoader.load_checkpoint(path)
    except pickle.UnpicklingError:
        return True
    return False


def test_code_in_a_pickle_is_refused(tmp_path):
    path, marker = str(tmp_path / 'model.pth'), tmp_path / 'code_ran'
    torch.save(
        dict(state_dict={'w': torch.ones(2)}, meta=WritesMarker(str(marker))),
        path)
    with pytest.raises(UnsafeCheckpointError) as error:
        load_checkpoint_file(path)
    assert_one_line_refusal(error, path, 'io.open')
    with pytest.raises(UnsafeCheckpointError) as error:
        refuse_unsafe_checkpoint(path)
    assert_one_line_refusal(error, path, 'io.open')
    # mmengine's own loader, which mmitpn leaves in place, refuses it too
    # where it loads weights only.
    if mmengine_loader_is_weights_only(tmp_path):
        with pytest.raises(pickle.UnpicklingError, match='io.open'):
            CheckpointLoader.load_checkpoint(path)
    assert not marker.exists()
    load_checkpoint_file(path, allow_pickle=True)  # the opt-in runs it
    assert marker.exists()


def test_full_load_opt_in_of_mmengine_loader_skips_the_check(
        tmp_path, monkeypatch):
    path = str(tmp_path / 'model.pth')
    torch.save(dict(meta=WritesMarker(str(tmp_path / 'code_ran'))), path)
    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')
    refuse_unsafe_checkpoint(path)


class Reduce:
    """Pickles as ``function(*args)``, then ``result[key] = value`` for
    each pair of ``items``."""

    def __init__(self, function, *args, items=()):
        self.function, self.args, self.items = function, args, items

    def __reduce__(self):
        return self.function, self.args, None, None, iter(self.items)


class TensorSubclass(torch.Tensor):
    pass


# torch admits the function that rebuilds tensor subclasses; it calls the
# function it is given with the arguments it is given.
REBUILD_FROM_TYPE = torch.ones(1).as_subclass(TensorSubclass).__reduce_ex__(
    2)[0]
# Where the real getattr leads from the globals admitted for mmengine's
# message hub: getattr.__self__ is the builtins module, a method's
# __globals__ its module's namespace, into which a pickle may write.
BUILTINS = Reduce(getattr, getattr, '__self__')


def gadget(target, marker):
    """A pickle that runs ``exec`` (creating file ``marker``), or writes
    ``MARK`` into builtins' or mmengine's history_buffer namespace."""
    if target == 'exec':
        return Reduce(REBUILD_FROM_TYPE, Reduce(getattr, BUILTINS, 'exec'),
                      torch.Tensor, (f'open({marker!r}, "w").close()', ), {})
    if target == 'builtins':
        return Reduce(getattr, BUILTINS, '__dict__', items=[(MARK, 'ran')])
    return Reduce(
        getattr,
        Reduce(getattr, HistoryBuffer, '__init__'),
        '__globals__',
        items=[(MARK, 'ran')])


def gadget_ran(target, marker):
    if target == 'exec':
        return osp.exists(marker)
    return MARK in vars(builtins if target == 'builtins' else history_buffer)


# In a fresh process without mmitpn, load where getattr itself is admitted
# and say whether the gadget ran (arguments: path, target, marker).
NAIVE_LOAD = f"""import os, sys, builtins, torch
from mmengine.logging import HistoryBuffer, history_buffer
path, target, marker = sys.argv[1:]
torch.serialization.add_safe_globals([getattr, HistoryBuffer])
try:
    torch.load(path, weights_only=True)
except Exception:
    pass  # exec returns None where torch expects a tensor
if target == 'exec':
    print(os.path.exists(marker))
else:
    module = builtins if target == 'builtins' else history_buffer
    print({MARK!r} in vars(module))
"""


@pytest.mark.parametrize('target', ['exec', 'builtins', 'history_buffer'])
def test_getattr_gadget_is_refused(tmp_path, target):
    path, marker = str(tmp_path / 'model.pth'), str(tmp_path / 'code_ran')
    torch.save(
        dict(state_dict={'w': torch.ones(2)}, meta=gadget(target, marker)),
        path)
    # Control: where getattr itself is admitted, the gadget runs.
    control = subprocess.run(
        [sys.executable, '-c', NAIVE_LOAD, path, target, marker],
        capture_output=True,
        text=True)
    assert control.stdout.strip() == 'True', control.stderr[-2000:]
    if target == 'exec':
        os.remove(marker)

    with pytest.raises(UnsafeCheckpointError) as error:
        load_checkpoint_file(path)
    assert_one_line_refusal(error, path, 'getattr(')
    # What runs before a Runner loads the file (load_from, resume, a
    # Pretrained init_cfg), whatever mmengine's loader does.
    with pytest.raises(UnsafeCheckpointError) as error:
        refuse_unsafe_checkpoint(path)
    assert_one_line_refusal(error, path, 'getattr(')
    if mmengine_loader_is_weights_only(tmp_path):
        with pytest.raises(UnsafeCheckpointError, match='getattr'):
            CheckpointLoader.load_checkpoint(path)
    assert not gadget_ran(target, marker)
