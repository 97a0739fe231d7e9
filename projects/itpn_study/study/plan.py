# Copyright (c) mmitpn contributors. All rights reserved.
"""What each plan of the study runs: model size, objectives, budgets, seeds,
and where its work dir, record, report and figures go."""
import os.path as osp
from dataclasses import dataclass
from typing import Optional

from mmitpn.datasets import FashionMNIST

PROJECT = osp.dirname(osp.dirname(osp.abspath(__file__)))
REPO = osp.dirname(osp.dirname(PROJECT))
# The study's pages and figures, and the records every table is rebuilt
# from.
PAGES = osp.join(PROJECT, 'docs')
RECORDS = osp.join(PROJECT, 'records')

GARMENT_CLASSES = ('background', ) + FashionMNIST.METAINFO['classes']
# The small HiViT every plan pretrains: 128-d, 1 + 1 MLP blocks, 4 attention
# blocks, 64 px images (4 x 4 units), a 64-d iTPN pyramid.
DIMS = 128
FPN_DIM = 64
ARCH = dict(embed_dims=DIMS, stem_mlp_blocks=(1, 1), depth=4, num_heads=4)
IMG = 64
OBJECTIVES = ('none', 'mae', 'itpn-pixel', 'itpn-pixel-mfm')
# MFM settings the paper leaves open (each against 'itpn-pixel-mfm':
# teacher momentum 0.01 -> 0, all levels, weight 1, per-unit LayerNorm).
MFM_VARIANTS = {
    'mfm-slow-teacher': dict(ema=dict(momentum=0.001, end_momentum=0.)),
    'mfm-p16-only': dict(level_weights=(0., 0., 1.)),
    'mfm-weight-0.1': dict(level_weights=(.1, .1, .1)),
}
# Integral transfer: (checkpoint's objective, load its pyramid too).
TRANSFER_INITS = {
    'a: iTPN backbone + pyramid': ('itpn-pixel', True),
    'b: iTPN backbone, fresh pyramid': ('itpn-pixel', False),
    'c: MAE-style backbone, fresh pyramid': ('mae', False),
    'd: no pretraining': ('none', False),
}
STAGES = ('pretrain', 'probe', 'finetune', 'seg', 'det')
# The logistic probe runs on mean-pooled features only: on the per-unit ones
# (1,024-12,288 dims) one path of exact fits is too slow on one CPU thread
# (ridge, closed form, covers them).
LOGISTIC_POOLS = ('mean', )
# The headline probe of the pre-registered plan.
HEADLINE = 'backbone/mean/logistic'

FULL = dict(
    pretrain_images=20000,
    pretrain_epochs=3,
    probe_train_images=10000,
    test_images=10000,
    finetune_images=3000,
    finetune_epochs=3,
    seg_iters=180,
    seg_points=6,
    det_images=80,
    det_epochs=6)
QUICK = dict(
    pretrain_images=256,
    pretrain_epochs=1,
    probe_train_images=256,
    test_images=256,
    finetune_images=256,
    finetune_epochs=1,
    seg_iters=12,
    seg_points=6,
    det_images=16,
    det_epochs=1)
# The pre-registered study (docs/itpn_study_preregistration.md): all 60,000
# training images, 7 epochs, probes of the checkpoints after epochs 1, 3 and
# 7; the MFM arm continues the pixel run's epoch-3 checkpoint to epoch 7.
PREREG = dict(
    probe_max_iter=1000,
    pretrain_images=60000,
    pretrain_epochs=7,
    continue_from=3,
    probe_train_images=20000,
    test_images=10000,
    seg_points=10)
PREREG_QUICK = dict(
    pretrain_images=64,
    pretrain_epochs=2,
    continue_from=1,
    probe_train_images=64,
    test_images=64,
    seg_points=5)
# The plan that can decide (docs/itpn_study_decide_preregistration.md):
# pretraining on the first 40,000 training images for 8 epochs, the next
# 20,000 held out for the probes' test with the 10,000 test images; the MFM
# arms continue the pixel run from epoch 4. Its seeds, claims, margins,
# gates and dense transfer are in design.py.
DECIDE = dict(
    probe_max_iter=1000,
    pretrain_images=40000,
    held_out_images=20000,
    pretrain_epochs=8,
    continue_from=4,
    probe_train_images=20000,
    test_images=10000)
DECIDE_QUICK = dict(
    pretrain_images=48,
    held_out_images=16,
    pretrain_epochs=2,
    continue_from=1,
    probe_train_images=48,
    test_images=16)
PREREG_OBJECTIVES = ('mae', 'itpn-pixel')
CONTINUATIONS = {'cont-pixel': 'itpn-pixel', 'cont-mfm': 'itpn-pixel-mfm'}
# The pretraining run whose checkpoint the continuation arms start from.
CONTINUATION_START = 'itpn-pixel'
PREREG_SEEDS = (0, 1, 2)
# The plan decide's pretraining seeds (its units; design.py says why six).
DECIDE_SEEDS = (0, 1, 2, 3, 4, 5)
# Dense transfer of pretraining seed k trains with downstream seed 100 + k.
DENSE_SEED_OFFSET = 100
# The initialisations the pre-registered dense transfer trains (G3: b - d;
# C3: a - b; the MAE-style backbone, c, decides nothing and is left out).
PREREG_DENSE_INITS = ('a', 'b', 'd')
# Its length: the first of these iteration counts at which a pilot run of
# (d) on its own canvases (converter seed and downstream seed 99) adds < 1
# mIoU over its last 20 %; no dense run if none does.
DENSE_LENGTHS = (4000, 8000, 16000)
DENSE_LENGTHS_QUICK = (10, )
DENSE_PILOT_SEED = 99
# The penalties the pre-registration names for every probe (per sample, one
# per decade); the grid may be extended beyond them on an edge.
REGISTERED_PENALTIES = (1e-7, 10.)


@dataclass(frozen=True)
class Plan:
    """One plan of the study and where its results live.

    Args:
        name (str): ``--plan`` value.
        title (str): The report's heading.
        page (str): The report, a file of ``docs/``.
        record (str): The record, a file of ``records/``.
        figures (str): The figures' folder under ``docs/figures/``.
        work_dir (str): Default work dir, relative to the working folder.
        logistic_solver (str, optional): The solver the logistic probes of
            the record were fitted with, where it is not the current one.
        runnable (bool): False for a plan whose runs the current code can no
            longer make (its report can still be rebuilt).
        finished (bool): False while the plan's runs are still being
            recorded: its committed page may lag its committed record.
    """

    name: str
    title: str
    page: str
    record: str
    figures: str
    work_dir: str
    logistic_solver: Optional[str] = None
    runnable: bool = True
    finished: bool = True

    @property
    def prereg(self) -> bool:
        return self.name == 'prereg'

    @property
    def decide(self) -> bool:
        return self.name == 'decide'


PLANS = {
    plan.name: plan
    for plan in (
        Plan('study', 'iTPN ablations at small scale (CPU)', 'itpn_study.md',
             'itpn_study_results.json', 'study', 'work_dirs/itpn_study'),
        # The probes of none, mae and itpn-pixel re-run with the fixed
        # probe, logistic regression then solved by L-BFGS (since replaced
        # by a Newton solver): only its report can be rebuilt.
        Plan(
            'rerun',
            'iTPN ablations at small scale (CPU): re-run of the probes with '
            'the fixed probe',
            'itpn_study_rerun.md',
            'itpn_study_rerun_results.json',
            'rerun',
            'work_dirs/itpn_study_rerun',
            logistic_solver='L-BFGS',
            runnable=False),
        Plan('prereg', 'Pre-registered iTPN study at small scale (CPU)',
             'itpn_study_prereg.md', 'itpn_study_prereg_results.json',
             'prereg', 'work_dirs/itpn_prereg'),
        Plan(
            'decide', 'A study that can decide: iTPN at small scale (CPU), '
            'pre-registered with a power analysis',
            'itpn_study_decide.md',
            'itpn_study_decide_results.json',
            'decide',
            'work_dirs/itpn_decide',
            finished=False),
    )
}


def budgets(plan: Plan, quick: bool) -> dict:
    """The budgets a plan runs with (``--quick``: tiny ones)."""
    budget = dict(FULL, probe_max_iter=1000)
    if quick:
        budget.update(QUICK)
    if plan.prereg:
        budget.update(PREREG_QUICK if quick else PREREG)
    if plan.decide:
        budget.update(DECIDE_QUICK if quick else DECIDE)
    return budget


def dense_lengths(args) -> tuple:
    """The pilot lengths of the pre-registered dense transfer."""
    return DENSE_LENGTHS_QUICK if args.quick else DENSE_LENGTHS


def resolve(args) -> None:
    """Fill the options left unset with the plan's budgets and places: the
    report, figures and record of a full run are the project's own; a
    ``--quick`` run keeps its record in its work dir."""
    plan = PLANS[args.plan]
    if getattr(args, 'seeds', None) is None:
        args.seeds = list(DECIDE_SEEDS if plan.decide else PREREG_SEEDS)
    for key, value in budgets(plan, args.quick).items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    if args.work_dir is None:
        args.work_dir = plan.work_dir
    if args.out is None:
        args.out = osp.join(PAGES, plan.page)
    if args.fig_dir is None:
        args.fig_dir = osp.join(PAGES, 'figures', plan.figures)
    if args.record is None:
        args.record = osp.join(args.work_dir if args.quick else RECORDS,
                               plan.record)
