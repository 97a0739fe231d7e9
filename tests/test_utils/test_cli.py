# Copyright (c) mmitpn contributors. All rights reserved.
import pytest

from mmitpn.utils.cli import image_shape


def test_image_shape_is_square_for_one_value_and_refuses_three():
    assert image_shape([224]) == (224, 224)
    assert image_shape([800, 1344]) == (800, 1344)
    with pytest.raises(ValueError, match='one or two values, got'):
        image_shape([1, 2, 3])
