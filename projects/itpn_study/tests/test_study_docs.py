# Copyright (c) mmitpn contributors. All rights reserved.
"""The project's pages: every internal link and image resolves (checked by
the repository's link checker), and every tool its README runs answers
``--help``."""
import contextlib
import glob
import importlib
import io
import os.path as osp
import re
import runpy
import sys

import pytest

from projects.itpn_study.study.plan import PROJECT, REPO

CHECKER = osp.join(REPO, '.dev_scripts', 'check_docs_links.py')


def test_links_and_images_of_the_project_pages_resolve():
    checker = runpy.run_path(CHECKER, run_name='check_docs_links')
    pages = sorted(
        osp.relpath(path, REPO)
        for path in glob.glob(osp.join(PROJECT, '**', '*.md'), recursive=True))
    assert len(pages) == 10
    cache, problems = {}, []
    for page in pages:
        problems += checker['check_file'](page, REPO, cache)
    assert not problems, '\n'.join(problems)


def test_the_readme_tools_answer_help(monkeypatch):
    with open(osp.join(PROJECT, 'README.md'), encoding='utf-8') as f:
        modules = sorted(
            set(
                re.findall(r'python -m (projects\.itpn_study\.tools\.\w+)',
                           f.read())))
    assert len(modules) == 5, modules
    for module in modules:
        tool = importlib.import_module(module)
        monkeypatch.setattr(sys, 'argv', [module, '--help'])
        out = io.StringIO()
        with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as end:
            tool.main()
        assert end.value.code == 0, module
        assert out.getvalue().startswith('usage:'), module
