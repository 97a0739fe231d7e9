# Copyright (c) mmitpn contributors. All rights reserved.
"""The report of the plan ``decide``: progress, gates and verdicts, the
precision reached against the design's, the dense pilot, the tables and
curves, and when and where every run was made, all rebuilt from the
record."""
import os.path as osp
from typing import Dict, List, Tuple

import numpy as np

from mmitpn.utils.statistics import paired_difference
from .cells import difference_cell, mean_std
from .decisions import (claim_values, decide_verdicts, dense_by_seed,
                        dense_design, dense_length, pilot_rung, planned_runs,
                        recorded_runs)
from .design import (CANVAS_SEED, DENSE_INITS, PILOT_CANVAS_SEED,
                     PILOT_DOWNSTREAM_SEEDS, PILOT_UNIT, RECIPES, claims,
                     design_sd, downstream_seeds, prereg_record)
from .plan import DECIDE
from .report import Report, draw_curves

INIT_NAMES = {
    'a': 'a: iTPN backbone + pyramid',
    'b': 'b: iTPN backbone, fresh pyramid',
    'd': 'd: no pretraining (pilot only)',
}
STAGE_NAMES = {
    'init': 'saved initialisations',
    'pretrain': 'pretraining',
    'regenerate': 'pretraining again (checkpoints lost)',
    'probe': 'probes',
    'continue': 'MFM continuation arms',
    'pilot': 'dense pilot',
    'seg': 'dense transfer',
}


class DecideReport(Report):
    """:class:`Report` of the plan ``decide``."""

    probe_test = ('Fashion-MNIST images pretraining never saw: the held-out '
                  'training images and the test images')

    def header(self) -> str:
        args = self.args
        budgets = ', '.join(f'{k}={getattr(args, k)}' for k in DECIDE)
        dense = dense_design(args)
        return (
            f'Budgets: {budgets}, mask ratio {args.mask_ratio}; dense '
            f'transfer: {dense["train"]} training and {dense["val"]} '
            f'validation canvases (converter seed {CANVAS_SEED}; the '
            f'pilot\'s {PILOT_CANVAS_SEED}), {dense["iters"]} iterations, '
            f'{dense["points"]} evaluations, metric the mean of the last '
            f'{dense["last"]}. Pretraining seed k starts both objectives '
            'from its saved initialisation and drives its probes and MFM '
            'arms; its dense runs train with the downstream seeds '
            f'{downstream_seeds(0)[0]} + 2k and {downstream_seeds(0)[1]} + '
            '2k, (a) and (b) of one downstream seed (and the pilot\'s (b) '
            'and (d)) from one saved segmentor. Mean ± sample standard '
            'deviation over seeds; differences are paired by pretraining '
            'seed: mean [t-based 95 % interval] (per seed). Every run '
            'records its UTC start and end, the CPU (`lscpu`), its threads '
            'and niceness (*Runs and machines* below).')

    def write(self) -> None:
        """Rewrite the report and its figures."""
        record = self.study.record
        done = recorded_runs(record)
        planned = planned_runs(record, self.args)
        status = ('every run the registration calls for is recorded'
                  if done >= planned else
                  f'running: {done} of {planned} runs recorded')
        lines = [
            f'# {self.plan.title}', '',
            f'Written by `python -m projects.itpn_study.tools.itpn_study '
            f'--plan {self.plan.name}` (regenerated from the record with '
            f'`--report-only`). **Status: {status}.** ' + self.header(), ''
        ]
        lines += decide_verdicts(record, self.args)
        lines += self.precision_table() + self.pilot_table()
        lines += self.pretrain_table() + self.probe_table()
        lines += self.dense_table() + self.runs_table()
        self.finish(lines)

    def precision_table(self) -> List[str]:
        """The precision each claim reached against the design's."""
        rows = []
        for claim in claims(self.args.pretrain_epochs):
            first, second, _ = claim_values(self.study.record, claim,
                                            self.args.pretrain_epochs)
            diff = paired_difference(first, second)
            if diff is None:
                continue
            sd = float(np.std(diff['diffs'], ddof=1))
            design = f'{design_sd(prereg_record(), claim):.3f} ' \
                f'({claim.design_sd})'
            rows.append(f'| {claim.key} | {len(diff["seeds"])} | {sd:.3f} | '
                        f'{design} | {(diff["high"] - diff["low"]) / 2:.2f} '
                        f'| {"-" if claim.target is None else claim.target} '
                        '|')
        if not rows:
            return []
        return [
            '## Precision reached', '',
            'The paired standard deviation and half-width of each deciding '
            'statistic so far, beside what the power analysis assumed and '
            'aimed at.', '',
            '| claim | seeds | paired sd | design sd | half-width | target |',
            '|---|---|---|---|---|---|'
        ] + rows + ['']

    def pilot_table(self) -> List[str]:
        record = self.study.record
        rows = []
        for recipe in RECIPES:
            runs = [
                record.get(f'pilot/{init}.{recipe}.ds{ds}/{PILOT_UNIT}')
                for init in ('b', 'd') for ds in PILOT_DOWNSTREAM_SEEDS
            ]
            if not any(runs):
                continue
            rung = pilot_rung(record, recipe)
            cells = []
            for run in runs:
                if run is None:
                    cells.append('-')
                else:
                    points = run['curves']['mIoU']
                    cells.append(f'{points[0][1]:.1f} / {run["metric"]:.1f}')
            outcome = 'incomplete' if rung is None else (
                f'b - d {rung["early"]:+.2f} first, {rung["final"]:+.2f} '
                f'metric: {"passed" if rung["passed"] else "failed"}')
            rows.append(f'| {recipe} | ' + ' | '.join(cells) +
                        f' | {outcome} |')
        if not rows:
            return []
        heads = ' | '.join(f'{init} ds{ds}' for init in ('b', 'd')
                           for ds in PILOT_DOWNSTREAM_SEEDS)
        return [
            '## Dense pilot', '',
            f'Pretraining seed {PILOT_UNIT}\'s itpn-pixel checkpoint (b) and '
            'no pretraining (d) on the pilot\'s own canvases; each cell the '
            'mIoU at the first evaluation / the metric.', '',
            f'| recipe | {heads} | rule |', '|---' *
            (2 + 2 * len(PILOT_DOWNSTREAM_SEEDS)) + '|'
        ] + rows + ['']

    def dense_table(self) -> List[str]:
        record = self.study.record
        seeds = claim_values(record, claims()[2], 0)[2]
        lines = []
        for init in DENSE_INITS:
            runs = [
                r for k, r in sorted(record.items())
                if k.startswith(f'seg/{init}.')
            ]
            if not runs:
                continue
            length = min(len(r['curves']['mIoU']) for r in runs)
            curve = np.mean([[v for _, v in r['curves']['mIoU'][:length]]
                             for r in runs], 0)
            units = dense_by_seed(record, init, seeds)
            minutes = np.mean([r['wall_s'] for r in runs]) / 60
            lines.append(f'| {INIT_NAMES[init]} | {len(runs)} | '
                         f'{", ".join(f"{v:.1f}" for v in curve)} | '
                         f'{mean_std(list(units.values()))} '
                         f'({len(units)}) | {minutes:.1f} min |')
        if not lines:
            return []
        diffs = []
        for first, second in (('a', 'b'), ('b', 'd'), ('a', 'd')):
            diff = paired_difference(
                dense_by_seed(record, first, seeds),
                dense_by_seed(record, second, seeds))
            if diff is not None:
                diffs.append(f'| {first} - {second} | {len(diff["seeds"])} | '
                             f'{difference_cell(diff)} |')
        return [
            f'## Dense transfer (UperNet, garments, low-label: '
            f'{dense_length(self.args)})', '',
            '| initialisation | runs | mIoU at each evaluation (mean of the '
            'runs) | metric per pretraining seed (seeds) | wall time per '
            'run |', '|---|---|---|---|---|'
        ] + lines + [''] + ([
            'Paired differences of the metric (per pretraining seed, the mean '
            'of its downstream seeds):', '',
            '| comparison | seeds | difference |', '|---|---|---|'
        ] + diffs + [''] if diffs else [])

    def runs_table(self) -> List[str]:
        """When, where and how long the runs of each stage ran."""
        stages: Dict[str, list] = {}
        for key, result in sorted(self.study.record.items()):
            stages.setdefault(key.split('/')[0], []).append(result)
        rows, total = [], 0.
        order = list(STAGE_NAMES)
        for stage, runs in sorted(
                stages.items(),
                key=lambda item: (order.index(item[0])
                                  if item[0] in order else len(order))):
            hours = sum(r['wall_s'] for r in runs) / 3600
            total += hours
            cpus = sorted({
                f'{r["machine"]["model_name"]} (family '
                f'{r["machine"]["cpu_family"]}, model {r["machine"]["model"]}'
                f', {r["machine"]["cpus"]} CPUs), threads '
                f'{r["machine"]["omp_num_threads"]}, nice '
                f'{r["machine"]["nice"]}'
                for r in runs
            })
            rows.append(
                f'| {STAGE_NAMES.get(stage, stage)} | {len(runs)} | '
                f'{hours:.2f} | {min(r["started_utc"] for r in runs)} | '
                f'{max(r["ended_utc"] for r in runs)} | {"; ".join(cpus)} |')
        if not rows:
            return []
        return [
            '## Runs and machines', '',
            'Wall time of the runs as recorded (the machine is shared, so '
            'wall times vary with its load; each run also records the load '
            f'average at its start and end). In all: {total:.1f} '
            'process-hours.', '',
            '| stage | runs | process-hours | first start (UTC) | last end '
            '(UTC) | CPU, threads, niceness |', '|---|---|---|---|---|---|'
        ] + rows + ['']

    def figures(self) -> List[Tuple[str, str]]:
        """Pretraining loss by objective, and the dense runs' mIoU by
        initialisation (and by recipe and initialisation in the pilot)."""
        record = self.study.record
        panels = [
            ('loss_pixel', 'pretraining loss_pixel', 'iteration', {
                name: [r['losses']['loss_pixel'] for r in runs]
                for name, runs in _by(record, 'pretrain',
                                      lambda r: r['name']).items()
            }),
            ('mIoU', 'dense transfer mIoU', 'iteration', {
                INIT_NAMES[init]: [r['curves']['mIoU'] for r in runs]
                for init, runs in _by(record, 'seg',
                                      lambda r: r['init']).items()
            }),
            ('pilot_mIoU', 'dense pilot mIoU', 'iteration', {
                f'{key[1]} {key[0]}': [r['curves']['mIoU'] for r in runs]
                for key, runs in _by(record, 'pilot', lambda r:
                                     (r['init'], r['recipe'])).items()
            }),
        ]
        written = []
        for tag, title, xlabel, groups in panels:
            if groups:
                path = osp.join(self.args.fig_dir, f'itpn_study_{tag}.png')
                draw_curves(path, title, xlabel, groups)
                written.append((title, path))
        return written


def _by(record: Dict[str, dict], stage: str, key) -> Dict[object, list]:
    groups: Dict[object, list] = {}
    for name, result in sorted(record.items()):
        if name.startswith(f'{stage}/'):
            groups.setdefault(key(result), []).append(result)
    return groups
