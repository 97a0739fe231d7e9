# Copyright (c) mmitpn contributors. All rights reserved.
"""Reports are rebuilt from the records: the committed pages are exactly
what ``--report-only`` writes from the committed records."""
import json
import os.path as osp
import subprocess
import sys

import pytest

from projects.itpn_study.study.plan import PAGES, PLANS, RECORDS, REPO
from projects.itpn_study.study.report import Report
from projects.itpn_study.study.runs import Study
from projects.itpn_study.tests.study_records import PILOTS, probe_record
from projects.itpn_study.tools.itpn_study import main, parse_args


def test_study_report_gives_paired_intervals_and_no_best_column(tmp_path):
    record = {}
    for seed, (mae, itpn) in enumerate([(76., 75.), (77., 75.), (78., 75.)]):
        record.update(probe_record('mae', seed, mae))
        record.update(probe_record('itpn-pixel', seed, itpn))
        curve = [[30, 20.], [60, 30. + seed]]
        for name, offset in (('a', 1.), ('b', 0.)):
            record[f'seg/{name}/{seed}'] = dict(
                stage='seg',
                name=name,
                seed=seed,
                wall_s=60.,
                curves={'mIoU': [[s, v + offset * seed] for s, v in curve]})
    path = tmp_path / 'record.json'
    path.write_text(json.dumps(record))
    out = tmp_path / 'study.md'
    main([
        '--report-only', '--record',
        str(path), '--out',
        str(out), '--work-dir',
        str(tmp_path / 'wd'), '--fig-dir',
        str(tmp_path / 'fig')
    ])
    report = out.read_text()
    assert 'best' not in report
    # mae - itpn-pixel = 1, 2, 3: mean 2, sd 1, t(0.975, 2) = 4.303.
    assert ('| backbone/mean/logistic: mae - itpn-pixel | 3 | +2.00 '
            '[-0.48, +4.48] (+1.00, +2.00, +3.00) |') in report
    assert '| backbone/mean: mae - itpn-pixel | 3 | +2.00' in report
    assert 'probes, logistic regression (the headline)' in report
    assert report.count('on the edge of the penalties tried in 0 of 6') == 2
    # a - b at the last validation: 0, 1, 2.
    assert '| a - b | 3 | +1.00 [-1.48, +3.48] (+0.00, +1.00, +2.00) |' \
        in report
    assert 'last validation minus the one before' in report
    # The curves behind the tables are linked, relative to the report.
    assert '![segmentation mIoU](fig/itpn_study_mIoU.png)' in report
    assert (tmp_path / 'fig' / 'itpn_study_mIoU.png').is_file()


def test_preregistered_report_states_the_budgets_it_ran(tmp_path):
    args = parse_args([
        '--plan', 'prereg', '--work-dir',
        str(tmp_path / 'wd'), '--record',
        str(tmp_path / 'record.json')
    ])
    runs = Study(args)
    report = Report(args, runs)
    assert 'dense transfer: length not yet fixed' in report.header()
    runs.record.update(PILOTS)
    header = report.header()
    # The dense length is the pilot's, not the 3-epoch study's seg_iters;
    # the budgets the plan does not run are not listed.
    assert 'dense transfer: 8000 iterations (fixed by the pilot)' in header
    assert 'seg_iters' not in header and 'det_epochs' not in header
    assert 'pretrain_epochs=7' in header
    assert 'dense runs train with seed 100 + k' in header
    assert 'One seed drives' not in header


@pytest.mark.parametrize(
    'plan', sorted(name for name, plan in PLANS.items() if plan.finished))
def test_committed_pages_are_regenerated_from_their_records(tmp_path, plan):
    """``--report-only`` from the committed record, into a fresh folder laid
    out like docs/, gives the committed page byte for byte (the figures are
    drawn again, not compared). A plan still running commits its record
    after every run and its page less often: its report is tested on
    synthetic records (test_study_decide.py)."""
    spec = PLANS[plan]
    out = tmp_path / spec.page
    main([
        '--plan', plan, '--report-only', '--record',
        osp.join(RECORDS, spec.record), '--out',
        str(out), '--fig-dir',
        str(tmp_path / 'figures' / spec.figures), '--work-dir',
        str(tmp_path / 'wd')
    ])
    with open(osp.join(PAGES, spec.page), encoding='utf-8') as f:
        committed = f.read()
    assert out.read_text(encoding='utf-8') == committed
    assert any(line.startswith('| ') for line in committed.splitlines())
    figures = [
        line[line.index('](') + 2:-1] for line in committed.splitlines()
        if line.startswith('![')
    ]
    assert figures and all(osp.isfile(tmp_path / f) for f in figures)
    assert all(osp.isfile(osp.join(PAGES, f)) for f in figures)


def test_a_plan_whose_probe_is_gone_only_rebuilds_its_report(tmp_path):
    result = subprocess.run([
        sys.executable, '-m', 'projects.itpn_study.tools.itpn_study', '--plan',
        'rerun', '--work-dir',
        str(tmp_path / 'wd'), '--record',
        str(tmp_path / 'record.json')
    ],
                            capture_output=True,
                            text=True,
                            cwd=REPO)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith(
        'itpn_study.py: error: --plan rerun can only rebuild its report '
        '(add --report-only): its probes were solved by L-BFGS')
