# Copyright (c) mmitpn contributors. All rights reserved.
"""The backbone API page (a tracker's encoder) runs as written.

Its Python blocks run in order in one namespace, with random tensors of the
official Fast-iTPN-T release's names and shapes where the page reads
``checkpoints/fast_itpn_tiny_1600e_1k.pt``, and print what the text block
after each shows; its error example is the error raised. Its shell commands
export and check ONNX graphs as written, except that a tiny Fast-iTPN (and a
checkpoint of it in the official key names) stands in for fast-itpn-tiny
(the same flags, plus ``--backbone-options`` giving the tiny architecture),
so that the exports take seconds.
"""
import contextlib
import io
import os
import os.path as osp
import re
import runpy
import sys

import pytest
import torch
from test_doc_commands import VENV_PYTHON, commands_of
from tiny_models import tiny_arch

from mmitpn.apis import create_backbone

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PAGE = 'docs/user_guides/backbone_api.md'
CHECKPOINT = 'checkpoints/fast_itpn_tiny_1600e_1k.pt'
LISTING = 'keys_fast_itpn_tiny_1112_patch16_224.txt'
FENCE = re.compile(r'^```(\w*)\s*$')


def fenced_blocks(path):
    """``(language, first line number, text)`` of every fenced block."""
    with open(osp.join(REPO, path), encoding='utf-8') as f:
        lines = f.read().splitlines()
    blocks, current = [], None
    for number, line in enumerate(lines, 1):
        match = FENCE.match(line)
        if current is None and match:
            current = (match.group(1), number + 1, [])
        elif current is not None and line.startswith('```'):
            blocks.append((current[0], current[1], '\n'.join(current[2])))
            current = None
        elif current is not None:
            current[2].append(line)
    return blocks


def python_blocks_and_outputs(path):
    """Each Python block with the text block right after it (or None)."""
    blocks = fenced_blocks(path)
    pairs = []
    for index, (language, number, text) in enumerate(blocks):
        if language != 'python':
            continue
        following = blocks[index + 1] if index + 1 < len(blocks) else None
        shown = following[2] if following and following[0] == 'text' \
            and following[1] == number + len(text.splitlines()) + 3 else None
        pairs.append((number, text, shown))
    return pairs


def printed_lines(text):
    """Lines a program printed, without mmengine's log lines (shown on the
    page with a leading ``...``)."""
    return [
        line for line in text.splitlines()
        if line and not line.startswith('...') and ' - mmengine - ' not in line
    ]


def test_python_blocks_print_what_the_page_shows(key_listing, tmp_path,
                                                 monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.makedirs('checkpoints')
    torch.save(dict(model=key_listing(LISTING, realistic=True)), CHECKPOINT)
    blocks = python_blocks_and_outputs(PAGE)
    assert len(blocks) == 2 and all(shown for _, _, shown in blocks)
    namespace = {}
    for number, code, shown in blocks:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(code, f'{PAGE}:{number}', 'exec'), namespace)
        assert printed_lines(out.getvalue()) == printed_lines(shown), number

    # The page's error example is the error create_backbone raises.
    with open(osp.join(REPO, PAGE), encoding='utf-8') as f:
        documented = next(
            line for line in f if line.startswith('ValueError: ')).strip()
    with pytest.raises(ValueError) as error:
        create_backbone('fast-itpn-base', checkpoint=CHECKPOINT)
    assert f'ValueError: {error.value}' == documented


def run_script(script, args):
    """Run a tool of the repository in this process; returns its stdout."""
    out = io.StringIO()
    old_argv, sys.argv = sys.argv, [script, *args]
    try:
        with contextlib.redirect_stdout(out):
            runpy.run_path(osp.join(REPO, script), run_name='__main__')
    finally:
        sys.argv = old_argv
    return out.getvalue()


def test_shell_commands_export_and_check_the_graphs(tmp_path, monkeypatch,
                                                    mm_log):
    pytest.importorskip('onnxruntime', reason='onnxruntime is not installed')
    monkeypatch.chdir(tmp_path)
    os.makedirs('checkpoints')
    tiny = tiny_arch()
    # mmitpn's Fast-iTPN keeps the official key names.
    model = create_backbone('FastiTPN', arch=tiny, img_size=224)
    torch.save(dict(model=model.state_dict()), CHECKPOINT)
    options = [
        '--backbone-options', 'arch.embed_dims=64',
        'arch.stem_mlp_blocks=(1,1)', 'arch.depth=2', 'arch.num_heads=4'
    ]
    commands = commands_of(PAGE)
    scripts = [command.argv[1] for command in commands]
    assert scripts == ['tools/deployment/backbone2onnx.py'
                       ] * 2 + ['tools/deployment/backbone_parity.py'] * 2 + [
                           'tools/deployment/backbone2onnx.py',
                           'tools/deployment/backbone_parity.py'
                       ]
    for command in commands:
        assert command.argv[0] == VENV_PYTHON, command.source
        script, args = command.argv[1], command.argv[2:]
        if script.endswith('backbone2onnx.py'):
            assert args[0] == 'fast-itpn-tiny', command.source
            args = ['FastiTPN'] + args[1:] + options
        printed = run_script(script, args)
        if script.endswith('backbone2onnx.py'):
            out = args[args.index('--out') + 1]
            assert osp.isfile(out) and f' -> {out} (opset 17' in printed
        else:
            sizes = args[args.index('--sizes') + 1:]
            rows = [
                line for line in printed.splitlines()
                if line.startswith('| 1x6x')
            ]
            assert len(rows) == len(sizes), (command.source, printed)
    # Every command loaded the checkpoint fully (the parity script too: it
    # rebuilds the backbone from the settings stored in the graph).
    log = mm_log.getvalue()
    assert log.count(f'{CHECKPOINT}: Fast-iTPN backbone') == len(commands)
    assert log.count('missing keys: none\nunexpected keys: none') == len(
        commands)
