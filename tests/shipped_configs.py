# Copyright (c) mmitpn contributors. All rights reserved.
"""Shipped configs for the config tests: each parsed once per process,
which of them the one-iteration training tests train, their recorded
resolved form and how deep they inherit.

Parsing a config that inherits ``mmdet::`` or ``mmseg::`` bases takes about
a second (mmengine reads every metafile of the package for each such base),
so the tests read shipped configs through :func:`load_config`.

Every config is built at full size by its task's tests. Training one
iteration with tiny overrides is the slow part of those tests, and configs
that differ only in numbers the tiny overrides replace, or in numbers that
select no other code (widths, depths, image size, drop-path rate, layer-wise
decay, learning rate, weight decay, checkpoint paths), train the same tiny
model through the same code. One config of each such group trains; any
other difference (a module type, an option, a loss, a pipeline step where
the test keeps the pipeline) makes a group of its own.

``tests/data/shipped_configs.json.gz`` records what every shipped config
resolves to (:func:`resolved_config`) with the library versions that
resolved it; ``tests/test_configs/test_config_layout.py`` compares the
configs with it. After a deliberate change to what a config resolves to
(or a config added or removed), rewrite the record from the repository
root with::

    PYTHONPATH=$PWD .venv/bin/python tests/shipped_configs.py --update

and review ``git diff --stat tests/data`` together with the change;
without ``--update`` the script prints what differs from the record.
``--add`` records the configs added since (as they resolve now) and keeps
every recorded one as it is, listing the added ones under ``added``: the
changes the layout test names for the configs recorded before do not apply
to them.
"""
import argparse
import ast
import contextlib
import copy
import functools
import glob
import gzip
import json
import os
import os.path as osp
import subprocess
import sys
from typing import Any, Dict, Iterator, List, Sequence, Tuple

from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = osp.join(REPO, 'configs')
RECORD = osp.join(REPO, 'tests', 'data', 'shipped_configs.json.gz')
# The libraries whose bases (``mmdet::``, ...) and defaults a resolved
# config depends on: another version may resolve the same file otherwise.
LIBRARIES = ('mmengine', 'mmpretrain', 'mmdet', 'mmseg')
# How a tuple is written in the record (JSON has lists only).
TUPLE = '__tuple__'
ABSENT = '<absent>'

IGNORED_KEYS = frozenset({
    'arch', 'img_size', 'embed_dims', 'in_channels', 'drop_path_rate',
    'layer_decay_rate', 'num_layers', 'lr', 'weight_decay', 'checkpoint',
    'start_block'
})


@functools.lru_cache(maxsize=None)
def _parsed(path: str) -> Config:
    return Config.fromfile(path)


def load_config(path: str) -> Config:
    """``Config.fromfile(path)``, parsed once per process; each call returns
    its own copy to change."""
    return copy.deepcopy(_parsed(path))


def _without_ignored(node):
    if isinstance(node, dict):
        return {
            key: _without_ignored(value)
            for key, value in node.items() if key not in IGNORED_KEYS
        }
    if isinstance(node, (list, tuple)):
        return [_without_ignored(value) for value in node]
    return node


def training_groups(
    configs: Sequence[str], parts: Sequence[str] = ('model', 'optim_wrapper')
) -> Dict[str, List[str]]:
    """Group ``configs`` by what their one-iteration training runs.

    Args:
        configs: Config paths.
        parts: The config fields that the test keeps (and so that decide
            what trains); dotted paths such as
            ``'train_dataloader.dataset.pipeline'`` are allowed.

    Returns:
        The first config of each group, in the order of ``configs``, mapped
        to the basenames of the configs its training stands for.
    """
    groups: Dict[str, List[str]] = {}
    first_of: Dict[str, str] = {}
    for path in configs:
        cfg = _parsed(path)
        kept = {}
        for part in parts:
            value = cfg
            for key in part.split('.'):
                value = value.get(key)
            kept[part] = value.to_dict() if hasattr(value,
                                                    'to_dict') else value
        key = json.dumps(_without_ignored(kept), sort_keys=True, default=str)
        first = first_of.setdefault(key, path)
        groups.setdefault(first, []).append(osp.basename(path)[:-3])
    return groups


def shrink_token_reduction(backbone: dict) -> None:
    """The tiny form of a backbone config's windows and token reduction, in
    place: the tiny backbones have 2 main blocks and, at 64 px, a 4x4 grid
    of units, so windows of 2x2 units (4 windows) and a reduction from the
    second main block, which keeps 8 of the 16 tokens at keep ratio 0.5."""
    if backbone.get('window_size'):
        backbone.window_size = 2
    if backbone.get('token_reduction'):
        backbone.token_reduction.start_block = 1


@contextlib.contextmanager
def kept_tokens(backbone) -> Iterator[List[int]]:
    """Count what a built backbone's token reduction keeps: inside the
    ``with`` block, every time it drops tokens, the list yielded gets how
    many tokens each image kept."""
    counts: List[int] = []
    reduction = backbone.token_reduction
    select = reduction.select

    def counted(*args):
        state, windows = select(*args)
        counts.append(state.kept_ids.shape[1])
        return state, windows

    reduction.select = counted
    try:
        yield counts
    finally:
        del reduction.select


def group_ids(groups: Dict[str, List[str]]) -> List[str]:
    """Test ids: the trained config's name and how many more it stands
    for, e.g. ``itpn-base_..._coco (+3)``."""
    return [
        covered[0] + (f' (+{len(covered) - 1})' if len(covered) > 1 else '')
        for covered in groups.values()
    ]


def run_image_demo(image: str, cfg: Config, checkpoint: str,
                   out_dir: str) -> str:
    """Run ``demo/image_demo.py`` on one image with ``cfg`` (dumped into
    ``out_dir``) and ``checkpoint`` in a fresh process, as a user would.

    Returns:
        The one-line summary the tool printed for the image.
    """
    os.makedirs(out_dir, exist_ok=True)
    config = osp.join(out_dir, 'config.py')
    cfg.dump(config)
    run = subprocess.run([
        sys.executable,
        osp.join(REPO, 'demo', 'image_demo.py'), image, config, checkpoint,
        '--out-dir', out_dir
    ],
                         capture_output=True,
                         text=True,
                         env=dict(os.environ, PYTHONPATH=REPO))
    assert run.returncode == 0, run.stderr[-3000:]
    # A progress bar of the inferencer may precede it on the same line.
    summaries = [
        line.split(image + ': ', 1)[1] for line in run.stdout.splitlines()
        if image + ': ' in line
    ]
    assert len(summaries) == 1, run.stdout
    return summaries[0]


def shipped_configs() -> List[str]:
    """Every shipped config (not a ``_base_`` part), relative to
    ``configs/``, sorted."""
    return sorted(
        osp.relpath(path, CONFIGS)
        for path in glob.glob(osp.join(CONFIGS, '**', '*.py'), recursive=True)
        if not is_base_part(osp.relpath(path, CONFIGS)))


def canonical(node: Any) -> Any:
    """``node`` as JSON values that keep what JSON would lose: tuples become
    ``{'__tuple__': [...]}``, and the repository's absolute path becomes
    ``{REPO}``. Anything else that is not JSON raises ``TypeError``."""
    if isinstance(node, dict):
        for key in node:
            if not isinstance(key, str):
                raise TypeError(f'non-string key {key!r} in a config')
        return {key: canonical(node[key]) for key in sorted(node)}
    if isinstance(node, tuple):
        return {TUPLE: [canonical(value) for value in node]}
    if isinstance(node, list):
        return [canonical(value) for value in node]
    if isinstance(node, str):
        return node.replace(REPO, '{REPO}')
    if node is None or isinstance(node, (bool, int, float)):
        return node
    raise TypeError(f'{type(node).__name__} value {node!r} in a config')


def resolved_config(config: str) -> dict:
    """What ``Config.fromfile`` makes of ``configs/<config>``, canonical
    (see :func:`canonical`)."""
    return canonical(_parsed(osp.join(CONFIGS, config)).to_dict())


def library_versions() -> Dict[str, str]:
    """The installed versions of :data:`LIBRARIES`."""
    import importlib
    return {
        name: importlib.import_module(name).__version__
        for name in LIBRARIES
    }


def write_record(path: str = RECORD) -> None:
    """Record every shipped config's resolved form and the library
    versions (byte-identical for the same configs and versions)."""
    _write(
        path,
        dict(
            versions=library_versions(),
            configs={
                config: resolved_config(config)
                for config in shipped_configs()
            }))


def add_to_record(path: str = RECORD) -> List[str]:
    """Record the shipped configs that the record lacks, as they resolve
    now, and list them under ``added``; every recorded config keeps its
    record. Returns the configs added."""
    record = read_record(path)
    if record['versions'] != library_versions():
        raise RuntimeError(
            f'{osp.relpath(path, REPO)} was recorded with '
            f'{record["versions"]}, the installed libraries are '
            f'{library_versions()}: add configs with the recorded ones.')
    new = [c for c in shipped_configs() if c not in record['configs']]
    for config in new:
        record['configs'][config] = resolved_config(config)
    record['added'] = sorted(set(record.get('added', [])) | set(new))
    _write(path, record)
    return new


def _write(path: str, record: dict) -> None:
    text = json.dumps(record, sort_keys=True, indent=0)
    with open(path, 'wb') as file, gzip.GzipFile(
            filename='', mode='wb', fileobj=file, mtime=0) as packed:
        packed.write(text.encode())


def read_record(path: str = RECORD) -> dict:
    """The record :func:`write_record` wrote."""
    with gzip.open(path, 'rt') as file:
        return json.load(file)


def differences(old: Any,
                new: Any,
                key: str = '') -> Iterator[Tuple[str, Any, Any]]:
    """``(key, old value, new value)`` for every place where two canonical
    configs differ, e.g. ``('model.backbone.drop_path_rate', 0.1, 0.2)``;
    a missing key is :data:`ABSENT`, and lists of another length or type
    differ as a whole."""
    both_tuples = all(
        isinstance(value, dict) and set(value) == {TUPLE}
        for value in (old, new))
    if both_tuples:
        yield from differences(old[TUPLE], new[TUPLE], key)
    elif all(
            isinstance(value, dict) and TUPLE not in value
            for value in (old, new)):
        for name in sorted(old.keys() | new.keys()):
            yield from differences(
                old.get(name, ABSENT), new.get(name, ABSENT),
                f'{key}.{name}' if key else name)
    elif all(isinstance(value, list)
             for value in (old, new)) and len(old) == len(new):
        for index, (before, after) in enumerate(zip(old, new)):
            yield from differences(before, after, f'{key}[{index}]')
    elif old != new or type(old) is not type(new):
        yield key, old, new


def _base_files(path: str) -> List[str]:
    """The ``_base_`` entries of a config file, read without running it."""
    with open(path, encoding='utf-8') as file:
        tree = ast.parse(file.read(), path)
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id == '_base_'):
            value = ast.literal_eval(node.value)
            return [value] if isinstance(value, str) else list(value)
    return []


def mmitpn_bases(config: str) -> List[str]:
    """The direct ``_base_`` files of ``configs/<config>`` that belong to
    this repository (not a library's ``pkg::`` bases), relative to
    ``configs/``."""
    path = osp.join(CONFIGS, config)
    return [
        osp.relpath(osp.normpath(osp.join(osp.dirname(path), base)), CONFIGS)
        for base in _base_files(path) if '::' not in base
    ]


def inheritance_depth(config: str) -> int:
    """How many mmitpn files a config stands on, itself included, above the
    library base: the longest chain of ``_base_`` files of this repository
    (a library's ``mmdet::``, ``mmseg::`` or ``mmpretrain::`` base counts
    0). A config without bases has depth 1."""
    return 1 + max(map(inheritance_depth, mmitpn_bases(config)), default=0)


def is_base_part(config: str) -> bool:
    """Whether ``configs/<config>`` is a ``_base_`` part, not a shipped
    config."""
    return '_base_' in config.split(osp.sep)


def family(config: str) -> str:
    """``'Fast-iTPN'`` or ``'iTPN'`` (the HiViT CPU demos included), from
    the config's name."""
    return ('Fast-iTPN'
            if osp.basename(config).startswith('fast-itpn') else 'iTPN')


def depth_table(configs: Sequence[str]) -> str:
    """A Markdown table: how many configs of each task folder and family
    stand at each :func:`inheritance_depth`."""
    counts: Dict[Tuple[str, str], Dict[int, int]] = {}
    for config in configs:
        group = (osp.dirname(config), family(config))
        depth = inheritance_depth(config)
        counts.setdefault(group, {})
        counts[group][depth] = counts[group].get(depth, 0) + 1
    depths = range(1, max(d for c in counts.values() for d in c) + 1)
    lines = [
        '| configs | family | ' + ' | '.join(f'depth {d}'
                                             for d in depths) + ' |',
        '|---|---|' + '---:|' * len(depths)
    ]
    for (folder, name), row in sorted(counts.items()):
        lines.append(f'| {folder} | {name} | ' +
                     ' | '.join(str(row.get(d, 0)) for d in depths) + ' |')
    totals = [sum(row.get(d, 0) for row in counts.values()) for d in depths]
    lines.append('| all | | ' + ' | '.join(map(str, totals)) + ' |')
    return '\n'.join(lines)


def main(argv: Sequence[str] = None) -> None:
    parser = argparse.ArgumentParser(
        description='Compare the shipped configs with their record in '
        'tests/data, rewrite the record (--update) or print the depth '
        'table (--depths).')
    parser.add_argument(
        '--update',
        action='store_true',
        help='rewrite tests/data/shipped_configs.json.gz from the configs')
    parser.add_argument(
        '--add',
        action='store_true',
        help='record the shipped configs that are not recorded yet, keeping '
        'every recorded one as it is')
    parser.add_argument(
        '--depths',
        action='store_true',
        help='print how many configs stand at each inheritance depth')
    args = parser.parse_args(argv)
    if args.depths:
        print(depth_table(shipped_configs()))
        return
    if args.add:
        added = add_to_record()
        print(f'recorded {len(added)} more configs in '
              f'{osp.relpath(RECORD, REPO)}: {added}')
        return
    if args.update:
        write_record()
        print(f'recorded {len(shipped_configs())} configs with '
              f'{library_versions()} in {osp.relpath(RECORD, REPO)}')
        return
    record = read_record()
    if record['versions'] != library_versions():
        print(f'recorded with {record["versions"]}, '
              f'installed {library_versions()}')
    for config in sorted(set(record['configs']) | set(shipped_configs())):
        if config not in record['configs']:
            print(f'{config}: not recorded')
        elif not osp.isfile(osp.join(CONFIGS, config)):
            print(f'{config}: recorded, no longer shipped')
        else:
            for key, old, new in differences(record['configs'][config],
                                             resolved_config(config)):
                print(f'{config}: {key}: {old!r} -> {new!r}')


if __name__ == '__main__':
    main()
