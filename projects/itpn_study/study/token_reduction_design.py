# Copyright (c) mmitpn contributors. All rights reserved.
"""The registered design of the token-reduction fidelity study
(docs/token_reduction_fidelity_preregistration.md): the variants, the two
demos and their schedules, the seeds and the order of the runs, the
non-inferiority margins, the gates, the verdict rule, and the power
analysis, computed from the paired standard deviations the finished studies
recorded.

Nothing here may change once the study's first run has started; a change is
a new registration with its own commit.
"""
import itertools
import json
import os.path as osp
from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np

from .plan import PAGES, RECORDS
from .power import half_width, non_inferiority_power, seeds_for_non_inferiority

RECORD = osp.join(RECORDS, 'token_reduction_fidelity.json')
REPORT_PAGE = osp.join(PAGES, 'token_reduction_fidelity.md')
PREREGISTRATION_PAGE = osp.join(PAGES,
                                'token_reduction_fidelity_preregistration.md')
WORK_DIR = 'work_dirs/fidelity'

SEEDS = (0, 1, 2)
# The demo backbone (HiViT-demo) has 4 main blocks on an 8x8 unit grid at
# 128 px. Windows of 4x4 units make 2x2 windows of 16 units; window
# migration at keep 0.5 keeps 8 of them per window. Block 3 global is
# ViTDet's pattern (the last block of every quarter of the depth at full
# size); block 1 is a quarter of the depth, where the shipped recommended
# detection setting starts its reduction (block 6 of 24).
WINDOW = dict(window_size=4)
WINDOW_MIGRATION = dict(
    token_reduction=dict(
        type='window_migration', start_block=1, keep_ratio=0.5))
VARIANTS = {
    'global': {},
    'windows': dict(WINDOW, global_blocks=(3, )),
    'gathering': dict(WINDOW, gathering_tokens=8),
    'reduction': dict(WINDOW, global_blocks=(3, ), **WINDOW_MIGRATION),
    'recommended': dict(WINDOW, gathering_tokens=8, **WINDOW_MIGRATION),
}
# In words (windows of 4x4 units; window migration keeps 0.5 from block 1).
VARIANT_TITLES = {
    'global': 'global attention',
    'windows': 'windows, block 3 global',
    'gathering': 'windows + 8 gathering tokens',
    'reduction': 'windows, block 3 global + window migration',
    'recommended': 'windows + 8 gathering tokens + window migration',
}
REFERENCE = 'global'
# Training-free migration of every global-attention checkpoint (secondary):
# token_reduction=dict(type='migration', start_block=1, keep_ratio=r).
MIGRATION_START_BLOCK = 1
MIGRATION_KEEP_RATIOS = (1.0, 0.75, 0.5)
# A run's final value may sit at most this far (points) below the best value
# of its own validation curve (gate G2).
DIVERGENCE_DROP = 3.0
# CPU minutes per training run the registration plans with: the earlier runs
# of the same demos on one shared core (segmentation at 500 iterations),
# which left no record.
PLANNED_CPU_MINUTES = {'seg': 25., 'det': 70.}
# The pretraining checkpoint both demos start from (`make demo-photos`).
PRETRAIN = dict(
    config='configs/pretrain/demo/'
    'itpn-pixel_hivit-demo_1xb32-coslr-40e_skimage-96px.py',
    data_root='data/skimage_unlabeled',
    converter='tools/dataset_converters/prepare_skimage_images.py',
    work_dir='work_dirs/demo',
    checkpoint='work_dirs/demo/epoch_40.pth')


@dataclass(frozen=True)
class Task:
    """One demo of the study.

    Args:
        name (str): ``seg`` or ``det``.
        title (str): The demo in words.
        config (str): The shipped demo config the runs train.
        data_root (str): Its generated data (the config's).
        converter (str): The script that generates it.
        metrics (tuple): Validation metrics recorded (mmseg / mmdet keys).
        primary (str): The metric the verdicts are about.
        scale (float): Factor from the metric as logged to points.
        unit (str): ``iteration`` or ``epoch``.
        length (int): Training length in ``unit``.
        val_interval (int): Validation every this many ``unit`` (the
            curves).
        margin (float): Non-inferiority margin, points of ``primary``.
        shipped (float): The shipped demo record of ``primary``.
        shipped_source (str): Where that record is and how it was made.
        global_range (tuple): Gate G1: the range the mean over seeds of
            global attention's final ``primary`` must lie in.
        floor (float): Gate G2: every run's final ``primary`` must exceed
            it (the level of a model that learned no shape).
    """

    name: str
    title: str
    config: str
    data_root: str
    converter: str
    metrics: Tuple[str, ...]
    primary: str
    scale: float
    unit: str
    length: int
    val_interval: int
    margin: float
    shipped: float
    shipped_source: str
    global_range: Tuple[float, float]
    floor: float

    @property
    def metric_name(self) -> str:
        """The primary metric in words."""
        return {'mIoU': 'mIoU', 'coco/bbox_mAP': 'box mAP'}[self.primary]


TASKS = {
    'seg':
    Task(
        'seg', 'UperNet, shapes segmentation demo',
        'configs/seg/demo/hivit-demo_skimage-pre_upernet_1xb8-1k_'
        'shapes-seg-128px.py', 'data/shapes_seg',
        'tools/dataset_converters/make_shapes_seg.py', ('mIoU', ), 'mIoU', 1.,
        'iteration', 500, 100, 1.0, 48.43,
        "after the demo's 1,000 iterations (`docs/get_started/demos.md`)",
        (30.0, 50.4), 25.0),
    'det':
    Task(
        'det', 'Mask R-CNN, shapes detection demo',
        'configs/det/demo/hivit-demo_skimage-pre_mask-rcnn_1xb4-6e_'
        'shapes-coco-128px.py', 'data/shapes_coco',
        'tools/dataset_converters/make_shapes_coco.py',
        ('coco/bbox_mAP', 'coco/segm_mAP'), 'coco/bbox_mAP', 100., 'epoch', 6,
        1, 1.0, 52.3,
        "after the demo's 6 epochs (`docs/get_started/demos.md`)",
        (47.3, 57.3), 10.0),
}

# The registered order: groups of (demo, variants); within a group, every
# seed runs all of its variants before the next seed starts (seed-major), so
# that each seed completes a paired set early.
ORDER = (
    ('seg', tuple(VARIANTS)),
    ('det', (REFERENCE, 'recommended')),
    ('det', ('windows', 'gathering', 'reduction')),
)


def run_order(tasks=tuple(TASKS), seeds=SEEDS,
              variants=tuple(VARIANTS)) -> List[Tuple[str, str, int]]:
    """``(task, variant, seed)`` of every training run of ``tasks``,
    ``seeds`` and ``variants``, in the registered order (:data:`ORDER`)."""
    return [(task, variant, seed) for task, group in ORDER if task in tasks
            for seed in seeds for variant in group if variant in variants]


# The finished studies' dense transfers, whose paired differences between
# initialisations over 3 seeds give the standard deviations the power
# analysis assumes: (record, stage, metric, scale to points).
SD_SOURCES = {
    'seg': (('itpn_study_results.json', 'seg', 'mIoU', 1.),
            ('itpn_study_prereg_results.json', 'seg', 'mIoU', 1.)),
    'det': (('itpn_study_results.json', 'det', 'coco/bbox_mAP', 100.), ),
}


def recorded_paired_sds(task: str,
                        records: str = RECORDS) -> List[Tuple[str, float]]:
    """Sample standard deviation of the paired differences of every pair of
    initialisations of ``task`` in the finished studies' records (final
    evaluation, over the seeds both hold), as ``('record: a - b', sd)``."""
    sds = []
    for name, stage, metric, scale in SD_SOURCES[task]:
        with open(osp.join(records, name)) as f:
            record = json.load(f)
        final = {}
        for key, result in record.items():
            if key.startswith(f'{stage}/'):
                final.setdefault(result['name'], {})[result['seed']] = \
                    scale * result['curves'][metric][-1][1]
        for first, second in itertools.combinations(sorted(final), 2):
            seeds = sorted(set(final[first]) & set(final[second]))
            diffs = [final[first][s] - final[second][s] for s in seeds]
            sds.append(
                (f'{name}: {first} - {second}', float(np.std(diffs, ddof=1))))
    return sds


def design_sd(task: str, records: str = RECORDS) -> float:
    """The paired standard deviation the power analysis assumes: the pooled
    one (root mean variance) of :func:`recorded_paired_sds`."""
    return float(
        np.sqrt(
            np.mean([sd**2 for _, sd in recorded_paired_sds(task, records)])))


def power_analysis(records: str = RECORDS) -> List[str]:
    """The registration's power table, one row per demo."""
    lines = [
        '| demo | margin | recorded paired sds (pooled) | half-width, 3 seeds '
        '| P(non-inferior), 3 seeds, true difference 0 | largest sd that 3 '
        'seeds resolve | seeds for 80 % (difference 0 / -0.25) |',
        '|---|---|---|---|---|---|---|',
    ]
    for task in TASKS.values():
        sds = recorded_paired_sds(task.name, records)
        sd = design_sd(task.name, records)
        n = len(SEEDS)
        # With the observed mean at 0, the interval ends above -margin when
        # its half-width is below the margin.
        resolvable = task.margin / half_width(1., n)
        lines.append(
            f'| {task.name} ({task.metric_name}) | {task.margin:g} | '
            f'{", ".join(f"{s:.3f}" for _, s in sds)} ({sd:.2f}) | '
            f'{half_width(sd, n):.2f} | '
            f'{non_inferiority_power(0., sd, n, task.margin):.2f} | '
            f'{resolvable:.2f} | '
            f'{seeds_for_non_inferiority(sd, task.margin)} / '
            f'{seeds_for_non_inferiority(sd, task.margin, effect=-0.25)} |')
    return lines


def gates_table() -> List[str]:
    """The registration's gates."""
    rows = [
        '| gate | what | if it fails |',
        '|---|---|---|',
        '| G0 inputs | a run and its global-attention partner of the same '
        'seed start from the same pretraining checkpoint and data (SHA-256 '
        'digests in the record), and the run\'s log shows its backbone and '
        'pyramid loaded from that checkpoint with the missing keys of its '
        'partner and no other but its variant\'s `gathering_tokens` (global '
        'attention: none but the main blocks\' relative position bias '
        'tables, which pretraining does not have) | the pair is left out of '
        'the comparison (fewer than 3 pairs: no verdict) |',
    ]
    for task in TASKS.values():
        low, high = task.global_range
        rows.append(
            f'| G1 regime ({task.name}) | global attention\'s final '
            f'{task.metric_name}, mean over seeds, in [{low:g}, {high:g}] '
            f'(the shipped demo record: {task.shipped:g} '
            f'{task.shipped_source}) '
            f'| no verdict for any variant of the {task.name} demo |')
    rows += [
        '| G2 curves | every run\'s final primary metric above the floor '
        f'({", ".join(f"{t.name} {t.floor:g}" for t in TASKS.values())}) '
        f'and at most {DIVERGENCE_DROP:g} points below the best value of its '
        'own validation curve | no verdict for that variant (a global '
        'attention run: for every variant of its demo) |',
        '| G3 switch | every global-attention checkpoint tested with '
        'migration at keep ratio 1 gives exactly its metrics without it | '
        'no verdict on training-free migration |',
    ]
    return rows


def order_table() -> List[str]:
    """The registered order of the training runs."""
    lines = [
        '| # | demo | seeds, one after the other | variants, in this order '
        'per seed |', '|---|---|---|---|'
    ]
    for index, (task, group) in enumerate(ORDER, 1):
        lines.append(f'| {index} | {task} | '
                     f'{", ".join(map(str, SEEDS))} | {", ".join(group)} |')
    return lines


def verdict(diff: Optional[dict], margin: float, seeds: int,
            failed: List[str]) -> str:
    """The registered verdict of a variant against global attention.

    Args:
        diff (dict, optional): The paired difference variant - global
            (:func:`mmitpn.utils.statistics.paired_difference`).
        margin (float): Non-inferiority margin.
        seeds (int): Registered number of pairs.
        failed (list[str]): Gates failed by the comparison.

    Returns:
        str: ``non-inferior``, ``inferior``, ``no verdict (...)`` or ``in
        progress (...)``.
    """
    pairs = 0 if diff is None else len(diff['seeds'])
    if failed:
        return f'no verdict ({", ".join(failed)} failed)'
    if pairs < seeds:
        return f'in progress ({pairs} of {seeds} pairs)'
    if diff['low'] > -margin:
        return f'non-inferior (lower bound above -{margin:g})'
    if diff['high'] < -margin:
        return f'inferior (upper bound below -{margin:g})'
    return f'no verdict (the interval reaches below -{margin:g})'
