# Copyright (c) mmitpn contributors. All rights reserved.
"""Sphinx configuration of the mmitpn documentation (built by ``make docs``).

Nothing is fetched at build time: MyST reads the Markdown pages, autodoc
imports the installed mmitpn (its dependencies are in the same environment),
and the Furo theme ships its own assets.
"""
import os
import re

from mmitpn import __version__

project = 'mmitpn'
author = 'mmitpn contributors'
copyright = 'mmitpn contributors'
release = __version__
version = __version__

extensions = [
    'myst_parser',
    'sphinx.ext.autodoc',
    'sphinx.ext.napoleon',
    'sphinx.ext.viewcode',
]
source_suffix = {'.md': 'markdown'}
root_doc = 'index'
exclude_patterns = ['_build']

# Markdown: `#` anchors for headings down to level 3, so `page.md#section`
# links are checked by Sphinx like any cross-reference.
myst_heading_anchors = 3
myst_enable_extensions = ['colon_fence']

# API reference from the Google-style docstrings.
autodoc_default_options = {'members': True, 'show-inheritance': True}
autodoc_member_order = 'bysource'
autodoc_typehints = 'description'
autoclass_content = 'class'
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_ivar = True

nitpicky = False
html_theme = 'furo'
html_title = f'mmitpn {release}'
html_static_path = []


def _unlink_outside(app, docname: str, source: list) -> None:
    """Turn links to folders (``[figures/](figures/)``) and to files outside
    the documentation (``[README](../../projects/x/README.md)``) into their
    text.

    GitHub shows such a target, the static site holds only ``docs/`` (and
    cannot show a folder), and MyST reports them as missing
    cross-references; their existence is still checked by
    ``.dev_scripts/check_docs_links.py``.
    """
    folder = os.path.dirname(app.env.doc2path(docname))
    docs = os.path.abspath(app.srcdir)

    def unlink(match):
        target = os.path.normpath(os.path.join(folder, match.group(2)))
        outside = os.path.relpath(target, docs).startswith(os.pardir)
        if os.path.isdir(target) or (outside and os.path.isfile(target)):
            return match.group(1)
        return match.group(0)

    source[0] = re.sub(r'(?<!!)\[([^\]]+)\]\(([^)\s#]+)\)', unlink, source[0])


def setup(app):
    app.connect('source-read', _unlink_outside)
