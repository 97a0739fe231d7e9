# Copyright (c) mmitpn contributors. All rights reserved.
"""Inference time of ONNX Runtime vs PyTorch for a config's exported part.

The part (see ``tools/deployment/pytorch2onnx.py``) is built with random
weights, exported as the exporter does, and both runtimes are timed on the
CPU with the same number of threads: one forward of a random batch,
``--number`` forwards per measurement, the two runtimes interleaved for
``--rounds`` rounds with ``torch.utils.benchmark``; the median and the
fastest round are printed (on a shared machine the fastest is the least
disturbed one).

Example::

    python tools/benchmarks/benchmark_onnx.py \
    configs/cls/fast-itpn-base_clip-l-1600e-pre_32xb32-amp-coslr-20e_in1k.py \
        --part backbone --shape 224 --threads 1
"""
import argparse
import os.path as osp
import statistics
import tempfile

import torch
from mmengine.config import Config, DictAction
from torch.utils import benchmark

import mmitpn  # noqa: F401  (registers the mmitpn:: config prefix)
from mmitpn.benchmarks import describe_machine
from mmitpn.deployment import (PARTS, build_export_model, export_onnx,
                               onnx_max_abs_diff, static_shape_reason)
from mmitpn.utils.cli import (add_debug_argument, add_shape_argument,
                              image_shape, run_tool)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='config file')
    parser.add_argument('--part', choices=PARTS, default='backbone')
    add_shape_argument(parser)
    parser.add_argument('--batch', type=int, default=1)
    parser.add_argument(
        '--threads', type=int, default=1, help='threads of both runtimes')
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument(
        '--number', type=int, default=3, help='forwards per measurement')
    parser.add_argument(
        '--static',
        action='store_true',
        help='time a fixed-shape graph (default: the dynamic one the '
        'exporter writes)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config keys, e.g. model.backbone.window_size=7')
    add_debug_argument(parser)
    args = parser.parse_args()
    if min(args.threads, args.rounds, args.number, args.batch) < 1:
        parser.error('--threads, --rounds, --number and --batch must be '
                     'at least 1.')
    return args


def ort_session(path: str, threads: int):
    import onnxruntime
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    return onnxruntime.InferenceSession(
        path, options, providers=['CPUExecutionProvider'])


def main():
    args = parse_args()
    shape = image_shape(args.shape)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build_export_model(cfg, args.part)
    images = torch.randn(args.batch, 3, *shape)
    dynamic = not args.static and static_shape_reason(model) is None
    with tempfile.TemporaryDirectory() as folder:
        path = osp.join(folder, 'model.onnx')
        export_onnx(model, images, path, dynamic=dynamic)
        diff = max(onnx_max_abs_diff(path, model, images))
        session = ort_session(path, args.threads)
        feed = {'images': images.numpy()}
        timers = {
            'PyTorch (eager)':
            benchmark.Timer(
                'with torch.no_grad(): model(images)',
                globals=dict(torch=torch, model=model, images=images),
                num_threads=args.threads),
            'ONNX Runtime':
            benchmark.Timer(
                'session.run(None, feed)',
                globals=dict(session=session, feed=feed),
                num_threads=args.threads),
        }
        for timer in timers.values():  # warm-up (ORT plans its memory)
            timer.timeit(1)
        times = {name: [] for name in timers}
        for _ in range(args.rounds):
            for name, timer in timers.items():
                times[name].append(timer.timeit(args.number).median)
    print(f'{args.part} of {args.config}, input {args.batch}x3x{shape[0]}x'
          f'{shape[1]}, {"dynamic" if dynamic else "static"} ONNX graph, '
          f'max |diff| {diff:.2g}')
    machine = describe_machine(args.threads, gpu=False)
    print(f'machine: {machine}, {args.rounds} interleaved rounds of '
          f'{args.number}')
    reference = statistics.median(times['PyTorch (eager)'])
    print('| runtime | median ms | fastest ms | vs PyTorch |')
    print('|---|---|---|---|')
    for name, values in times.items():
        median = statistics.median(values)
        print(f'| {name} | {1e3 * median:.1f} | {1e3 * min(values):.1f} | '
              f'{reference / median:.2f}x |')


if __name__ == '__main__':
    run_tool(main)
