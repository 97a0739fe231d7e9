# Copyright (c) mmitpn contributors. All rights reserved.
"""Plot and summarise the scalars of mmengine runs (matplotlib only).

Each run is a work dir (its latest ``<timestamp>/vis_data/scalars.json`` is
used) or a ``scalars.json`` / ``<timestamp>.json`` file. Training lines give
the losses, each loss term, ``lr`` and timing; validation lines give the
metrics (``accuracy/top1``, ``coco/bbox_mAP``, ``mIoU``, ...).

mmpretrain's and mmdet's ``analyze_logs.py`` are scripts; the importable
part, ``mmpretrain.utils.load_json_log``, tells training from validation
lines by an ``lr`` key and stops at a truncated last line (a killed run)
with a bare ``JSONDecodeError``; :func:`read_log` here names the file and
line, finds a work dir's latest log, and the summary and epoch-aligned
curves have no library counterpart.

Examples:
    python tools/analysis_tools/analyze_logs.py plot work_dirs/run_a \
        work_dirs/run_b --keys loss loss_pixel --out loss.png
    python tools/analysis_tools/analyze_logs.py plot work_dirs/run_a \
        --keys mIoU --x iter --out miou.png
    python tools/analysis_tools/analyze_logs.py summary work_dirs/run_a
"""
import argparse
import glob
import json
import os.path as osp
import statistics
from typing import Dict, List, Tuple

from mmitpn.utils.cli import add_debug_argument, run_tool

BOOKKEEPING = ('epoch', 'iter', 'step', 'time', 'data_time', 'memory')


def find_log(run: str) -> str:
    """The scalar log of a work dir (latest run) or the file itself."""
    if osp.isfile(run):
        return run
    candidates = sorted(
        glob.glob(osp.join(run, '*', 'vis_data', 'scalars.json')))
    if not candidates:
        raise FileNotFoundError(
            f'{run}: no <timestamp>/vis_data/scalars.json below it; pass a '
            'work dir of an mmengine run or the JSON log itself.')
    return candidates[-1]


def read_log(path: str) -> Tuple[List[dict], List[dict]]:
    """Training and validation records of one JSON-lines log."""
    train, val = [], []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f'{path}, line {number}: not JSON '
                                 f'({error.msg}).') from None
            (train if 'iter' in record else val).append(record)
    return train, val


def series(records: List[dict], key: str, x: str) -> Tuple[list, list]:
    """(x values, key values) of the records holding ``key``.

    Training records against ``epoch`` are placed at fractional epochs (the
    last logged iteration of each epoch marks its end), so that they line
    up with the validation after each epoch.
    """
    ends: Dict[int, int] = {}
    for record in records:
        if 'epoch' in record and 'iter' in record:
            ends[record['epoch']] = max(
                ends.get(record['epoch'], 0), record['iter'])
    xs, ys = [], []
    for record in records:
        if key not in record:
            continue
        if x == 'epoch' and record.get('epoch') in ends:
            epoch = record['epoch']
            start = ends.get(epoch - 1, 0)
            span = max(ends[epoch] - start, 1)
            position = epoch - 1 + (record['iter'] - start) / span
        else:
            position = record.get(x, record.get('step'))
        xs.append(position)
        ys.append(record[key])
    return xs, ys


def scalar_keys(records: List[dict]) -> List[str]:
    keys: Dict[str, None] = {}
    for record in records:
        for key, value in record.items():
            if key not in BOOKKEEPING and isinstance(value, (int, float)):
                keys[key] = None
    return list(keys)


def summarise(run: str) -> List[str]:
    path = find_log(run)
    train, val = read_log(path)
    lines = [
        f'{run} ({path}): {len(train)} training and {len(val)} '
        'validation records'
    ]
    for key in scalar_keys(train):
        _, values = series(train, key, 'iter')
        if key.startswith('loss') or key in ('lr', 'base_lr', 'acc'):
            lines.append(f'  {key}: first {values[0]:.4g}, last '
                         f'{values[-1]:.4g}, min {min(values):.4g}')
    for key in scalar_keys(val):
        steps, values = series(val, key, 'step')
        best = max(range(len(values)), key=values.__getitem__)
        lines.append(f'  {key}: last {values[-1]:.4g} (step {steps[-1]}), '
                     f'best {values[best]:.4g} (step {steps[best]})')
    times = [r['time'] for r in train if 'time' in r]
    if times:
        data = statistics.median(r.get('data_time', 0.) for r in train)
        lines.append('  time per iteration: median '
                     f'{statistics.median(times):.3f} s (data {data:.3f} s)')
    return lines


def plot(runs: List[str], keys: List[str], x: str, out: str,
         labels: List[str]) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(
        len(keys), 1, figsize=(6, 3 * len(keys)), dpi=100, squeeze=False)
    for ax, key in zip(axes[:, 0], keys):
        found = False
        for run, label in zip(runs, labels):
            train, val = read_log(find_log(run))
            records = train if any(key in r for r in train) else val
            xs, ys = series(records, key, x)
            if xs:
                found = True
                ax.plot(
                    xs,
                    ys,
                    label=label,
                    marker='.' if records is val else None)
        if not found:
            train, val = read_log(find_log(runs[0]))
            raise KeyError(f'No run logs {key!r}; scalars of {runs[0]}: '
                           f'{scalar_keys(train + val)}')
        ax.set_title(key)
        ax.set_xlabel(x)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest='command', required=True)
    plot_parser = sub.add_parser('plot', help='curves of scalars')
    plot_parser.add_argument('runs', nargs='+', help='work dirs or logs')
    plot_parser.add_argument(
        '--keys', nargs='+', default=['loss'], help='scalars, one panel each')
    plot_parser.add_argument(
        '--x',
        choices=('iter', 'epoch', 'step'),
        default='iter',
        help='x axis (validation records use their step: the epoch of '
        'epoch-based runs, the iteration of iteration-based ones)')
    plot_parser.add_argument('--legend', nargs='+', help='one label per run')
    plot_parser.add_argument('--out', required=True, help='image file')
    summary_parser = sub.add_parser(
        'summary', help='final and best values, time per iteration')
    summary_parser.add_argument('runs', nargs='+', help='work dirs or logs')
    add_debug_argument(parser)
    return parser.parse_args()


def main():
    args = parse_args()
    if args.command == 'summary':
        for run in args.runs:
            print('\n'.join(summarise(run)))
        return
    labels = args.legend or [osp.basename(osp.normpath(r)) for r in args.runs]
    if len(labels) != len(args.runs):
        raise SystemExit(f'--legend gives {len(labels)} labels for '
                         f'{len(args.runs)} runs.')
    plot(args.runs, args.keys, args.x, args.out, labels)
    print(f'wrote {args.out}')


if __name__ == '__main__':
    run_tool(main)
