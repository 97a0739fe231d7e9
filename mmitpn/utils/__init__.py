# Copyright (c) mmitpn contributors. All rights reserved.
from .checkpoint import (Ignored, UnsafeCheckpointError, extract_state_dict,
                         load_checkpoint_file, register_checkpoint_loader,
                         trust_checkpoint_path)
from .complexity import count_macs
from .setup_env import (adapt_cfg_to_device, cpu_has_native_bf16, describe_cpu,
                        init_cpu_distributed)

__all__ = [
    'Ignored', 'UnsafeCheckpointError', 'adapt_cfg_to_device', 'count_macs',
    'cpu_has_native_bf16', 'describe_cpu', 'extract_state_dict',
    'init_cpu_distributed', 'load_checkpoint_file',
    'register_checkpoint_loader', 'trust_checkpoint_path'
]
