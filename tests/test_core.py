"""hint_envs.core: the composite-action layout and its inverse."""

from __future__ import annotations

import pytest

from hint_envs.core import CompositeActionLayout


@pytest.mark.parametrize("d_u, d_x, gains", [(2, 6, True), (1, 1, True), (3, 4, False)])
def test_infer_inverts_the_controller_size(d_u, d_x, gains):
    layout = CompositeActionLayout(d_u, d_x, chunk_length=8, gains=gains)
    assert CompositeActionLayout.infer(layout.controller_size, d_x, 8, gains) == layout


def test_infer_rejects_sizes_no_layout_has():
    with pytest.raises(ValueError, match="do not fit control states of size 5"):
        CompositeActionLayout.infer(20, 5, chunk_length=8, gains=True)
    with pytest.raises(ValueError, match="do not fit"):
        CompositeActionLayout.infer(6, 6, chunk_length=8, gains=True)  # d_u would be 0
