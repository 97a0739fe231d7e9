# Copyright (c) mmitpn contributors. All rights reserved.
from .backbone_checkpoint import (BackboneCheckpoint, BackboneLoadReport,
                                  adapt_input_channels,
                                  load_backbone_checkpoint,
                                  read_backbone_checkpoint)
from .backbones import create_backbone, list_backbones
from .model_hub import register_model_index
from .normalization import IMAGENET_NORMALIZATION, ImageNormalization

__all__ = [
    'BackboneCheckpoint', 'BackboneLoadReport', 'IMAGENET_NORMALIZATION',
    'ImageNormalization', 'adapt_input_channels', 'create_backbone',
    'list_backbones', 'load_backbone_checkpoint', 'read_backbone_checkpoint',
    'register_model_index'
]
