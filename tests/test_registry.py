# Copyright (c) mmitpn contributors. All rights reserved.
"""mmitpn classes resolve from other toolboxes' scopes and configs."""
import subprocess
import sys

import pytest
from mmengine.config import Config
from tiny_models import tiny_arch

import mmitpn  # noqa: F401  registers the mmitpn:: config prefix

TINY = tiny_arch(depth=1, num_heads=2)


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg', 'mmpretrain', 'mmitpn'])
def test_hivit_builds_from_any_scope_without_custom_imports(scope):
    # A fresh interpreter proves nothing was imported beforehand.
    code = ('from mmengine.registry import DefaultScope, MODELS\n'
            f'import {scope}.registry as registry\n'
            f'with DefaultScope.overwrite_default_scope({scope!r}):\n'
            f'    model = registry.MODELS.build(dict(type="mmitpn.HiViT", '
            f'arch={TINY!r}, img_size=32))\n'
            'print(type(model).__module__)\n')
    result = subprocess.run([sys.executable, '-c', code],
                            capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
    assert 'mmitpn.models.backbones.hivit' in result.stdout


def test_mmitpn_config_inheritance(tmp_path):
    config = tmp_path / 'child.py'
    config.write_text("_base_ = 'mmitpn::_base_/default_runtime.py'\n"
                      'log_level = "DEBUG"\n')
    cfg = Config.fromfile(str(config))
    assert cfg.default_scope == 'mmitpn'
    assert cfg.log_level == 'DEBUG'
