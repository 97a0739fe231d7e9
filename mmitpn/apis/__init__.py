# Copyright (c) mmitpn contributors. All rights reserved.
from .backbone_checkpoint import (BackboneCheckpoint, BackboneLoadReport,
                                  adapt_input_channels,
                                  load_backbone_checkpoint,
                                  read_backbone_checkpoint)
from .backbones import create_backbone, list_backbones
from .model_hub import register_model_index
from .normalization import IMAGENET_NORMALIZATION, ImageNormalization
from .pretrained import PretrainedFile, fill_pretrained, read_pretrained_file

__all__ = [
    'BackboneCheckpoint', 'BackboneLoadReport', 'IMAGENET_NORMALIZATION',
    'ImageNormalization', 'PretrainedFile', 'adapt_input_channels',
    'create_backbone', 'fill_pretrained', 'list_backbones',
    'load_backbone_checkpoint', 'read_backbone_checkpoint',
    'read_pretrained_file', 'register_model_index'
]
