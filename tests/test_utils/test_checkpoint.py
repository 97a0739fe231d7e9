# Copyright (c) mmitpn contributors. All rights reserved.
import pytest
import torch

from mmitpn.utils import load_checkpoint_file


def test_truncated_checkpoint_names_the_file(tmp_path):
    path = tmp_path / 'epoch_3.pth'
    torch.save({'state_dict': {'w': torch.randn(64, 64)}}, path)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(ValueError, match=r'epoch_3\.pth .*truncated'):
        load_checkpoint_file(str(path))
    with pytest.raises(ValueError, match=r'epoch_3\.pth'):
        load_checkpoint_file(str(path), allow_pickle=True)
    not_torch = tmp_path / 'notes.pth'
    not_torch.write_text('not a checkpoint')
    with pytest.raises(ValueError, match='notes.pth'):
        load_checkpoint_file(str(not_torch))
