# Copyright (c) mmitpn contributors. All rights reserved.
"""Small records of the study's runs for its tests."""


def probe_entry(top1, method='logistic'):
    return dict(
        top1=top1,
        method=method,
        weight_decay=1e-3,
        val_top1={
            '0.0001': top1 - 1,
            '0.001': top1,
            '0.01': top1 - 2
        },
        grad_norm=1e-5 if method == 'logistic' else 1e-9,
        tolerance=1e-4 if method == 'logistic' else 0.)


def probe_record(name, seed, top1):
    probes = {
        'backbone/mean': probe_entry(top1 - 3, 'ridge'),
        'backbone/mean/logistic': probe_entry(top1)
    }
    return {
        f'probe/{name}/{seed}':
        dict(stage='probe', name=name, seed=seed, probes=probes, wall_s=1.)
    }


def curve_rising_at_end(final, rise_at_end, iters):
    """An mIoU curve evaluated every 10 % of ``iters`` whose last 20 %
    adds ``rise_at_end``."""
    step = iters // 10
    points = [[step * i, final - 10. + i] for i in range(1, 8)]
    return points + [[8 * step, final - rise_at_end],
                     [9 * step, final - rise_at_end / 2], [iters, final]]


def pilot_record(iters, rise_at_end):
    return {
        f'pilot/d@{iters}/99':
        dict(
            stage='pilot',
            name=f'd@{iters}',
            seed=99,
            iters=iters,
            curves=dict(mIoU=curve_rising_at_end(40., rise_at_end, iters)))
    }


# Pilots that fixed the dense transfer's length at 8,000 iterations.
PILOTS = {**pilot_record(4000, 3.), **pilot_record(8000, 0.4)}


def prereg_record(itpn_minus_mae, refuse=False):
    """Every probe run of the pre-registered plan, headline top-1 chosen so
    that ``itpn-pixel@7 - mae@7`` is ``itpn_minus_mae`` per seed."""
    record = {}
    for seed in range(3):
        for name, top1 in (('none', 60.), ('mae@1', 64.), ('mae@3', 66.),
                           ('mae@7', 70. + seed), ('itpn-pixel@1',
                                                   64.), ('itpn-pixel@3', 66.),
                           ('itpn-pixel@7', 70. + seed + itpn_minus_mae[seed]),
                           ('cont-pixel', 70.), ('cont-mfm', 70. + seed)):
            record.update(probe_record(name, seed, top1))
    if refuse:
        record['probe/none/0']['probes']['backbone/mean/logistic'] = dict(
            method='logistic', refused='on the edge')
    return record


def dense_record(finals, rise_at_end=0.5, iters=8000):
    """Segmentation runs whose last 20 % adds ``rise_at_end``; ``finals``
    maps an initialisation to its final mIoU per seed."""
    record = {}
    for init, values in finals.items():
        for seed, final in enumerate(values):
            record[f'seg/{init}/{seed}'] = dict(
                stage='seg',
                name=init,
                seed=seed,
                curves=dict(
                    mIoU=curve_rising_at_end(final, rise_at_end, iters)),
                wall_s=1.)
    return record
