# Copyright (c) mmitpn contributors. All rights reserved.
"""The report of the token-reduction fidelity study, rebuilt from its record
alone: the gates, the paired differences against global attention with
their intervals and the registered verdicts, the validation curves, the
training-free migration and every run's times and machine."""
import re
from typing import Dict, List, Optional, Sequence

import numpy as np

from mmitpn.utils.statistics import format_difference, paired_difference
from .power import seeds_for_non_inferiority
from .token_reduction_design import (DIVERGENCE_DROP, MIGRATION_KEEP_RATIOS,
                                     MIGRATION_START_BLOCK, REFERENCE, SEEDS,
                                     TASKS, VARIANT_TITLES, Task, run_order,
                                     verdict)

PREREGISTRATION = 'token_reduction_fidelity_preregistration.md'
# What global attention may lack in the pretraining checkpoint: relative
# position bias tables of the main blocks (the segmentation demo's backbone
# has them, pretraining does not; they start at zero).
FRESH_IN_GLOBAL = re.compile(
    r'blocks\.\d+\.attn\.relative_position_bias_table')


class TaskResults:
    """The record's runs of one demo and the registered gates over them.

    Args:
        record (dict): The study's record.
        task (Task): The demo.
        seeds (Sequence[int]): The registered seeds.
    """

    def __init__(self, record: dict, task: Task, seeds: Sequence[int]) -> None:
        self.record, self.task, self.seeds = record, task, tuple(seeds)

    def run(self, variant: str, seed: int) -> Optional[dict]:
        return self.record.get(f'{self.task.name}/{variant}/{seed}')

    def finals(self,
               variant: str,
               metric: Optional[str] = None) -> Dict[int, float]:
        """Final value (points) per seed of the recorded runs."""
        metric = metric or self.task.primary
        return {
            seed: run['final'][metric]
            for seed in self.seeds
            for run in [self.run(variant, seed)] if run
        }

    def input_problem(self, variant: str, seed: int) -> Optional[str]:
        """Why the run fails G0 against its global-attention partner (None:
        it does not)."""
        run, partner = self.run(variant, seed), self.run(REFERENCE, seed)
        if run['inputs'] != partner['inputs']:
            return 'inputs differ from global attention\'s'
        if 'checkpoint' not in run['inputs']:
            return 'no pretraining checkpoint'
        load = run['load']
        if set(load['loaded']) != {'backbone.', 'neck.'}:
            return f'loaded {sorted(load["loaded"])}, not backbone. and neck.'
        if variant == REFERENCE:
            unexpected = [
                key for key in load['missing']
                if not FRESH_IN_GLOBAL.fullmatch(key)
            ]
        else:
            new = {'gathering_tokens'
                   } if run['backbone'].get('gathering_tokens') else set()
            unexpected = sorted((set(load['missing'])
                                 ^ set(partner['load']['missing'])) - new)
        if unexpected:
            return f'missing keys {unexpected}'
        return None

    def paired(self,
               variant: str,
               metric: Optional[str] = None) -> Optional[dict]:
        """The paired difference variant - global attention over the seeds
        both have whose pair passes G0."""
        reference = self.finals(REFERENCE, metric)
        values = {
            seed: value
            for seed, value in self.finals(variant, metric).items()
            if seed in reference and not self.input_problem(variant, seed)
        }
        return paired_difference(values, reference)

    def curve_problem(self, run: dict) -> Optional[str]:
        """Why a run fails G2 (None: it does not)."""
        curve = [value for _, value in run['curves'][self.task.primary]]
        final = run['final'][self.task.primary]
        if final <= self.task.floor:
            return f'final {final:.2f} <= floor {self.task.floor:g}'
        if final < max(curve) - DIVERGENCE_DROP:
            return f'final {final:.2f} < best {max(curve):.2f} - ' \
                f'{DIVERGENCE_DROP:g}'
        return None

    def regime(self) -> Optional[bool]:
        """G1: met (True), failed (False) or pending (None)."""
        values = self.finals(REFERENCE)
        if len(values) < len(self.seeds):
            return None
        low, high = self.task.global_range
        return bool(low <= np.mean(list(values.values())) <= high)

    def failed_gates(self, variant: str) -> List[str]:
        """The gates that deny ``variant`` a verdict."""
        failed = []
        if self.regime() is False:
            failed.append('G1')
        runs = [
            run for v in (REFERENCE, variant) for seed in self.seeds
            for run in [self.run(v, seed)] if run
        ]
        if any(self.curve_problem(run) for run in runs):
            failed.append('G2')
        return failed

    def switch(self) -> Optional[bool]:
        """G3: keep ratio 1 reproduces every global checkpoint exactly."""
        runs = [self.run(REFERENCE, seed) for seed in self.seeds]
        runs = [run for run in runs if run]
        if not runs:
            return None
        return all(run['migration']['keep1']['metrics'] == run['migration']
                   ['none']['metrics'] for run in runs)


def gates_rows(results: TaskResults) -> List[str]:
    task = results.task
    values = results.finals(REFERENCE)
    regime = results.regime()
    low, high = task.global_range
    mean = f'{np.mean(list(values.values())):.2f}' if values else '-'
    g1 = {
        None: f'pending ({len(values)} of {len(results.seeds)} seeds)',
        True: f'met (mean {mean} in [{low:g}, {high:g}])',
        False: f'failed (mean {mean} outside [{low:g}, {high:g}])'
    }[regime]
    runs = {
        key: run
        for key, run in results.record.items()
        if key.startswith(f'{task.name}/')
    }
    curve = [
        f'{key}: {problem}' for key, run in runs.items()
        for problem in [results.curve_problem(run)] if problem
    ]
    inputs = [
        f'{key}: {problem}' for key, run in runs.items()
        if results.run(REFERENCE, run['seed'])
        for problem in [results.input_problem(run['variant'], run['seed'])]
        if problem
    ]
    switch = results.switch()
    return [
        f'| G0 inputs ({task.name}) | ' +
        ('failed: ' + '; '.join(inputs) if inputs else
         f'met ({len(runs)} runs)' if runs else 'pending') + ' |',
        f'| G1 regime ({task.name}) | {g1} |',
        f'| G2 curves ({task.name}) | ' +
        ('failed: ' + '; '.join(curve) if curve else
         f'met ({len(runs)} runs)' if runs else 'pending') + ' |',
        f'| G3 switch ({task.name}) | ' + {
            None: 'pending',
            True: 'met',
            False: 'failed'
        }[switch] + ' |',
    ]


def comparison_rows(results: TaskResults, variants: Sequence[str], metric: str,
                    verdicts: bool) -> List[str]:
    """Final values per seed, mean ± sd, the paired difference against
    global attention with its observed sd and, for the primary metric, the
    seeds the registered test would need at that sd and the verdict."""
    task, seeds = results.task, results.seeds
    head = ('| variant | ' + ' | '.join(f'seed {s}' for s in seeds) +
            ' | mean ± sd | - global [95 % interval] | sd of differences |')
    if verdicts:
        head += ' seeds for 80 % at that sd | verdict |'
    lines = [head, '|---|' + '---|' * (len(seeds) + 3 + 2 * verdicts)]
    for variant in variants:
        values = results.finals(variant, metric)
        cells = [f'{values[s]:.2f}' if s in values else '-' for s in seeds]
        spread = (f'{np.mean(list(values.values())):.2f} ± '
                  f'{np.std(list(values.values()), ddof=1):.2f}'
                  if len(values) > 1 else '-')
        row = f'| {variant} | ' + ' | '.join(cells) + f' | {spread} |'
        if variant == REFERENCE:
            lines.append(row + ' - | - |' + (' - | - |' if verdicts else ''))
            continue
        diff = results.paired(variant, metric)
        sd = np.std(diff['diffs'], ddof=1) if diff else None
        row += f' {format_difference(diff)} | ' + (f'{sd:.2f} |' if sd
                                                   is not None else '- |')
        if verdicts:
            needed = seeds_for_non_inferiority(sd, task.margin) \
                if sd else '-'
            row += f' {needed} | ' + verdict(
                diff, task.margin, len(seeds),
                results.failed_gates(variant)) + ' |'
        lines.append(row)
    return lines


def curve_rows(results: TaskResults, variants: Sequence[str]) -> List[str]:
    """Mean over the recorded seeds of every variant's validation curve of
    the primary metric."""
    curves = {}
    for variant in variants:
        runs = [
            dict(run['curves'][results.task.primary]) for seed in results.seeds
            for run in [results.run(variant, seed)] if run
        ]
        if runs:
            curves[variant] = runs
    if not curves:
        return []
    steps = sorted(
        {step
         for runs in curves.values()
         for c in runs
         for step in c})
    lines = [
        f'| {results.task.unit} | ' +
        ' | '.join(f'{v} (n={len(r)})' for v, r in curves.items()) + ' |',
        '|---|' + '---|' * len(curves)
    ]
    for step in steps:
        cells = []
        for runs in curves.values():
            values = [c[step] for c in runs if step in c]
            cells.append(f'{np.mean(values):.2f}' if values else '-')
        lines.append(f'| {step} | ' + ' | '.join(cells) + ' |')
    return lines


def migration_rows(results: TaskResults, metric: str) -> List[str]:
    """Every global-attention checkpoint tested without and with migration:
    values per seed and the paired difference against no migration; the
    verdict (primary metric) by the registered rule and margin."""
    task, seeds = results.task, results.seeds
    verdicts = metric == task.primary
    runs = {
        seed: run
        for seed in seeds
        for run in [results.run(REFERENCE, seed)] if run
    }
    lines = [
        '| keep ratio | ' + ' | '.join(f'seed {s}' for s in seeds) +
        ' | - none [95 % interval] |' + (' verdict |' if verdicts else ''),
        '|---|' + '---|' * (len(seeds) + 1 + verdicts)
    ]
    none = {
        s: r['migration']['none']['metrics'][metric]
        for s, r in runs.items()
    }
    for keep in (None, *MIGRATION_KEEP_RATIOS):
        name = 'none' if keep is None else f'keep{keep:g}'
        values = {
            s: r['migration'][name]['metrics'][metric]
            for s, r in runs.items()
        }
        cells = [f'{values[s]:.2f}' if s in values else '-' for s in seeds]
        diff = None if keep is None else paired_difference(values, none)
        row = f'| {"none" if keep is None else f"{keep:g}"} | ' + \
            ' | '.join(cells) + f' | {format_difference(diff)} |'
        if verdicts:
            failed = ['G3'] if results.switch() is False else []
            row += ' - |' if keep is None else ' the switch (G3) |' \
                if keep == 1 else \
                f' {verdict(diff, task.margin, len(seeds), failed)} |'
        lines.append(row)
    return lines


def run_rows(record: dict) -> List[str]:
    """Every recorded run in the order it ended: UTC start and end, wall
    and CPU minutes of its attempts, load averages (1 min) before and after,
    attempts."""
    lines = [
        '| run | UTC start | UTC end | wall (min) | CPU (min) | load '
        '(start → end) | attempts | headline |', '|---|---|---|---|---|---|'
        '---|---|'
    ]
    entries = []
    for key, entry in record.items():
        if key.startswith('prepare/'):
            for made in entry['made']:
                entries.append((key, made, 1, entry['headline']))
        else:
            entries.append(
                (key, entry, len(entry['attempts']), entry['headline']))
    for key, entry, attempts, headline in sorted(
            entries, key=lambda item: item[1]['utc_end']):
        # An interrupted attempt has its start time only.
        steps = [
            step for step in entry.get('attempts') or entry.get('steps') or []
            if 'load_start' in step and 'load_end' in step
        ]
        load = f'{steps[0]["load_start"][0]:.1f} → ' \
            f'{steps[-1]["load_end"][0]:.1f}' if steps else '-'
        lines.append(f'| {key} | {entry["utc_start"]} | {entry["utc_end"]} '
                     f'| {entry["wall_s"] / 60:.1f} | '
                     f'{entry["cpu_s"] / 60:.1f} | {load} | {attempts} | '
                     f'{headline} |')
    return lines


def machine_line(record: dict) -> str:
    machines = {
        tuple(sorted(entry['machine'].items()))
        for entry in record.values() if 'machine' in entry
    }
    if not machines:
        return 'No run recorded yet.'
    parts = []
    for items in sorted(machines):
        m = dict(items)
        parts.append(f'`lscpu`: {m["model_name"]}, family {m["cpu_family"]},'
                     f' model {m["model"]}, {m["cpus"]} CPUs; '
                     f'OMP_NUM_THREADS={m["omp_num_threads"]}, nice '
                     f'{m["nice"]}')
    return 'Machine of the runs: ' + ' / '.join(parts) + '.'


def report(
    record: dict,
    tasks: Sequence[str] = tuple(TASKS),
    seeds: Sequence[int] = SEEDS,
    variants: Sequence[str] = tuple(VARIANT_TITLES)
) -> str:
    """The Markdown report of the record."""
    planned = [f'{t}/{v}/{s}' for t, v, s in run_order(tasks, seeds, variants)]
    done = [key for key in planned if key in record]
    following = next((key for key in planned if key not in record), None)
    lines = [
        '# Token-reduction fidelity on the CPU demos', '',
        f'Rebuilt from `records/token_reduction_fidelity.json` by '
        '`python -m projects.itpn_study.tools.token_reduction_fidelity '
        '--report-only`; the design, margins, gates and verdict rule were '
        f'registered before the first run: [{PREREGISTRATION}]'
        f'({PREREGISTRATION}).', '',
        f'**{len(done)} of {len(planned)} training runs recorded**' +
        (f'; next in the registered order: `{following}`.'
         if following else '; the study is complete.'), '',
        machine_line(record), '',
        'Values in points (mIoU, COCO mAP in percent). Differences are '
        'paired by downstream seed (the same pretraining checkpoint and '
        'data): mean [t-based 95 % interval] (n pairs).', '', '## Gates', '',
        '| gate | status |', '|---|---|'
    ]
    per_task = {
        name: TaskResults(record, TASKS[name], seeds)
        for name in tasks
    }
    for results in per_task.values():
        lines += gates_rows(results)
    for name, results in per_task.items():
        task = results.task
        lengths = sorted({
            run['curves'][task.primary][-1][0]
            for key, run in record.items() if key.startswith(f'{name}/')
        }) or [task.length]
        lines += [
            '', f'## {task.title}: fine-tuned variants', '',
            f'{" or ".join(map(str, lengths))} {task.unit}s per run; '
            f'{task.metric_name} at the last {task.unit}; non-inferiority '
            f'margin {task.margin:g} point: non-inferior if the lower bound '
            f'is above -{task.margin:g}.', ''
        ]
        lines += [
            'Windows of 4x4 units (2x2 windows of the 8x8 grid); window '
            'migration keeps 8 of every window\'s 16 units from main block '
            '1.', '', '| variant | backbone |', '|---|---|'
        ]
        lines += [f'| {v} | {VARIANT_TITLES[v]} |' for v in variants] + ['']
        lines += comparison_rows(results, variants, task.primary, True)
        for metric in task.metrics:
            if metric != task.primary:
                lines += ['', f'{metric} (secondary, no verdict):', '']
                lines += comparison_rows(results, variants, metric, False)
        curve = curve_rows(results, variants)
        if curve:
            lines += [
                '', f'Validation curve of {task.metric_name}, mean over the '
                'recorded seeds, every ' +
                (f'{task.val_interval} {task.unit}s'
                 if task.val_interval > 1 else task.unit) + ':', ''
            ] + curve
        if results.finals(REFERENCE):
            lines += [
                '', f'### {task.title}: training-free migration', '',
                'Every global-attention checkpoint tested as trained and '
                f'with token migration from main block '
                f'{MIGRATION_START_BLOCK} (the same weights and images, '
                'paired by checkpoint; keep ratio 1 must change nothing, '
                'G3):', ''
            ]
            for metric in task.metrics:
                lines += [f'{metric}:', ''] + migration_rows(results,
                                                             metric) + ['']
    lines += [
        '', '## Runs', '',
        'Wall and CPU minutes are those of the training attempts (an '
        'interrupted attempt recorded its start only); a global-attention '
        "run's UTC end also covers its training-free migration tests, which "
        'run after training.', ''
    ] + run_rows(record)
    return '\n'.join(lines) + '\n'
