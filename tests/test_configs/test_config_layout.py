# Copyright (c) mmitpn contributors. All rights reserved.
"""How the shipped configs are built: every one resolves to what it resolved
to before the configs were restructured (tests/data/shipped_configs.json.gz)
but for the changes named in :data:`CHANGES`; each inherits only configs of
its own family or ``_base_`` parts, at most three mmitpn files deep; and each
carries its task runtime's hooks.

After a deliberate change to what a config resolves to, name it in
:data:`CHANGES` (or rewrite the record: ``tests/shipped_configs.py
--update``, see its docstring); after a config is added, record it with
``tests/shipped_configs.py --add``, in the same commit. Configs recorded with
``--add`` (the record's ``added``) were recorded as they resolved then: the
changes named for the configs recorded before do not apply to them unless a
change says so (``Change.added``).
"""
import copy
import fnmatch
import functools
import os.path as osp
import tempfile
from typing import Any, NamedTuple

import pytest
from mmengine.config import Config
from shipped_configs import (ABSENT, CONFIGS, RECORD, canonical, differences,
                             family, inheritance_depth, is_base_part,
                             library_versions, load_config, mmitpn_bases,
                             read_record, resolved_config, shipped_configs)

UPDATE = 'PYTHONPATH=$PWD .venv/bin/python tests/shipped_configs.py --update'
ADD = 'PYTHONPATH=$PWD .venv/bin/python tests/shipped_configs.py --add'
# Stands for the recorded value, whatever it is.
RECORDED = '<recorded>'


class Same(NamedTuple):
    """The new value is the config's own value at ``key``."""
    key: str


class Added(NamedTuple):
    """The new value is the recorded list of hooks with
    ``dict(type=hook)`` inserted once (at any place)."""
    hook: str


class Change(NamedTuple):
    """A difference from the record that the restructuring made on purpose.

    Args:
        configs: An ``fnmatch`` pattern of config paths under ``configs/``.
        count: How many shipped configs the pattern matches (so that a
            pattern cannot widen unnoticed).
        key: The dotted key that changed.
        old: The recorded value, :data:`RECORDED` or a ``(library base,
            key)`` pair whose value it equals.
        new: The value now, :data:`~shipped_configs.ABSENT`, :class:`Same`
            or :class:`Added`.
        reason: Why.
        added: Whether it applies to the configs recorded with ``--add``
            too (a change made after they were recorded).
    """
    configs: str
    count: int
    key: str
    old: Any
    new: Any
    reason: str
    added: bool = False


COCO_DETECTORS = 'det/*mask-rcnn_*_coco.py'
COCO_MASK_RCNN = 'det/*_mask-rcnn_*_coco.py'
CLIP_L_TEACHER = 'pretrain/*-clip-l_*.py'
STALE_DET_PARTS = (
    'a helper of the former det/_base_/itpn-base_det_parts.py, copied into '
    'the model, loader or optimizer with {{_base_.*}}: nothing reads it, and '
    'it kept the iTPN-B pixel values in every config that changed them '
    '(iTPN-L, CLIP-B, Fast-iTPN); the parts now write these values where '
    'they are used')
CHANGES = (
    Change(COCO_DETECTORS, 24, 'itpn_backbone', RECORDED, ABSENT,
           STALE_DET_PARTS),
    Change(COCO_DETECTORS, 24, 'itpn_neck', RECORDED, ABSENT, STALE_DET_PARTS),
    Change(COCO_DETECTORS, 24, 'itpn_optim_wrapper', RECORDED, ABSENT,
           STALE_DET_PARTS),
    Change(COCO_DETECTORS, 24, 'itpn_train_pipeline', RECORDED, ABSENT,
           STALE_DET_PARTS),
    Change(
        COCO_MASK_RCNN, 17, 'cascade_box_heads', RECORDED, ABSENT,
        'the Cascade R-CNN box heads, a helper of the former parts file that '
        'Mask R-CNN configs carried without using'),
    Change(
        COCO_DETECTORS, 24, 'train_pipeline',
        ('mmdet::_base_/datasets/coco_instance.py', 'train_pipeline'),
        Same('train_dataloader.dataset.pipeline'),
        "was mmdet's default COCO pipeline (a fixed 1333x800 resize) while "
        'the loader ran the DETR-style multi-scale pipeline; now it is the '
        'pipeline the loader runs'),
    Change(
        CLIP_L_TEACHER, 3, 'teacher_img_size', 224, 196,
        "said the CLIP-B teacher's 224 px view while the loader gave the "
        'CLIP-L teacher its 196 px view'),
    *(Change(
        'cls/*-640px.py', 1, f'{split}_pipeline', RECORDED,
        Same(f'{loader}_dataloader.dataset.pipeline'),
        f'was the 224 px {split} pipeline of the base config while the '
        'loader ran the 640 px one; now it is the pipeline the loader runs')
      for split, loader in (('train', 'train'), ('test', 'val'))),
    Change(
        CLIP_L_TEACHER, 3, 'train_pipeline', RECORDED,
        Same('train_dataloader.dataset.pipeline'),
        "was the CLIP-B pipeline (teacher's view 224 px) while the loader "
        'ran the CLIP-L one (196 px); now it is the pipeline the loader '
        'runs'),
)

# Every shipped training config preemption-safe by default: a signal saves a
# checkpoint and exits (PreemptionHook), epoch-based training resumes inside
# an epoch exactly (ResumableEpochBasedTrainLoop), iteration-based training
# without reloading what it trained (ResumableIterBasedTrainLoop), and
# periodic checkpoints
# bound what a kill without notice loses (the runtime parts give the
# estimates behind each interval).
TASK_CONFIGS = dict(pretrain=23, cls=14, det=33, seg=15)
PREEMPTION_HOOK = (
    'preemption-safe by default: SIGTERM or SIGUSR1 saves a checkpoint '
    'after the current iteration and exits with code 75')
RESUMABLE_LOOP = (
    'resumes a checkpoint written inside an epoch where it stopped, with '
    "the same samples and augmentations (mmengine's loop restarts the "
    'epoch)')
CHANGES += tuple(
    Change(f'{task}/*', count, 'custom_hooks', RECORDED,
           Added(('' if task == 'pretrain' else 'mmitpn.') +
                 'PreemptionHook'), PREEMPTION_HOOK)
    for task, count in TASK_CONFIGS.items())
CHANGES += tuple(
    Change(f'{task}/*', TASK_CONFIGS[task], 'train_cfg.type', old,
           'mmitpn.ResumableEpochBasedTrainLoop', RESUMABLE_LOOP)
    for task, old in (('pretrain', 'EpochBasedTrainLoop'), ('cls', ABSENT),
                      ('det', 'EpochBasedTrainLoop')))
RESUMABLE_ITER_LOOP = (
    'resumes exactly, skipping the batches already trained without loading '
    "them (mmseg's loop loads and discards them, and augments the rest "
    'differently)')
CHANGES += (
    Change('seg/*', TASK_CONFIGS['seg'], 'train_cfg.type',
           'IterBasedTrainLoop', 'mmitpn.ResumableIterBasedTrainLoop',
           RESUMABLE_ITER_LOOP),
    # The recommended segmentation configs were added to the record before.
    Change(
        'seg/*-wmig0.5_*',
        12,
        'train_cfg.type',
        'IterBasedTrainLoop',
        'mmitpn.ResumableIterBasedTrainLoop',
        RESUMABLE_ITER_LOOP,
        added=True),
    Change('cls/*', 14, 'train_cfg.by_epoch', True, ABSENT,
           'a loop type replaces it (mmengine refuses both)'),
    *(Change(
        f'{task}/*', TASK_CONFIGS[task], f'default_hooks.checkpoint.{key}',
        ABSENT, value,
        'a checkpoint every 1000 iterations inside the long epochs of '
        'ImageNet fine-tuning and COCO (3-17 min at an estimated 0.2-1 s per '
        'iteration), the newest kept: a job killed without notice loses at '
        'most that') for task in ('cls', 'det')
      for key, value in (('iter_interval', 1000), ('max_keep_iter_ckpts', 1))),
    Change(
        'seg/*_upernet_8xb2-*', 10, 'default_hooks.checkpoint.interval', 16000,
        4000, "mmseg's 16000 iterations are 1.3-2.2 h of the cluster; 4000 "
        'bound a kill without notice to 20-33 min (0.3-0.5 s per iteration)'),
    Change('seg/*_mask2former_8xb2-*', 3, 'default_hooks.checkpoint.interval',
           5000, 4000, 'the same interval as the UperNet configs (20-33 min)'),
    Change(
        'seg/*_8xb2-*', 13, 'default_hooks.checkpoint.max_keep_ckpts', ABSENT,
        3, 'the newest 3 of the 40 checkpoints of 160k iterations (1-4 GB '
        'each), as the other tasks keep 3'),
)
MIGRATION_CONFIGS = 'det/*-migration-keep0.5_*'
TOKEN_REDUCTION = (
    "token_migration=dict(start_block=6, keep_ratio=0.5) is the deprecated "
    "spelling (it warns) of token_reduction=dict(type='migration', "
    'start_block=6, keep_ratio=0.5), the same setting')
CHANGES += (
    Change(MIGRATION_CONFIGS, 2, 'model.backbone.token_migration', RECORDED,
           ABSENT, TOKEN_REDUCTION),
    Change(MIGRATION_CONFIGS, 2, 'model.backbone.token_reduction', ABSENT,
           dict(keep_ratio=0.5, start_block=6, type='migration'),
           TOKEN_REDUCTION),
)

FAST_DINO_WITH_CP = {
    'itpn-base': True,
    'itpn-large': True,
    'fast-itpn-tiny': False,
    'fast-itpn-small': False,
    'fast-itpn-base': True,
    'fast-itpn-large': True,
}
DINO_MEMORY = (
    "DINO's training-memory estimate (fp32, its deformable encoder counted "
    "through mmcv's CPU path: an upper bound) exceeds 60 of 80 GB without "
    'activation checkpointing for the base and large sizes, which now '
    'checkpoint; the other recommended detectors stay without it')
CHANGES += (
    Change(
        'det/*-wmig0.5_*',
        24,
        'fast_dino_with_cp',
        ABSENT,
        FAST_DINO_WITH_CP,
        DINO_MEMORY,
        added=True),
    *(Change(
        'det/*itpn-[bl]*-wmig0.5_*_dino-*',
        4,
        f'model.{part}.with_cp',
        False,
        True,
        DINO_MEMORY,
        added=True) for part in ('backbone', 'neck')),
)


def value_at(node: Any, key: str) -> Any:
    for name in key.split('.'):
        if not isinstance(node, dict) or name not in node:
            return ABSENT
        node = node[name]
    return node


def set_value(node: dict, key: str, value: Any) -> None:
    *parents, name = key.split('.')
    for parent in parents:
        node = node[parent]
    if value is ABSENT:
        node.pop(name, None)
    else:
        node[name] = value


def with_one_less(values: Any, item: Any) -> Any:
    """``values`` without its first ``item`` (unchanged if it is not a list
    holding ``item``)."""
    if not isinstance(values, list) or item not in values:
        return values
    index = values.index(item)
    return values[:index] + values[index + 1:]


@functools.lru_cache(maxsize=None)
def library_value(base: str, key: str) -> Any:
    """What ``key`` resolves to in a library's base (canonical), read as
    shipped configs read it: as the base of a config."""
    with tempfile.TemporaryDirectory() as folder:
        path = osp.join(folder, 'library_base.py')
        with open(path, 'w') as file:
            file.write(f'_base_ = {base!r}\n')
        return canonical(value_at(Config.fromfile(path).to_dict(), key))


@pytest.fixture(scope='module')
def record():
    record = read_record()
    installed = library_versions()
    if record['versions'] != installed:
        pytest.skip(
            f'{osp.relpath(RECORD, osp.dirname(CONFIGS))} was recorded with '
            f'{record["versions"]}, the installed libraries are {installed}: '
            "another stack resolves the libraries' bases differently")
    return record


def test_every_shipped_config_is_recorded():
    recorded = set(read_record()['configs'])
    shipped = set(shipped_configs())
    assert shipped == recorded, (
        f'shipped but not recorded: {sorted(shipped - recorded)}; recorded '
        f'but no longer shipped: {sorted(recorded - shipped)}. Record new '
        f'configs ({ADD}), or check the change and rewrite the record: '
        f'{UPDATE}')


def test_configs_resolve_as_recorded_but_for_the_named_changes(record):
    unexpected, mismatched = [], []
    # By position: a change's values may be dicts (unhashable).
    matched = [[] for _ in CHANGES]
    added = set(record.get('added', ()))
    # Configs added or removed are test_every_shipped_config_is_recorded's.
    for config in sorted(set(shipped_configs()) & set(record['configs'])):
        old = record['configs'][config]
        new = resolved_config(config)
        expected = copy.deepcopy(old)
        for index, change in enumerate(CHANGES):
            if not fnmatch.fnmatch(config, change.configs) or \
                    (config in added and not change.added):
                continue
            matched[index].append(config)
            recorded = value_at(old, change.key)
            if change.old == RECORDED:
                ok = recorded is not ABSENT
            elif isinstance(change.old, tuple):
                ok = recorded == library_value(*change.old)
            else:
                ok = recorded == change.old
            if isinstance(change.new, Same):
                target = value_at(new, change.new.key)
            elif isinstance(change.new, Added):
                target = value_at(new, change.key)
                ok = ok and with_one_less(target,
                                          dict(type=change.new.hook)) == \
                    value_at(expected, change.key)
            else:
                target = change.new
            if not ok or value_at(new, change.key) != target:
                mismatched.append(f'{config}: {change.key}')
            set_value(expected, change.key, target)
        unexpected += [
            f'{config}: {key}: {before!r:.120} -> {after!r:.120}'
            for key, before, after in differences(expected, new)
        ]
    assert not mismatched, (
        'named changes whose recorded or new value is not the one named:\n' +
        '\n'.join(mismatched))
    assert not unexpected, (
        'configs resolve to something else than recorded, and the '
        'difference is not a named change (name it in CHANGES with its '
        f'reason, or rewrite the record: {UPDATE}):\n' + '\n'.join(unexpected))
    counts = {
        change.configs + ' ' + change.key: (len(configs), change.count)
        for change, configs in zip(CHANGES, matched)
        if len(configs) != change.count
    }
    assert not counts, f'patterns that match other configs: {counts}'


def test_inheritance_is_at_most_three_mmitpn_files_deep():
    deep = {
        config: inheritance_depth(config)
        for config in shipped_configs() if inheritance_depth(config) > 3
    }
    assert not deep, deep


def test_configs_inherit_only_their_family_or_base_parts():
    """No Fast-iTPN config inherits an iTPN config (nor the other way), no
    config inherits another task's config: a config's bases are ``_base_``
    parts or configs of its own folder and family."""
    crossing = []
    for config in shipped_configs():
        for base in mmitpn_bases(config):
            if is_base_part(base):
                continue
            if (osp.dirname(base) != osp.dirname(config)
                    or family(base) != family(config)):
                crossing.append(f'{config} -> {base}')
    assert not crossing, crossing


def runtime_of(config: str) -> str:
    task = config.split(osp.sep)[0]
    return (osp.join('_base_', 'default_runtime.py') if task == 'pretrain' else
            osp.join(task, '_base_', 'default_runtime.py'))


@pytest.mark.parametrize('task', ['pretrain', 'cls', 'det', 'seg'])
def test_every_config_has_its_task_runtime_hooks(task):
    """The hooks of a task are written in its runtime part; the configs
    that build on a complete library config (DINO, Mask2Former) and mmseg's
    schedules state them again, which this test keeps equal."""
    configs = [c for c in shipped_configs() if c.startswith(task + osp.sep)]
    runtime = load_config(osp.join(CONFIGS, runtime_of(configs[0])))
    pretrain_runtime = load_config(
        osp.join(CONFIGS, '_base_', 'default_runtime.py'))
    checkpoint = pretrain_runtime.default_hooks.checkpoint.type
    hooks = runtime.custom_hooks
    wrong = []
    for config in configs:
        cfg = load_config(osp.join(CONFIGS, config))
        if cfg.custom_hooks[:len(hooks)] != hooks:
            wrong.append(f'{config}: custom_hooks {cfg.custom_hooks}')
        if cfg.default_hooks.checkpoint.type != checkpoint:
            wrong.append(
                f'{config}: checkpoint {cfg.default_hooks.checkpoint.type}')
    assert not wrong, (
        f'hooks that differ from {runtime_of(configs[0])} (custom hooks) '
        f'and _base_/default_runtime.py (checkpoint hook):\n' +
        '\n'.join(wrong))


def test_every_config_is_preemption_safe():
    """A signal saves a checkpoint and exits (PreemptionHook, through the
    atomic checkpoint hook); epoch-based training resumes it inside the
    epoch (ResumableEpochBasedTrainLoop), iteration-based training without
    reloading (ResumableIterBasedTrainLoop); iteration checkpoints fall on
    optimizer steps (a multiple of the gradient accumulation)."""
    unsafe = []
    for config in shipped_configs():
        cfg = load_config(osp.join(CONFIGS, config))
        hooks = [h.type.split('.')[-1] for h in cfg.custom_hooks]
        checkpoint = cfg.default_hooks.checkpoint
        loop = cfg.train_cfg.get('type', 'EpochBasedTrainLoop')
        accumulation = cfg.optim_wrapper.get('accumulative_counts', 1)
        if hooks.count('PreemptionHook') != 1 or \
                'IterationSeedHook' not in hooks:
            unsafe.append(f'{config}: custom_hooks {hooks}')
        if not checkpoint.type.endswith('SafeCheckpointHook'):
            unsafe.append(f'{config}: checkpoint {checkpoint.type}')
        if loop.split('.')[-1] not in ('ResumableEpochBasedTrainLoop',
                                       'ResumableIterBasedTrainLoop'):
            unsafe.append(f'{config}: train_cfg.type {loop}')
        if checkpoint.get('iter_interval', 0) % accumulation:
            unsafe.append(f'{config}: iter_interval '
                          f'{checkpoint.iter_interval} with accumulation '
                          f'{accumulation}')
    assert not unsafe, '\n'.join(unsafe)
