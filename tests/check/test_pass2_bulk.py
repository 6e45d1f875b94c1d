"""How pass 2's bulk path cuts the directories into batches (check/pass2_bulk.batches)."""

from __future__ import annotations

import numpy as np
import pytest

from vexfs_tools.check import pass2_bulk


@pytest.mark.parametrize("sizes", [[3, 300, 2, 2, 255, 1], [1] * 700, [256, 256, 1], [0, 5, 0], []])
def test_batches_hold_whole_directories_and_every_block_once(sizes):
    dirs = np.arange(10, 10 + len(sizes))
    dir_of_block = np.repeat(dirs, sizes)
    seen_dirs, seen_blocks = [], []
    for batch, span in pass2_bulk.batches(dirs, dir_of_block):
        blocks = dir_of_block[span]
        assert set(blocks.tolist()) <= set(batch.tolist())  # the span holds only the batch's blocks
        assert len(blocks) <= pass2_bulk.BATCH_BLOCKS or len(batch) == 1  # a big directory alone
        seen_dirs += batch.tolist()
        seen_blocks += list(range(span.start, span.stop))
    assert seen_dirs == dirs.tolist()
    assert seen_blocks == list(range(len(dir_of_block)))
