# Copyright (c) mmitpn contributors. All rights reserved.
"""Every fenced shell command of the README, the docs, the config READMEs and
``.dev_scripts/README.md`` works as written from a fresh clone after
``make``: the scripts, configs and files it names exist, each Python
script's ``--help`` and each shell launcher's ``--help`` succeed, each config
builds (``Config.fromfile``), ``make`` targets exist, every training and
testing command's options (through the launchers too) parse with the tool's
own parser and its ``--cfg-options`` keys name entries of the config, and
every config named in the prose or tables exists. Internal links and images
resolve too (``.dev_scripts/check_docs_links.py``, which also lists the
files)."""
import contextlib
import functools
import glob
import io
import itertools
import os
import os.path as osp
import re
import runpy
import shlex
import subprocess
import sys
import sysconfig
from typing import Dict, List, NamedTuple

import pytest
from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
LINK_CHECKER = osp.join(REPO, '.dev_scripts', 'check_docs_links.py')

SHELL_FENCES = ('bash', 'sh', 'shell', 'console')
VENV_PYTHON = '.venv/bin/python'
# The docs' path of .venv's site-packages (scripts that mmdet and mmseg ship).
VENV_SITE = '.venv/lib/python3.11/site-packages/'
# Folders of the repository: a command token under one of them must exist.
REPO_FOLDERS = ('configs/', 'tools/', 'demo/', 'docs/', 'mmitpn/', 'tests/',
                'requirements/', '.dev_scripts/', 'projects/')
# Where the programs of the repository live (each answers --help).
PROGRAM_FOLDERS = ('tools/', '.dev_scripts/')
# Research projects' own runners, which the docs may name too (their
# arguments are not options: they are not started with --help here).
PROJECT_FOLDER = 'projects/'
# Programs from outside the repository that the docs may name.
EXTERNAL = {'tensorboard', 'sudo', 'apt-get', 'source'}
PLACEHOLDER = re.compile(r'^[A-Z][A-Z0-9_]*$')
ASSIGNMENT = re.compile(r'^([A-Za-z_][A-Za-z0-9_]*)=(.*)$')


class Command(NamedTuple):
    source: str  # file:line
    argv: List[str]


def shell_blocks(text: str):
    """``(first line number, lines)`` of the fenced shell blocks."""
    block, start, fence = None, 0, None
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if block is None:
            match = re.match(r'^(```|~~~)\s*\{?([\w-]*)\}?', stripped)
            if match:
                fence = match.group(1)
                block = [] if match.group(2) in SHELL_FENCES else False
                start = number + 1
        elif stripped.startswith(fence):
            if block:
                yield start, block
            block = None
        elif block is not False:
            block.append(line)


def commands_of(path: str) -> List[Command]:
    """The commands of one file, continuation lines joined, ``$VAR`` and
    ``${VAR}`` replaced by earlier assignments of the same block, and
    leading ``VAR=value`` environment settings dropped."""
    with open(osp.join(REPO, path), encoding='utf-8') as f:
        text = f.read()
    commands = []
    for start, lines in shell_blocks(text):
        variables: Dict[str, str] = {}
        joined, first = '', start
        for offset, line in enumerate(lines):
            if not joined:
                first = start + offset
            if line.rstrip().endswith('\\'):
                joined += line.rstrip()[:-1] + ' '
                continue
            joined += line
            for name, value in variables.items():
                joined = joined.replace('${' + name + '}', value)
                joined = joined.replace('$' + name, value)
            argv = shlex.split(joined, comments=True)
            joined = ''
            while argv and ASSIGNMENT.match(argv[0]):
                name, value = ASSIGNMENT.match(argv[0]).groups()
                argv = argv[1:]
                if not argv:
                    variables[name] = value
            if argv:
                commands.append(Command(f'{path}:{first}', argv))
    return commands


def check_links(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, LINK_CHECKER, *args],
                          capture_output=True,
                          text=True)


def all_commands() -> List[Command]:
    listing = check_links('--list')
    assert listing.returncode == 0, listing.stderr
    return [
        command for path in listing.stdout.split()
        for command in commands_of(path)
    ]


COMMANDS = all_commands()


def make_targets() -> set:
    with open(osp.join(REPO, 'Makefile')) as f:
        return set(re.findall(r'^([\w-]+):', f.read(), re.M))


def repo_paths(argv: List[str]) -> List[str]:
    """Tokens (or ``--key=value`` values) naming a file of the repository."""
    paths = []
    for token in argv:
        token = token.split('=', 1)[-1]
        if token.startswith(REPO_FOLDERS) and not PLACEHOLDER.match(token):
            paths.append(token)
    return paths


def test_the_docs_have_commands():
    sources = {command.source.split(':')[0] for command in COMMANDS}
    assert 'README.md' in sources
    assert any(source.startswith('docs/') for source in sources)
    assert any(source.startswith('configs/') for source in sources)
    assert len(COMMANDS) > 40


def test_extraction_joins_lines_and_substitutes_variables(tmp_path):
    page = tmp_path / 'page.md'
    page.write_text('```bash\nCFG=configs/a.py\n'
                    '.venv/bin/python tools/train.py $CFG \\\n'
                    '    --work-dir w  # comment\n'
                    'NNODES=2 tools/dist_train.sh ${CFG} 8\n```\n'
                    '```python\nnot a shell command\n```\n')
    commands = commands_of(str(page))
    assert [c.argv for c in commands] == [
        [VENV_PYTHON, 'tools/train.py', 'configs/a.py', '--work-dir', 'w'],
        ['tools/dist_train.sh', 'configs/a.py', '8'],
    ]
    assert commands[0].source.endswith(':3')


@pytest.mark.parametrize('command', COMMANDS, ids=[c.source for c in COMMANDS])
def test_command_names_things_that_exist(command):
    program = command.argv[0]
    assert program in EXTERNAL or program in (VENV_PYTHON, 'make') or \
        program.startswith(PROGRAM_FOLDERS + (PROJECT_FOLDER, )), (
            f'{command.source}: {program!r} is neither {VENV_PYTHON}, make, '
            'a script of tools/, .dev_scripts/ or projects/ nor a known '
            f'external program; write commands as "{VENV_PYTHON} SCRIPT" '
            '(docs/get_started/install.md)')
    if program == 'make':
        missing = set(command.argv[1:]) - make_targets()
        assert not missing, f'{command.source}: no make target {missing}'
    for path in repo_paths(command.argv):
        if any(char in path for char in '*?{'):
            continue
        assert osp.exists(osp.join(REPO, path)), \
            f'{command.source}: {path} does not exist'


def _python_scripts() -> Dict[str, str]:
    scripts = {}
    for command in COMMANDS:
        if command.argv[0] == VENV_PYTHON and len(command.argv) > 1 and \
                command.argv[1].endswith('.py'):
            scripts.setdefault(command.argv[1], command.source)
    return scripts


def _launchers() -> Dict[str, str]:
    return {
        command.argv[0]: command.source
        for command in COMMANDS if command.argv[0].startswith(PROGRAM_FOLDERS)
    }


def _configs() -> Dict[str, str]:
    configs = {}
    for command in COMMANDS:
        for path in repo_paths(command.argv):
            if path.startswith('configs/') and path.endswith('.py'):
                configs.setdefault(path, command.source)
    return configs


def script_path(script: str) -> str:
    """Where the running interpreter has ``script``: a script the docs name
    in ``.venv``'s site-packages is taken from this interpreter's (the suite
    also runs in other environments, Python versions and checkouts)."""
    if script.startswith(VENV_SITE):
        return osp.join(sysconfig.get_paths()['purelib'],
                        script[len(VENV_SITE):])
    return osp.join(REPO, script)


def test_every_python_script_answers_help(monkeypatch):
    """Run in this process (one import of torch and the OpenMMLab stack for
    all scripts, so the whole check takes seconds)."""
    scripts = _python_scripts()
    assert 'tools/train.py' in scripts
    failures = []
    for script, source in sorted(scripts.items()):
        monkeypatch.setattr(sys, 'argv', [script, '--help'])
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out):
                runpy.run_path(script_path(script), run_name='__main__')
            failures.append(f'{source}: {script} --help did not exit')
        except SystemExit as exit:
            if exit.code not in (0, None) or 'usage' not in out.getvalue():
                failures.append(f'{source}: {script} --help exited with '
                                f'{exit.code}: {out.getvalue()[-300:]}')
    assert not failures, '\n'.join(failures)


def test_every_launcher_answers_help():
    launchers = _launchers()
    assert 'tools/dist_train.sh' in launchers
    for launcher, source in sorted(launchers.items()):
        path = osp.join(REPO, launcher)
        assert os.access(path, os.X_OK), f'{source}: {launcher} is not ' \
            'executable'
        result = subprocess.run([path, '--help'],
                                capture_output=True,
                                text=True,
                                timeout=30)
        assert result.returncode == 0 and 'Usage' in result.stdout, \
            f'{source}: {launcher} --help: {result.stderr}'


def test_every_config_builds():
    configs = _configs()
    assert len(configs) > 10
    for config, source in sorted(configs.items()):
        try:
            Config.fromfile(osp.join(REPO, config))
        except Exception as error:  # noqa: B902 -- report any failure
            pytest.fail(f'{source}: {config} does not build: {error}')


def checked(result: subprocess.CompletedProcess) -> List[str]:
    """The problems the link checker printed, after checking its summary.
    """
    lines = result.stdout.strip().splitlines()
    count, broken = re.fullmatch(
        r'(\d+) Markdown files, (\d+) broken internal link\(s\) or '
        r'image\(s\)', lines[-1]).groups()
    assert result.returncode == (1 if int(broken) else 0), result.stderr
    assert len(lines) - 1 == int(broken)
    return [int(count)] + lines[:-1]


def test_internal_links_and_images_resolve():
    count, *problems = checked(check_links())
    assert count > 20
    assert not problems, '\n'.join(problems)


def test_link_checker_reports_broken_links(tmp_path):
    docs = tmp_path / 'docs'
    docs.mkdir()
    (docs / 'a.md').write_text('# A page\n\n## Some `code` here\n')
    (tmp_path / 'README.md').write_text(
        '[ok](docs/a.md#some-code-here) ![missing](docs/x.png)\n'
        '[bad anchor](docs/a.md#nope) [web](https://example.org/x)\n'
        '```bash\n[not a link](in/code.md)\n```\n')
    count, *problems = checked(check_links('--root', str(tmp_path)))
    assert count == 2
    assert len(problems) == 2
    assert 'docs/x.png does not exist' in problems[0]
    assert 'no heading with anchor #nope' in problems[1]


# How each launcher hands its arguments to tools/train.py or tools/test.py:
# (the tool, how many of the launcher's own arguments come first, which of
# them the tool receives as its positional arguments).
LAUNCHED_TOOLS = {
    'tools/dist_train.sh': ('tools/train.py', 2, (0, )),
    'tools/slurm_train.sh': ('tools/train.py', 4, (2, )),
    'tools/dist_test.sh': ('tools/test.py', 3, (0, 1)),
    'tools/slurm_test.sh': ('tools/test.py', 4, (2, 3)),
}


def tool_argv(command: Command):
    """``(tool, its argv)`` of a command that trains or tests, or None."""
    argv = command.argv
    if '--help' in argv:
        return None
    if argv[0] == VENV_PYTHON and len(argv) > 1 and \
            argv[1] in ('tools/train.py', 'tools/test.py'):
        return argv[1], argv[2:]
    if argv[0] in LAUNCHED_TOOLS:
        tool, own, positional = LAUNCHED_TOOLS[argv[0]]
        return tool, [argv[1 + i] for i in positional] + argv[1 + own:]
    return None


TOOL_COMMANDS = [(c, *tool_argv(c)) for c in COMMANDS if tool_argv(c)]


def test_train_and_test_commands_are_found():
    tools = {tool for _, tool, _ in TOOL_COMMANDS}
    assert tools == {'tools/train.py', 'tools/test.py'}
    assert any(c.argv[0] == 'tools/slurm_train.sh'
               for c, _, _ in TOOL_COMMANDS)


@functools.lru_cache(maxsize=None)
def tool_namespace(tool: str) -> dict:
    return runpy.run_path(osp.join(REPO, tool))


@functools.lru_cache(maxsize=None)
def config_entries(config: str) -> dict:
    return Config.fromfile(osp.join(REPO, config))._cfg_dict.to_dict()


def config_has_key(node: dict, key: str, keys=()) -> bool:
    """Whether ``key`` (dotted) names an entry of the config ``node``, a
    new entry of a dict it has (``optim_wrapper.accumulative_counts``), or
    an entry of a new dict whose ``type`` the same options set (``keys``:
    ``model.backbone.token_reduction.type=...`` builds a new part)."""
    parts = key.split('.')
    for depth, part in enumerate(parts[:-1]):
        if not isinstance(node, dict):
            return False
        if part not in node:
            prefix = '.'.join(parts[:depth + 1])
            return f'{prefix}.type' in keys
        node = node[part]
    return isinstance(node, dict)


@pytest.mark.parametrize(
    'command,tool,argv',
    TOOL_COMMANDS,
    ids=[c.source for c, _, _ in TOOL_COMMANDS])
def test_train_and_test_options_parse_and_keys_resolve(command, tool, argv,
                                                       monkeypatch):
    """The tool's own parser accepts the command's options, and each
    ``--cfg-options`` key of a real config names an entry the config has
    (or a new key of a dict it has, or a part the options build)."""
    namespace = tool_namespace(tool)
    monkeypatch.setattr(sys, 'argv', [tool] + argv)
    monkeypatch.setenv('LOCAL_RANK', os.environ.get('LOCAL_RANK', '0'))
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            args = namespace['parse_args']()
    except SystemExit:
        pytest.fail(f'{command.source}: {tool} refuses '
                    f'{shlex.join(argv)}: {err.getvalue()[-300:]}')
    config = args.config
    if not (config.startswith('configs/') and config.endswith('.py')
            and osp.isfile(osp.join(REPO, config))):
        return
    keys = tuple(args.cfg_options or {})
    for key in keys:
        assert config_has_key(config_entries(config), key, keys), \
            f'{command.source}: {config} has no {key.rsplit(".", 1)[0]}'


# A config's name in backticks, braces for alternatives
# (``itpn-clip-b_itpn-{base,large}_64xb32-amp-coslr-{300,800}e_in1k``).
CONFIG_NAME = re.compile(
    r'`((?:fast-itpn|itpn|hivit)[\w\-.{},]*_[\w\-.{},]+)`')


def named_configs(text: str) -> List[str]:
    """Every config name the text gives in full (three or more
    underscore-separated parts, no ``...``), alternatives expanded."""
    names = []
    for match in CONFIG_NAME.finditer(text):
        name = match.group(1)
        name = name[:-3] if name.endswith('.py') else name
        if '..' in name or name.endswith(('.pth', '.pt')) or \
                len(name.split('_')) < 3:
            continue
        parts = re.split(r'(\{[^}]*\})', name)
        choices = [
            part[1:-1].split(',') if part.startswith('{') else [part]
            for part in parts
        ]
        names += [''.join(c) for c in itertools.product(*choices)]
    return names


def test_config_names_in_prose_exist():
    shipped = {
        osp.basename(path)[:-3]
        for path in glob.glob(
            osp.join(REPO, 'configs', '**', '*.py'), recursive=True)
    }
    listing = check_links('--list')
    missing, count = [], 0
    for path in listing.stdout.split():
        with open(osp.join(REPO, path), encoding='utf-8') as f:
            for number, line in enumerate(f, 1):
                for name in named_configs(line):
                    count += 1
                    if name not in shipped:
                        missing.append(f'{path}:{number}: {name}')
    assert count > 100
    assert not missing, 'no such config:\n' + '\n'.join(missing)


def test_config_names_expand_alternatives():
    assert named_configs(
        'see `itpn-clip-l_itpn-{base,large}_64xb32-amp-coslr-800e_in1k` '
        'and `itpn_base_pixel_1600e.pth`') == [
            'itpn-clip-l_itpn-base_64xb32-amp-coslr-800e_in1k',
            'itpn-clip-l_itpn-large_64xb32-amp-coslr-800e_in1k'
        ]
