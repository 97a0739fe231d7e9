# Copyright (c) mmitpn contributors. All rights reserved.
"""Make configs written for GPU clusters run on the machine at hand."""
import datetime
import json
import logging
import os
import os.path as osp
from typing import Optional, Tuple

import torch
from mmengine.config import Config
from mmengine.logging import print_log

GPU_ONLY_WRAPPER_KEYS = ('loss_scale', 'dtype', 'use_fsdp')


def _replace_sync_bn(node) -> bool:
    """SyncBN -> BN everywhere in a config tree; True if anything changed."""
    changed = False
    if isinstance(node, dict):
        if node.get('type') == 'SyncBN':
            node['type'] = 'BN'
            changed = True
        for value in node.values():
            changed |= _replace_sync_bn(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            changed |= _replace_sync_bn(value)
    return changed


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 matrices in hardware.

    AVX512-BF16 or AMX tiles (Cooper Lake, Sapphire Rapids, Zen 4 and
    later). Elsewhere (e.g. AVX2-only Zen 3) PyTorch falls back to a
    single-threaded reference GEMM for parts of the bf16 backward: a
    pretraining step measured over 100x slower than fp32.
    """
    checks = ('_is_avx512_bf16_supported', '_is_amx_tile_supported')
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def describe_cpu() -> str:
    """PyTorch's vector capability and bf16 support, for logs and tables."""
    capability = torch.backends.cpu.get_cpu_capability()
    bf16 = 'native bf16' if cpu_has_native_bf16() else 'no native bf16'
    return f'{capability}, {bf16}'


def adapt_cfg_to_device(cfg: Config, amp: bool = False) -> Config:
    """Adjust precision and the distributed backend to the available device.

    - ``amp`` (``--amp``): on a GPU, mmengine's ``AmpOptimWrapper`` with a
      dynamic loss scale; without CUDA, :class:`AutocastOptimWrapper` in
      bfloat16 (``AmpOptimWrapper`` refuses to run on the CPU) where the
      CPU has native bf16 (:func:`cpu_has_native_bf16`), otherwise fp32
      with one log line.
    - Without CUDA, configs that ask for ``AmpOptimWrapper`` run in fp32,
      the ``nccl`` backend becomes ``gloo``, DDP wraps CPU modules
      (``device_ids=None``), ``SyncBN`` (GPU only) becomes ``BN`` and data
      loaders do not pin memory; one log line says so.
    """
    wrapper = cfg.get('optim_wrapper') or {}
    wrapper_type = wrapper.get('type', 'OptimWrapper')
    has_cuda = torch.cuda.is_available()
    if amp:
        if wrapper_type not in ('OptimWrapper', 'AmpOptimWrapper',
                                'AutocastOptimWrapper',
                                'mmitpn.AutocastOptimWrapper'):
            raise ValueError(f'--amp needs an OptimWrapper config, got '
                             f'{wrapper_type}.')
        for key in GPU_ONLY_WRAPPER_KEYS:
            wrapper.pop(key, None)
        if has_cuda:
            wrapper.update(type='AmpOptimWrapper', loss_scale='dynamic')
        elif cpu_has_native_bf16():
            wrapper.update(
                type='mmitpn.AutocastOptimWrapper',
                dtype='bfloat16',
                device_type='cpu')
        else:
            wrapper['type'] = 'OptimWrapper'
    if has_cuda:
        return cfg
    if amp and cpu_has_native_bf16():
        precision = 'bf16 autocast (--amp)'
    elif amp:
        precision = (f'fp32: --amp ignored, this CPU ({describe_cpu()}) has '
                     'no native bf16 and bf16 autocast would run far slower')
    elif wrapper_type == 'AmpOptimWrapper':
        for key in GPU_ONLY_WRAPPER_KEYS:
            wrapper.pop(key, None)
        wrapper['type'] = 'OptimWrapper'
        precision = ('fp32 instead of the AmpOptimWrapper of the config '
                     '(pass --amp for bf16 autocast)')
    else:
        precision = 'fp32'
    if cfg.get('model') is not None and _replace_sync_bn(cfg.model):
        precision += ', BN instead of SyncBN'
    dist_cfg = cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})
    if dist_cfg.get('backend', 'nccl') == 'nccl':
        dist_cfg['backend'] = 'gloo'
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        if cfg.get(loader) is not None:
            cfg[loader]['pin_memory'] = False
    if cfg.get('launcher', 'none') != 'none':
        cfg.setdefault('model_wrapper_cfg',
                       dict(type='MMDistributedDataParallel'))
        cfg.model_wrapper_cfg.setdefault('device_ids', None)
    print_log(
        f'No CUDA device: training on the CPU in {precision}, with the '
        f'{dist_cfg["backend"]} backend for distributed runs.',
        logger='current',
        level=logging.WARNING)
    return cfg


def init_distributed(launcher: str, dist_cfg: Optional[dict] = None) -> None:
    """Start the process group for ``--launcher pytorch`` where mmengine's
    own start would fail; elsewhere leave it to mmengine.

    - Without CUDA: mmengine's start calls ``torch.cuda.set_device``, which
      fails on machines without a GPU; a gloo group is started instead.
    - In a process that torchrun restarted (``TORCHELASTIC_RESTART_COUNT``
      above 0): the job's store still holds the keys of the first attempt,
      so a process could read the address of a peer that no longer exists
      and fail to connect (gloo: "connectFullMesh ... Connection refused")
      or wait on it. The group starts under a key prefix of its attempt.

    With the group started, mmengine skips its own start. ``torchrun``
    provides the rank and address variables.

    Args:
        launcher: The config's ``launcher``.
        dist_cfg: ``env_cfg.dist_cfg`` of the config (its ``backend`` and
            ``timeout`` in seconds are used on a GPU).
    """
    if launcher != 'pytorch' or torch.distributed.is_initialized():
        return
    attempt = int(os.environ.get('TORCHELASTIC_RESTART_COUNT', '0'))
    cuda = torch.cuda.is_available()
    if cuda and attempt == 0:
        return
    dist_cfg = dict(dist_cfg or {})
    backend = dist_cfg.get('backend', 'nccl') if cuda else 'gloo'
    if cuda:
        torch.cuda.set_device(int(os.environ['LOCAL_RANK']))
    options = {}
    if dist_cfg.get('timeout') is not None:
        options['timeout'] = datetime.timedelta(seconds=dist_cfg['timeout'])
    store, rank, world_size = next(torch.distributed.rendezvous('env://'))
    torch.distributed.init_process_group(
        backend,
        store=torch.distributed.PrefixStore(f'attempt_{attempt}', store),
        rank=rank,
        world_size=world_size,
        **options)


def _dataset_files(cfg: Config, stages: Tuple[str, ...]):
    """(key, path) of every annotation file a config's loaders and
    evaluators of ``stages`` name."""
    for stage in stages:
        loader = cfg.get(f'{stage}_dataloader') or {}
        datasets = [loader.get('dataset') or {}]
        while datasets:
            dataset = datasets.pop()
            datasets += list(dataset.get('datasets') or [])
            if dataset.get('dataset'):
                datasets.append(dataset['dataset'])
            if dataset.get('ann_file'):
                yield (f'{stage}_dataloader.dataset.ann_file',
                       osp.join(
                           dataset.get('data_root') or '',
                           dataset['ann_file']))
        evaluators = cfg.get(f'{stage}_evaluator') or []
        if not isinstance(evaluators, list):
            evaluators = [evaluators]
        for evaluator in evaluators:
            if evaluator.get('ann_file'):
                yield f'{stage}_evaluator.ann_file', evaluator['ann_file']


ALL_STAGES = ('train', 'val', 'test')


def check_data_files(cfg: Config,
                     stages: Tuple[str, ...] = ALL_STAGES,
                     parse_json: bool = False) -> None:
    """Raise an error naming the file and the config key when an annotation
    file that the loaders or evaluators of ``stages`` need is missing or,
    with ``parse_json``, is malformed JSON.

    mmdet's COCO loader raises a bare ``JSONDecodeError`` that names no
    file; parsing is optional because a full COCO annotation file takes
    seconds to parse, so tools check existence before building the runner
    and parse only to explain such an error.
    """
    for key, path in _dataset_files(cfg, stages):
        if not osp.isfile(path):
            raise FileNotFoundError(
                f'{key} names {path}, which does not exist; create it (see '
                'tools/dataset_converters/) or set data_root.')
        if parse_json and path.endswith('.json'):
            with open(path) as f:
                try:
                    json.load(f)
                except json.JSONDecodeError as error:
                    raise ValueError(
                        f'{path} ({key}) is not valid JSON: {error.msg} at '
                        f'line {error.lineno} column {error.colno}; '
                        'regenerate or fix the annotation file.') from None
