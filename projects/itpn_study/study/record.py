# Copyright (c) mmitpn contributors. All rights reserved.
"""The study's record: every run's result in one JSON file, keyed
``stage/name/seed``, from which every table and figure is rebuilt.

Several processes (one per seed) may share a work dir and its record; each
saves under a lock, merged with what the others saved, and replaces the file
atomically, so a reader never sees half of it.
"""
import fcntl
import glob
import json
import os
import os.path as osp
from typing import Dict, Iterable

from mmitpn.utils import write_atomically

Record = Dict[str, dict]


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
