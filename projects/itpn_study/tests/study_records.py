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


RUN_FIELDS = dict(
    wall_s=60.,
    started_utc='2026-12-07T14:00:00Z',
    ended_utc='2026-12-07T14:01:00Z',
    machine=dict(
        model_name='AMD EPYC',
        cpu_family='25',
        model='17',
        cpus='2',
        omp_num_threads='1',
        nice=19),
    load_avg=[2., 2.])


def dense_entry(stage, init, seed, downstream, metric, first=20., recipe=None):
    """A dense run whose first evaluation is ``first`` and whose last three
    average ``metric``."""
    name = '.'.join([init] + ([recipe] if recipe else []) +
                    [f'ds{downstream}'])
    points = [[60, first]] + [[60 * i, metric - 3 + i * 0.2]
                              for i in range(2, 8)]
    points += [[480, metric - 0.5], [540, metric], [600, metric + 0.5]]
    return {
        f'{stage}/{name}/{seed}':
        dict(
            RUN_FIELDS,
            stage=stage,
            name=name,
            seed=seed,
            init=init,
            recipe=recipe or 'shipped',
            downstream_seed=downstream,
            metric=metric,
            curves=dict(mIoU=points))
    }


def pilot_entries(recipe, early_lead, final_lead):
    """The pilot of ``recipe``: (b) leads (d) by ``early_lead`` at the first
    evaluation and ``final_lead`` in the metric, on both downstream
    seeds."""
    record = {}
    for downstream in (98, 99):
        record.update(
            dense_entry('pilot', 'd', 0, downstream, 30., 10., recipe))
        record.update(
            dense_entry('pilot', 'b', 0, downstream, 30. + final_lead,
                        10. + early_lead, recipe))
    return record


def decide_record(c1,
                  c3,
                  c2=(0.1, 0.12, 0.14, 0.16),
                  mae_gain=8.,
                  pilots=(('shipped', 3., 2.), ),
                  epochs=8):
    """Every run of the plan decide for ``len(c1)`` units (seeds 0, 1, ...;
    beyond 5 the extension units): ``itpn-pixel@epochs - mae@epochs`` is
    ``c1[k]``, ``a - b`` in the dense metric ``c3[k]`` (the same on both
    downstream seeds), ``cont-mfm - cont-pixel`` ``c2[k]``; MAE leads the
    random initialisation by ``mae_gain``."""
    record = {}
    for recipe, early, final in pilots:
        record.update(pilot_entries(recipe, early, final))
    for seed, (itpn_minus_mae, a_minus_b) in enumerate(zip(c1, c3)):
        mae = 70. + mae_gain + 0.3 * seed
        probes = [(f'mae@{epochs}', mae),
                  (f'itpn-pixel@{epochs}', mae + itpn_minus_mae)]
        if seed < 6:
            probes.append(('none', 70. + 0.3 * seed))
        if seed < len(c2):
            probes += [('cont-pixel', 80.), ('cont-mfm', 80. + c2[seed])]
        for name, top1 in probes:
            for key, entry in probe_record(name, seed, top1).items():
                record[key] = dict(RUN_FIELDS, **entry)
        for downstream in (200 + 2 * seed, 201 + 2 * seed):
            record.update(
                dense_entry('seg', 'b', seed, downstream, 30. + seed))
            record.update(
                dense_entry('seg', 'a', seed, downstream,
                            30. + seed + a_minus_b))
        for objective in ('mae', 'itpn-pixel'):
            record[f'pretrain/{objective}/{seed}'] = dict(
                RUN_FIELDS,
                stage='pretrain',
                name=objective,
                seed=seed,
                losses=dict(loss_pixel=[[20, 0.9], [40, 0.8]]))
        if seed < len(c2):
            for arm in ('cont-pixel', 'cont-mfm'):
                record[f'continue/{arm}/{seed}'] = dict(
                    RUN_FIELDS,
                    stage='continue',
                    name=arm,
                    seed=seed,
                    losses=dict(loss_pixel=[[20, 0.7], [40, 0.6]]))
    return record
