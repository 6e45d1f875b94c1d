"""The one rule for "may an inode's pointer name this block": Geometry.is_data_block, and its
array form for bulk work, agree on every block of both layouts, whatever the array's type."""

from __future__ import annotations

import numpy as np
import pytest

from vexfs_tools.format import constants as C
from vexfs_tools.volume.geometry import Geometry

GEOMETRIES = {
    "kernel": Geometry.kernel(4096),
    "kernel, blocks past the bitmap": Geometry.kernel(C.KERNEL_MAX_BLOCKS + 500),
    "extended": Geometry.extended(5000, 200),
    "extended, no backup": Geometry.extended(5000, 200, backup=False),
}


@pytest.mark.parametrize("name", GEOMETRIES)
@pytest.mark.parametrize("dtype", [np.uint32, np.int64, np.uint64])
def test_mask_and_predicate_agree_on_every_block(name, dtype):
    g = GEOMETRIES[name]
    blocks = np.arange(0, g.blocks_count + 50).astype(dtype)
    expected = np.array([g.is_data_block(int(b)) for b in blocks])
    assert (g.data_block_mask(blocks) == expected).all()
    assert g.data_block_mask(blocks.reshape(-1, 1)).shape == (len(blocks), 1)


@pytest.mark.parametrize("name", GEOMETRIES)
def test_what_is_not_data(name):
    g = GEOMETRIES[name]
    assert not g.is_data_block(0) and not g.is_data_block(g.first_data_block - 1)
    assert g.is_data_block(g.first_data_block)
    assert not g.is_data_block(g.addressable_blocks) and not g.is_data_block(2**32 - 1)
    if g.backup_sb_block:
        assert not g.is_data_block(g.backup_sb_block)
    # Pointers below the first data block wrap around in uint32 and stay refused.
    assert not g.data_block_mask(np.array([0, 1, g.first_data_block - 1, 2**32 - 1], np.uint32)).any()
