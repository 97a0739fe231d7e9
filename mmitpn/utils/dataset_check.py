# Copyright (c) mmitpn contributors. All rights reserved.
"""Check a config's datasets before a long run.

For each data loader of a config, :func:`check_dataset` checks that the
folders and annotation files it names exist, builds the dataset as the
Runner would (the config's default scope, its registries), counts the
samples and runs the first few through the full pipeline, and reports one
line per stage: what was found, or what is missing and what to do. The
libraries' ``browse_dataset.py`` tools draw samples; this check needs no
display and stops at nothing, so that every stage gets its line.
"""
import copy
import os.path as osp
from dataclasses import dataclass
from typing import List, Mapping, Optional, Sequence

from mmengine.config import Config
from mmengine.registry import DATASETS, DefaultScope
from torch import Tensor

from .setup_env import ALL_STAGES, check_data_files

LAYOUT_PAGE = 'docs/user_guides/dataset_prepare.md'


@dataclass
class StageCheck:
    """The result of checking one stage's dataset.

    Attributes:
        stage (str): ``'train'``, ``'val'`` or ``'test'``.
        ok (bool): Whether the dataset was found and its first samples
            went through the pipeline.
        message (str): What was found, or what is wrong and what to do.
    """
    stage: str
    ok: bool
    message: str

    def line(self) -> str:
        """``stage: message``, with ``error:`` before a problem."""
        return f'{self.stage}: {"" if self.ok else "error: "}{self.message}'


def _first_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines()]
    return next((line for line in lines if line),
                type(error).__name__).rstrip('.')


def _missing_folder(dataset: Mapping, key: str) -> Optional[str]:
    """Why the folders ``dataset`` reads do not exist, or None."""
    for inner in ([dataset.get('dataset')] if dataset.get('dataset') else
                  []) + list(dataset.get('datasets') or []):
        problem = _missing_folder(inner, f'{key}.dataset')
        if problem:
            return problem
    hint = f'see {LAYOUT_PAGE} for the layout, or set {key}.data_root'
    root = dataset.get('data_root') or ''
    if root and not osp.isdir(root):
        return f'{key}.data_root names {root}, which does not exist; {hint}.'
    prefix = dataset.get('data_prefix')
    if prefix:
        folders = prefix.items() if isinstance(prefix, Mapping) else [('',
                                                                       prefix)]
        named = [(f'data_prefix.{name}' if name else 'data_prefix', value)
                 for name, value in folders]
    else:
        # mmpretrain's ImageNet reads <data_root>/<split>.
        named = [('split', dataset.get('split'))]
    for name, value in named:
        if value and not osp.exists(osp.join(root, value)):
            return (f'{key}.{name} names {osp.join(root, value)}, which does '
                    f'not exist; {hint}.')
    return None


def _innermost(dataset):
    """The dataset that a wrapper (repeat, class balance) holds."""
    while hasattr(dataset, 'dataset'):
        dataset = dataset.dataset
    return dataset


def _shapes(inputs) -> str:
    if isinstance(inputs, Tensor):
        return str(tuple(inputs.shape))
    if isinstance(inputs, (list, tuple)):
        return '[' + ', '.join(_shapes(item) for item in inputs) + ']'
    return type(inputs).__name__


def _check_stage(cfg: Config, stage: str, num_samples: int) -> StageCheck:
    key = f'{stage}_dataloader.dataset'
    dataset_cfg = cfg[f'{stage}_dataloader'].dataset
    kind = dataset_cfg.get('type')
    root = dataset_cfg.get('data_root') or '.'
    try:
        check_data_files(cfg, (stage, ))
    except FileNotFoundError as error:
        return StageCheck(stage, False, str(error))
    problem = _missing_folder(dataset_cfg, key)
    if problem:
        return StageCheck(stage, False, problem)
    try:
        with DefaultScope.overwrite_default_scope(
                cfg.get('default_scope', 'mmitpn')):
            dataset = DATASETS.build(copy.deepcopy(dataset_cfg))
    except Exception as error:  # noqa: B902 -- every failure is the report
        return StageCheck(
            stage, False, f'{key} ({kind} under {root}) cannot be built: '
            f'{_first_line(error)}; see {LAYOUT_PAGE} for the layout.')
    size = len(dataset)
    if size == 0:
        return StageCheck(
            stage, False, f'{key} ({kind} under {root}) holds no samples; '
            f'see {LAYOUT_PAGE} for the layout.')
    inner = _innermost(dataset)
    loaded = min(num_samples, size)
    inputs = None
    for index in range(loaded):
        path = inner.get_data_info(index).get('img_path')
        try:
            data = inner.prepare_data(index)
        except Exception as error:  # noqa: B902 -- every failure is the report
            return StageCheck(
                stage, False, f'{key}: sample {index} ({path}) fails in the '
                f'pipeline: {_first_line(error)}')
        if data is None:
            return StageCheck(
                stage, False, f'{key}: sample {index} ({path}) was dropped '
                'by the pipeline (an unreadable image?); replace or remove '
                'the file.')
        inputs = inputs or _shapes(data.get('inputs'))
    return StageCheck(
        stage, True, f'{kind} under {root}: {size} samples; the first '
        f'{loaded} through the pipeline: inputs {inputs}')


def check_dataset(cfg: Config,
                  stages: Sequence[str] = ALL_STAGES,
                  num_samples: int = 2) -> List[StageCheck]:
    """Check the datasets of ``cfg``'s data loaders.

    Args:
        cfg (Config): The config.
        stages (Sequence[str]): Stages whose ``<stage>_dataloader`` to
            check; loaders the config does not have are skipped. Defaults
            to train, val and test.
        num_samples (int): Samples to run through each pipeline. Defaults
            to 2.

    Returns:
        list[StageCheck]: One per checked stage, in the order of ``stages``.
    """
    checks = []
    for stage in stages:
        loader = cfg.get(f'{stage}_dataloader')
        if not loader or not loader.get('dataset'):
            continue
        if stage == 'test' and loader == cfg.get('val_dataloader'):
            checks.append(StageCheck(stage, True, 'the same dataset as val'))
            continue
        checks.append(_check_stage(cfg, stage, num_samples))
    return checks
