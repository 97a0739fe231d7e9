# Copyright (c) mmitpn contributors. All rights reserved.
"""The runs of the plan ``decide``: its saved initialisations (common
random numbers), pretraining from them, probes with a held-out test, and the
low-label dense transfer and its pilot."""
import os.path as osp
from typing import Dict, Optional

from mmengine.config import Config

from . import probes
from .configs import decide_pretrain_config, decide_seg_config, pretrain_model
from .decisions import late_mean
from .design import (CANVAS_SEED, DENSE, DENSE_QUICK, PILOT_CANVAS_SEED,
                     PILOT_UNIT)
from .garments import make_garments_seg
from .inits import dense_init, shared_pretraining_init
from .plan import PREREG_OBJECTIVES
from .runs import Study, curve, read_scalars, train_run

# Dense-transfer initialisations: (backbone, pyramid) from the seed's
# pretrained itpn-pixel run, or from its saved initialisation ('none').
DENSE_PARTS = {
    'a': ('itpn-pixel', 'itpn-pixel'),
    'b': ('itpn-pixel', None),
    'd': ('none', None),
}


def dense_name(init: str, downstream: int, recipe: Optional[str] = None):
    """The record name of a dense run: ``a.ds200``, or with the pilot's
    recipe ``b.shipped.ds98``."""
    return '.'.join([init] + ([recipe] if recipe else []) +
                    [f'ds{downstream}'])


class DecideStudy(Study):
    """:class:`Study` for the plan ``decide``.

    Both pretraining objectives of a seed start from the seed's saved
    initialisation (``init/pretraining/<seed>`` in the record: the tensors
    they share and their digest); ``none`` is that initialisation. Probes
    pool by the mean only and test on images pretraining never saw. Dense
    runs start from a saved segmentor per downstream seed in which (a),
    (b) and (d) differ only in the part compared.
    """

    def __init__(self, args) -> None:
        super().__init__(args)
        self.dense = DENSE_QUICK if args.quick else DENSE

    # --------------------------------------------------- initialisations

    def init_paths(self, seed: int) -> Dict[str, str]:
        folder = osp.join(self.root, 'init', f'seed{seed}')
        return {
            objective: osp.join(folder, f'init_{objective}.pth')
            for objective in PREREG_OBJECTIVES
        }

    def pretraining_init(self, seed: int) -> dict:
        """The seed's saved initialisations, written when missing. The first
        writing is recorded (``init/pretraining/<seed>``); a later one (a new
        working period) is compared with it, and recorded when its digests
        differ (``init/rewritten/<seed>``: another CPU may round the
        initialisation differently; both objectives of the seed still
        share every tensor they share)."""
        paths = self.init_paths(seed)
        key = f'init/pretraining/{seed}'
        if key in self.record and all(map(osp.isfile, paths.values())):
            return self.record[key]
        models = {
            objective: pretrain_model(objective, self.args.mask_ratio)
            for objective in ('itpn-pixel', 'mae')
        }

        def write(work_dir):
            return shared_pretraining_init(models, seed, paths)

        if key not in self.record:
            return self.run('init', 'pretraining', seed, write)
        made = write(None)
        if made['files'] == self.record[key]['files']:
            self.log(f'  initialisations of seed {seed} written again, equal '
                     'to the recorded ones')
            return self.record[key]
        self.log(f'  initialisations of seed {seed} written again DIFFER '
                 'from the recorded ones')
        self.record.pop(f'init/rewritten/{seed}', None)
        return self.run('init', 'rewritten', seed, lambda work_dir: made)

    def checkpoint(self,
                   objective: str,
                   seed: int,
                   epoch: Optional[int] = None) -> Optional[str]:
        """As :meth:`Study.checkpoint`; ``none`` is the seed's saved
        initialisation (of the iTPN model: backbone and pyramid)."""
        if objective == 'none':
            self.pretraining_init(seed)
            return self.init_paths(seed)['itpn-pixel']
        return super().checkpoint(objective, seed, epoch)

    def pretrain_config(self, objective: str, seed: int) -> Config:
        self.pretraining_init(seed)
        return decide_pretrain_config(objective, self.args, seed,
                                      self.init_paths(seed)[objective])

    # ------------------------------------------------------------ probes

    def probe(self,
              objective: str,
              seed: int,
              data,
              epoch: Optional[int] = None) -> dict:
        """Probes of mean-pooled features (:func:`probes.probe_checkpoint`),
        tested on the held-out images of ``data``: ridge on the backbone's
        and the pyramid's, logistic regression (the headline) on the
        backbone's; of the random initialisation (``none``), the
        backbone's only."""
        return probes.probe_checkpoint(
            self,
            objective,
            seed,
            data,
            epoch,
            pools=('mean', ),
            none_model='mae',
            logistic_kinds=('backbone', ))

    # ------------------------------------------------------------- dense

    def dense_data(self, pilot: bool) -> str:
        """The garments set of the dense runs (converter seed
        ``CANVAS_SEED``) or of the pilot (``PILOT_CANVAS_SEED``), with the
        design's numbers of canvases; made once."""
        seed = PILOT_CANVAS_SEED if pilot else CANVAS_SEED
        data_root = osp.join(self.root, 'data',
                             'garments_seg_pilot' if pilot else 'garments_seg')
        options = dict(
            train=self.dense['train'], val=self.dense['val'], seed=seed)
        if self.args.fashion_mnist_root:
            options['fashion_mnist_root'] = self.args.fashion_mnist_root
        self._make_once(data_root,
                        lambda out: make_garments_seg(out, **options))
        return data_root

    def dense_run(self,
                  init: str,
                  seed: int,
                  downstream: int,
                  recipe: str,
                  pilot: bool = False) -> dict:
        """A dense-transfer run: initialisation ``init`` of pretraining seed
        ``seed``, downstream seed ``downstream``, fine-tuning ``recipe``;
        recorded as ``seg/<init>.ds<downstream>/<seed>`` or, in the pilot,
        ``pilot/<init>.<recipe>.ds<downstream>/<seed>``."""
        backbone, pyramid = DENSE_PARTS[init]
        data_root = self.dense_data(pilot)

        def fn(work_dir):
            init_file = osp.join(work_dir, 'init.pth')
            cfg = decide_seg_config(recipe, init_file, data_root, self.args,
                                    downstream, self.dense)
            made = dense_init(
                cfg.model, downstream, init_file,
                self.checkpoint(backbone, seed),
                None if pyramid is None else self.checkpoint(pyramid, seed))
            seconds = train_run(cfg, work_dir, self.log)
            points = curve(read_scalars(work_dir), 'mIoU')
            metric = late_mean(points, self.dense['last'])
            self.log(f'  mean of the last {self.dense["last"]} mIoU '
                     f'evaluations: {metric:.2f}')
            return dict(
                train_s=seconds,
                init=init,
                recipe=recipe,
                iters=self.dense['iters'],
                downstream_seed=downstream,
                init_file=made,
                metric=metric,
                curves=dict(mIoU=points))

        name = dense_name(init, downstream, recipe if pilot else None)
        return self.run('pilot' if pilot else 'seg', name, seed, fn)

    def pilot_run(self, init: str, downstream: int, recipe: str) -> dict:
        """A run of the dense pilot: pretraining unit ``PILOT_UNIT``, its own
        canvases."""
        return self.dense_run(init, PILOT_UNIT, downstream, recipe, pilot=True)
