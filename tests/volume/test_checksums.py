"""Checking many checksums at once (checksums.failing_records) finds exactly the records the
one-at-a-time check rejects."""

from __future__ import annotations

import numpy as np
import pytest

from vexfs_tools.format import constants as C
from vexfs_tools.volume import checksums

SEED = 0x1234ABCD


def sealed_inodes(count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    inos = np.sort(rng.choice(np.arange(1, count * 3), count, replace=False))
    records = rng.integers(0, 256, (count, C.INODE_SIZE), dtype=np.uint8)
    for row, ino in enumerate(inos.tolist()):
        checksums.set_inode_checksum(SEED, ino, memoryview(records[row]))
    return inos, records


def one_at_a_time(inos, records) -> list[int]:
    return [row for row, ino in enumerate(inos.tolist())
            if not checksums.inode_checksum_ok(SEED, ino, records[row].tobytes())]


@pytest.mark.parametrize("bad", [[], [0], [4999], [17, 18], [100, 2000, 2001, 4000], list(range(0, 5000, 7))])
def test_failing_records_are_those_one_at_a_time_rejects(bad):
    rng = np.random.default_rng(len(bad))
    inos, records = sealed_inodes(5000, rng)
    for row in bad:
        records[row, rng.integers(0, C.INODE_SIZE)] ^= 1 << int(rng.integers(0, 8))
    assert one_at_a_time(inos, records) == bad
    assert checksums.failing_records(SEED, inos, records).tolist() == bad


def test_two_records_with_the_same_damage_are_both_found():
    """The damage of two records in one run can not cancel the way two equal errors would
    in a plain XOR of checksums."""
    inos, records = sealed_inodes(64, np.random.default_rng(3))
    records[[5, 40], 0] ^= 0x80
    assert checksums.failing_records(SEED, inos, records).tolist() == [5, 40]


def test_zero_records_are_free_slots_and_blocks_work_alike():
    inos, records = sealed_inodes(100, np.random.default_rng(5))
    records[10] = 0
    assert checksums.failing_records(SEED, inos, records).tolist() == []
    blocks = np.arange(500, 540)
    data = np.random.default_rng(9).integers(0, 256, (40, C.BLOCK_SIZE), dtype=np.uint8)
    for row, block in enumerate(blocks.tolist()):
        view = bytearray(data[row].tobytes())
        checksums.set_tail(SEED, block, view)
        data[row] = np.frombuffer(view, np.uint8)
    data[33, 9] ^= 4
    assert checksums.failing_records(SEED, blocks, data).tolist() == [33]
    assert checksums.failing_records(SEED, blocks[:0], data[:0]).tolist() == []


def test_crc32c_is_the_packages_function_and_skips_its_start_up():
    """The C function is loaded without the crc32c package's __init__ (importlib.metadata,
    argparse): same values, less start-up for every tool."""
    import subprocess
    import sys

    import crc32c as package

    data = bytes(range(256)) * 17
    assert checksums.crc32c(b"123456789") == 0xE3069283
    assert checksums.crc32c(data, 0x1234) == package.crc32c(data, 0x1234)
    code = ("import sys, vexfs_tools.volume.checksums as c; "
            "print('crc32c' in sys.modules, c.crc32c(b'a'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", str(package.crc32c(b"a"))]
