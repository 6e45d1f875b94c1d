"""volume/blockmap.py's helpers for bulk work."""

from __future__ import annotations

import numpy as np

from vexfs_tools.volume.blockmap import block_runs


def test_block_runs_are_the_runs_of_consecutive_numbers():
    assert block_runs(np.array([], np.int64)) == []
    assert block_runs(np.array([7])) == [(7, 1)]
    assert block_runs(np.array([3, 4, 5, 9, 10, 12])) == [(3, 3), (9, 2), (12, 1)]
    rng = np.random.default_rng(3)
    blocks = np.flatnonzero(rng.random(5000) < 0.7)
    runs = block_runs(blocks)
    assert np.concatenate([np.arange(first, first + count) for first, count in runs]).tolist() == blocks.tolist()
    assert all(a + n < b for (a, n), (b, _) in zip(runs, runs[1:]))  # runs never touch
