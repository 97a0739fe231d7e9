# Copyright (c) mmitpn contributors. All rights reserved.
"""Registries of mmitpn, children of MMEngine's root registries.

Each registry knows where its classes live (``locations``), so a config can
name ``type='mmitpn.HiViT'`` from an mmdet, mmseg or mmpretrain scope, or
``type='HiViT'`` under ``default_scope='mmitpn'``, without ``custom_imports``.
Kinds mmitpn defines nothing of (loops, schedulers, ...) still have a node
here so that a runner under ``default_scope='mmitpn'`` finds MMEngine's
classes through the parent; mmpretrain's need the ``mmpretrain.`` prefix.
"""
from mmengine.registry import DATA_SAMPLERS as MMENGINE_DATA_SAMPLERS
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import EVALUATOR as MMENGINE_EVALUATOR
from mmengine.registry import FUNCTIONS as MMENGINE_FUNCTIONS
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import LOG_PROCESSORS as MMENGINE_LOG_PROCESSORS
from mmengine.registry import LOOPS as MMENGINE_LOOPS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODEL_WRAPPERS as MMENGINE_MODEL_WRAPPERS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import \
    OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.registry import OPTIMIZERS as MMENGINE_OPTIMIZERS
from mmengine.registry import PARAM_SCHEDULERS as MMENGINE_PARAM_SCHEDULERS
from mmengine.registry import RUNNERS as MMENGINE_RUNNERS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import VISBACKENDS as MMENGINE_VISBACKENDS
from mmengine.registry import VISUALIZERS as MMENGINE_VISUALIZERS
from mmengine.registry import \
    WEIGHT_INITIALIZERS as MMENGINE_WEIGHT_INITIALIZERS
from mmengine.registry import Registry

ENGINE = ['mmitpn.engine']
MODEL_LOCATIONS = ['mmitpn.models']
DATA_LOCATIONS = ['mmitpn.datasets']

RUNNERS = Registry('runner', parent=MMENGINE_RUNNERS, locations=ENGINE)
LOOPS = Registry('loop', parent=MMENGINE_LOOPS, locations=ENGINE)
HOOKS = Registry('hook', parent=MMENGINE_HOOKS, locations=ENGINE)
LOG_PROCESSORS = Registry(
    'log_processor', parent=MMENGINE_LOG_PROCESSORS, locations=ENGINE)
OPTIMIZERS = Registry(
    'optimizer', parent=MMENGINE_OPTIMIZERS, locations=ENGINE)
OPTIM_WRAPPERS = Registry(
    'optim_wrapper', parent=MMENGINE_OPTIM_WRAPPERS, locations=ENGINE)
OPTIM_WRAPPER_CONSTRUCTORS = Registry(
    'optimizer wrapper constructor',
    parent=MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS,
    locations=ENGINE)
PARAM_SCHEDULERS = Registry(
    'parameter scheduler', parent=MMENGINE_PARAM_SCHEDULERS, locations=ENGINE)
FUNCTIONS = Registry('function', parent=MMENGINE_FUNCTIONS, locations=ENGINE)
METRICS = Registry('metric', parent=MMENGINE_METRICS, locations=ENGINE)
EVALUATOR = Registry('evaluator', parent=MMENGINE_EVALUATOR, locations=ENGINE)
VISUALIZERS = Registry(
    'visualizer', parent=MMENGINE_VISUALIZERS, locations=ENGINE)
VISBACKENDS = Registry(
    'vis_backend', parent=MMENGINE_VISBACKENDS, locations=ENGINE)

DATASETS = Registry(
    'dataset', parent=MMENGINE_DATASETS, locations=DATA_LOCATIONS)
DATA_SAMPLERS = Registry(
    'data sampler', parent=MMENGINE_DATA_SAMPLERS, locations=DATA_LOCATIONS)
TRANSFORMS = Registry(
    'transform', parent=MMENGINE_TRANSFORMS, locations=DATA_LOCATIONS)

MODELS = Registry('model', parent=MMENGINE_MODELS, locations=MODEL_LOCATIONS)
MODEL_WRAPPERS = Registry(
    'model_wrapper', parent=MMENGINE_MODEL_WRAPPERS, locations=MODEL_LOCATIONS)
WEIGHT_INITIALIZERS = Registry(
    'weight initializer',
    parent=MMENGINE_WEIGHT_INITIALIZERS,
    locations=MODEL_LOCATIONS)
