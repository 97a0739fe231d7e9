# Copyright (c) mmitpn contributors. All rights reserved.
"""analyze_logs.py plots and summarises mmengine logs; publish_model.py
slims checkpoints and names them by their hash."""
import hashlib
import json
import os.path as osp
import subprocess
import sys

import torch
from mmengine.logging import HistoryBuffer

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
ANALYZE = osp.join(REPO, 'tools', 'analysis_tools', 'analyze_logs.py')
PUBLISH = osp.join(REPO, 'tools', 'misc', 'publish_model.py')


def run(*args, ok=True):
    result = subprocess.run([sys.executable, *args],
                            capture_output=True,
                            text=True,
                            cwd=REPO)
    output = result.stdout + result.stderr
    assert (result.returncode == 0) == ok, output[-4000:]
    return output


def write_run(folder, losses, miou):
    log = folder / '20260101_000000' / 'vis_data'
    log.mkdir(parents=True)
    lines = []
    for i, loss in enumerate(losses, 1):
        lines.append(
            dict(
                lr=1e-3,
                loss=loss,
                loss_pixel=loss * 0.9,
                time=0.5,
                data_time=0.1,
                epoch=(i + 1) // 2,
                iter=i,
                step=i))
        if i % 2 == 0:
            lines.append({'mIoU': miou[i // 2 - 1], 'step': i // 2})
    (log / 'scalars.json').write_text('\n'.join(json.dumps(r)
                                                for r in lines) + '\n')
    return str(folder)


def test_analyze_logs_summary_and_plot(tmp_path):
    a = write_run(tmp_path / 'a', [2.0, 1.5, 1.2, 1.0], [30., 40.])
    b = write_run(tmp_path / 'b', [2.1, 1.7, 1.4, 1.3], [25., 35.])
    out = run(ANALYZE, 'summary', a)
    assert 'loss: first 2, last 1, min 1' in out
    assert 'mIoU: last 40 (step 2), best 40 (step 2)' in out
    assert 'time per iteration: median 0.500 s (data 0.100 s)' in out
    figure = tmp_path / 'curves.png'
    run(ANALYZE, 'plot', a, b, '--keys', 'loss', 'loss_pixel', 'mIoU', '--x',
        'epoch', '--legend', 'a', 'b', '--out', str(figure))
    assert figure.stat().st_size > 1000
    assert "No run logs 'loss_mfm'" in run(
        ANALYZE,
        'plot',
        a,
        '--keys',
        'loss_mfm',
        '--out',
        str(figure),
        ok=False)
    broken = tmp_path / 'broken.json'
    broken.write_text('{"loss": 1, "iter": 1}\nnot json\n')
    assert 'broken.json, line 2: not JSON' in run(
        ANALYZE, 'summary', str(broken), ok=False)


def test_publish_model_keeps_what_inference_needs(tmp_path):
    state_dict = {'backbone.weight': torch.randn(4, 4)}
    source = tmp_path / 'epoch_3.pth'
    torch.save(
        dict(
            meta=dict(
                epoch=3,
                dataset_meta=dict(classes=('a', 'b'), palette=[[0, 0, 0]]),
                cfg='model = dict()'),
            state_dict=state_dict,
            optimizer=dict(state={}, param_groups=[]),
            param_schedulers=[dict(last_epoch=3)],
            message_hub=dict(log_scalars=dict(loss=HistoryBuffer([1.], [1])))),
        source)
    out = run(PUBLISH, str(source), str(tmp_path / 'out' / 'model.pth'))
    name = out.strip().split('wrote ')[-1]
    assert osp.basename(name).startswith('model-') and name.endswith('.pth')
    digest = hashlib.sha256(open(name, 'rb').read()).hexdigest()
    assert osp.basename(name) == f'model-{digest[:8]}.pth'
    published = torch.load(name, weights_only=True)
    assert set(published) == {'state_dict', 'meta'}
    assert published['meta']['dataset_meta']['classes'] == ('a', 'b')
    assert torch.equal(published['state_dict']['backbone.weight'],
                       state_dict['backbone.weight'])
    assert "dropped ['message_hub', 'optimizer', 'param_schedulers']" in out
    # A converter's output is accepted as it is.
    converted = tmp_path / 'converted.pth'
    torch.save(
        dict(state_dict=state_dict, meta=dict(converted_from='x.pt')),
        converted)
    out = run(PUBLISH, str(converted), str(tmp_path / 'converted-out'))
    assert "dropped nothing; kept meta ['converted_from']" in out
    bare = tmp_path / 'bare.pth'
    torch.save(dict(weights=torch.zeros(1)), bare)
    assert 'bare.pth has no state_dict' in run(
        PUBLISH, str(bare), str(tmp_path / 'x'), ok=False)
