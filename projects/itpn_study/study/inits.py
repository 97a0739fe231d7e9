# Copyright (c) mmitpn contributors. All rights reserved.
"""Common random numbers: saved initialisations shared by the runs a
comparison pairs.

The pre-registered plan ``decide`` starts the MAE-style and the iTPN pixel
pretraining of a seed from one saved initialisation (every tensor the two
models share by name and shape), and the dense-transfer runs (a), (b) and
(d) of a downstream seed from one saved segmentor that differs between them
only in the part compared (pretrained or fresh pyramid, pretrained or
random backbone). Each file is a function of its seed and the configs, so a
later working period writes it again bit for bit (its digest is recorded).
"""
import hashlib
import io
import logging
import os
import os.path as osp
from typing import Dict, Iterable, Optional

import torch
from mmengine.logging import MMLogger
from mmengine.registry import DefaultScope
from mmengine.runner import set_random_seed

from mmitpn.utils import (extract_state_dict, load_checkpoint_file,
                          write_atomically)

State = Dict[str, torch.Tensor]


def digest(state: State, keys: Optional[Iterable[str]] = None) -> str:
    """SHA-256 of the tensors ``keys`` (default: all) of a state dict, in
    key order: names, shapes, dtypes and bytes."""
    sha = hashlib.sha256()
    for key in sorted(state if keys is None else keys):
        tensor = state[key].detach().cpu().contiguous()
        sha.update(f'{key}|{tuple(tensor.shape)}|{tensor.dtype}|'.encode())
        sha.update(tensor.numpy().tobytes())
    return sha.hexdigest()


def save_state(state: State, path: str, meta: dict) -> None:
    """Write ``{'state_dict': state, 'meta': meta}`` so that the file is
    absent or complete (a Runner's ``load_from`` reads it tensors-only)."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    buffer = io.BytesIO()
    torch.save(dict(state_dict=state, meta=meta), buffer)
    write_atomically(buffer.getvalue(), path)


def built_state(model_cfg: dict, seed: int, scope: str) -> State:
    """The state dict of ``model_cfg`` built in registry scope ``scope``
    after seeding Python, numpy and torch with ``seed``, its weights
    initialised (``init_weights``) as a Runner would before loading."""
    from mmengine.registry import MODELS
    set_random_seed(seed)
    # init_weights logs every tensor's initialisation at INFO.
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        with DefaultScope.overwrite_default_scope(scope):
            model = MODELS.build(model_cfg)
            model.init_weights()
    finally:
        logger.setLevel(level)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def shared_pretraining_init(models: Dict[str, dict], seed: int,
                            paths: Dict[str, str]) -> dict:
    """Write one initialisation per pretraining objective, sharing every
    tensor that the objectives' models have with the same name and shape.

    The first model of ``models`` is built from ``seed`` and saved as it
    is; each other is built from ``seed`` too, then takes the first's
    tensors wherever name and shape agree.

    Args:
        models (dict): Model config per objective (``mmitpn`` scope).
        seed (int): The pretraining seed.
        paths (dict): Where each objective's initialisation goes.

    Returns:
        dict: ``shared`` (number of tensors shared by all objectives),
        ``own`` (per objective, the top-level parts of its tensors that are
        not shared, with their count), ``digest`` (of the shared tensors)
        and ``files`` (digest of each file's state).
    """
    names = list(models)
    first = built_state(models[names[0]], seed, 'mmitpn')
    states = {names[0]: first}
    shared = set(first)
    for name in names[1:]:
        state = built_state(models[name], seed, 'mmitpn')
        common = {
            k
            for k in state if k in first and first[k].shape == state[k].shape
        }
        state.update({k: first[k].clone() for k in common})
        shared &= common
        states[name] = state
    own = {}
    for name, state in states.items():
        parts: Dict[str, int] = {}
        for key in sorted(set(state) - shared):
            part = '.'.join(key.split('.')[:2])
            parts[part] = parts.get(part, 0) + 1
        own[name] = parts
    files = {}
    for name, state in states.items():
        save_state(state, paths[name], dict(seed=seed, objective=name))
        files[name] = digest(state)
    return dict(
        shared=len(shared), own=own, digest=digest(first, shared), files=files)


def _take(state: State, source: str, prefix: str) -> dict:
    """Replace the ``prefix`` tensors of ``state`` with those of the
    checkpoint ``source``; returns its missing and unexpected keys."""
    weights = {
        k: v
        for k, v in extract_state_dict(load_checkpoint_file(source)).items()
        if k.startswith(prefix)
    }
    if not weights:
        raise KeyError(f'{source} has no {prefix}* tensors.')
    own = {k for k in state if k.startswith(prefix)}
    missing = sorted(own - set(weights))
    unexpected = sorted(set(weights) - own)
    for key in own & set(weights):
        if weights[key].shape != state[key].shape:
            raise ValueError(
                f'{source}: {key} has shape {tuple(weights[key].shape)}, '
                f'the segmentor {tuple(state[key].shape)}.')
        state[key] = weights[key].clone()
    return dict(missing=missing, unexpected=unexpected)


def dense_init(model_cfg: dict, seed: int, path: str, backbone: str,
               pyramid: Optional[str]) -> dict:
    """Write a segmentor's initialisation: built from ``seed`` (heads and
    a fresh pyramid), its ``backbone.*`` tensors taken from the checkpoint
    ``backbone``, and its ``neck.*`` ones from ``pyramid`` when given.

    Two inits of the same ``model_cfg`` and ``seed`` differ only in the
    tensors taken from different checkpoints.

    Returns:
        dict: The missing and unexpected keys of each part loaded, and the
        digest of the state written and of its heads (``decode_head``,
        ``auxiliary_head``).
    """
    state = built_state(model_cfg, seed, 'mmseg')
    loaded = dict(backbone=_take(state, backbone, 'backbone.'))
    if pyramid is not None:
        loaded['neck'] = _take(state, pyramid, 'neck.')
    save_state(state, path, dict(seed=seed))
    heads = [
        k for k in state if k.startswith(('decode_head.', 'auxiliary_head.'))
    ]
    return dict(
        loaded=loaded, digest=digest(state), heads=digest(state, heads))
