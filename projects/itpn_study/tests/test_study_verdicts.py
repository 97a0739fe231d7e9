# Copyright (c) mmitpn contributors. All rights reserved.
"""The pre-registered gates and verdicts, what the design could detect, and
where the runs departed from the registration, computed from records."""
import json

import numpy as np
import pytest
from scipy import stats

from projects.itpn_study.study.plan import RECORDS
from projects.itpn_study.study.power import (smallest_detectable_effect,
                                             t_test_power)
from projects.itpn_study.study.verdicts import (dense_length,
                                                detectable_effects,
                                                prereg_verdicts,
                                                registration_deviations,
                                                shortened_grids)
from projects.itpn_study.tests.study_records import (PILOTS, dense_record,
                                                     pilot_record,
                                                     prereg_record)
from projects.itpn_study.tools.itpn_study import parse_args


def test_preregistered_verdicts_follow_the_gates():
    args = parse_args(['--plan', 'prereg'])
    text = '\n'.join(prereg_verdicts(prereg_record([1., 2., 3.]), args))
    assert '| G1: every probe converged, penalty inside the grid | met |' \
        in text
    assert 'G2: MAE@7 >= 5 points above random init' in text
    assert '| iTPN probes better than MAE | itpn-pixel@7 - mae@7: +2.00 ' \
        '[-0.48, +4.48] (+1.00, +2.00, +3.00) | G1, G2 | no difference ' \
        'shown (interval includes 0) |' in text
    assert 'cont-mfm - cont-pixel: +1.00' in text
    assert 'than a fresh one | - | G1, G3 | no verdict (not reached) |' in text
    text = '\n'.join(prereg_verdicts(prereg_record([2., 2.1, 2.2]), args))
    assert 'G1, G2 | itpn-pixel@7 higher |' in text
    text = '\n'.join(
        prereg_verdicts(prereg_record([2., 2.1, 2.2], True), args))
    assert 'FAILED: 1 probe(s) refused' in text
    assert text.count('no verdict (gate not met)') == 2
    assert 'not reached (needs mae and none' in text
    partial = {
        k: v
        for k, v in prereg_record([1., 1., 1.]).items() if k.endswith('/0')
    }
    text = '\n'.join(prereg_verdicts(partial, args))
    assert 'not reached (9 of 27 probe runs done)' in text
    assert text.count('no verdict (not reached)') == 3
    assert 'not reached (length undecided: no pilot run yet)' in text


def test_dense_transfer_gate_and_verdict():
    args = parse_args(['--plan', 'prereg'])
    probes = {**prereg_record([2., 2.1, 2.2]), **PILOTS}
    finals = dict(a=[43., 44.5, 46.], b=[40., 41., 42.], d=[35., 36., 37.])

    def verdicts(record):
        return '\n'.join(prereg_verdicts(record, args))

    text = verdicts({**probes, **dense_record(finals)})
    assert ('| G3: dense transfer long enough (fresh pyramid - none >= 2 '
            'mIoU, last 20 % adds < 1 mIoU) | met: b - d +5.00 [+5.00, '
            '+5.00] (+5.00, +5.00, +5.00); last 20 % adds +0.50 mIoU (mean '
            'of all runs; 8000 iterations, pilot of 4000: final 40.00, last '
            '20 % adds +3.00; pilot of 8000: final 40.00, last 20 % adds '
            '+0.40) |') in text
    assert ('| pretrained pyramid better than a fresh one | a - b, final '
            'mIoU: +3.50 [+2.26, +4.74] (+3.00, +3.50, +4.00) | G1, G3 | a '
            'higher |') in text
    # Still rising at the end: the runs were too short, no verdict.
    text = verdicts({**probes, **dense_record(finals, rise_at_end=1.5)})
    assert 'FAILED: b - d +5.00' in text and 'adds +1.50 mIoU' in text
    assert 'G1, G3 | no verdict (gate not met) |' in text
    # A fresh pyramid no better than no pretraining: no verdict either.
    text = verdicts({**probes, **dense_record(dict(finals, d=finals['b']))})
    assert 'FAILED: b - d +0.00' in text
    missing = dense_record(finals)
    missing.pop('seg/d/2')
    text = verdicts({**probes, **missing})
    assert 'not reached (8 of 9 dense runs of 8000 iterations done' in text
    assert 'a - b, final mIoU: +3.50' in text  # computed, not decided
    assert 'G1, G3 | no verdict (gate not met) |' in text
    # The length is fixed by the pilots alone.
    unsettled = {**prereg_record([2., 2.1, 2.2]), **pilot_record(4000, 3.)}
    assert 'not reached (length undecided: pilot of 4000: final 40.00, ' \
        'last 20 % adds +3.00)' in verdicts(unsettled)
    none_converged = {
        **unsettled,
        **pilot_record(8000, 2.),
        **pilot_record(16000, 1.2)
    }
    assert '| FAILED: no pilot length converged (pilot of 4000' in \
        verdicts(none_converged)
    assert dense_length(PILOTS, args) == 8000
    assert dense_length({**PILOTS, **pilot_record(4000, 0.9)}, args) == 4000


def test_smallest_detectable_effect_of_a_paired_t_test():
    # At the detectable effect the test's power is 80 %, by simulation too.
    effect = smallest_detectable_effect(1., 3)
    assert t_test_power(effect, 1., 3) == pytest.approx(0.8)
    assert effect == pytest.approx(3.264, abs=1e-3)
    rng = np.random.default_rng(0)
    diffs = rng.normal(effect, 1., (20000, 3))
    t = diffs.mean(1) / (diffs.std(1, ddof=1) / np.sqrt(3))
    assert np.mean(np.abs(t) > stats.t.ppf(0.975, 2)) == pytest.approx(
        0.8, abs=0.01)
    # No effect: the test's size; many pairs: the normal approximation,
    # 2.80 standard errors.
    assert t_test_power(0., 1., 3) == pytest.approx(0.05)
    assert smallest_detectable_effect(1., 400) == pytest.approx(
        2.80 / 20, rel=0.01)
    assert smallest_detectable_effect(0., 3) == 0.
    with pytest.raises(ValueError, match='at least 2 pairs'):
        smallest_detectable_effect(1., 1)


def committed_prereg_record():
    with open(f'{RECORDS}/itpn_study_prereg_results.json') as f:
        return json.load(f)


def test_the_finished_study_could_detect_only_large_differences():
    args = parse_args(['--plan', 'prereg'])
    rows = {
        line.split(' | ')[0][2:]: line.split(' | ')[1:]
        for line in detectable_effects(committed_prereg_record(), args)
        if line.startswith('| ') and ' - ' in line
    }
    # paired sd, half-width, smallest effect found with 80 % power
    assert rows['C1: itpn-pixel@7 - mae@7'][2:] == ['0.35', '0.86', '1.13 |']
    assert rows['C2: cont-mfm - cont-pixel'][2:] == ['0.09', '0.22', '0.29 |']
    assert rows['C3: a - b'][2:] == ['1.18', '2.94', '3.86 |']
    assert rows['G2: MAE@7 - MAE@3'][2:] == ['0.54', '1.34', '1.76 |']
    assert rows['G3: b - d'][2:] == ['0.91', '2.25', '2.96 |']
    # A statistic without two complete seeds has no row.
    assert detectable_effects({}, args) == []


def test_the_unregistered_probe_rule_is_disclosed_with_its_effect():
    record = committed_prereg_record()
    headline = shortened_grids(record, 'backbone/mean/logistic')
    assert [run for run, *_ in headline] == [
        'probe/itpn-pixel@3/1', 'probe/itpn-pixel@3/2', 'probe/itpn-pixel@7/2',
        'probe/mae@1/2', 'probe/mae@3/0', 'probe/mae@7/0'
    ]
    assert {(smallest, best)
            for _, _, smallest, best, _ in headline} == {(1e-6, 1e-4)}
    text = '\n'.join(registration_deviations(record))
    assert 'shortened the grid of 6 of the 27 headline probes' in text
    assert '0.08-0.53 points below their best' in text
    assert 'No per-run timestamps' in text
    # A grid that reached the registered smallest penalty is not listed.
    assert shortened_grids(prereg_record([1., 1., 1.])) != []
    full = {
        'probe/x/0':
        dict(
            probes=dict(
                p=dict(
                    top1=1.,
                    weight_decay=1e-4,
                    val_top1={
                        '1e-07': 1.,
                        '10.0': 0.
                    })))
    }
    assert shortened_grids(full) == []
