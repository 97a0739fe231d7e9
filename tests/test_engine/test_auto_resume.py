# Copyright (c) mmitpn contributors. All rights reserved.
"""A job that Slurm requeued or torchrun restarted resumes from its work
dir, whatever its command line says."""
import pytest
from mmengine.config import Config

from mmitpn.engine import restart_count, resume_if_restarted


def test_restart_count_reads_slurm_and_torchrun():
    assert restart_count({}) == 0
    assert restart_count({'TORCHELASTIC_RESTART_COUNT': '0'}) == 0
    assert restart_count({'SLURM_RESTART_COUNT': '2'}) == 2
    assert restart_count({
        'SLURM_RESTART_COUNT': '1',
        'TORCHELASTIC_RESTART_COUNT': '3'
    }) == 3
    with pytest.raises(ValueError, match="SLURM_RESTART_COUNT='x'"):
        restart_count({'SLURM_RESTART_COUNT': 'x'})


def test_a_restart_resumes_from_the_work_dir(tmp_path):

    def cfg():
        return Config(
            dict(
                work_dir=str(tmp_path),
                resume=True,
                load_from='elsewhere/epoch_10.pth'))

    first_start = cfg()
    assert resume_if_restarted(first_start, {}) is None
    assert first_start.load_from == 'elsewhere/epoch_10.pth'
    # Restarted before any checkpoint: the command line's choice stands.
    early = cfg()
    assert resume_if_restarted(early, {'SLURM_RESTART_COUNT': '1'}) is None
    assert early.load_from == 'elsewhere/epoch_10.pth'
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_7.pth'))
    restarted = cfg()
    message = resume_if_restarted(restarted,
                                  {'TORCHELASTIC_RESTART_COUNT': '1'})
    assert message == ('Restart 1 of this job: resuming from the latest '
                       f'checkpoint of {tmp_path}.')
    assert restarted.resume is True and restarted.load_from is None
