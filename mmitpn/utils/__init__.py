# Copyright (c) mmitpn contributors. All rights reserved.
from .atomic_file import AtomicLocalBackend, write_atomically
from .checkpoint import (Ignored, UnsafeCheckpointError, checkpoint_problem,
                         extract_state_dict, load_checkpoint_file,
                         register_checkpoint_loader)
from .complexity import count_macs
from .setup_env import (adapt_cfg_to_device, cpu_has_native_bf16, describe_cpu,
                        init_cpu_distributed)

__all__ = [
    'AtomicLocalBackend', 'Ignored', 'UnsafeCheckpointError',
    'adapt_cfg_to_device', 'checkpoint_problem', 'count_macs',
    'cpu_has_native_bf16', 'describe_cpu', 'extract_state_dict',
    'init_cpu_distributed', 'load_checkpoint_file',
    'register_checkpoint_loader', 'write_atomically'
]
