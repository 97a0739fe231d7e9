# Copyright (c) mmitpn contributors. All rights reserved.
"""The registered design of the plan ``decide``
(docs/itpn_study_decide_preregistration.md): its seeds, claims, equivalence
margins, gates, dense-transfer regime and recipe ladder, and the power
analysis that chose the seeds, computed from the standard deviations the
pre-registered study recorded.

Nothing here may change once the plan's first run has started; a change is
a new plan with its own commit.
"""
import json
import os.path as osp
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np

from .plan import DECIDE, DECIDE_SEEDS, HEADLINE, RECORDS
from .power import (equivalence_probability, half_width, seeds_for_half_width,
                    sequential_coverage, smallest_detectable_effect)

# Pretraining seeds: each is one unit (its initialisation, pretraining,
# probes, continuation arms and dense runs).
SEEDS = DECIDE_SEEDS
# The units whose MFM continuation arms are run (C2).
C2_SEEDS = (0, 1, 2, 3)
# Units added one at a time after SEEDS, for C1 and C3, while the
# half-width of either exceeds its target (the sequential rule).
EXTENSION_SEEDS = (6, 7)
# The unit whose itpn-pixel checkpoint the dense pilot fine-tunes.
PILOT_UNIT = 0
PILOT_DOWNSTREAM_SEEDS = (98, 99)
# Garment converter seeds: the study's canvases and the pilot's own.
CANVAS_SEED = 0
PILOT_CANVAS_SEED = 99


def downstream_seeds(seed: int) -> Tuple[int, int]:
    """The two downstream seeds of pretraining seed ``seed``: head
    initialisation, data order and augmentation of its dense runs."""
    return 200 + 2 * seed, 201 + 2 * seed


# The low-label dense transfer: training canvases, validation canvases,
# iterations of batch 8, evaluations (evenly spaced, the first at 10 %), and
# how many of the last evaluations the metric averages.
DENSE = dict(train=300, val=500, iters=600, points=10, last=3)
DENSE_QUICK = dict(train=24, val=16, iters=10, points=5, last=3)
# The dense runs of every unit: (a) and (b) (C3); the pilot also trains (d).
DENSE_INITS = ('a', 'b')
# The fine-tuning recipes the dense pilot tries, in this order, until one
# passes its rule: the shipped one (AdamW 1e-3, layer decay 0.9), the same
# with the backbone's rates times 0.1, and a frozen backbone.
RECIPES = ('shipped', 'backbone-lr-0.1', 'frozen-backbone')
# The pilot's rule: (b) minus (d), mean over the pilot's downstream seeds,
# at the first evaluation (10 % of training) and in the metric.
PILOT_EARLY_LEAD = 2.0
PILOT_FINAL_LEAD = 1.0
# G2: MAE's probe minus the random initialisation's, mean paired difference.
REGIME_GAIN = 5.0


@dataclass(frozen=True)
class Claim:
    """A registered claim and the design that decides it.

    Args:
        key (str): ``C1``, ``C2``, ``C3``.
        text (str): What the claim says.
        first (str): The run compared (its statistic is first - second).
        second (str): The run it is compared with.
        unit (str): Unit of the statistic.
        margin (float): Equivalence margin: an interval inside
            ``(-margin, margin)`` decides "no difference larger than it".
        seeds (tuple): Pretraining seeds of the statistic.
        recorded (tuple): The pre-registered study's statistic whose paired
            standard deviation the power analysis starts from.
        design_sd (str): Where the standard deviation the seeds were
            chosen for comes from: ``'recorded'``, ``'interpolated'`` (the
            recorded ones at other training lengths, interpolated to this
            plan's) or ``'assumed'`` (:data:`ASSUMED_SD`).
        target (float, optional): The half-width the seeds aim at; a claim
            with one may be extended by the sequential rule.
    """

    key: str
    text: str
    first: str
    second: str
    unit: str
    margin: float
    seeds: tuple
    recorded: tuple
    design_sd: str = 'recorded'
    target: Optional[float] = None


def claims(last: int = DECIDE['pretrain_epochs']) -> List[Claim]:
    """The three claims, the probed checkpoints named for ``last``
    pretraining epochs (the plan's, or ``--quick``'s)."""
    return [
        Claim(
            'C1', "iTPN's pixel pretraining gives better frozen features than "
            'MAE-style pretraining (headline probe)',
            f'itpn-pixel@{last}',
            f'mae@{last}',
            'probe top-1 points',
            margin=0.75,
            seeds=SEEDS,
            recorded=('itpn-pixel@7', 'mae@7'),
            design_sd='interpolated',
            target=0.4),
        Claim(
            'C2',
            'MFM adds to pixel reconstruction (continuation arms forked from '
            'one checkpoint)',
            'cont-mfm',
            'cont-pixel',
            'probe top-1 points',
            margin=0.3,
            seeds=C2_SEEDS,
            recorded=('cont-mfm', 'cont-pixel')),
        Claim(
            'C3', 'the pretrained pyramid transfers better than a fresh one '
            '(low-label dense transfer)',
            'a',
            'b',
            'mIoU (mean of the last 3 evaluations)',
            margin=1.5,
            seeds=SEEDS,
            recorded=('a', 'b'),
            design_sd='assumed',
            target=0.8),
    ]


# C3's new design (low-label, the mean of the last 3 evaluations, 2
# downstream seeds per pretraining seed, heads shared by (a) and (b)) has no
# recorded standard deviation: the one its seeds are chosen for.
ASSUMED_SD = 0.75
# Iterations of batch 128 per epoch of the pre-registered study (60,000
# images) and of this plan (40,000 images).
PREREG_EPOCH_ITERS = 469
EPOCH_ITERS = 313


def prereg_record() -> Dict[str, dict]:
    """The pre-registered study's record (the recorded standard
    deviations)."""
    with open(osp.join(RECORDS, 'itpn_study_prereg_results.json')) as f:
        return json.load(f)


def recorded_sd(record: Dict[str, dict],
                recorded: Tuple[str, str]) -> Tuple[float, int]:
    """Sample standard deviation of the paired differences of the
    pre-registered study's statistic ``first - second`` (headline probe or
    final mIoU), and its pairs."""
    first, second = recorded
    values = []
    for name in (first, second):
        by_seed = {}
        for key, result in record.items():
            stage, run, seed = key.split('/')
            if stage == 'probe' and run == name:
                by_seed[int(seed)] = result['probes'][HEADLINE]['top1']
            elif stage == 'seg' and run == name:
                by_seed[int(seed)] = result['curves']['mIoU'][-1][1]
        values.append(by_seed)
    seeds = sorted(set(values[0]) & set(values[1]))
    diffs = [values[0][s] - values[1][s] for s in seeds]
    return float(np.std(diffs, ddof=1)), len(seeds)


def recorded_lengths(record: Dict[str, dict],
                     claim: Claim) -> List[Tuple[int, float, int]]:
    """``(iterations, paired sd, pairs)`` of a probe claim's statistic at
    each probed epoch of the pre-registered study (1, 3 and 7 epochs of 469
    iterations)."""
    rows = []
    for epoch in (1, 3, 7):
        names = tuple(
            name.replace('@7', f'@{epoch}') for name in claim.recorded)
        sd, pairs = recorded_sd(record, names)
        rows.append((PREREG_EPOCH_ITERS * epoch, sd, pairs))
    return rows


def design_sd(record: Dict[str, dict],
              claim: Claim,
              epochs: int = DECIDE['pretrain_epochs']) -> float:
    """The paired standard deviation the claim's seeds are chosen for:
    recorded, interpolated linearly in iterations between the recorded
    lengths to this plan's ``epochs`` epochs of ``EPOCH_ITERS``
    iterations, or :data:`ASSUMED_SD`."""
    if claim.design_sd == 'assumed':
        return ASSUMED_SD
    if claim.design_sd == 'interpolated':
        rows = recorded_lengths(record, claim)
        return float(
            np.interp(EPOCH_ITERS * epochs, [r[0] for r in rows],
                      [r[1] for r in rows]))
    return recorded_sd(record, claim.recorded)[0]


def power_analysis(args, record: Optional[Dict[str, dict]] = None) -> list:
    """The power analysis of the registration: per claim the recorded
    paired standard deviation, the one the design uses, the pairs that
    reach the target half-width at either, the pairs chosen, and at those
    (and the design sd) the expected half-width, the smallest difference
    found with 80 % power and the probability that a true difference of
    0 gives an interval inside the margin."""
    record = prereg_record() if record is None else record
    lines = [
        '| claim | recorded paired sd (pairs) | design sd | target '
        'half-width | pairs to reach it at the recorded / the design sd | '
        'pairs chosen | half-width at the design sd | smallest difference '
        'found with 80 % power | margin | P(interval inside ± margin) if '
        'there is no difference |', '|---|---|---|---|---|---|---|---|---|---|'
    ]
    for claim in claims(args.pretrain_epochs):
        sd, pairs = recorded_sd(record, claim.recorded)
        design = design_sd(record, claim, args.pretrain_epochs)
        n = len(claim.seeds)
        if claim.target is None:
            target, needed, chosen = '-', '-', f'{n}'
        else:
            target = f'{claim.target:.2f}'
            needed = (f'{seeds_for_half_width(sd, claim.target)} / '
                      f'{seeds_for_half_width(design, claim.target)}')
            chosen = f'{n}, up to {n + len(EXTENSION_SEEDS)}'
        lines.append(
            f'| {claim.key} | {sd:.3f} ({pairs}) | {design:.3f} '
            f'({claim.design_sd}) | {target} | {needed} | {chosen} | '
            f'{half_width(design, n):.2f} | '
            f'{smallest_detectable_effect(design, n):.2f} | {claim.margin:g} '
            f'| {equivalence_probability(0., design, n, claim.margin):.2f} |')
    return lines


def c1_lengths(args, record: Optional[Dict[str, dict]] = None) -> list:
    """C1's recorded paired standard deviation at each recorded length, and
    the one interpolated to this plan's length."""
    record = prereg_record() if record is None else record
    claim = claims(args.pretrain_epochs)[0]
    lines = [
        '| iterations of batch 128 | paired sd of itpn-pixel - mae (pairs) |',
        '|---|---|'
    ]
    for iters, sd, pairs in recorded_lengths(record, claim):
        lines.append(f'| {iters:,} (pre-registered study, epoch '
                     f'{iters // PREREG_EPOCH_ITERS}) | {sd:.3f} ({pairs}) |')
    lines.append(f'| {EPOCH_ITERS * args.pretrain_epochs:,} (this plan) | '
                 f'{design_sd(record, claim, args.pretrain_epochs):.3f} '
                 '(interpolated) |')
    return lines


def sequential_rule(args, record: Optional[Dict[str, dict]] = None) -> list:
    """What the sequential rule does to C1 and C3 (simulated, normal paired
    differences, the rule driven by the claim itself): at the design sd and
    at the recorded one, the coverage of the final 95 % interval, how
    often its half-width ends at most the target, the mean number of
    pairs, and how often the final interval lies inside the margin, all
    if there is no difference."""
    record = prereg_record() if record is None else record
    lines = [
        '| claim | paired sd | coverage of the 95 % interval | half-width '
        'at most the target | interval inside ± margin | mean pairs |',
        '|---|---|---|---|---|---|'
    ]
    for claim in claims(args.pretrain_epochs):
        if claim.target is None:
            continue
        start = len(claim.seeds)
        cap = start + len(EXTENSION_SEEDS)
        values = (design_sd(record, claim, args.pretrain_epochs),
                  recorded_sd(record, claim.recorded)[0])
        for value, source in zip(values, (claim.design_sd, 'recorded')):
            rule = sequential_coverage(value, start, cap, claim.target,
                                       claim.margin)
            lines.append(f'| {claim.key} | {value:.3f} ({source}) | '
                         f'{100 * rule["coverage"]:.1f} % | '
                         f'{100 * rule["within_target"]:.1f} % | '
                         f'{100 * rule["inside_margin"]:.1f} % | '
                         f'{rule["mean_pairs"]:.2f} |')
    return lines
