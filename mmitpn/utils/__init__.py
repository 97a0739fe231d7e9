# Copyright (c) mmitpn contributors. All rights reserved.
from .checkpoint import (Ignored, UnsafeCheckpointError, extract_state_dict,
                         load_checkpoint_file, register_checkpoint_loader,
                         trust_checkpoint_path)
from .complexity import count_macs

__all__ = [
    'Ignored', 'UnsafeCheckpointError', 'count_macs', 'extract_state_dict',
    'load_checkpoint_file', 'register_checkpoint_loader',
    'trust_checkpoint_path'
]
