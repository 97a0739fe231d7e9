# Copyright (c) mmitpn contributors. All rights reserved.
"""Check every internal link and image of the Markdown documentation.

Scans ``README.md``, ``docs/**/*.md``, ``configs/**/README.md`` and
``.dev_scripts/README.md`` for Markdown links and images (``[text](target)``,
``![alt](target)``) and HTML ``<img src=...>``, and checks that every target
without a URL scheme exists (relative to the file) and, for
``file.md#anchor`` and ``#anchor``, that the page has a heading with that
GitHub-style anchor. Fenced code blocks are skipped. External URLs are not
fetched (no network). Prints one line per broken link (file, line, target,
why) and exits 1 if there is any.

``--list`` prints the files it scans instead (the docs command test reads
their shell commands).

Example:
    python .dev_scripts/check_docs_links.py
"""
import argparse
import glob
import os.path as osp
import re
import sys
from typing import Dict, Iterator, List, Set, Tuple

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
LINK = re.compile(r'!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?'
                  r'(?:\s+"[^"]*")?\s*\)')
IMG_TAG = re.compile(r'<img\s[^>]*src="([^"]+)"')
FENCE = re.compile(r'^\s*(```|~~~)')
HEADING = re.compile(r'^(#{1,6})\s+(.*?)\s*#*\s*$')
SCHEME = re.compile(r'^[a-zA-Z][a-zA-Z0-9+.-]*:')
# Anchors of the headings of each Markdown file read so far.
Anchors = Dict[str, Set[str]]


def markdown_files(root: str = REPO) -> List[str]:
    """The documentation's Markdown files, relative to ``root``."""
    files = ['README.md', '.dev_scripts/README.md']
    files += glob.glob('docs/**/*.md', root_dir=root, recursive=True)
    files += glob.glob('configs/**/README.md', root_dir=root, recursive=True)
    return sorted(
        f for f in set(files)
        if not f.startswith('docs/_build/') and osp.isfile(osp.join(root, f)))


def prose_lines(text: str) -> Iterator[Tuple[int, str]]:
    """``(line number, line)`` outside fenced code blocks."""
    fenced = False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield number, line


def github_anchor(heading: str) -> str:
    """The anchor GitHub (and MyST's ``myst_heading_anchors``) give a
    heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r'`([^`]*)`', r'\1', heading)
    text = re.sub(r'\[([^\]]*)\]\([^)]*\)', r'\1', text).strip().lower()
    text = re.sub(r'[^\w\- ]', '', text)
    return text.replace(' ', '-')


def anchors(path: str, cache: Anchors) -> Set[str]:
    if path not in cache:
        with open(path, encoding='utf-8') as f:
            text = f.read()
        found: Set[str] = set()
        for _, line in prose_lines(text):
            match = HEADING.match(line)
            if match:
                base = github_anchor(match.group(2))
                anchor, index = base, 1
                while anchor in found:
                    anchor, index = f'{base}-{index}', index + 1
                found.add(anchor)
        cache[path] = found
    return cache[path]


def check_file(rel_path: str, root: str, cache: Anchors) -> List[str]:
    """Broken links of one file, as ``file:line: target: why`` lines."""
    path = osp.join(root, rel_path)
    with open(path, encoding='utf-8') as f:
        text = f.read()
    problems = []
    for number, line in prose_lines(text):
        line = re.sub(r'`[^`]*`', '', line)
        targets = LINK.findall(line) + IMG_TAG.findall(line)
        for target in targets:
            if SCHEME.match(target) or target.startswith('//'):
                continue
            file_part, _, anchor = target.partition('#')
            resolved = path
            if file_part:
                resolved = osp.normpath(osp.join(osp.dirname(path), file_part))
            where = f'{rel_path}:{number}: {target}'
            if not osp.exists(resolved):
                problems.append(f'{where}: {osp.relpath(resolved, root)} '
                                'does not exist')
            elif anchor and resolved.endswith('.md') and \
                    anchor not in anchors(resolved, cache):
                problems.append(f'{where}: no heading with anchor '
                                f'#{anchor} in {osp.relpath(resolved, root)}')
    return problems


def check(root: str = REPO) -> Tuple[int, List[str]]:
    """Number of files checked and the broken links found."""
    cache: Anchors = {}
    files = markdown_files(root)
    problems = []
    for rel_path in files:
        problems += check_file(rel_path, root, cache)
    return len(files), problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--root', default=REPO, help='repository root')
    parser.add_argument(
        '--list', action='store_true', help='print the files it scans')
    args = parser.parse_args()
    if args.list:
        print('\n'.join(markdown_files(args.root)))
        return
    count, problems = check(args.root)
    for problem in problems:
        print(problem)
    print(f'{count} Markdown files, {len(problems)} broken internal '
          'link(s) or image(s)')
    sys.exit(1 if problems else 0)


if __name__ == '__main__':
    main()
