# Copyright (c) mmitpn contributors. All rights reserved.
"""docs/user_guides/config.md: the snippet that loads a config prints what
the page shows, and the inheriting config of the page builds and changes
what it says."""
import contextlib
import io
import os.path as osp
import re

from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PAGE = osp.join(REPO, 'docs', 'user_guides', 'config.md')


def blocks(language: str):
    with open(PAGE, encoding='utf-8') as f:
        return re.findall(rf'```{language}\n(.*?)```', f.read(), re.S)


def test_loading_snippet_prints_what_the_page_shows(monkeypatch):
    snippet = next(b for b in blocks('python') if 'Config.fromfile' in b)
    shown = next(b for b in blocks('text') if b.startswith('work_dirs/'))
    monkeypatch.chdir(REPO)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(snippet, PAGE, 'exec'), {})
    assert out.getvalue() == shown


def test_inheriting_config_builds(tmp_path):
    snippet = next(b for b in blocks('python') if '_base_' in b)
    name = snippet.splitlines()[0].lstrip('# ').strip()
    path = tmp_path / name
    path.parent.mkdir(parents=True)
    # The page's file sits in a folder beside configs/.
    (tmp_path / 'configs').symlink_to(osp.join(REPO, 'configs'))
    path.write_text(snippet)
    cfg = Config.fromfile(str(path))
    assert cfg.model.backbone.window_size == 14
    assert list(cfg.model.backbone.global_blocks) == [5, 11, 17, 23]
    assert cfg.train_dataloader.batch_size == 4
    shipped = Config.fromfile(
        osp.join(REPO, 'configs', 'det',
                 'itpn-base_pixel-1600e-pre_mask-rcnn_32xb2-amp-1x_coco.py'))
    assert cfg.optim_wrapper == shipped.optim_wrapper
