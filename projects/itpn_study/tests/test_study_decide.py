# Copyright (c) mmitpn contributors. All rights reserved.
"""The plan decide: its power analysis (as the pre-registration states it),
its verdict rule with equivalence margins, its gates, the dense pilot's
recipe ladder, the sequential rule, and its report, from synthetic
records."""
import json
import os.path as osp

import numpy as np
import pytest
from scipy import stats

from projects.itpn_study.study import design
from projects.itpn_study.study.costs import budget_table
from projects.itpn_study.study.decide_report import DecideReport
from projects.itpn_study.study.decisions import (claim_values, decide_verdicts,
                                                 dense_recipe,
                                                 extension_needed, late_mean,
                                                 planned_runs, recorded_runs)
from projects.itpn_study.study.plan import PAGES, RECORDS
from projects.itpn_study.study.power import (equivalence_probability,
                                             half_width, seeds_for_half_width,
                                             sequential_coverage)
from projects.itpn_study.study.runs import Study
from projects.itpn_study.tests.study_records import (decide_record,
                                                     pilot_entries)
from projects.itpn_study.tools.itpn_study import main, parse_args

ARGS = parse_args(['--plan', 'decide'])
LENGTH = '8 epochs of 40,000 images (2,504 iterations of batch 128)'


def verdicts(record):
    return {
        line.split(':')[0][2:]: line
        for line in decide_verdicts(record, ARGS)
        if line.startswith('| C') or line.startswith('| G')
    }


def test_half_widths_and_the_seeds_that_reach_them():
    # t(0.975, 5) = 2.571: 6 pairs of sd 0.35 give 0.367.
    assert half_width(0.35, 6) == pytest.approx(
        2.5706 * 0.35 / 6**0.5, rel=1e-4)
    assert seeds_for_half_width(0.35, 0.4) == 6
    assert seeds_for_half_width(1.18, 0.8) == 11
    with pytest.raises(ValueError, match='more than 10 pairs'):
        seeds_for_half_width(5., 0.1, most=10)


@pytest.mark.parametrize('effect,sd,n,margin', [(0., 0.35, 6, 0.5),
                                                (0.3, 0.75, 6, 1.5),
                                                (0., 1.18, 3, 1.5)])
def test_equivalence_probability_matches_a_simulation(effect, sd, n, margin):
    rng = np.random.default_rng(0)
    diffs = rng.normal(effect, sd, (100000, n))
    width = stats.t.ppf(0.975, n - 1) * diffs.std(1, ddof=1) / np.sqrt(n)
    mean = diffs.mean(1)
    simulated = np.mean((mean - width > -margin) & (mean + width < margin))
    assert equivalence_probability(effect, sd, n, margin) == pytest.approx(
        simulated, abs=0.005)


def test_the_sequential_rule_keeps_the_coverage_near_its_level():
    # Without room to add pairs the rule is the fixed design: 95 %.
    fixed = sequential_coverage(1., 6, 6, 0.5, trials=40000)
    assert fixed['coverage'] == pytest.approx(0.95, abs=0.005)
    assert fixed['mean_pairs'] == 6
    rule = sequential_coverage(0.75, 6, 8, 0.8, trials=40000)
    assert 6 < rule['mean_pairs'] < 8
    assert rule['coverage'] == pytest.approx(0.95, abs=0.01)


def test_the_registration_states_the_power_analysis_the_code_computes():
    with open(
            osp.join(PAGES, 'itpn_study_decide_preregistration.md'),
            encoding='utf-8') as f:
        page = f.read()
    with open(osp.join(RECORDS, 'itpn_study_decide_costs.json')) as f:
        costs = json.load(f)
    for table in (design.power_analysis(ARGS), design.c1_lengths(ARGS),
                  design.sequential_rule(ARGS), budget_table(costs)):
        assert '\n'.join(table) in page
    # The recorded standard deviations it starts from.
    rows = {
        line.split(' | ')[0][2:]: line
        for line in design.power_analysis(ARGS)
    }
    assert '| 0.347 (3) | 0.423 (interpolated) | 0.40 | 6 / 7 |' in rows['C1']
    assert '| 0.087 (3) | 0.087 (recorded) |' in rows['C2']
    assert '| 1.182 (3) | 0.750 (assumed) | 0.80 | 11 / 6 |' in rows['C3']


def test_verdicts_decide_direction_equivalence_or_nothing():
    six = [0.0] * 6
    # Small differences, tight: no difference larger than the margin.
    record = decide_record([0.1, -0.1, 0.05, 0.0, 0.1, -0.05],
                           [0.2, -0.2, 0.1, 0.0, 0.3, -0.1])
    rows = verdicts(record)
    assert rows['G1'].endswith('| met |')
    assert '| met: MAE@8 - none +8.00' in rows['G2']
    assert '| met, recipe shipped (shipped: b - d +3.00' in rows['G3']
    assert rows['C1'].endswith(f'| no difference larger than 0.75 at '
                               f'{LENGTH} |')
    assert '| 6 of 6 |' in rows['C1']
    assert rows['C3'].endswith(
        '| no difference larger than 1.5 at 600 iterations of batch 8 on 300 '
        f'training canvases, from pretraining of {LENGTH} |')
    # MFM a little higher in every seed: a direction, inside the margin.
    assert rows['C2'].endswith(f'| cont-mfm higher, by less than 0.3, at '
                               f'{LENGTH} |')
    # Larger and consistent: a direction only.
    rows = verdicts(decide_record([1., 1.1, 1.2, 0.9, 1., 1.1], six))
    assert rows['C1'].endswith(f'| itpn-pixel@8 higher, at {LENGTH} |')
    rows = verdicts(decide_record([-1., -1.1, -1.2, -0.9, -1., -1.1], six))
    assert rows['C1'].endswith(f'| mae@8 higher, at {LENGTH} |')
    # Spread over the margin and around 0: no verdict.
    rows = verdicts(decide_record([1.5, -1.5, 1., -1., 0.5, -0.5], six))
    assert rows['C1'].endswith('| no verdict (the interval includes 0 and '
                               'reaches beyond ±0.75) |')


def test_gates_withhold_verdicts():
    six = [0.0] * 6
    rows = verdicts(decide_record([1.] * 6, six, mae_gain=3.))
    assert '| FAILED: MAE@8 - none +3.00' in rows['G2']
    assert rows['C1'].endswith('| no verdict (gate not met) |')
    assert rows['C2'].endswith('| no verdict (gate not met) |')
    # The pilot: the shipped recipe puts (b) behind early, a lower
    # backbone rate does not.
    record = decide_record(
        [0.] * 6, [1.] * 6,
        pilots=(('shipped', 1., 2.), ('backbone-lr-0.1', 4., 1.5)))
    recipe, outcome = dense_recipe(record)
    assert recipe == 'backbone-lr-0.1'
    assert outcome.startswith('met, recipe backbone-lr-0.1 (shipped: b - d '
                              '+1.00 at the first evaluation, +2.00 in the '
                              'metric; backbone-lr-0.1: b - d +4.00')
    # One failed rung and the next not run yet: undecided.
    record = decide_record([0.] * 6, [1.] * 6, pilots=(('shipped', 3., 0.), ))
    assert dense_recipe(record) == (
        None, 'not reached (pilot of backbone-lr-0.1 not complete; shipped: '
        'b - d +3.00 at the first evaluation, +0.00 in the metric)')
    assert 'no verdict (gate not met)' in verdicts(record)['C3']
    failed = decide_record(
        [0.] * 6, [1.] * 6, pilots=[(r, 0., 0.) for r in design.RECIPES])
    assert dense_recipe(failed)[1].startswith('FAILED: no recipe passed')
    # A refused probe fails G1.
    record = decide_record([0.] * 6, [0.] * 6)
    record['probe/none/0']['probes']['backbone/mean/logistic'] = dict(
        method='logistic', refused='on the edge')
    assert '| FAILED: 1 probe(s) refused' in verdicts(record)['G1']


def test_the_sequential_rule_reads_the_spread_never_the_mean():
    wide = [1.5, -1.5, 1., -1., 0.5, -0.5]
    narrow = [0.1, -0.1, 0.05, 0.0, 0.1, -0.05]
    assert extension_needed(decide_record(narrow, wide), 6, ARGS)
    assert extension_needed(decide_record(wide, narrow), 6, ARGS)
    assert not extension_needed(decide_record(narrow, narrow), 6, ARGS)
    # Shifting every difference changes the mean, not the decision.
    for shift in (-3., 3.):
        shifted = [d + shift for d in wide]
        assert extension_needed(decide_record(narrow, shifted), 6, ARGS)
        shifted = [d + shift for d in narrow]
        assert not extension_needed(decide_record(shifted, narrow), 6, ARGS)
    # Not before every earlier unit is recorded.
    partial = decide_record(narrow, wide)
    del partial['seg/a.ds210/5']
    assert not extension_needed(partial, 6, ARGS)
    # A claim whose gate failed asks for nothing.
    assert not extension_needed(
        decide_record(wide, narrow, mae_gain=3.), 6, ARGS)
    # The extension units enter both claims once recorded; the seventh
    # only when the first did not narrow the interval enough.
    record = decide_record(narrow + [0.], wide + [0.])
    c1, c3 = design.claims()[0], design.claims()[2]
    assert claim_values(record, c1, 8)[2] == [0, 1, 2, 3, 4, 5, 6]
    assert claim_values(record, c3, 8)[2] == [0, 1, 2, 3, 4, 5, 6]
    assert '| 7 of 7 |' in verdicts(record)['C3']
    assert extension_needed(record, 7, ARGS)
    assert not extension_needed(
        decide_record(narrow + [0.], narrow + [0.]), 7, ARGS)


def test_progress_counts_the_runs_the_registration_calls_for():
    record = decide_record([0.] * 6, [0.] * 6)
    # 6 units of 2 pretrainings, 3 probes and 4 dense runs, 4 units of two
    # arms and their probes, one rung of 4 pilot runs.
    assert planned_runs(record, ARGS) == 6 * 9 + 4 * 4 + 4
    assert recorded_runs(record) == planned_runs(record, ARGS)
    assert planned_runs({}, ARGS) == 74
    failed_once = decide_record(
        [0.] * 6, [0.] * 6, pilots=(('shipped', 0., 0.), ))
    assert planned_runs(failed_once, ARGS) == 78
    failed = decide_record(
        [0.] * 6, [0.] * 6, pilots=[(r, 0., 0.) for r in design.RECIPES])
    assert planned_runs(failed, ARGS) == 74 + 8 - 24
    wide = decide_record([0.] * 6, [1.5, -1.5, 1., -1., 0.5, -0.5])
    assert planned_runs(wide, ARGS) == 74 + 8


def test_late_mean_averages_the_last_evaluations():
    assert late_mean([[1, 1.], [2, 2.], [3, 3.], [4, 6.]], 3) == 11 / 3
    with pytest.raises(ValueError, match='averages the last 3'):
        late_mean([[1, 1.]], 3)


def test_decide_report_from_a_synthetic_record(tmp_path):
    record = decide_record([0.1, -0.1, 0.05, 0.0, 0.1, -0.05],
                           [0.2, -0.2, 0.1, 0.0, 0.3, -0.1])
    del record['seg/a.ds210/5']
    path = tmp_path / 'record.json'
    path.write_text(json.dumps(record))
    out = tmp_path / 'decide.md'
    main([
        '--plan', 'decide', '--report-only', '--record',
        str(path), '--out',
        str(out), '--work-dir',
        str(tmp_path / 'wd'), '--fig-dir',
        str(tmp_path / 'fig')
    ])
    report = out.read_text()
    assert '**Status: running: 73 of 74 runs recorded.**' in report
    assert '| C3: the pretrained pyramid' in report
    assert 'no verdict (not reached)' in report
    assert '## Precision reached' in report
    assert '| C1 | 6 | 0.082 | 0.423 (interpolated) | 0.09 | 0.4 |' in report
    assert '| shipped | 13.0 / 32.0 | 13.0 / 32.0 | 10.0 / 30.0 | ' \
        '10.0 / 30.0 | b - d +3.00 first, +2.00 metric: passed |' in report
    assert '| a - b | 5 |' in report
    assert ('| pretraining | 12 | 0.20 | 2026-12-07T14:00:00Z | '
            '2026-12-07T14:01:00Z | AMD EPYC (family 25, model 17, 2 CPUs), '
            'threads 1, nice 19 |') in report
    for figure in ('loss_pixel', 'mIoU', 'pilot_mIoU'):
        assert f'(fig/itpn_study_{figure}.png)' in report
        assert (tmp_path / 'fig' / f'itpn_study_{figure}.png').is_file()
    # Complete: the status says so.
    complete = decide_record([0.] * 6, [0.] * 6)
    args = parse_args([
        '--plan', 'decide', '--record',
        str(tmp_path / 'none.json'), '--out',
        str(tmp_path / 'complete.md'), '--work-dir',
        str(tmp_path / 'wd2'), '--fig-dir',
        str(tmp_path / 'fig2')
    ])
    study = Study(args)
    study.record.update(complete)
    DecideReport(args, study).write()
    assert '**Status: every run the registration calls for is recorded.**' \
        in (tmp_path / 'complete.md').read_text()


def test_pilot_entries_lead_as_asked():
    record = pilot_entries('shipped', 2.5, 1.)
    b = record['pilot/b.shipped.ds98/0']
    d = record['pilot/d.shipped.ds98/0']
    assert b['curves']['mIoU'][0][1] - d['curves']['mIoU'][0][1] == 2.5
    assert late_mean(b['curves']['mIoU'], 3) - late_mean(
        d['curves']['mIoU'], 3) == pytest.approx(1.)
