# Copyright (c) mmitpn contributors. All rights reserved.
"""The pre-registered plan runs in its fixed order, probes each pretraining
right after it, and trains again only what unrecorded runs need."""
from projects.itpn_study.study import order
from projects.itpn_study.tests.study_records import PILOTS, pilot_record
from projects.itpn_study.tools.itpn_study import parse_args


class PlanRecorder:
    """Stands in for ``Study`` in ``run_prereg``: notes the calls."""

    def __init__(self, root, record, converges_at=8000):
        self.root, self.record, self.calls = str(root), dict(record), []
        self.converges_at = converges_at

    def log(self, text):
        pass

    def pretrain(self, objective, seed):
        self.calls.append(('pretrain', objective))

    def regenerate(self, objective, seed, epochs):
        self.calls.append(('regenerate', objective, epochs))

    def probe(self, objective, seed, data, epoch=None):
        self.calls.append(('probe', objective, epoch))

    def continuation(self, arm, seed):
        self.calls.append(('continuation', arm))

    def transfer(self, task, init, seed):
        self.calls.append((task, init.split(':')[0]))

    def dense_pilot(self, iters):
        self.calls.append(('pilot', iters))
        self.record.update(
            pilot_record(iters, 0.5 if iters >= self.converges_at else 3.))


class NoReport:

    def write(self):
        pass


def test_preregistered_plan_probes_each_pretraining_right_after_it(
        tmp_path, monkeypatch):
    # A session's work dir may not outlive it: the checkpoints of a
    # pretraining run are probed before the next run starts.
    monkeypatch.setattr(order, 'load_probe_data', lambda args: [])
    args = parse_args(['--plan', 'prereg', '--seeds', '0'])
    runs = PlanRecorder(tmp_path, {})
    order.run_prereg(args, runs, NoReport())
    assert runs.calls[2:] == [('probe', 'none', None), ('pretrain', 'mae'),
                              ('probe', 'mae', 1), ('probe', 'mae', 3),
                              ('probe', 'mae', 7), ('pretrain', 'itpn-pixel'),
                              ('probe', 'itpn-pixel', 1),
                              ('probe', 'itpn-pixel', 3),
                              ('probe', 'itpn-pixel', 7),
                              ('continuation', 'cont-pixel'),
                              ('probe', 'cont-pixel', None),
                              ('continuation', 'cont-mfm'),
                              ('probe', 'cont-mfm', None), ('seg', 'a'),
                              ('seg', 'b'), ('seg', 'd')]
    assert runs.calls[:2] == [('pilot', 4000), ('pilot', 8000)]
    # No pilot length converged: the dense runs are not run, and their
    # checkpoints not trained for.
    runs = PlanRecorder(tmp_path, {}, converges_at=10**6)
    order.run_prereg(args, runs, NoReport())
    assert runs.calls[:3] == [('pilot', 4000), ('pilot', 8000),
                              ('pilot', 16000)]
    assert not any(c[0] == 'seg' for c in runs.calls)


def test_preregistered_plan_trains_again_only_what_unrecorded_runs_need(
        tmp_path, monkeypatch):
    monkeypatch.setattr(order, 'load_probe_data', lambda args: [])
    args = parse_args(['--plan', 'prereg', '--seeds', '0'])
    probed = {
        f'probe/{name}/0': {}
        for name in ('none', 'mae@1', 'mae@3', 'mae@7', 'itpn-pixel@1',
                     'itpn-pixel@3', 'itpn-pixel@7')
    }
    trained = {'pretrain/mae/0': {}, 'pretrain/itpn-pixel/0': {}}
    dense = {f'seg/{init}/0': {} for init in 'abd'}
    # A new session: both pretrainings and their probes recorded, the work
    # dir gone. MAE is not trained again; the pixel run only to the epoch
    # the continuation arms start from.
    runs = PlanRecorder(tmp_path, {**probed, **trained, **dense})
    order.run_prereg(args, runs, NoReport())
    assert not any(c[0] == 'pilot' for c in runs.calls)
    assert [c for c in runs.calls
            if c[0] != 'probe'] == [('regenerate', 'itpn-pixel', 3),
                                    ('continuation', 'cont-pixel'),
                                    ('continuation', 'cont-mfm')]
    # The arms recorded too, the dense runs not: both pretrainings are
    # trained again to their last epoch, and only the missing runs run.
    arms = {'probe/cont-pixel/0': {}, 'probe/cont-mfm/0': {}}
    runs = PlanRecorder(tmp_path, {
        **probed,
        **trained,
        **arms,
        **PILOTS, 'seg/a/0': {},
        'seg/d/0': {}
    })
    order.run_prereg(args, runs, NoReport())
    assert runs.calls == [('probe', 'none', None),
                          ('regenerate', 'itpn-pixel', 7),
                          ('probe', 'itpn-pixel', 1),
                          ('probe', 'itpn-pixel', 3),
                          ('probe', 'itpn-pixel', 7), ('seg', 'b')]
    # Its work dir still there: nothing to regenerate (the run's own
    # record shortcut skips it).
    done = tmp_path / 'pretrain' / 'itpn-pixel' / 'seed0'
    done.mkdir(parents=True)
    (done / 'result.json').write_text('{}')
    runs = PlanRecorder(tmp_path, {**probed, **trained, **dense})
    order.run_prereg(args, runs, NoReport())
    assert ('pretrain', 'itpn-pixel') in runs.calls
    assert not any(c[0] == 'regenerate' for c in runs.calls)
    # Everything recorded: nothing is trained.
    runs = PlanRecorder(tmp_path, {**probed, **trained, **arms, **dense})
    order.run_prereg(args, runs, NoReport())
    assert runs.calls == [('probe', 'none', None)]
