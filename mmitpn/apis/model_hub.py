# Copyright (c) mmitpn contributors. All rights reserved.
"""mmitpn's model zoo in mmpretrain's model hub."""
import os.path as osp

MIM_ROOT = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), '.mim')


def register_model_index() -> None:
    """Register ``model-index.yml`` with mmpretrain's ``ModelHub``, so that
    ``mmpretrain.get_model``, ``mmpretrain.list_models`` and the
    inferencers resolve mmitpn's config names (e.g.
    ``'fast-itpn-base_clip-l-1600e-pre_32xb32-amp-coslr-20e_in1k'``).
    Idempotent. mmpretrain's own index is loaded first (its public
    ``list_models`` does), so that a name clash with it raises here, naming
    both files, instead of at a later ``get_model`` call.

    Raises:
        FileNotFoundError: The package was installed without its ``.mim``
            folder (``pip install -e .`` or a wheel of this repository
            creates it).
    """
    from mmpretrain.apis import ModelHub, list_models
    if getattr(register_model_index, 'done', False):
        return
    index = osp.join(MIM_ROOT, 'model-index.yml')
    if not osp.isfile(index):
        raise FileNotFoundError(
            f'{index} is missing: install mmitpn with pip (pip install -e .) '
            'so that its configs and model index are linked under .mim.')
    list_models()
    ModelHub.register_model_index(index, config_prefix=MIM_ROOT)
    register_model_index.done = True
