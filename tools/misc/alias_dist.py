# Copyright (c) mmitpn contributors. All rights reserved.
"""Install a metadata-only distribution that names another one as its
provider.

The maintained OpenMMLab fork installs the module ``mmseg`` under the
distribution name ``onedl-mmsegmentation``, while mmengine resolves the config
scope ``mmseg::`` through the distribution ``mmsegmentation`` (its
``MODULE2PACKAGE`` table). ``python tools/misc/alias_dist.py mmsegmentation
onedl-mmsegmentation mmseg`` writes ``mmsegmentation-<version>.dist-info``
into this interpreter's site-packages: the provider's version, ``Requires-Dist:
onedl-mmsegmentation==<version>``, ``top_level.txt`` naming ``mmseg`` and a
``RECORD``, so that ``importlib.metadata`` finds it, mmengine's unchanged code
resolves the scope to the fork's module, pip lists it and ``pip uninstall
mmsegmentation`` removes it, and a later requirement on ``mmsegmentation``
(a plugin's) is met by the fork instead of installing a second ``mmseg`` over
it. No code is installed. An existing real distribution of that name is left
alone (exit 1).
"""
import argparse
import base64
import glob
import hashlib
import importlib.metadata
import os
import os.path as osp
import shutil
import sys
import sysconfig

INSTALLER = 'mmitpn-alias\n'


def record_line(site: str, path: str) -> str:
    with open(path, 'rb') as file:
        digest = hashlib.sha256(file.read()).digest()
    encoded = base64.urlsafe_b64encode(digest).rstrip(b'=').decode()
    size = os.path.getsize(path)
    return f'{osp.relpath(path, site)},sha256={encoded},{size}\n'


def write_alias(alias: str, provider: str, module: str, site: str) -> str:
    """Write the alias distribution into ``site``; returns its folder."""
    version = importlib.metadata.version(provider)
    stem = alias.replace('-', '_')
    for old in glob.glob(osp.join(site, f'{stem}-*.dist-info')):
        installer = osp.join(old, 'INSTALLER')
        if not (osp.isfile(installer) and open(installer).read() == INSTALLER):
            raise SystemExit(f'{old} is a real distribution of {alias}: '
                             'nothing written')
        shutil.rmtree(old)  # an older alias of ours: replaced
    folder = osp.join(site, f'{stem}-{version}.dist-info')
    os.makedirs(folder)
    metadata = ('Metadata-Version: 2.1\n'
                f'Name: {alias}\n'
                f'Version: {version}\n'
                f'Summary: Alias of {provider} (module {module}), written by '
                'mmitpn tools/misc/install_env.sh\n'
                f'Requires-Dist: {provider}=={version}\n')
    files = dict(METADATA=metadata, INSTALLER=INSTALLER)
    files['top_level.txt'] = f'{module}\n'
    for name, text in files.items():
        with open(osp.join(folder, name), 'w') as file:
            file.write(text)
    with open(osp.join(folder, 'RECORD'), 'w') as record:
        for name in files:
            record.write(record_line(site, osp.join(folder, name)))
        record.write(f'{osp.relpath(folder, site)}/RECORD,,\n')
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('alias', help='distribution name to install')
    parser.add_argument('provider', help='installed distribution it names')
    parser.add_argument('module', help="the provider's top-level module")
    parser.add_argument(
        '--site',
        default=sysconfig.get_paths()['purelib'],
        help="site-packages (default: this Python's)")
    args = parser.parse_args()
    try:
        folder = write_alias(args.alias, args.provider, args.module, args.site)
    except importlib.metadata.PackageNotFoundError:
        sys.exit(f'{args.provider} is not installed: install it before '
                 f'aliasing {args.alias} to it')
    print(f'wrote {folder}')


if __name__ == '__main__':
    main()
