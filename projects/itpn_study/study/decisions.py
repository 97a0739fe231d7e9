# Copyright (c) mmitpn contributors. All rights reserved.
"""The plan ``decide``'s gates, deciding statistics and verdicts by its
registered rule (equivalence margins, decisions at a stated training
length), its dense pilot's recipe choice and C3's sequential rule, all
computed from the record."""
import math
from typing import Dict, List, Optional, Tuple

from mmitpn.utils.statistics import paired_difference
from .cells import difference_cell
from .design import (C2_SEEDS, DENSE, DENSE_INITS, DENSE_QUICK,
                     EXTENSION_SEEDS, PILOT_DOWNSTREAM_SEEDS, PILOT_EARLY_LEAD,
                     PILOT_FINAL_LEAD, PILOT_UNIT, RECIPES, REGIME_GAIN, SEEDS,
                     Claim, claims, downstream_seeds)
from .plan import HEADLINE
from .verdicts import probe_gate

Record = Dict[str, dict]


def late_mean(points: list, last: int) -> float:
    """The mean of the last ``last`` values of ``[step, value]`` points."""
    if len(points) < last:
        raise ValueError(f'{len(points)} evaluation(s), the metric averages '
                         f'the last {last}.')
    return sum(value for _, value in points[-last:]) / last


def dense_design(args) -> dict:
    return DENSE_QUICK if args.quick else DENSE


def pretraining_length(args) -> str:
    """The training length every probe verdict is stated at."""
    iters = math.ceil(args.pretrain_images / 128) * args.pretrain_epochs
    return (f'{args.pretrain_epochs} epochs of {args.pretrain_images:,} '
            f'images ({iters:,} iterations of batch 128)')


def dense_length(args) -> str:
    """The dense transfer's length and data, for its verdicts."""
    dense = dense_design(args)
    return (f'{dense["iters"]:,} iterations of batch 8 on {dense["train"]} '
            'training canvases')


def headline(record: Record, name: str, seeds) -> Dict[int, float]:
    """Headline probe top-1 of run ``name`` by pretraining seed."""
    values = {}
    for seed in seeds:
        probe = record.get(f'probe/{name}/{seed}', {}).get('probes', {})
        if 'top1' in probe.get(HEADLINE, {}):
            values[seed] = probe[HEADLINE]['top1']
    return values


def dense_metric(record: Record, init: str, seed: int) -> Optional[float]:
    """The dense metric of initialisation ``init`` of pretraining seed
    ``seed``: the mean over its downstream seeds of each run's mean of its
    last evaluations; None until all its runs are recorded."""
    runs = [
        record.get(f'seg/{init}.ds{downstream}/{seed}')
        for downstream in downstream_seeds(seed)
    ]
    if any(run is None for run in runs):
        return None
    return sum(run['metric'] for run in runs) / len(runs)


def dense_by_seed(record: Record, init: str, seeds) -> Dict[int, float]:
    values = {seed: dense_metric(record, init, seed) for seed in seeds}
    return {seed: v for seed, v in values.items() if v is not None}


def pilot_rung(record: Record, recipe: str) -> Optional[dict]:
    """The pilot of ``recipe``: (b) minus (d), mean over the pilot's
    downstream seeds, at the first evaluation (``early``) and in the
    metric (``final``), and whether both leads pass the rule; None until
    its runs are recorded."""
    runs = {
        (init, downstream):
        record.get(f'pilot/{init}.{recipe}.ds{downstream}/{PILOT_UNIT}')
        for init in ('b', 'd')
        for downstream in PILOT_DOWNSTREAM_SEEDS
    }
    if any(run is None for run in runs.values()):
        return None
    count = len(PILOT_DOWNSTREAM_SEEDS)

    def lead(value):
        return sum(
            value(runs['b', ds]) - value(runs['d', ds])
            for ds in PILOT_DOWNSTREAM_SEEDS) / count

    early = lead(lambda run: run['curves']['mIoU'][0][1])
    final = lead(lambda run: run['metric'])
    return dict(
        early=early,
        final=final,
        passed=early >= PILOT_EARLY_LEAD and final >= PILOT_FINAL_LEAD)


def dense_recipe(record: Record) -> Tuple[Optional[str], str]:
    """The recipe the pilot chose (the first of ``RECIPES`` that passed),
    and gate G3's outcome."""
    tried = []
    for recipe in RECIPES:
        rung = pilot_rung(record, recipe)
        if rung is None:
            done = '; '.join(tried) or 'no pilot run yet'
            return None, f'not reached (pilot of {recipe} not complete; ' \
                f'{done})'
        tried.append(f'{recipe}: b - d {rung["early"]:+.2f} at the first '
                     f'evaluation, {rung["final"]:+.2f} in the metric')
        if rung['passed']:
            return recipe, f'met, recipe {recipe} ({"; ".join(tried)})'
    return None, f'FAILED: no recipe passed ({"; ".join(tried)})'


def claim_values(record: Record, claim: Claim, last: int) -> tuple:
    """``(first, second, seeds)``: the claim's values by pretraining seed
    and the seeds it is computed over: its registered seeds and, for a
    claim with a target, the extension seeds whose runs for it are
    recorded (in order)."""

    def values(seeds):
        if claim.key == 'C3':
            return (dense_by_seed(record, claim.first, seeds),
                    dense_by_seed(record, claim.second, seeds))
        return (headline(record, claim.first,
                         seeds), headline(record, claim.second, seeds))

    seeds = list(claim.seeds)
    if claim.target is not None:
        for seed in EXTENSION_SEEDS:
            first, second = values([seed])
            if not (first and second):
                break
            seeds.append(seed)
    return values(seeds) + (seeds, )


def gates(record: Record, args) -> Dict[str, str]:
    """The outcome of each gate."""
    return dict(
        G1=probe_gate(record, 3 * len(SEEDS) + 2 * len(C2_SEEDS)),
        G2=regime_gate(record, args),
        G3=dense_recipe(record)[1])


# The gates each claim needs.
CLAIM_GATES = {'C1': ('G1', 'G2'), 'C2': ('G1', 'G2'), 'C3': ('G3', )}


def extension_needed(record: Record, seed: int, args) -> bool:
    """The sequential rule: extension unit ``seed`` is run when, over
    ``SEEDS`` and the extension units before it, every run of C1 and C3 is
    recorded, and a claim whose gates are met has a half-width above its
    target. The rule reads the spread of the differences, never their
    mean."""
    earlier = list(SEEDS) + list(EXTENSION_SEEDS[:EXTENSION_SEEDS.index(seed)])
    outcomes = gates(record, args)
    wide = []
    for claim in claims(args.pretrain_epochs):
        if claim.target is None:
            continue
        first, second, seeds = claim_values(record, claim,
                                            args.pretrain_epochs)
        if seeds[:len(earlier)] != earlier or len(first) < len(earlier) or \
                len(second) < len(earlier):
            return False
        if not all(outcomes[g].startswith('met')
                   for g in CLAIM_GATES[claim.key]):
            continue
        diff = paired_difference({s: first[s]
                                  for s in earlier},
                                 {s: second[s]
                                  for s in earlier})
        wide.append((diff['high'] - diff['low']) / 2 > claim.target)
    return any(wide)


def verdict(diff: dict, claim: Claim, gates_met: bool, length: str) -> str:
    """The registered verdict rule: no verdict when a gate is not met; an
    interval excluding 0 decides the direction (and, inside the margin,
    that the difference is smaller than it); an interval inside the margin
    decides that no difference larger than it exists; else no verdict."""
    if not gates_met:
        return 'no verdict (gate not met)'
    m = f'{claim.margin:g}'
    inside = -claim.margin < diff['low'] and diff['high'] < claim.margin
    within = f', by less than {m}' if inside else ''
    if diff['low'] > 0:
        return f'{claim.first} higher{within}, at {length}'
    if diff['high'] < 0:
        return f'{claim.second} higher{within}, at {length}'
    if inside:
        return f'no difference larger than {m} at {length}'
    return f'no verdict (the interval includes 0 and reaches beyond ±{m})'


def regime_gate(record: Record, args) -> str:
    """G2: MAE's probe at least ``REGIME_GAIN`` points above the random
    initialisation's, mean paired difference over ``SEEDS``."""
    last = args.pretrain_epochs
    mae, none = (
        headline(record, name, SEEDS) for name in (f'mae@{last}', 'none'))
    if len(mae) < len(SEEDS) or len(none) < len(SEEDS):
        return (f'not reached ({min(len(mae), len(none))} of {len(SEEDS)} '
                'units)')
    gain = paired_difference(mae, none)
    outcome = 'met' if gain['mean'] >= REGIME_GAIN else 'FAILED'
    return f'{outcome}: MAE@{last} - none {difference_cell(gain)}'


def decide_verdicts(record: Record, args) -> List[str]:
    """The gates, deciding statistics and verdicts of the registration."""
    outcomes = gates(record, args)
    last = args.pretrain_epochs
    lines = [
        '## Gates and deciding statistics (pre-registered)', '',
        'As fixed in [itpn_study_decide_preregistration.md]'
        '(itpn_study_decide_preregistration.md) before any of these runs. '
        'Differences are paired by pretraining seed: mean [t-based 95 % '
        'interval] (per seed).', '', '| gate | outcome |', '|---|---|',
        '| G1: every probe converged, penalty inside the grid | '
        f'{outcomes["G1"]} |',
        f'| G2: MAE@{last} at least {REGIME_GAIN:g} points above random init '
        f'| {outcomes["G2"]} |',
        '| G3: the dense pilot found a recipe under which a pretrained '
        f'backbone (b) leads no pretraining (d) by >= {PILOT_EARLY_LEAD:g} '
        f'mIoU at the first evaluation and >= {PILOT_FINAL_LEAD:g} in the '
        f'metric | {outcomes["G3"]} |', '',
        '| claim | statistic | seeds | half-width (target) | margin | gates '
        '| verdict |', '|---|---|---|---|---|---|---|'
    ]
    for claim in claims(last):
        first, second, seeds = claim_values(record, claim, last)
        length = pretraining_length(args)
        if claim.key == 'C3':
            length = f'{dense_length(args)}, from pretraining of {length}'
        needed = CLAIM_GATES[claim.key]
        diff = None
        if len(first) == len(seeds) and len(second) == len(seeds):
            diff = paired_difference(first, second)
        target = '' if claim.target is None else f' ({claim.target:g})'
        if diff is None:
            statistic, width = '-', '-'
            outcome = 'no verdict (not reached)'
            count = min(len(first), len(second))
        else:
            statistic = (f'{claim.first} - {claim.second}: '
                         f'{difference_cell(diff)}')
            width = f'{(diff["high"] - diff["low"]) / 2:.2f}'
            met = all(outcomes[g].startswith('met') for g in needed)
            outcome = verdict(diff, claim, met, length)
            count = len(diff['seeds'])
        lines.append(f'| {claim.key}: {claim.text} | {statistic} | '
                     f'{count} of {len(seeds)} | {width}{target} | '
                     f'±{claim.margin:g} {claim.unit} | {", ".join(needed)} '
                     f'| {outcome} |')
    return lines + ['']


def planned_runs(record: Record, args) -> int:
    """The runs the registration calls for given what the record shows so
    far: per unit its pretrainings, probes, arms and dense runs; the
    pilot's runs up to its decision (no dense runs when it failed); the
    extension units the sequential rule has called."""
    dense = len(DENSE_INITS) * len(downstream_seeds(0))
    # two pretrainings, three probes (none, mae, itpn-pixel), dense runs;
    # two arms and their probes
    planned = len(SEEDS) * (2 + 3 + dense) + len(C2_SEEDS) * 4
    pilot_runs = 2 * len(PILOT_DOWNSTREAM_SEEDS)
    for recipe in RECIPES:
        planned += pilot_runs
        rung = pilot_rung(record, recipe)
        if rung is None or rung['passed']:
            break
    if dense_recipe(record)[1].startswith('FAILED'):
        planned -= len(SEEDS) * dense
    # two pretrainings, two probes (mae, itpn-pixel), dense runs
    extension = 2 + 2 + dense
    for seed in EXTENSION_SEEDS:
        started = any(
            key.endswith(f'/{seed}') and not key.startswith(('init/',
                                                             'regenerate/'))
            for key in record)
        if started or extension_needed(record, seed, args):
            planned += extension
    return planned


def recorded_runs(record: Record) -> int:
    """Runs of the plan in the record (not its saved initialisations or
    the regenerations of lost checkpoints)."""
    return sum(
        key.split('/')[0] in ('pretrain', 'probe', 'continue', 'pilot', 'seg')
        for key in record)
