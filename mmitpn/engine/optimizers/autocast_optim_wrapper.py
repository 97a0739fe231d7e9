# Copyright (c) mmitpn contributors. All rights reserved.
"""Mixed precision through ``torch.autocast``, on CPU as on GPU."""
from contextlib import contextmanager

import torch
from mmengine.optim import OptimWrapper
from torch import nn

from mmitpn.registry import OPTIM_WRAPPERS


@OPTIM_WRAPPERS.register_module()
class AutocastOptimWrapper(OptimWrapper):
    """An ``OptimWrapper`` that runs forward and loss under ``torch.autocast``.

    mmengine's ``AmpOptimWrapper`` refuses to run without a GPU. bfloat16
    has the range of float32, so no loss scaling is needed: this wrapper
    only adds the autocast context, on the CPU (where recent CPUs run bf16
    matrix products at about twice the fp32 rate) or on a GPU.

    Args:
        dtype (str): ``'bfloat16'`` or ``'float16'`` (float16 on CPU is
            slow and has no loss scaling here; prefer bfloat16).
        device_type (str, optional): ``'cpu'`` or ``'cuda'``; defaults to
            ``'cuda'`` when available.
        **kwargs: Arguments of ``OptimWrapper``.
    """

    def __init__(self,
                 dtype: str = 'bfloat16',
                 device_type: str = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if dtype not in ('bfloat16', 'float16'):
            raise ValueError("dtype must be 'bfloat16' or 'float16', got "
                             f'{dtype!r}.')
        self.dtype = getattr(torch, dtype)
        self.device_type = device_type or ('cuda' if torch.cuda.is_available()
                                           else 'cpu')

    @contextmanager
    def optim_context(self, model: nn.Module):
        with super().optim_context(model), torch.autocast(
                device_type=self.device_type, dtype=self.dtype):
            yield
