# Copyright (c) mmitpn contributors. All rights reserved.
"""Image loading that names unreadable files and can skip them."""
from typing import Optional

from mmcv.transforms import LoadImageFromFile
from mmengine.logging import MMLogger

from mmitpn.registry import TRANSFORMS


@TRANSFORMS.register_module()
class LoadImageFromFileOrSkip(LoadImageFromFile):
    """mmcv's ``LoadImageFromFile`` with a clear policy for bad files.

    A missing, truncated or undecodable image either stops the run with an
    error naming the file (``on_error='raise'``) or is logged as a warning
    naming the file and skipped (``on_error='skip'``): the transform returns
    None and mmengine's dataset draws another sample (training only).

    Args:
        on_error (str): ``'raise'`` or ``'skip'``. Defaults to ``'raise'``.
        **kwargs: Arguments of mmcv's ``LoadImageFromFile``.
    """

    def __init__(self, on_error: str = 'raise', **kwargs) -> None:
        if on_error not in ('raise', 'skip'):
            raise ValueError("on_error must be 'raise' or 'skip', got "
                             f'{on_error!r}.')
        if kwargs.get('ignore_empty'):
            raise ValueError("Use on_error='skip' instead of ignore_empty.")
        super().__init__(**kwargs)
        self.on_error = on_error

    def transform(self, results: dict) -> Optional[dict]:
        filename = results['img_path']
        try:
            return super().transform(results)
        except Exception as error:  # decoding errors have many types
            message = f'Cannot read image {filename}: {error}'
            if self.on_error == 'raise':
                raise ValueError(message) from error
            MMLogger.get_current_instance().warning(
                f'{message}; skipped, another sample is drawn.')
            return None

    def __repr__(self) -> str:
        return f'{super().__repr__()[:-1]}, on_error={self.on_error!r})'
