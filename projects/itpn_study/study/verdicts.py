# Copyright (c) mmitpn contributors. All rights reserved.
"""The pre-registered plan's gates, deciding statistics and verdicts, what
its design could detect, and where its runs departed from the registration,
all computed from the record."""
from typing import Dict, List, Optional

import numpy as np

from mmitpn.utils.statistics import paired_difference
from .cells import difference_cell
from .plan import (DENSE_PILOT_SEED, HEADLINE, PREREG_DENSE_INITS,
                   PREREG_SEEDS, REGISTERED_PENALTIES, dense_lengths)
from .power import smallest_detectable_effect


def late_gain(points: list, iters: int) -> float:
    """What the last 20 % of a run of ``iters`` iterations added: its final
    value minus the last one evaluated at or before 80 %."""
    at_80 = [value for step, value in points if step <= 0.8 * iters]
    return points[-1][1] - at_80[-1]


def dense_length(record: Dict[str, dict], args) -> Optional[int]:
    """The pre-registered dense transfer's length: the first pilot length
    whose pilot run's last 20 % added < 1 mIoU; ``None`` while undecided
    or when none did."""
    for iters in dense_lengths(args):
        pilot = record.get(f'pilot/d@{iters}/{DENSE_PILOT_SEED}')
        if pilot is None:
            return None
        if late_gain(pilot['curves']['mIoU'], iters) < 1:
            return iters
    return None


def pilot_summary(record: Dict[str, dict], args) -> str:
    pilots = [(iters, record[f'pilot/d@{iters}/{DENSE_PILOT_SEED}'])
              for iters in dense_lengths(args)
              if f'pilot/d@{iters}/{DENSE_PILOT_SEED}' in record]
    return '; '.join(
        f'pilot of {iters}: final {p["curves"]["mIoU"][-1][1]:.2f}, last '
        f'20 % adds {late_gain(p["curves"]["mIoU"], iters):+.2f}'
        for iters, p in pilots) or 'no pilot run yet'


def dense_finals(record: Dict[str, dict], seeds) -> Dict[str, Dict[int, list]]:
    """The mIoU curve of each dense-transfer run, by initialisation and
    seed."""
    return {
        name: {
            seed: record[f'seg/{name}/{seed}']['curves']['mIoU']
            for seed in seeds if f'seg/{name}/{seed}' in record
        }
        for name in PREREG_DENSE_INITS
    }


def dense_gate(record: Dict[str, dict], seeds: List[int], args) -> tuple:
    """Gate G3 of the pre-registered plan, and the final mIoU of each
    dense-transfer initialisation by seed: fresh pyramid (b) minus no
    pretraining (d) >= 2 mIoU (mean paired difference), and the last 20 %
    of iterations adds < 1 mIoU (final minus the value at 80 %, mean over
    all runs). The runs' length is fixed by the pilots (FAILED when none
    converged)."""
    curves = dense_finals(record, seeds)
    final = {
        name: {
            seed: points[-1][1]
            for seed, points in runs.items()
        }
        for name, runs in curves.items()
    }
    iters = dense_length(record, args)
    pilots = pilot_summary(record, args)
    if iters is None:
        lengths = dense_lengths(args)
        if f'pilot/d@{lengths[-1]}/{DENSE_PILOT_SEED}' in record:
            return f'FAILED: no pilot length converged ({pilots})', final
        return f'not reached (length undecided: {pilots})', final
    done = sum(len(runs) for runs in curves.values())
    expected = len(PREREG_DENSE_INITS) * len(seeds)
    if done < expected:
        return (f'not reached ({done} of {expected} dense runs of {iters} '
                f'iterations done; {pilots})'), final
    fresh = paired_difference(final['b'], final['d'])
    late = float(
        np.mean([
            late_gain(points, iters) for runs in curves.values()
            for points in runs.values()
        ]))
    ok = fresh['mean'] >= 2 and late < 1
    return ('met' if ok else 'FAILED') + (
        f': b - d {difference_cell(fresh)}; last 20 % adds {late:+.2f} '
        f'mIoU (mean of all runs; {iters} iterations, {pilots})'), final


def decide(diff: dict, gates_met: bool, first: str, second: str) -> str:
    """The pre-registered verdict rule for a paired difference."""
    if not gates_met:
        return 'no verdict (gate not met)'
    if diff['low'] > 0:
        return f'{first} higher'
    if diff['high'] < 0:
        return f'{second} higher'
    return 'no difference shown (interval includes 0)'


def headline_top1(record: Dict[str, dict],
                  name: str,
                  key: str = HEADLINE) -> Dict[int, float]:
    """Top-1 of the probe ``key`` of run ``name``, by pretraining seed."""
    values = {}
    for seed in PREREG_SEEDS:
        probe = record.get(f'probe/{name}/{seed}', {}).get('probes', {})
        if 'top1' in probe.get(key, {}):
            values[seed] = probe[key]['top1']
    return values


def _complete(*groups) -> bool:
    return all(len(g) == len(PREREG_SEEDS) for g in groups)


def probe_gate(record: Dict[str, dict], expected: int) -> str:
    """Gate G1 of the pre-registered plans: every probe converged and chose
    a penalty inside its (extended) grid, and all ``expected`` probe runs
    are recorded."""
    probes = [
        p for key, r in record.items() if key.startswith('probe/')
        for p in r['probes'].values()
    ]
    refused = [p for p in probes if 'refused' in p]
    unconverged = [
        p for p in probes if p.get('method') == 'logistic' and 'top1' in p
        and p['grad_norm'] > p['tolerance']
    ]
    done = sum(key.startswith('probe/') for key in record)
    if refused or unconverged:
        return (f'FAILED: {len(refused)} probe(s) refused, '
                f'{len(unconverged)} above tolerance')
    if done < expected:
        return f'not reached ({done} of {expected} probe runs done)'
    return 'met'


def prereg_verdicts(record: Dict[str, dict], args) -> List[str]:
    """The gates, deciding statistics and verdicts of
    docs/itpn_study_preregistration.md, then what each statistic could
    detect (:func:`detectable_effects`), computed from the record."""
    last, middle = args.pretrain_epochs, args.continue_from
    gate1 = probe_gate(record, len(PREREG_SEEDS) * (1 + 2 * 3 + 2))
    mae, mae_mid, none = (
        headline_top1(record, name)
        for name in (f'mae@{last}', f'mae@{middle}', 'none'))
    if not _complete(mae, mae_mid, none):
        gate2 = 'not reached (needs mae and none probes of all 3 seeds)'
    else:
        gain, rise = paired_difference(mae,
                                       none), paired_difference(mae, mae_mid)
        ok = gain['mean'] >= 5 and rise['low'] > 0
        gate2 = ('met' if ok else 'FAILED') + (
            f': MAE@{last} - none {difference_cell(gain)}; MAE@{last} - '
            f'MAE@{middle} {difference_cell(rise)}')
    gate3, dense_final = dense_gate(record, list(PREREG_SEEDS), args)
    lines = [
        '## Gates and deciding statistics (pre-registered)', '', 'As fixed in '
        '[itpn_study_preregistration.md](itpn_study_preregistration.md) '
        'before any of these runs: headline metric the logistic probe of '
        'mean-pooled backbone features; differences paired by seed, mean '
        '[t-based 95 % interval] (per seed).', '', '| gate | outcome |',
        '|---|---|',
        f'| G1: every probe converged, penalty inside the grid | {gate1} |',
        f'| G2: MAE@{last} >= 5 points above random init, and rising from '
        f'epoch {middle} to {last} (interval above 0) | {gate2} |',
        f'| G3: dense transfer long enough (fresh pyramid - none >= 2 mIoU, '
        f'last 20 % adds < 1 mIoU) | {gate3} |', '',
        '| claim | statistic | gates | verdict |', '|---|---|---|---|'
    ]
    gates_ok = gate1 == 'met' and gate2.startswith('met')
    for claim, first, second, gates in (('iTPN probes better than MAE',
                                         f'itpn-pixel@{last}', f'mae@{last}',
                                         'G1, G2'),
                                        ('MFM helps over pixel-only',
                                         'cont-mfm', 'cont-pixel', 'G1, G2')):
        a, b = headline_top1(record, first), headline_top1(record, second)
        if not _complete(a, b):
            statistic, verdict = '-', 'no verdict (not reached)'
        else:
            diff = paired_difference(a, b)
            statistic = f'{first} - {second}: {difference_cell(diff)}'
            verdict = decide(diff, gates_ok, first, second)
        lines.append(f'| {claim} | {statistic} | {gates} | {verdict} |')
    a, b = dense_final['a'], dense_final['b']
    if not _complete(a, b):
        statistic, verdict = '-', 'no verdict (not reached)'
    else:
        diff = paired_difference(a, b)
        statistic = f'a - b, final mIoU: {difference_cell(diff)}'
        gates_met = gate1 == 'met' and gate3.startswith('met')
        verdict = decide(diff, gates_met, 'a', 'b')
    lines.append('| pretrained pyramid better than a fresh one | '
                 f'{statistic} | G1, G3 | {verdict} |')
    return lines + [''] + detectable_effects(record, args)


def detectable_effects(record: Dict[str, dict], args) -> List[str]:
    """For each deciding statistic (and the gates' differences), the paired
    standard deviation of the record, the interval's half-width, and the
    smallest true difference the verdict rule's test finds with 80 %
    power (:func:`smallest_detectable_effect`)."""
    last, middle = args.pretrain_epochs, args.continue_from
    finals = {
        name: {
            seed: points[-1][1]
            for seed, points in runs.items()
        }
        for name, runs in dense_finals(record, PREREG_SEEDS).items()
    }
    probe_points, miou = 'probe top-1 points', 'final mIoU'
    statistics = (
        (f'C1: itpn-pixel@{last} - mae@{last}', probe_points,
         headline_top1(record, f'itpn-pixel@{last}'),
         headline_top1(record, f'mae@{last}')),
        ('C2: cont-mfm - cont-pixel', probe_points,
         headline_top1(record,
                       'cont-mfm'), headline_top1(record, 'cont-pixel')),
        ('C3: a - b', miou, finals['a'], finals['b']),
        (f'G2: MAE@{last} - MAE@{middle}', probe_points,
         headline_top1(record,
                       f'mae@{last}'), headline_top1(record, f'mae@{middle}')),
        ('G3: b - d', miou, finals['b'], finals['d']),
    )
    rows = []
    for name, unit, first, second in statistics:
        diff = paired_difference(first, second)
        if diff is None:
            continue
        n, sd = len(diff['seeds']), float(np.std(diff['diffs'], ddof=1))
        rows.append(f'| {name} | {unit} | {n} | {sd:.2f} | '
                    f'{(diff["high"] - diff["low"]) / 2:.2f} | '
                    f'{smallest_detectable_effect(sd, n):.2f} |')
    if not rows:
        return []
    return [
        'What this design could detect: for each statistic, the standard '
        'deviation of its paired differences in this record, the half-width '
        'of its 95 % interval, and the smallest true difference that the '
        'verdict rule\'s test (two-sided, 5 %, t with n - 1 degrees of '
        'freedom) finds with 80 % power. A smaller true difference would be '
        'missed more than one time in five, so an interval that includes 0 '
        'does not show that the difference is 0.', '',
        '| statistic | unit | seeds | paired sd | 95 % half-width | smallest '
        'difference detected with 80 % power |', '|---|---|---|---|---|---|'
    ] + rows + ['']


def shortened_grids(record: Dict[str, dict],
                    key: Optional[str] = None) -> List[tuple]:
    """Probes whose penalty descent stopped above the smallest registered
    penalty: ``(run key, probe key, smallest penalty tried, best penalty,
    best minus the validation top-1 at the smallest penalty tried)``; only
    the probes named ``key`` when given."""
    shortened = []
    for run, result in sorted(record.items()):
        if not run.startswith('probe/'):
            continue
        for name, probe in sorted(result['probes'].items()):
            if 'top1' not in probe or (key is not None and name != key):
                continue
            scores = {float(p): v for p, v in probe['val_top1'].items()}
            smallest = min(scores)
            if smallest > REGISTERED_PENALTIES[0] * (1 + 1e-9):
                shortened.append((run, name, smallest, probe['weight_decay'],
                                  max(scores.values()) - scores[smallest]))
    return shortened


def registration_deviations(record: Dict[str, dict]) -> List[str]:
    """Where the runs departed from the registration, with the effect the
    record shows."""
    probes = sum(
        len(r['probes']) for k, r in record.items() if k.startswith('probe/'))
    headline = sum(
        HEADLINE in r.get('probes', {}) for k, r in record.items()
        if k.startswith('probe/'))
    short = shortened_grids(record, HEADLINE)
    others = len(shortened_grids(record)) - len(short)
    lowest = f'{REGISTERED_PENALTIES[0]:g}'
    lines = [
        '## Deviations from the registration', '',
        '- **An unregistered probe rule.** The penalty descent of every probe '
        'stops once two penalties in a row score below the best so far '
        '(`mmitpn.evaluation.choose_penalty`). The rule was committed three '
        'minutes after the pre-registration (2026-12-02, 03:15:53 against '
        '03:12:35 UTC) and is not described in it: the registration has every '
        f'probe try the penalties {lowest} ... {REGISTERED_PENALTIES[1]:g} '
        'per sample (extended on an edge). '
        f'It shortened the grid of {len(short)} of the {headline} headline '
        f'probes and of {others} of the other {probes - headline} probes.'
    ]
    if short:
        names = ', '.join(f'{run.split("/", 1)[1].replace("/", " seed ")}'
                          for run, *_ in short)
        gaps = [gap for *_, gap in short]
        lines[-1] += (
            f' The headline ones ({names}) stopped at '
            f'{", ".join(sorted({f"{s[2]:g}" for s in short}))}, chose '
            f'{", ".join(sorted({f"{s[3]:g}" for s in short}))}, and scored '
            f'{min(gaps):.2f}-{max(gaps):.2f} points below their best at the '
            'smallest penalty tried: only a second maximum at the penalties '
            'left out could have changed their choice, so the effect is '
            'probably nil, but the record cannot show it (those fits were '
            'never made). G1 (a penalty inside the grid tried) is not '
            'affected.')
    lines += [
        '- **No per-run timestamps.** The record keeps each run\'s wall time, '
        'not when it started or ended, so that the registration and each '
        'amendment came before the runs they govern can be checked only '
        'against the order of the commits, not from the record.', ''
    ]
    return lines
