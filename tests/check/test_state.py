"""InodesInUse answers the same whether it looks inodes up by a table of rows (inode numbers
dense enough) or by binary search (sparse ones)."""

from __future__ import annotations

import numpy as np
import pytest

from vexfs_tools.check.state import DENSE_ROWS_PER_INODE, InodesInUse


def inodes_in_use(inos: list[int]) -> InodesInUse:
    table = InodesInUse()
    table.add(inos, [0o100644 + i for i in range(len(inos))], [1] * len(inos), [0] * len(inos))
    table.freeze()
    return table


@pytest.mark.parametrize("inos, dense", [([1, 2, 3, 5, 8, 9], True),
                                         ([2, 40_000, 70_000], False)])
def test_lookup_by_table_or_by_search_alike(inos, dense):
    table = inodes_in_use(inos)
    assert (table._row_of is not None) == dense
    assert max(inos) + 1 <= DENSE_ROWS_PER_INODE * len(inos) or not dense
    asked = np.array([0, 1, 2, 3, 4, 5, 8, 9, 10, 40_000, 69_999, 70_000, 2**32 - 1], np.int64)
    modes, rows = table.lookup(asked)
    expected_rows = [inos.index(a) if a in inos else -1 for a in asked.tolist()]
    assert rows.tolist() == expected_rows
    assert modes.tolist() == [0o100644 + r if r >= 0 else 0 for r in expected_rows]


def test_lookup_sees_inodes_removed_and_put_after_pass_1():
    table = inodes_in_use([1, 2, 3])
    table.remove(2)
    table.put(7, 0o40755, 2, 4096)
    modes, rows = table.lookup(np.array([2, 3, 7]))
    assert modes.tolist() == [0, 0o100644 + 2, 0o40755]
    assert rows.tolist() == [-1, 2, -1]
