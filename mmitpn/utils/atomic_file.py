# Copyright (c) mmitpn contributors. All rights reserved.
"""Local files that appear only complete: write aside, flush, rename."""
import errno
import os
import os.path as osp
import shutil
import uuid
from pathlib import Path
from typing import Union

from mmengine.fileio import LocalBackend, register_backend

ATOMIC_BACKEND = 'mmitpn_atomic_local'


def check_free_space(size: int, filepath: str) -> None:
    """Raise ``OSError(ENOSPC)`` naming ``filepath`` if its folder cannot
    hold ``size`` more bytes, before anything is written."""
    folder = osp.dirname(osp.abspath(filepath))
    free = shutil.disk_usage(folder).free
    if free < size:
        raise OSError(
            errno.ENOSPC,
            f'No space left for {filepath}: it needs {size / 2**20:.1f} MiB, '
            f'{folder} has {free / 2**20:.1f} MiB free. Free some space (or '
            'keep fewer checkpoints: default_hooks.checkpoint.max_keep_ckpts)'
            ' and resume with --resume')


def write_atomically(data: Union[bytes, str],
                     filepath: Union[str, Path],
                     encoding: str = 'utf-8') -> None:
    """Write ``data`` to ``filepath`` so that the file is either absent, the
    old version, or the complete new one, whatever happens meanwhile.

    The data goes to a hidden temporary file in the same folder (same file
    system, so the rename is atomic), which is flushed and synced to disk
    and then renamed over ``filepath``; the folder is synced so that the
    rename survives a crash. On any failure (a full disk, a file size limit,
    an interrupt) the temporary file is removed and ``filepath`` is left as
    it was.
    """
    filepath = str(filepath)
    folder = osp.dirname(osp.abspath(filepath))
    os.makedirs(folder, exist_ok=True)
    payload = data.encode(encoding) if isinstance(data, str) else data
    check_free_space(len(payload), filepath)
    temporary = osp.join(
        folder, f'.{osp.basename(filepath)}.{uuid.uuid4().hex[:8]}.tmp')
    try:
        # 'x' creates the file with the usual permissions (umask applies).
        with open(temporary, 'xb') as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, filepath)
    except BaseException as error:
        if osp.exists(temporary):
            os.remove(temporary)
        if isinstance(error, OSError):
            raise OSError(
                error.errno, f'Could not write {filepath} '
                f'({error.strerror or error}); nothing of it was kept and '
                'the files already there are intact. Fix the cause and '
                'resume with --resume') from error
        raise
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@register_backend(ATOMIC_BACKEND)
class AtomicLocalBackend(LocalBackend):
    """mmengine's local file backend whose writes are atomic.

    Select it with ``backend_args=dict(backend='mmitpn_atomic_local')``
    (:class:`~mmitpn.engine.hooks.SafeCheckpointHook` does so by default):
    checkpoints and ``last_checkpoint`` then never exist half written, and a
    checkpoint that does not fit on the disk fails before its first byte.
    """

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        write_atomically(obj, filepath)

    def put_text(self,
                 obj: str,
                 filepath: Union[str, Path],
                 encoding: str = 'utf-8') -> None:
        write_atomically(obj, filepath, encoding)
