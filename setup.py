# Copyright (c) mmitpn contributors. All rights reserved.
import os
import os.path as osp
import shutil
import sys
from setuptools import find_packages, setup

REPO_ROOT = osp.dirname(osp.abspath(__file__))
MIM_FILES = ['tools', 'configs', 'model-index.yml']


def get_version() -> str:
    scope: dict = {}
    with open(osp.join(REPO_ROOT, 'mmitpn', 'version.py')) as f:
        exec(compile(f.read(), 'mmitpn/version.py', 'exec'), scope)
    return scope['__version__']


def parse_requirements(fname: str) -> list:
    """Read requirement lines, skipping comments and blank lines."""
    with open(osp.join(REPO_ROOT, fname)) as f:
        lines = (line.split('#')[0].strip() for line in f)
        return [line for line in lines if line]


def add_mim_extension() -> None:
    """Expose configs, tools and model-index.yml under ``mmitpn/.mim``.

    mim and mmengine (``_base_ = 'mmitpn::...'``) look there. OpenMMLab's usual
    helper reacts only to ``develop``; modern ``pip install -e .`` runs
    ``editable_wheel``, so both are handled as symlink installs here, while
    ``sdist``/``bdist_wheel`` copy the files into the package.
    """
    if 'develop' in sys.argv or 'editable_wheel' in sys.argv:
        mode = 'symlink'
    elif 'sdist' in sys.argv or 'bdist_wheel' in sys.argv:
        mode = 'copy'
    else:
        return
    mim_path = osp.join(REPO_ROOT, 'mmitpn', '.mim')
    os.makedirs(mim_path, exist_ok=True)
    for name in MIM_FILES:
        src = osp.join(REPO_ROOT, name)
        tar = osp.join(mim_path, name)
        if osp.islink(tar) or osp.isfile(tar):
            os.remove(tar)
        elif osp.isdir(tar):
            shutil.rmtree(tar)
        if not osp.exists(src):
            continue
        if mode == 'symlink':
            os.symlink(osp.relpath(src, mim_path), tar)
        elif osp.isdir(src):
            shutil.copytree(src, tar)
        else:
            shutil.copyfile(src, tar)


if __name__ == '__main__':
    add_mim_extension()
    setup(
        name='mmitpn',
        version=get_version(),
        description='iTPN and HiViT for OpenMMLab: integral pretraining and '
        'transfer to classification, detection and segmentation',
        long_description=open(osp.join(REPO_ROOT, 'README.md')).read(),
        long_description_content_type='text/markdown',
        keywords='computer vision, self-supervised learning, iTPN, HiViT',
        packages=find_packages(exclude=('configs', 'tools', 'tests')),
        include_package_data=True,
        # The suite is run on 3.11; 3.12 is not yet verified.
        python_requires='>=3.11',
        classifiers=[
            'License :: OSI Approved :: Apache Software License',
            'Operating System :: POSIX :: Linux',
            'Programming Language :: Python :: 3',
            'Programming Language :: Python :: 3.11',
        ],
        license='Apache License 2.0',
        install_requires=parse_requirements('requirements/mminstall.txt') +
        parse_requirements('requirements/runtime.txt'),
        extras_require={
            'all': parse_requirements('requirements/optional.txt'),
            'tests': parse_requirements('requirements/tests.txt'),
        },
        zip_safe=False)
