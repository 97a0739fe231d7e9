# Copyright (c) mmitpn contributors. All rights reserved.
"""Preemption end to end: a run stopped by a real signal in the middle of an
epoch and resumed repeats an uninterrupted run exactly (the same samples,
inputs, losses and learning rates at every iteration, the same final
weights bit for bit) for pixel, pixel + MFM and CLIP pretraining, a
fine-tuning and a detection config, on one process and on two gloo
processes; tools/train.py stops on SIGTERM (twice, the second during the
save) with data-loader workers; torchrun restarts a crashed job from its
iteration checkpoint; tools/slurm_train.sh requeues."""
import copy
import glob
import json
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import pytest
import torch
from dataset_layouts import write_fashion_mnist
from mmengine.config import Config
from pretrain_shrink import shrink, write_images
from test_train_resume_and_dist import REPO, write_configs

CLIP = osp.join(REPO, 'configs', 'pretrain',
                'itpn-clip-b_itpn-base_64xb32-amp-coslr-300e_in1k.py')
CLS = osp.join(REPO, 'configs', 'cls', 'demo',
               'hivit-demo_skimage-pre_1xb64-coslr-6e_fashion-mnist-64px.py')
DET = osp.join(
    REPO, 'configs', 'det', 'demo',
    'hivit-demo_skimage-pre_mask-rcnn_1xb4-6e_shapes-coco-128px.py')
TINY = dict(embed_dims=64, stem_mlp_blocks=(1, 1), depth=2, num_heads=4)
RUNS = osp.join(REPO, 'tests', 'preemption_runs.py')
# One thread per process: no oversubscription of the cores.
ENV = dict(
    os.environ,
    PYTHONPATH=os.pathsep.join([REPO, osp.join(REPO, 'tests')]),
    OMP_NUM_THREADS='1')
# Where the signals land, per config: before which iteration (0-based), on
# which ranks. Two epochs of 4 iterations each; stopping before iteration 3
# stops at the end of epoch 1, before its after-epoch hooks.
SIGNALS = {
    1:
    dict(
        pixel=[dict(iteration=2)],
        mfm=[dict(iteration=5, signal='SIGTERM')],
        clip=[dict(iteration=3)],
        cls=[dict(iteration=1)],
        det=[dict(iteration=2, signal='SIGTERM')]),
    # Only some ranks, or the ranks at different iterations.
    2:
    dict(
        pixel=[dict(iteration=2, ranks=[1])],
        mfm=[
            dict(iteration=2, ranks=[0]),
            dict(iteration=3, ranks=[1], signal='SIGTERM')
        ],
        clip=[dict(iteration=5)],
        cls=[dict(iteration=3, ranks=[1])],
        det=[dict(iteration=1, ranks=[0])]),
}


def preemption_safe(cfg):
    """``cfg``, which has the settings of the guide
    (docs/user_guides/distributed_training.md, "Preemption, time limits and
    restarts") from the shipped config it inherits: they are the default."""
    assert cfg.train_cfg.type.endswith('ResumableEpochBasedTrainLoop')
    hooks = [h.type.split('.')[-1] for h in cfg.custom_hooks]
    assert 'IterationSeedHook' in hooks and 'PreemptionHook' in hooks, hooks
    return cfg


def recorded_short_run(cfg):
    """2 epochs without validation, every sample recorded."""
    cfg.custom_hooks.append(dict(type='mmitpn.RecordSamplesHook'))
    cfg.default_hooks.checkpoint.update(interval=1, max_keep_ckpts=1)
    cfg.train_cfg.max_epochs = 2
    for stage in ('val', 'test'):
        for key in ('dataloader', 'evaluator', 'cfg'):
            cfg[f'{stage}_{key}'] = None
    cfg.randomness.seed = 0
    return cfg


def pretraining_configs(root, batch):
    """Pixel, pixel + MFM and CLIP pretraining on 16 images, tiny."""
    base, _ = write_configs(root, kill_at=0)
    mfm = Config.fromfile(base)
    mfm.train_dataloader.batch_size = batch
    pixel = copy.deepcopy(mfm)
    pixel.model.update(mfm_head=None, ema=None)
    (root / 'clip').mkdir()
    clip = shrink(Config.fromfile(CLIP), root / 'clip')
    clip.train_dataloader.update(batch_size=batch)
    clip.train_dataloader.dataset.data_root = write_images(
        root / 'clip' / 'images16', count=16)
    return dict(pixel=pixel, mfm=mfm, clip=clip)


def cls_config(fashion_mnist_root, batch):
    """The Fashion-MNIST fine-tuning demo, tiny, on 16 images, with its
    augmentations and drop path, from a random backbone."""
    cfg = Config.fromfile(CLS)
    cfg.model.backbone.update(arch=TINY, img_size=64, init_cfg=None)
    cfg.model.head.in_channels = 64
    cfg.train_dataloader.batch_size = batch
    cfg.train_dataloader.dataset.update(
        data_root=fashion_mnist_root, indices=16)
    return cfg


def det_config(shapes_coco, batch):
    """The Mask R-CNN demo, tiny, on 8 generated images with its flips and
    AspectRatioBatchSampler, from a random backbone and pyramid."""
    cfg = Config.fromfile(DET)
    cfg.model.backbone.update(arch=TINY, img_size=64, init_cfg=None)
    cfg.model.neck.update(embed_dims=64, init_cfg=None)
    cfg.train_dataloader.batch_size = batch
    cfg.train_dataloader.dataset.data_root = shapes_coco
    # Fewer proposals and RoIs: the iteration takes a fraction of a second.
    cfg.model.train_cfg.rpn_proposal.max_per_img = 50
    cfg.model.train_cfg.rcnn.sampler.num = 32
    return cfg


@pytest.fixture(scope='module')
def runs(tmp_path_factory, make_fashion_mnist_module):
    """The configs of both process counts (written once) and their
    reference runs (trained once, on demand)."""
    root = tmp_path_factory.mktemp('preemption')
    shapes = str(root / 'shapes_coco')
    subprocess.run([
        sys.executable,
        osp.join(REPO, 'tools', 'dataset_converters', 'make_shapes_coco.py'),
        shapes, '--train', '8', '--val', '1', '--size', '64'
    ],
                   check=True,
                   capture_output=True)
    fashion = make_fashion_mnist_module(16)
    return Runs(root, shapes, fashion)


@pytest.fixture(scope='module')
def make_fashion_mnist_module(tmp_path_factory):
    return lambda count: write_fashion_mnist(
        tmp_path_factory.mktemp('fm') / 'fashion-mnist', count)


class Runs:

    def __init__(self, root, shapes, fashion):
        self.root = root
        self.configs = {}
        for processes in (1, 2):
            folder = root / f'{processes}_process'
            folder.mkdir()
            # 4 iterations per epoch on either process count.
            batch = 4 // processes
            cfgs = pretraining_configs(folder, batch)
            cfgs.update(
                cls=cls_config(fashion, batch),
                det=det_config(shapes, 2 // processes))
            self.configs[processes] = {}
            for name, cfg in cfgs.items():
                path = str(folder / f'{name}.py')
                recorded_short_run(preemption_safe(cfg)).dump(path)
                self.configs[processes][name] = path
        self.trained = set()

    def folder(self, processes):
        return str(self.root / f'{processes}_process')

    def run(self, processes, phase, names, signals=None, port=29561):
        command = [
            RUNS, phase,
            self.folder(processes),
            *[self.configs[processes][n] for n in names], '--stops',
            json.dumps(signals or {})
        ]
        if processes == 1:
            command = [sys.executable] + command
        else:
            command = [
                sys.executable, '-m', 'torch.distributed.run',
                '--nproc_per_node', '2', '--master_port',
                str(port)
            ] + command
        run = subprocess.run(command, capture_output=True, text=True, env=ENV)
        assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
        last = phase.split(',')[-1]
        return [
            json.load(
                open(osp.join(self.folder(processes), f'{last}_rank{r}.json')))
            for r in range(processes)
        ]

    def reference(self, processes, names):
        """Train the reference runs of ``names`` that are not yet."""
        missing = [n for n in names if (processes, n) not in self.trained]
        if missing:
            self.run(processes, 'reference', missing)
            self.trained.update((processes, n) for n in missing)
        return self.work_dirs(processes, names, 'reference')

    def work_dirs(self, processes, names, kind):
        return {n: osp.join(self.folder(processes), n, kind) for n in names}


def records(work_dir, rank):
    """The last record of each iteration (a resumed run repeats the
    iterations after its checkpoint)."""
    with open(osp.join(work_dir, f'samples_rank{rank}.jsonl')) as f:
        lines = [json.loads(line) for line in f]
    return list({r['iter']: r for r in lines}.values())


def assert_same_run(reference, continued, processes):
    """Per rank: the same samples, inputs, losses and learning rates at
    every iteration, and bitwise the same final weights."""
    for rank in range(processes):
        expected = records(reference, rank)
        assert len(expected) == 8
        assert records(continued, rank) == expected, rank
        final = [
            torch.load(osp.join(d, f'final_rank{rank}.pt'), weights_only=True)
            for d in (reference, continued)
        ]
        for key, value in final[0].items():
            assert torch.equal(value, final[1][key]), key


@pytest.mark.parametrize('processes', [1, 2], ids=['1 process', '2 gloo'])
def test_signal_then_resume_is_exact(runs, processes):
    names = list(SIGNALS[processes])
    # The reference runs and the stopped ones share a process, the resumed
    # ones start afresh.
    for outcome in runs.run(processes, 'reference,stopped', names,
                            SIGNALS[processes]):
        for name in names:
            signal_at = min(s['iteration'] for s in SIGNALS[processes][name])
            assert outcome[name] == dict(
                finished=False, iter=signal_at, exit_code=75), name
    runs.trained.update((processes, name) for name in names)
    for outcome in runs.run(processes, 'resumed', names):
        assert all(outcome[n] == dict(finished=True, iter=8) for n in names)
    references = runs.work_dirs(processes, names, 'reference')
    for name, stopped in runs.work_dirs(processes, names, 'stopped').items():
        assert_same_run(references[name], stopped, processes)
    teacher = torch.load(
        osp.join(references['mfm'], 'final_rank0.pt'), weights_only=True)
    assert any(key.startswith('teacher.') for key in teacher)


def wait_for(condition, process, timeout=300):
    """Poll ``condition`` until true; fail if ``process`` ends first."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, 'the run ended too early'
        assert time.monotonic() < deadline, 'timed out'
        time.sleep(0.01)


def test_train_py_stops_on_sigterm_with_workers_and_resumes(runs, tmp_path):
    """tools/train.py, 2 persistent data-loader workers: SIGTERM to the
    process group mid-epoch, a second one during the save; exit code 75,
    then --resume. The continuation equals the reference run, which loaded
    its data in the training process."""
    reference = runs.reference(1, ['mfm'])['mfm']
    cfg = Config.fromfile(runs.configs[1]['mfm'])
    cfg.train_dataloader.update(num_workers=2, persistent_workers=True)
    cfg.custom_imports = dict(
        imports=['distributed_probe', 'fault_injection'],
        allow_failed_imports=False)
    config = str(tmp_path / 'workers.py')
    cfg.dump(config)
    cfg.custom_hooks.append(dict(type='SlowSaveHook'))
    slow_config = str(tmp_path / 'workers_slow_save.py')
    cfg.dump(slow_config)
    work_dir = tmp_path / 'work_dir'
    log = open(tmp_path / 'stopped.log', 'w')
    process = subprocess.Popen([
        sys.executable,
        osp.join(REPO, 'tools', 'train.py'), slow_config, '--work-dir',
        str(work_dir)
    ],
                               stdout=log,
                               stderr=subprocess.STDOUT,
                               env=ENV,
                               start_new_session=True)
    samples = work_dir / 'samples_rank0.jsonl'
    wait_for(
        lambda: samples.exists() and len(samples.read_text().split('\n')) > 2,
        process)
    os.killpg(process.pid, signal.SIGTERM)
    signalled = time.monotonic()
    wait_for((work_dir / 'saving').exists, process)
    os.killpg(process.pid, signal.SIGTERM)
    assert process.wait(timeout=300) == 75
    seconds = time.monotonic() - signalled
    output = (tmp_path / 'stopped.log').read_text()
    assert 'SIGTERM received: saving a checkpoint after iteration' in output
    assert '1 more signal(s) arrived during the save and changed nothing' \
        in output, output[-3000:]
    print(f'SIGTERM to exit: {seconds:.2f} s (64 MiB checkpoint padding)')
    stop = json.loads((work_dir / 'preempted.json').read_text())
    assert 0 < stop['iteration'] < 8
    assert osp.basename(stop['checkpoint']) == f'iter_{stop["iteration"]}.pth'
    assert not glob.glob(str(work_dir / '.*.tmp'))
    torch.load(stop['checkpoint'], weights_only=True)

    run = subprocess.run([
        sys.executable,
        osp.join(REPO, 'tools', 'train.py'), config, '--work-dir',
        str(work_dir), '--resume'
    ],
                         capture_output=True,
                         text=True,
                         env=ENV)
    assert run.returncode == 0, run.stderr[-3000:]
    assert f'after its batch {stop["iteration"] % 4 or 4} of 4' in \
        run.stdout + run.stderr
    assert_same_run(reference, str(work_dir), 1)


def test_torchrun_restart_resumes_from_iteration_checkpoint(runs, tmp_path):
    """dist_train.sh with MAX_RESTARTS=1 and a checkpoint every 2
    iterations: rank 1 dies before iteration 6; torchrun restarts both
    processes, which resume from iteration 4 by themselves and end as the
    uninterrupted run."""
    reference = runs.reference(2, ['pixel'])['pixel']
    cfg = Config.fromfile(runs.configs[2]['pixel'])
    cfg.default_hooks.checkpoint.update(iter_interval=2)
    cfg.custom_hooks.append(
        dict(type='CrashAtIterationHook', iteration=5, rank=1))
    cfg.custom_imports = dict(
        imports=['distributed_probe', 'fault_injection'],
        allow_failed_imports=False)
    config = str(tmp_path / 'crash.py')
    cfg.dump(config)
    work_dir = str(tmp_path / 'work_dir')
    run = subprocess.run([
        osp.join(REPO, 'tools', 'dist_train.sh'), config, '2', '--work-dir',
        work_dir
    ],
                         capture_output=True,
                         text=True,
                         env=dict(
                             ENV,
                             PYTHON=sys.executable,
                             PORT='29573',
                             MAX_RESTARTS='1'))
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-3000:]
    assert 'Restart 1 of this job: resuming from the latest checkpoint' \
        in output
    assert 'resumed epoch: 1, iter: 4' in output
    assert_same_run(reference, work_dir, 2)


def fake_program(path, script):
    path.write_text('#!/usr/bin/env bash\n' + script)
    path.chmod(0o755)


@pytest.mark.parametrize(
    'inside_sbatch', [False, True], ids=['login node', 'sbatch job'])
def test_slurm_train_sh_requeues_a_stopped_job(tmp_path, inside_sbatch):
    """A fake srun plays a job stopped by a signal (the stop record is
    written, srun reports 137 as after killing a process that was still
    exiting), then a job that finishes."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    calls, work_dir = tmp_path / 'calls', tmp_path / 'work_dir'
    work_dir.mkdir()
    fake_program(
        bin_dir / 'srun', f"""echo "srun $*" >> {calls}
if [ ! -f {tmp_path}/stopped_once ]; then
  touch {tmp_path}/stopped_once {work_dir}/preempted.json
  exit 137
fi
""")
    fake_program(bin_dir / 'scontrol', f'echo "scontrol $*" >> {calls}\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith('SLURM_')}
    env.update(PATH=f'{bin_dir}:{env["PATH"]}', PYTHON='python3')
    if inside_sbatch:
        env['SLURM_JOB_ID'] = '42'

    def slurm_train(**variables):
        (tmp_path / 'stopped_once').unlink(missing_ok=True)
        calls.unlink(missing_ok=True)
        run = subprocess.run([
            osp.join(REPO, 'tools', 'slurm_train.sh'), 'gpu', 'itpn', 'CONFIG',
            str(work_dir), '--amp'
        ],
                             capture_output=True,
                             text=True,
                             env=dict(env, **variables),
                             timeout=30)
        return run, calls.read_text().splitlines()

    run, lines = slurm_train()
    if inside_sbatch:
        # The batch script is requeued; its rerun resumes by itself
        # (SLURM_RESTART_COUNT, see mmitpn.engine.resume_if_restarted).
        assert run.returncode == 75, run.stderr
        assert len(lines) == 2 and lines[1] == 'scontrol requeue 42'
        assert '--signal' not in lines[0]
        assert 'requeueing job 42' in run.stderr
    else:
        assert run.returncode == 0, run.stderr
        assert len(lines) == 2
        assert '--signal=USR1@120' in lines[0] and '--kill-on-bad-exit=1' \
            in lines[0]
        assert lines[0].endswith('--launcher=slurm --amp')
        assert lines[1].endswith('--launcher=slurm --amp --resume')
        assert 'starting it again (1 of MAX_REQUEUES=10)' in run.stderr
    run, lines = slurm_train(MAX_REQUEUES='0', SIGNAL='')
    assert run.returncode == 75
    assert len(lines) == 1 and '--signal' not in lines[0]
    assert 'not requeued (0 of MAX_REQUEUES=0 done)' in run.stderr
    # A job that fails without a stop record is not requeued.
    fake_program(bin_dir / 'srun', f'echo "srun $*" >> {calls}\nexit 3\n')
    run, lines = slurm_train()
    assert run.returncode == 3 and len(lines) == 1
