# Copyright (c) mmitpn contributors. All rights reserved.
"""The study's record: every run's result in one JSON file, keyed
``stage/name/seed``, from which every table and figure is rebuilt.

Several processes (one per seed) may share a work dir and its record; each
saves under a lock, merged with what the others saved, and replaces the file
atomically, so a reader never sees half of it.
"""
import datetime
import fcntl
import glob
import json
import os
import os.path as osp
import subprocess
from typing import Dict, Iterable

from mmitpn.utils import write_atomically

Record = Dict[str, dict]

# lscpu's fields naming the CPU, as the record keeps them.
LSCPU_FIELDS = {
    'Model name': 'model_name',
    'CPU family': 'cpu_family',
    'Model': 'model',
    'CPU(s)': 'cpus',
}


def utc_now() -> str:
    """The current UTC time, ISO 8601 to the second (``...Z``)."""
    return datetime.datetime.now(
        datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def machine() -> dict:
    """The machine a run is made on: the CPU as ``lscpu`` names it (model
    name, family, model, logical CPUs), the threads the training processes
    may use (``OMP_NUM_THREADS``, unset: ``None``) and the niceness."""
    info = dict.fromkeys(LSCPU_FIELDS.values())
    try:
        text = subprocess.run(['lscpu'],
                              capture_output=True,
                              text=True,
                              env=dict(os.environ, LC_ALL='C')).stdout
    except OSError:
        text = ''
    for line in text.splitlines():
        field, _, value = line.partition(':')
        if field.strip() in LSCPU_FIELDS:
            info[LSCPU_FIELDS[field.strip()]] = value.strip()
    info.update(
        omp_num_threads=os.environ.get('OMP_NUM_THREADS'), nice=os.nice(0))
    return info


def run_key(result: dict) -> str:
    """The record key of a run's result."""
    return f'{result["stage"]}/{result["name"]}/{result["seed"]}'


def load_record(path: str) -> Record:
    """The record at ``path`` (empty when there is none yet)."""
    if not osp.isfile(path):
        return {}
    with open(path) as f:
        return json.load(f)


def work_dir_results(root: str) -> Record:
    """The ``result.json`` of every run under a work dir, by key."""
    results = {}
    for path in glob.glob(osp.join(root, '*', '*', '*', 'result.json')):
        with open(path) as f:
            result = json.load(f)
        results[run_key(result)] = result
    return results


def save_record(path: str, record: Record, written: Iterable[str],
                lock: str) -> None:
    """Write ``record`` to ``path``, merged with what other processes saved
    there since it was read: their entries win except for the keys this
    process ran (``written``). ``record`` is updated in place with theirs.

    Args:
        path (str): The record file.
        record (dict): This process's record.
        written (Iterable[str]): Keys this process ran or found in its work
            dir.
        lock (str): The lock file the processes sharing the record take.
    """
    path = osp.abspath(path)
    os.makedirs(osp.dirname(path), exist_ok=True)
    written = set(written)
    with open(lock, 'w') as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        saved = load_record(path)
        record.update({
            key: result
            for key, result in saved.items() if key not in written
        })
        text = json.dumps(
            dict(sorted(record.items())), indent=0, sort_keys=True)
        write_atomically(text + '\n', path)


def headline(result: dict) -> str:
    """A run's headline number in words, for a log line or a commit
    message: the headline probe's top-1, a dense run's metric, a training
    run's final pixel loss, the tensors an initialisation shares; a result
    that states its own (``headline``) gives that."""
    if 'headline' in result:
        return result['headline']
    if 'probes' in result:
        probe = result['probes'].get('backbone/mean/logistic', {})
        if 'top1' in probe:
            return f'headline top-1 {probe["top1"]:.2f}'
        return 'headline probe refused' if 'refused' in probe else \
            'no headline probe'
    if 'metric' in result:
        return f'mIoU {result["metric"]:.2f} (mean of the last evaluations)'
    if 'losses' in result and result['losses'].get('loss_pixel'):
        return f'final loss_pixel {result["losses"]["loss_pixel"][-1][1]:.4f}'
    if 'shared' in result:
        return f'{result["shared"]} tensors shared'
    return 'recorded'


def new_runs(before: Record, after: Record) -> Dict[str, str]:
    """The runs of ``after`` that ``before`` lacks or holds otherwise, with
    their headline (:func:`headline`), in key order."""
    return {
        key: headline(result)
        for key, result in sorted(after.items()) if before.get(key) != result
    }
