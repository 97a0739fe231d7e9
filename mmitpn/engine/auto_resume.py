# Copyright (c) mmitpn contributors. All rights reserved.
"""A restarted job continues its own work dir, whatever its command says."""
import os
import os.path as osp
from typing import Mapping, Optional

from mmengine.config import Config

# Set by Slurm in a requeued batch job and by torchrun in restarted workers.
RESTART_COUNTS = ('SLURM_RESTART_COUNT', 'TORCHELASTIC_RESTART_COUNT')


def restart_count(environ: Optional[Mapping[str, str]] = None) -> int:
    """How many times the scheduler or launcher restarted this job: the
    largest of ``SLURM_RESTART_COUNT`` (Slurm requeues) and
    ``TORCHELASTIC_RESTART_COUNT`` (torchrun ``--max-restarts``)."""
    environ = os.environ if environ is None else environ
    counts = [0]
    for name in RESTART_COUNTS:
        value = environ.get(name, '').strip()
        if value:
            try:
                counts.append(int(value))
            except ValueError:
                raise ValueError(
                    f'{name}={value!r} in the environment is not a number; '
                    'unset it or give the restart count.') from None
    return max(counts)


def resume_if_restarted(
        cfg: Config,
        environ: Optional[Mapping[str, str]] = None) -> Optional[str]:
    """Make a restarted job resume from its work dir.

    If this process belongs to a restarted job (:func:`restart_count` > 0)
    and ``cfg.work_dir`` has a ``last_checkpoint``, set ``cfg.resume=True``
    and ``cfg.load_from=None`` (resume from the latest checkpoint there, or
    from the newest readable one, see
    :class:`~mmitpn.engine.hooks.SafeCheckpointHook`), and return a line
    saying so; otherwise leave ``cfg`` as it is and return None.
    """
    count = restart_count(environ)
    latest = osp.join(cfg.work_dir, 'last_checkpoint')
    if count == 0 or not osp.isfile(latest):
        return None
    cfg.resume = True
    cfg.load_from = None
    return (f'Restart {count} of this job: resuming from the latest '
            f'checkpoint of {cfg.work_dir}.')
