# Copyright (c) mmitpn contributors. All rights reserved.
"""Write the model zoo's pages from the metafiles.

Reads ``model-index.yml`` and the ``configs/<task>/metafile.yml`` it imports
(written by ``.dev_scripts/model_index.py``) and writes, between the
``<!-- model-zoo ... -->`` markers of the committed files:

- ``docs/model_zoo/summary.md``: the count of configs, published results
  and official weights per algorithm and task;
- one page per algorithm, ``docs/model_zoo/{itpn,fast_itpn}.md``, and one
  for the models that train on a CPU, ``docs/model_zoo/cpu_demos.md``: per
  task, every config with its parameters, FLOPs, schedule, the published
  results and their source, and the official release file it reproduces
  or starts from;
- the "Models and results" table of every ``configs/<task>/README.md`` and
  the model-zoo table of ``README.md`` (the configs with published results).

Nothing here is typed by hand twice: change a config or a published number
in ``model_index.py``, run it, then this script. ``--check`` writes nothing
and exits 1 naming the files that are out of date (the test suite runs it).

Example:
    python .dev_scripts/model_zoo.py           # rewrite the pages
    python .dev_scripts/model_zoo.py --check   # are they up to date?
"""
import argparse
import os
import os.path as osp
import re
import sys
from typing import Dict, List, Optional, Tuple

import yaml

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TASKS = {
    'pretrain': 'Pretraining (ImageNet-1K)',
    'cls': 'Image classification (ImageNet-1K)',
    'det': 'Object detection and instance segmentation (COCO)',
    'seg': 'Semantic segmentation (ADE20K)',
}
DEMO_TASKS = {
    'pretrain': 'Pretraining',
    'cls': 'Image classification',
    'det': 'Object detection and instance segmentation',
    'seg': 'Semantic segmentation',
}
METRICS = {'Top 1 Accuracy': 'top-1'}
DEMO_DATA = 'generated demo data'
# The site's pages: one per algorithm (collection of the metafiles).
PAGES = {'iTPN': 'itpn.md', 'Fast-iTPN': 'fast_itpn.md'}
DEMO_PAGE = 'cpu_demos.md'
INTROS = {
    'iTPN':
    ('iTPN (Integrally Pre-Trained Transformer Pyramid Networks, Tian et '
     'al., CVPR 2023) pretrains the HiViT backbone *together with* its '
     'feature pyramid, so that one pretraining checkpoint holds both '
     'parts that detection and segmentation use. Masked image modeling '
     'runs through the whole network: masked units are dropped in every '
     'stage, the pyramid fuses the stride-4/8/16 features, and the '
     'reconstruction (of normalised pixels, or of a CLIP teacher\'s '
     'features) is predicted from the pyramid. mmitpn ships the pixel, '
     'pixel + MFM and CLIP objectives, the official fine-tuning, '
     'detection and segmentation recipes, and DINO and Mask2Former '
     'configs.'),
    'Fast-iTPN':
    ('Fast-iTPN (Tian et al., TPAMI 2024) is the authors\' successor '
     'family: a convolutional stem, attention blocks with SwiGLU MLPs, '
     'pretraining distilled from a CLIP-L teacher, and two options for '
     'faster dense prediction, token migration and token gathering. '
     'The released weights are backbones (no pyramid), so the '
     'detection and segmentation configs start the pyramid fresh.'),
}
CITATIONS = {
    'iTPN':
    """@inproceedings{tian2023integrally,
  title={Integrally Pre-Trained Transformer Pyramid Networks},
  author={Tian, Yunjie and Xie, Lingxi and Wang, Zhaozhi and Wei, Longhui and Zhang, Xiaopeng and Jiao, Jianbin and Wang, Yaowei and Tian, Qi and Ye, Qixiang},
  booktitle={Proceedings of the IEEE/CVF Conference on Computer Vision and Pattern Recognition (CVPR)},
  pages={18610--18620},
  year={2023}
}""",  # noqa: E501
    'Fast-iTPN':
    """@article{tian2024fast,
  title={Fast-iTPN: Integrally Pre-Trained Transformer Pyramid Network with Token Migration},
  author={Tian, Yunjie and Xie, Lingxi and Qiu, Jihao and Jiao, Jianbin and Wang, Yaowei and Tian, Qi and Ye, Qixiang},
  journal={IEEE Transactions on Pattern Analysis and Machine Intelligence},
  volume={46},
  number={12},
  pages={9766--9779},
  year={2024}
}""",  # noqa: E501
}
COMPLEXITY = (
    'Parameters and FLOPs (multiply-accumulates, OpenMMLab\'s convention) '
    'are computed from the configs at full size by '
    '`.dev_scripts/model_index.py`, and the suite recomputes them '
    '(`tests/test_model_index.py`): pretraining counts the trained parts '
    '(backbone, pyramid, heads) and the backbone\'s FLOPs on the full '
    'image; classification the whole classifier at its input size (224 '
    'px, Fast-iTPN-L 640 px); detection and segmentation the whole model '
    'and the FLOPs of backbone and pyramid at 1344x800 and 512x512.')
NOT_REPRODUCED = (
    'Published results are the papers\' and the official repository\'s; '
    'mmitpn has **not** reproduced them (no ImageNet, COCO or ADE20K '
    'training and no GPU run were made with mmitpn).')
WEIGHTS = (
    'The official column names the release file a pretraining config '
    'reproduces, or the file a downstream config starts from (backbone, '
    'and pyramid where the file holds one); mmitpn ships no weights of its '
    'own. How to download and convert each file and start every task from '
    'it: [From the official checkpoints]({checkpoints}).')


def read_yaml(path: str) -> dict:
    with open(osp.join(REPO, path), encoding='utf-8') as f:
        return yaml.safe_load(f)


def load_index() -> Tuple[Dict[str, dict], List[dict]]:
    """Collections by name and every model, each with its ``task``."""
    collections, models = {}, []
    for metafile in read_yaml('model-index.yml')['Import']:
        content = read_yaml(metafile)
        for collection in content.get('Collections', []):
            collections[collection['Name']] = collection
        task = metafile.split('/')[1]
        for model in content['Models']:
            models.append(dict(model, task=task))
    return collections, models


def is_demo(model: dict) -> bool:
    return DEMO_DATA in model['Metadata'].get('Training Data', [])


def schedule(model: dict) -> str:
    metadata = model['Metadata']
    if metadata.get('Epochs'):
        length = f"{metadata['Epochs']} ep"
    else:
        length = f"{metadata['Iterations'] // 1000}k it" \
            if metadata['Iterations'] >= 1000 else \
            f"{metadata['Iterations']} it"
    if metadata.get('Batch Size'):
        return f"{length}, batch {metadata['Batch Size']}"
    return length


def published(model: dict, with_source: bool = True) -> str:
    parts = []
    for result in model.get('Results') or []:
        metrics = ', '.join(f'{METRICS.get(name, name)} {value}'
                            for name, value in result['Metrics'].items())
        source = result['Source'].split('; not reproduced')[0]
        parts.append(f'{metrics} ({source})' if with_source else metrics)
    return '; '.join(parts) or '-'


def official(model: dict) -> str:
    release = model.get('Converted From')
    if not release or 'File' not in release:
        return '-'
    link = f"[`{release['File']}`]({release['Weights']})"
    if model['task'] == 'pretrain':
        return link
    if '-in1k-ft-pre' in model['Name']:
        return (f'pyramid from {link}, backbone from its fine-tuned '
                'classifier')
    return f'from {link}'


def config_link(model: dict, base: str) -> str:
    return f"[`{model['Name']}`]({base}{model['Config']})"


def millions(value: int) -> str:
    return f'{value / 1e6:.2f}'


def billions(value: int) -> str:
    return f'{value / 1e9:.2f}'


def table(header: List[str], rows: List[List[str]]) -> List[str]:
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    return lines + ['| ' + ' | '.join(row) + ' |' for row in rows]


def zoo_rows(models: List[dict], base: str) -> List[List[str]]:
    return [[
        config_link(m, base),
        millions(m['Metadata']['Parameters']),
        billions(m['Metadata']['FLOPs']),
        schedule(m),
        published(m),
        official(m)
    ] for m in models]


ZOO_HEADER = [
    'Config', 'Params (M)', 'FLOPs (G)', 'Schedule', 'Published (source)',
    'Official weights'
]


def algorithm_page(collection: dict, models: List[dict]) -> List[str]:
    name = collection['Name']
    lines = [
        f'# {name}', '',
        f"> [{collection['Paper']['Title']}]({collection['Paper']['URL']})",
        '', INTROS[name], '', NOT_REPRODUCED + ' ' + COMPLEXITY, '',
        WEIGHTS.format(checkpoints='../user_guides/official_checkpoints.md')
    ]
    for task, title in TASKS.items():
        rows = [m for m in models if m['task'] == task]
        if rows:
            lines += ['', f'## {title}', '']
            lines += table(ZOO_HEADER, zoo_rows(rows, '../../'))
    lines += ['', '## Citation', '', '```bibtex', CITATIONS[name], '```']
    return lines


def demo_page(models: List[dict]) -> List[str]:
    lines = [
        '# CPU demos', '',
        'Small models on generated data that train on a CPU in minutes, '
        'nothing downloaded but the official Fast-iTPN-T file for the '
        '`fast-itpn-tiny` demos (the official column). What they reached '
        'and how to run them: [CPU demos](../get_started/demos.md).', '',
        COMPLEXITY
    ]
    header = ['Config', 'Family'] + ZOO_HEADER[1:4] + ZOO_HEADER[5:]
    for task, title in DEMO_TASKS.items():
        rows = [m for m in models if m['task'] == task]
        if rows:
            lines += ['', f'## {title}', '']
            lines += table(header, [[
                config_link(m, '../../'), m['In Collection'],
                millions(m['Metadata']['Parameters']),
                billions(m['Metadata']['FLOPs']),
                schedule(m),
                official(m)
            ] for m in rows])
    return lines


def summary_page(models: List[dict]) -> List[str]:
    rows = []
    groups = [
        (name, PAGES[name],
         [m for m in models if m['In Collection'] == name and not is_demo(m)])
        for name in PAGES
    ]
    groups.append(('CPU demos', DEMO_PAGE, [m for m in models if is_demo(m)]))
    for name, page, group in groups:
        counts = [str(sum(m['task'] == task for m in group)) for task in TASKS]
        rows.append([f'[{name}]({page})'] + counts + [
            str(len(group)),
            str(sum(bool(m.get('Results')) for m in group)),
            str(sum(official(m) != '-' for m in group))
        ])
    header = ['Algorithm'] + [t.split(' (')[0] for t in TASKS.values()] + [
        'Configs', 'With published results', 'With official weights'
    ]
    return [
        '# Model zoo', '',
        'Every shipped config, one page per algorithm, written from the '
        'metafiles (`configs/<task>/metafile.yml`, imported by '
        '`model-index.yml`, which mmpretrain\'s `get_model` and the '
        'OpenMMLab inferencers read after '
        '`mmitpn.apis.register_model_index()`).', '', NOT_REPRODUCED, ''
    ] + table(header, rows) + [
        '', 'Each config also has a `README.md` in its task folder '
        '([pretraining](../../configs/pretrain/README.md), '
        '[classification](../../configs/cls/README.md), '
        '[detection](../../configs/det/README.md), '
        '[segmentation](../../configs/seg/README.md)) with the same '
        'table and how to run it.'
    ]


def readme_table(models: List[dict], task: str) -> List[str]:
    """The "Models and results" table of ``configs/<task>/README.md``."""
    rows = []
    for m in models:
        if m['task'] != task:
            continue
        family = m['In Collection']
        config = osp.relpath(m['Config'], f'configs/{task}')
        rows.append([
            f"`{m['Name']}`", family,
            millions(m['Metadata']['Parameters']),
            billions(m['Metadata']['FLOPs']),
            published(m),
            official(m), f'[config]({config})'
        ])
    header = [
        'Model', 'Family', 'Params (M)', 'FLOPs (G)', 'Published (source)',
        'Official weights', 'Config'
    ]
    return table(header, rows)


def front_page_table(models: List[dict]) -> List[str]:
    """The README's table: the configs with published results."""
    rows = [[
        TASKS[m['task']], f"[`{m['Name']}`]({m['Config']})",
        millions(m['Metadata']['Parameters']),
        billions(m['Metadata']['FLOPs']),
        published(m),
        official(m)
    ] for m in models if m.get('Results')]
    header = [
        'Task', 'Config', 'Params (M)', 'FLOPs (G)', 'Published (source)',
        'Official weights'
    ]
    return table(header, rows)


def marked(name: str) -> re.Pattern:
    return re.compile(
        rf'(<!-- model-zoo:{name} start[^>]*-->\n)(.*?)'
        rf'(<!-- model-zoo:{name} end -->)', re.S)


def fill(text: str, name: str, lines: List[str], path: str) -> str:
    """``text`` with the part between the markers ``name`` replaced."""
    pattern = marked(name)
    if not pattern.search(text):
        raise ValueError(f'{path} has no <!-- model-zoo:{name} start --> ... '
                         f'<!-- model-zoo:{name} end --> markers.')
    return pattern.sub(
        lambda m: m.group(1) + '\n'.join(lines) + '\n' + m.group(3), text)


GENERATED = ('<!-- model-zoo:page start (written by '
             '.dev_scripts/model_zoo.py from the metafiles; do not edit) -->')


def outputs() -> Dict[str, str]:
    """Every file this script writes, with its new content."""
    collections, models = load_index()
    pages = {
        'docs/model_zoo/summary.md':
        summary_page(models),
        f'docs/model_zoo/{DEMO_PAGE}':
        demo_page([m for m in models if is_demo(m)]),
    }
    for name, page in PAGES.items():
        pages[f'docs/model_zoo/{page}'] = algorithm_page(
            collections[name], [
                m for m in models
                if m['In Collection'] == name and not is_demo(m)
            ])
    result = {
        path:
        '\n'.join([GENERATED] + lines + ['<!-- model-zoo:page end -->']) + '\n'
        for path, lines in pages.items()
    }
    for task in TASKS:
        path = f'configs/{task}/README.md'
        result[path] = fill(
            current(path), 'table', readme_table(models, task), path)
    result['README.md'] = fill(
        current('README.md'), 'table', front_page_table(models), 'README.md')
    return result


def current(path: str) -> Optional[str]:
    full = osp.join(REPO, path)
    if not osp.isfile(full):
        return None
    with open(full, encoding='utf-8') as f:
        return f.read()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        '--check',
        action='store_true',
        help='write nothing; exit 1 if a file is out of date')
    args = parser.parse_args()
    stale = []
    for path, content in outputs().items():
        if current(path) == content:
            continue
        stale.append(path)
        if not args.check:
            os.makedirs(osp.dirname(osp.join(REPO, path)), exist_ok=True)
            with open(osp.join(REPO, path), 'w', encoding='utf-8') as f:
                f.write(content)
            print(f'wrote {path}')
    if args.check and stale:
        print('out of date (run .dev_scripts/model_zoo.py): ' +
              ', '.join(stale))
        sys.exit(1)


if __name__ == '__main__':
    main()
