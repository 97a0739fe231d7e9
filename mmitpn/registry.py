# Copyright (c) mmitpn contributors. All rights reserved.
"""Registries of mmitpn, children of MMEngine's root registries.

Each registry knows where its classes live (``locations``), so a config can
name ``type='mmitpn.HiViT'`` from an mmdet, mmseg or mmpretrain scope, or
``type='HiViT'`` under ``default_scope='mmitpn'``, without ``custom_imports``.
Kinds of objects mmitpn does not define (loops, runners, ...) resolve in
MMEngine's root registries.
"""
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import \
    OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import Registry

MODELS = Registry('model', parent=MMENGINE_MODELS, locations=['mmitpn.models'])
OPTIM_WRAPPER_CONSTRUCTORS = Registry(
    'optimizer wrapper constructor',
    parent=MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS,
    locations=['mmitpn.engine.optimizers'])
