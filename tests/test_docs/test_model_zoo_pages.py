# Copyright (c) mmitpn contributors. All rights reserved.
"""The model zoo's pages, the config READMEs' tables and the README's table
are what ``.dev_scripts/model_zoo.py`` writes from the metafiles, and the
metafiles' release columns are what ``.dev_scripts/model_index.py`` says:
nothing in them is maintained by hand."""
import glob
import os.path as osp
import runpy

import pytest
import yaml

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
ZOO = runpy.run_path(osp.join(REPO, '.dev_scripts', 'model_zoo.py'))


def test_generated_pages_are_up_to_date():
    stale = [
        path for path, content in ZOO['outputs']().items()
        if ZOO['current'](path) != content
    ]
    assert not stale, ('out of date, run .dev_scripts/model_zoo.py: ' +
                       ', '.join(stale))


@pytest.mark.parametrize('task', ['pretrain', 'cls', 'det', 'seg'])
def test_config_readme_lists_every_config(task):
    """Every config of the task folder (demos included) is in its README's
    table, and the table names no other."""
    with open(osp.join(REPO, 'configs', task, 'README.md')) as f:
        readme = f.read()
    table = ZOO['marked']('table').search(readme).group(2)
    listed = sorted(
        line.split('](')[-1].split(')')[0] for line in table.splitlines()
        if '[config](' in line)
    shipped = sorted(
        osp.relpath(path, osp.join(REPO, 'configs', task))
        for pattern in ('*.py', 'demo/*.py')
        for path in glob.glob(osp.join(REPO, 'configs', task, pattern)))
    assert listed == shipped


def test_metafile_releases_match_the_generator():
    """``Converted From`` of every metafile entry is what
    ``model_index.py`` derives from the config's name (the weights column
    of the pages); the generator itself needs the OpenMMLab stack, so it
    is imported, not run."""
    index = runpy.run_path(osp.join(REPO, '.dev_scripts', 'model_index.py'))
    with open(osp.join(REPO, 'model-index.yml')) as f:
        metafiles = yaml.safe_load(f)['Import']
    for metafile in metafiles:
        task = metafile.split('/')[1]
        with open(osp.join(REPO, metafile)) as f:
            models = yaml.safe_load(f)['Models']
        for model in models:
            assert model.get('Converted From') == index['release_of'](
                task, model['Name']), model['Name']
            assert model['Results'] == index['RESULTS'].get(
                model['Name']), model['Name']


def test_generator_refuses_a_file_without_markers(tmp_path):
    path = tmp_path / 'README.md'
    path.write_text('# no markers\n')
    with pytest.raises(ValueError, match='model-zoo:table start'):
        ZOO['fill'](path.read_text(), 'table', ['| x |'], str(path))
