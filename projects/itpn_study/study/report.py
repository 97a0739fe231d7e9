# Copyright (c) mmitpn contributors. All rights reserved.
"""The report of a plan: Markdown tables (mean ± sample std over seeds;
paired differences over seeds with t-based 95 % intervals) and figures, all
rebuilt from the record."""
import os
import os.path as osp
from typing import Dict, List, Tuple

import numpy as np

from mmitpn.utils.statistics import paired_difference
from .cells import difference_cell, mean_std
from .plan import DENSE_SEED_OFFSET, FULL, PLANS, PREREG, TRANSFER_INITS, Plan
from .verdicts import dense_length, prereg_verdicts, registration_deviations

# Comparisons of the report: (first, second) by run name, per stage.
PROBE_PAIRS = (('mae', 'itpn-pixel'), ('itpn-pixel-mfm', 'itpn-pixel'),
               ('itpn-pixel', 'none'), ('mae', 'none'))
TRANSFER_PAIRS = (('a', 'b'), ('a', 'c'), ('b', 'c'), ('b', 'd'), ('c', 'd'),
                  ('a', 'd'))
COMMAND = 'python -m projects.itpn_study.tools.itpn_study'


def group(results: List[dict]) -> Dict[str, List[dict]]:
    """Runs by name."""
    grouped: Dict[str, List[dict]] = {}
    for result in results:
        grouped.setdefault(result['name'], []).append(result)
    return grouped


def by_seed(runs: List[dict], value) -> Dict[int, float]:
    """``value(run)`` by seed, where it is not None."""
    values = {}
    for run in runs:
        number = value(run)
        if number is not None:
            values[run['seed']] = number
    return values


def differences(grouped, pairs, value, label) -> List[str]:
    """Table rows of the paired differences of ``value`` for ``pairs``."""
    lines = []
    for first, second in pairs:
        if first in grouped and second in grouped:
            diff = paired_difference(
                by_seed(grouped[first], value),
                by_seed(grouped[second], value))
            if diff is not None:
                lines.append(f'| {label(first)} - {label(second)} | '
                             f'{len(diff["seeds"])} | '
                             f'{difference_cell(diff)} |')
    return lines


class Report:
    """The report of ``args.plan`` from the study's record."""

    # What the probes' top-1 is measured on.
    probe_test = 'Fashion-MNIST test'

    def __init__(self, args, study) -> None:
        self.args = args
        self.study = study
        self.plan: Plan = PLANS[args.plan]

    def header(self) -> str:
        """What the tables rest on: the plan's budgets, how seeds are
        shared, and where the machine behind the wall times is named."""
        args = self.args
        if self.plan.prereg:
            budgets = ', '.join(f'{k}={getattr(args, k)}' for k in PREREG)
            iters = dense_length(self.study.record, args)
            dense = f'{iters} iterations (fixed by the pilot)' if iters \
                else 'length not yet fixed by the pilot'
            return (
                f'Budgets: {budgets}, mask ratio {args.mask_ratio}; dense '
                f'transfer: {dense}. Mean ± sample standard deviation over '
                'seeds; differences are paired by seed: mean [t-based 95 % '
                'interval] (per seed). Pretraining seed k drives its '
                'pretraining and probes; its dense runs train with seed '
                f'{DENSE_SEED_OFFSET} + k. Wall times as logged; the '
                'CPU and threads of each session are in the '
                'pre-registration\'s *Sessions*, and differ between them.')
        budgets = ', '.join(f'{k}={getattr(args, k)}' for k in FULL)
        return (f'Budgets: {budgets}, mask ratio {args.mask_ratio}. Mean ± '
                'sample standard deviation over seeds; differences are '
                'paired by seed: mean [t-based 95 % interval] (per seed). '
                'One seed drives pretraining, the probe and downstream '
                'training of a run alike. Wall times on the machine the '
                'write-up names.')

    def write(self) -> None:
        """Rewrite the report and its figures."""
        lines = [f'# {self.plan.title}', '']
        lines += [
            f'Written by `{COMMAND} --plan {self.plan.name}` (this file is '
            'regenerated from the record with `--report-only`; the write-up '
            'is [itpn_study_writeup.md](itpn_study_writeup.md)). ' +
            self.header(), ''
        ]
        if self.plan.prereg:
            lines += prereg_verdicts(self.study.record, self.args)
            lines += registration_deviations(self.study.record)
        lines += self.pretrain_table() + self.probe_table()
        lines += self.finetune_table() + self.transfer_tables()
        self.finish(lines)

    def finish(self, lines: List[str]) -> None:
        """Draw the figures, link them under *Curves* and write the
        report."""
        out_dir = osp.dirname(osp.abspath(self.args.out))
        os.makedirs(self.args.fig_dir, exist_ok=True)
        figures = self.figures()
        if figures:
            lines += [
                '## Curves', '', 'Mean over seeds, band ± one sample '
                'standard deviation.', ''
            ]
            for title, path in figures:
                link = osp.relpath(osp.abspath(path), out_dir)
                lines += [f'![{title}]({link})', '']
        os.makedirs(out_dir, exist_ok=True)
        with open(self.args.out, 'w') as f:
            f.write('\n'.join(lines).rstrip('\n') + '\n')

    def pretrain_table(self) -> List[str]:
        grouped = group(self.study.results('pretrain'))
        if not grouped:
            return []
        lines = [
            '## Pretraining', '',
            '| objective | seeds | final loss_pixel | final MFM losses | '
            'wall time per run |', '|---|---|---|---|---|'
        ]
        for name, runs in grouped.items():
            pixel = [r['losses']['loss_pixel'][-1][1] for r in runs]
            mfm = sorted(k for k in runs[0]['losses'] if 'mfm' in k)
            mfm_text = ', '.join(
                f'{k} {mean_std([r["losses"][k][-1][1] for r in runs])}'
                for k in mfm) or '-'
            minutes = np.mean([r['wall_s'] for r in runs]) / 60
            lines.append(f'| {name} | {len(runs)} | {mean_std(pixel)} | '
                         f'{mfm_text} | {minutes:.1f} min |')
        return lines + ['']

    def probe_table(self) -> List[str]:
        results = self.study.results('probe')
        grouped = group(results)
        if not grouped:
            return []
        order = ('backbone/mean', 'backbone/grid', 'pyramid/mean',
                 'pyramid/grid', 'pixels/-')
        keys = sorted(
            {k
             for r in results
             for k in r['probes']},
            key=lambda k:
            (order.index(k.rsplit('/logistic')[0])
             if k.rsplit('/logistic')[0] in order else len(order), k))
        methods = [('ridge', [k for k in keys if not k.endswith('/logistic')]),
                   ('logistic', [k for k in keys if k.endswith('/logistic')])]
        lines = []
        for method, columns in methods:
            if not columns:
                continue
            probes = [
                r['probes'][c] for r in results for c in columns
                if c in r['probes']
            ]
            lines += self.probe_method_table(grouped, method, columns, probes)
        return lines

    def probe_method_table(self, grouped, method, columns, probes):

        def top1(column):
            return lambda run: run['probes'].get(column, {}).get('top1')

        solver = self.plan.logistic_solver
        logistic = f'{solver} logistic regression' if solver else \
            'logistic regression'
        title = (f'{logistic} (the headline)'
                 if method == 'logistic' else 'closed-form ridge classifier')
        lines = [
            f'## Converged linear probes, {title} (top-1 %, '
            f'{self.probe_test})', '',
            'Standardised frozen features; L2 chosen on a validation part '
            'of the training features; `mean`: each map mean-pooled, '
            '`grid`: each map averaged to the 4x4 unit grid and kept per '
            'unit. `none` is the randomly initialised model of each seed.', '',
            '| model | seeds | ' + ' | '.join(columns) + ' |',
            '|---' * (len(columns) + 2) + '|'
        ]
        for name, runs in grouped.items():
            cells = [
                mean_std(list(by_seed(runs, top1(c)).values()))
                for c in columns
            ]
            lines.append(f'| {name} | {len(runs)} | ' + ' | '.join(cells) +
                         ' |')
        refused = [p for p in probes if 'refused' in p]
        solved = [p for p in probes if 'top1' in p]
        on_edge = [
            p for p in solved
            if p['weight_decay'] in (min(map(float, p['val_top1'])),
                                     max(map(float, p['val_top1'])))
        ]
        grids = sorted({(min(map(float, p['val_top1'])),
                         max(map(float, p['val_top1'])))
                        for p in solved})
        worst = max((p['grad_norm'] for p in solved), default=0.)
        lines += [
            '', f'{len(solved)} probes solved, {len(refused)} refused '
            '(penalty still on an edge after the extensions, or a fit '
            'above its gradient tolerance: no number); penalties '
            'tried: ' + ', '.join(f'{lo:g} ... {hi:g}' for lo, hi in grids) +
            f'; chosen penalty on the edge of the penalties tried in '
            f'{len(on_edge)} of {len(solved)} (their top-1 is a lower '
            'bound of the probe\'s). Largest convergence certificate '
            '(gradient norm, or relative residual of the normal '
            f'equations): {worst:.1e}.', ''
        ]
        diffs = []
        for column in columns:
            diffs += [
                line.replace('| ', f'| {column}: ', 1) for line in differences(
                    grouped, PROBE_PAIRS, top1(column), str)
            ]
        if diffs:
            lines += [
                f'Paired differences ({method}, top-1 points):', '',
                '| comparison | seeds | difference |', '|---|---|---|'
            ] + diffs + ['']
        return lines

    def finetune_table(self) -> List[str]:
        grouped = group(self.study.results('finetune'))
        if not grouped:
            return []
        lines = [
            '## Fine-tuning (top-1 %, Fashion-MNIST test, per epoch)', '',
            '| pretraining | seeds | top-1 per epoch | final top-1 | wall '
            'time per run |', '|---|---|---|---|---|'
        ]
        for name, runs in grouped.items():
            per_epoch = np.array([[p[1] for p in r['top1']] for r in runs])
            epochs = ', '.join(f'{v:.2f}' for v in per_epoch.mean(0))
            minutes = np.mean([r['wall_s'] for r in runs]) / 60
            lines.append(f'| {name} | {len(runs)} | {epochs} | '
                         f'{mean_std(per_epoch[:, -1])} | {minutes:.1f} min |')
        diffs = differences(grouped, PROBE_PAIRS, lambda r: r['top1'][-1][1],
                            str)
        if diffs:
            lines += [
                '', 'Paired differences of the final top-1 (points):', '',
                '| comparison | seeds | difference |', '|---|---|---|'
            ] + diffs
        return lines + ['']

    def transfer_tables(self) -> List[str]:
        lines = []
        names = {k.split(':')[0]: k for k in TRANSFER_INITS}
        seg_data = 'garments' if self.plan.prereg else 'shapes'
        for task, key, title in (('seg', 'mIoU', 'Segmentation (UperNet, '
                                  f'{seg_data}, mIoU)'),
                                 ('det', 'coco/bbox_mAP', 'Detection (Mask '
                                  'R-CNN, shapes, bbox mAP)'),
                                 ('det', 'coco/segm_mAP', 'Detection (Mask '
                                  'R-CNN, shapes, mask mAP)')):
            grouped = group(self.study.results(task))
            if not grouped:
                continue
            scale = 100. if task == 'det' else 1.
            lines += [
                f'## {title}', '',
                '| initialisation | seeds | value at each validation | '
                'final | last validation minus the one before | wall time '
                'per run |', '|---|---|---|---|---|---|'
            ]
            for name in sorted(grouped):
                runs = grouped[name]
                values = np.array([[p[1] for p in r['curves'][key]]
                                   for r in runs]) * scale
                points = ', '.join(f'{v:.1f}' for v in values.mean(0))
                minutes = np.mean([r['wall_s'] for r in runs]) / 60
                gain = values[:, -1] - values[:, -2] if values.shape[1] > 1 \
                    else [None]
                lines.append(
                    f'| {names.get(name, name)} | {len(runs)} | {points} | '
                    f'{mean_std(values[:, -1])} | {mean_std(gain)} | '
                    f'{minutes:.1f} min |')
            diffs = differences(grouped, TRANSFER_PAIRS,
                                lambda r: r['curves'][key][-1][1] * scale, str)
            if diffs:
                lines += [
                    '', 'Paired differences of the final value:', '',
                    '| comparison | seeds | difference |', '|---|---|---|'
                ] + diffs
            lines.append('')
        return lines

    def figures(self) -> List[Tuple[str, str]]:
        """Plot each stage's curves; return (title, path) per figure."""
        os.makedirs(self.args.fig_dir, exist_ok=True)
        panels = [('pretrain', 'loss_pixel', 'pretraining loss_pixel',
                   lambda r: r['losses'].get('loss_pixel', [])),
                  ('finetune', 'top1', 'fine-tuning top-1 (%)',
                   lambda r: r['top1']),
                  ('seg', 'mIoU', 'segmentation mIoU',
                   lambda r: r['curves']['mIoU']),
                  ('det', 'bbox_mAP', 'detection bbox mAP',
                   lambda r: r['curves']['coco/bbox_mAP'])]
        written = []
        for stage, tag, title, get in panels:
            grouped = group(self.study.results(stage))
            if not grouped:
                continue
            path = osp.join(self.args.fig_dir, f'itpn_study_{tag}.png')
            draw_curves(
                path, title,
                'iteration' if stage in ('pretrain', 'seg') else 'epoch', {
                    name: [get(r) for r in runs]
                    for name, runs in grouped.items()
                })
            written.append((title, path))
        return written


def draw_curves(path: str, title: str, xlabel: str,
                groups: Dict[str, List[list]]) -> None:
    """Plot the mean of each group's ``[step, value]`` curves over their
    common length, with a band of ± one sample standard deviation."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5, 3.4), dpi=100)
    for name in sorted(groups):
        runs = [np.array(curve, dtype=float) for curve in groups[name]]
        length = min(len(r) for r in runs)
        if length == 0:
            continue
        steps = runs[0][:length, 0]
        values = np.stack([r[:length, 1] for r in runs])
        mean = values.mean(0)
        # Sample std, as in the tables (0 for a single run).
        std = values.std(0, ddof=1) if len(runs) > 1 \
            else np.zeros_like(mean)
        ax.plot(steps, mean, label=f'{name} (n={len(runs)})')
        ax.fill_between(steps, mean - std, mean + std, alpha=0.25)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
