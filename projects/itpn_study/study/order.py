# Copyright (c) mmitpn contributors. All rights reserved.
"""The order in which each plan makes its runs. Recorded runs are skipped,
so a plan resumes where it stopped, in this session or a later one; the
report is rewritten after every run."""
import os.path as osp
import time
from typing import List, Optional

from .decisions import dense_recipe, extension_needed
from .design import (C2_SEEDS, DENSE_INITS, EXTENSION_SEEDS,
                     PILOT_DOWNSTREAM_SEEDS, PILOT_UNIT, RECIPES, SEEDS,
                     downstream_seeds)
from .plan import (CONTINUATION_START, CONTINUATIONS, PREREG_DENSE_INITS,
                   PREREG_OBJECTIVES, TRANSFER_INITS, dense_lengths)
from .probes import load_held_out_probe_data, load_probe_data
from .verdicts import dense_length


def run_study(args, study, report) -> None:
    """The 3-epoch study: ``args.stages`` for ``args.objectives`` (and
    ``args.mfm_variants``) over ``args.seeds``, stage after stage."""
    objectives = list(args.objectives)
    variants = list(args.mfm_variants)
    if 'pretrain' in args.stages:
        for seed in args.seeds:
            for objective in [o for o in objectives if o != 'none'] + variants:
                study.pretrain(objective, seed)
                report.write()
    if 'probe' in args.stages:
        data = load_probe_data(args)
        for seed in args.seeds:
            for objective in objectives + variants:
                study.probe(objective, seed, data)
                report.write()
        # The raw-pixel probe does not depend on a seed (the split is fixed
        # by the data): once is enough (D = 12,288 makes it the slowest).
        study.raw_pixel_probe(args.seeds[0], data)
    if 'finetune' in args.stages:
        for seed in args.seeds:
            for objective in objectives:
                study.finetune(objective, seed)
                report.write()
    for task in ('seg', 'det'):
        if task not in args.stages:
            continue
        for seed in args.seeds:
            for init, (objective, _) in TRANSFER_INITS.items():
                if objective in objectives:
                    study.transfer(task, init, seed)
                    report.write()
    report.write()


def run_prereg(args, study, report) -> None:
    """The pre-registered plan, one run at a time in a fixed order for the
    seeds of ``args.seeds`` (one process per seed may share the work dir
    and record); each pretraining's checkpoints are probed right after it,
    since a session's work dir may not outlive it. A recorded pretraining
    whose checkpoints are gone is trained again only as far as the runs
    not yet recorded need. The probe images are loaded when the first
    probe not yet recorded needs them."""
    data = []

    def probe(objective: str, seed: int, epoch: Optional[int] = None):
        name = objective if epoch is None else f'{objective}@{epoch}'
        if f'probe/{name}/{seed}' not in study.record and not data:
            start = time.perf_counter()
            data.extend(load_probe_data(args))
            study.log(f'  probe images loaded in '
                      f'{(time.perf_counter() - start) / 60:.1f} min')
        study.probe(objective, seed, data, epoch)

    def recorded(name: str, seed: int) -> bool:
        return f'probe/{name}/{seed}' in study.record

    inits = {init.split(':')[0]: init for init in TRANSFER_INITS}

    def unrecorded_dense(seed: int) -> List[str]:
        return [
            inits[name] for name in PREREG_DENSE_INITS
            if f'seg/{name}/{seed}' not in study.record
        ]

    if any(unrecorded_dense(seed) for seed in args.seeds):
        # The pilots fix the dense transfer's length before any run needs
        # it: one length after the other until one has converged.
        for iters in dense_lengths(args):
            if dense_length(study.record, args) is not None:
                break
            study.dense_pilot(iters)
        if dense_length(study.record, args) is None:
            study.log('no pilot length converged: the dense transfer is '
                      'not run (G3 fails)')
    length = dense_length(study.record, args)

    def dense_to_run(seed: int) -> List[str]:
        return unrecorded_dense(seed) if length is not None else []

    epochs = sorted({1, args.continue_from, args.pretrain_epochs})
    for seed in args.seeds:
        probe('none', seed)
        for objective in PREREG_OBJECTIVES:
            # Checkpoints are trained only as far as unrecorded runs need.
            needed = [
                epoch for epoch in epochs
                if not recorded(f'{objective}@{epoch}', seed)
            ]
            if objective == CONTINUATION_START and not all(
                    recorded(arm, seed) for arm in CONTINUATIONS):
                needed.append(args.continue_from)
            if any(TRANSFER_INITS[init][0] == objective
                   for init in dense_to_run(seed)):
                needed.append(args.pretrain_epochs)
            if not needed:
                continue
            trained = osp.join(study.root, 'pretrain', objective,
                               f'seed{seed}', 'result.json')
            if (f'pretrain/{objective}/{seed}' in study.record
                    and not osp.isfile(trained)):
                study.regenerate(objective, seed, max(needed))
            else:
                study.pretrain(objective, seed)
                report.write()
            for epoch in epochs:
                probe(objective, seed, epoch)
                report.write()
        for arm in CONTINUATIONS:
            if recorded(arm, seed):
                continue
            study.continuation(arm, seed)
            probe(arm, seed)
            report.write()
        for init in dense_to_run(seed):
            study.transfer('seg', init, seed)
            report.write()


def run_decide(args, study, report) -> None:
    """The plan ``decide``, one unit (pretraining seed) after the other
    (``args.seeds``, default: all of ``design.SEEDS``, then the extension
    units the sequential rule calls for).

    A unit makes its saved initialisation, probes it (``none``; not in
    extension units), pretrains ``itpn-pixel`` and uses that checkpoint at
    once (its probe, the MFM arms, the dense pilot in unit ``PILOT_UNIT``,
    the dense runs), then pretrains and probes ``mae``. A recorded
    pretraining whose checkpoints are gone (a new working period) is
    trained again only when runs not yet recorded need it, as far as they
    need it; the saved initialisations are written again from the seed.
    """
    data = []
    last, middle = args.pretrain_epochs, args.continue_from

    def recorded(stage: str, name: str, seed: int) -> bool:
        return f'{stage}/{name}/{seed}' in study.record

    def probe(objective: str, seed: int, epoch: Optional[int] = None):
        name = objective if epoch is None else f'{objective}@{epoch}'
        if not recorded('probe', name, seed) and not data:
            start = time.perf_counter()
            data.extend(load_held_out_probe_data(args))
            study.log(f'  probe images loaded in '
                      f'{(time.perf_counter() - start) / 60:.1f} min')
        study.probe(objective, seed, data, epoch)
        report.write()

    def pretrained(objective: str, seed: int, epochs: List[int]) -> None:
        """Make sure ``objective``'s checkpoints after ``epochs`` exist."""
        if not epochs:
            return
        trained = osp.join(study.root, 'pretrain', objective, f'seed{seed}',
                           'result.json')
        if recorded('pretrain', objective, seed) and not osp.isfile(trained):
            study.regenerate(objective, seed, max(epochs))
        else:
            study.pretrain(objective, seed)
            report.write()

    def unrecorded_dense(seed: int) -> List[tuple]:
        if dense_recipe(study.record)[0] is None:
            return []
        return [(init, downstream) for downstream in downstream_seeds(seed)
                for init in DENSE_INITS
                if not recorded('seg', f'{init}.ds{downstream}', seed)]

    def pilot_needed(seed: int) -> List[str]:
        """The recipes whose pilot runs are still to be made."""
        if seed != PILOT_UNIT or dense_recipe(study.record)[0] is not None:
            return []
        return [
            recipe for recipe in RECIPES if not all(
                recorded('pilot', f'{init}.{recipe}.ds{ds}', PILOT_UNIT)
                for init in ('b', 'd') for ds in PILOT_DOWNSTREAM_SEEDS)
        ]

    def unit(seed: int, extension: bool = False) -> None:
        study.pretraining_init(seed)
        if not extension:
            probe('none', seed)
        arms = [
            arm for arm in CONTINUATIONS
            if seed in C2_SEEDS and not recorded('probe', arm, seed)
        ]
        needed = []
        if not recorded('probe', f'itpn-pixel@{last}', seed) or \
                pilot_needed(seed) or unrecorded_dense(seed):
            needed.append(last)
        if arms:
            needed.append(middle)
        pretrained(CONTINUATION_START, seed, needed)
        probe(CONTINUATION_START, seed, last)
        for arm in arms:
            study.continuation(arm, seed)
            probe(arm, seed)
        while pilot_needed(seed):
            recipe = pilot_needed(seed)[0]
            for downstream in PILOT_DOWNSTREAM_SEEDS:
                for init in ('b', 'd'):
                    study.pilot_run(init, downstream, recipe)
                    report.write()
            study.log(f'dense pilot: {dense_recipe(study.record)[1]}')
        for init, downstream in unrecorded_dense(seed):
            study.dense_run(init, seed, downstream,
                            dense_recipe(study.record)[0])
            report.write()
        if not recorded('probe', f'mae@{last}', seed):
            pretrained('mae', seed, [last])
            probe('mae', seed, last)

    for seed in args.seeds:
        unit(seed, extension=seed in EXTENSION_SEEDS)
    if list(args.seeds) == list(SEEDS):
        for seed in EXTENSION_SEEDS:
            started = f'init/pretraining/{seed}' in study.record
            if not (started or extension_needed(study.record, seed, args)):
                break
            study.log(f'sequential rule: extension unit {seed}')
            unit(seed, extension=True)
    report.write()
