# Copyright (c) mmitpn contributors. All rights reserved.
"""Shipped configs for the config tests: each parsed once per process, and
which of them the one-iteration training tests train.

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
"""
import copy
import functools
import json
import os.path as osp
from typing import Dict, List, Sequence

from mmengine.config import Config

IGNORED_KEYS = frozenset({
    'arch', 'img_size', 'embed_dims', 'in_channels', 'drop_path_rate',
    'layer_decay_rate', 'num_layers', 'lr', 'weight_decay', 'checkpoint'
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


def group_ids(groups: Dict[str, List[str]]) -> List[str]:
    """Test ids: the trained config's name and how many more it stands
    for, e.g. ``itpn-base_..._coco (+3)``."""
    return [
        covered[0] + (f' (+{len(covered) - 1})' if len(covered) > 1 else '')
        for covered in groups.values()
    ]
