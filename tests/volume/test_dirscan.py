"""The bulk directory scan (volume/dirscan.py) against the one-block walk it stands in for:
the same entries, the same broken chains, every deleted entry's block flagged, equal names
hashed alike and bad bytes in names found."""

from __future__ import annotations

import random

import numpy as np
import pytest

from vexfs_tools.format import constants as C
from vexfs_tools.format.dtypes import DIRENT_HEADER
from vexfs_tools.volume import directory
from vexfs_tools.volume.dirscan import name_hashes, slack_suspects, walk_blocks

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

CHAIN_ENDS = (C.BLOCK_SIZE, C.BLOCK_SIZE - C.DIR_TAIL_SIZE)


def random_block(rng: random.Random, chain_end: int) -> bytearray:
    """A directory block as mkfs or the kernel leaves it, then perhaps damaged: entries
    packed, some removed the kernel's way (bytes left in the slack), some bytes changed."""
    names = [bytes(rng.choice(b"abcdefgh./\0") for _ in range(rng.randint(1, rng.choice([3, 12, 40]))))
             for _ in range(rng.randint(0, 120))]
    entries = [(b".", 5, C.FT_DIR), (b"..", 1, C.FT_DIR)] + \
        [(name, rng.randint(0, 50), rng.randint(0, 9)) for name in names]
    block = directory.pack_entries(entries, chain_end=chain_end)[0]
    for name in rng.sample(names, min(len(names), rng.randint(0, 6))):
        directory.remove_entry(block, name, chain_end=chain_end)
    for _ in range(rng.choice([0, 0, 1, 2, 8])):
        position = rng.randrange(C.BLOCK_SIZE)
        if rng.random() < 0.5:
            block[position] = rng.randrange(256)
        else:
            offset = position & ~3
            if offset + 8 <= C.BLOCK_SIZE:
                DIRENT_HEADER.pack_into(block, offset, rng.randint(0, 60), rng.choice([0, 4, 12, 16, 3, 4096]),
                                        rng.randint(0, 20), rng.randint(0, 9))
    return block


def blocks_for(seed: int, count: int, chain_end: int) -> np.ndarray:
    rng = random.Random(seed)
    return np.frombuffer(b"".join(random_block(rng, chain_end) for _ in range(count)),
                         np.uint8).reshape(count, C.BLOCK_SIZE)


def as_records(entries, row: int) -> list[tuple]:
    mine = np.flatnonzero(entries.row == row)
    mine = mine[np.argsort(entries.step[mine])]
    return [(int(entries.offset[i]), int(entries.inode[i]), int(entries.rec_len[i]), int(entries.name_len[i]),
             int(entries.file_type[i])) for i in mine]


@settings(max_examples=60, derandomize=True, database=None, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), chain_end=st.sampled_from(CHAIN_ENDS))
def test_walk_blocks_reads_what_walk_block_reads(seed, chain_end):
    data = blocks_for(seed, 12, chain_end)
    entries = walk_blocks(data, chain_end=chain_end)
    for row in range(len(data)):
        walk = directory.walk_block(data[row].tobytes(), chain_end=chain_end)
        assert as_records(entries, row) == [(r.offset, r.inode, r.rec_len, r.name_len, r.file_type)
                                            for r in walk.records]
        assert bool(entries.broken[row]) == (walk.problem is not None), walk.problem
        steps = sorted(entries.step[entries.row == row].tolist())
        assert steps == list(range(len(walk.records)))


def test_walk_blocks_of_noise_and_of_nothing():
    rng = np.random.default_rng(7)
    data = rng.integers(0, 256, (64, C.BLOCK_SIZE), dtype=np.uint8)
    data[:8, :] = 0  # rec_len 0: broken at once
    entries = walk_blocks(data)
    for row in range(len(data)):
        walk = directory.walk_block(data[row].tobytes())
        assert len(as_records(entries, row)) == len(walk.records)
        assert bool(entries.broken[row]) == (walk.problem is not None)
    empty = walk_blocks(np.zeros((0, C.BLOCK_SIZE), np.uint8))
    assert len(empty) == 0 and empty.broken.size == 0


@settings(max_examples=60, derandomize=True, database=None, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), chain_end=st.sampled_from(CHAIN_ENDS))
def test_every_block_with_a_deleted_entry_is_a_suspect(seed, chain_end):
    data = blocks_for(seed, 12, chain_end)
    entries = walk_blocks(data, chain_end=chain_end)
    suspects = slack_suspects(data, entries)
    for row in range(len(data)):
        block = data[row].tobytes()
        found = [gone for record in directory.walk_block(block, chain_end=chain_end).records
                 for gone in directory.deleted_in_slack(block, record)]
        if found:
            assert suspects[row], found


def test_a_clean_block_is_no_suspect_and_a_kernel_delete_is():
    entries = [(b".", 5, C.FT_DIR), (b"..", 1, C.FT_DIR)] + [(b"file%03d" % i, 20 + i, C.FT_REG_FILE)
                                                          for i in range(50)]
    clean = directory.pack_entries(entries, chain_end=C.BLOCK_SIZE)[0]
    deleted = bytearray(clean)
    directory.remove_entry(deleted, b"file007", chain_end=C.BLOCK_SIZE)
    data = np.frombuffer(bytes(clean) + bytes(deleted), np.uint8).reshape(2, C.BLOCK_SIZE)
    assert slack_suspects(data, walk_blocks(data)).tolist() == [False, True]


def test_name_hashes_equal_names_alike_and_find_bad_bytes():
    names = [b"a", b"ab", b"ba", b"ab", b"x" * 255, b"x" * 254 + b"y", b"x" * 255, b"a/b", b"nul\0", b"ok."]
    block = directory.pack_entries([(name, 10 + i, 1) for i, name in enumerate(names)],
                                   chain_end=C.BLOCK_SIZE)
    data = np.frombuffer(b"".join(block), np.uint8).reshape(-1, C.BLOCK_SIZE)
    entries = walk_blocks(data)
    order = np.lexsort((entries.step, entries.row))
    hashes, bad = name_hashes(data, entries, order)
    by_name: dict[bytes, set[int]] = {}
    for name, value in zip(names, hashes.tolist()):
        by_name.setdefault(name, set()).add(value)
    assert all(len(values) == 1 for values in by_name.values())
    assert len({next(iter(v)) for v in by_name.values()}) == len(by_name)  # no collisions here
    assert bad.tolist() == [b"/" in name or b"\0" in name for name in names]
    none_hashes, none_bad = name_hashes(data, entries, np.zeros(0, np.int64))
    assert none_hashes.size == 0 and none_bad.size == 0


def test_name_hashes_over_every_length_and_place_of_a_bad_byte():
    """Names of 1..255 bytes, some with a NUL or a '/' at any place (the ends of 8-byte
    words included); after a name come its padding, then the next entry's header."""
    rng = random.Random(7)
    names = []
    for length in range(1, 256):
        name = bytearray(rng.choice(b"abcxyz") for _ in range(length))
        if length % 3 == 0:
            name[rng.choice([0, length - 1, min(length - 1, 7), min(length - 1, 8), rng.randrange(length)])] = \
                rng.choice(b"/\0")
        names.append(bytes(name))
    names += names[:40]  # the same names again, in other blocks
    blocks = [directory.pack_entries([(name, 10 + i, 1) for i, name in enumerate(names[at:at + 12])],
                                     chain_end=C.BLOCK_SIZE)[0] for at in range(0, len(names), 12)]
    data = np.frombuffer(b"".join(bytes(block) for block in blocks), np.uint8).reshape(-1, C.BLOCK_SIZE).copy()
    entries = walk_blocks(data)
    order = np.lexsort((entries.step, entries.row))
    hashes, bad = name_hashes(data, entries, order)
    assert bad.tolist() == [b"/" in name or b"\0" in name for name in names]
    by_name: dict[bytes, set[int]] = {}
    for name, value in zip(names, hashes.tolist()):
        by_name.setdefault(name, set()).add(value)
    assert all(len(values) == 1 for values in by_name.values())
    assert len({next(iter(v)) for v in by_name.values()}) == len(by_name)
