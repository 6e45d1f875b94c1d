"""The bulk paths of fsck (pass 1's inodes and their direct and single indirect blocks,
pass 2's directories) change nothing but speed: on damaged images, fsck with them and fsck
with every inode and directory gone through one by one print the same transcripts, exit
alike, and -y leaves the same bytes.

The damage is seeded: bytes, bits and integers in the directory blocks and the inode table
of the fuzz bases, with and without resealed checksums, and the bases themselves. The
corruption corpus (tests/check) and the real kernel's images are compared the same way."""

from __future__ import annotations

import random

import pytest

from tests.check.harness import bulk_and_entry_by_entry
from tests.conftest import kernel_image

from .fuzzlib import BASE_NAMES, Mutation, apply, get_base

SEEDS = range(60)


@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("bulk")
    return {name: base for name in BASE_NAMES if (base := get_base(name, workdir / "bases")) is not None}


def damage(seed: int, bases) -> Mutation:
    rng = random.Random(seed)
    base = bases[sorted(bases)[seed % len(bases)]]
    if seed < len(bases):
        return Mutation(base.name, "metadata", "flip", ())  # the base as it is
    region = rng.choice(["directory", "directory", "directory", "inode_table"])
    kind = rng.choice(["flip", "bytes", "u32", "u16"])
    edits = tuple((rng.getrandbits(24), rng.getrandbits(16)) for _ in range(rng.choice([1, 2, 4, 16])))
    return Mutation(base.name, region, kind, edits, reseal=base.csum and rng.random() < 0.5)


@pytest.mark.parametrize("seed", SEEDS)
def test_bulk_and_entry_by_entry_agree(bases, tmp_path, monkeypatch, seed):
    m = damage(seed, bases)
    results = bulk_and_entry_by_entry(apply(bases[m.base], m), tmp_path, monkeypatch)
    assert results["bulk"] == results["entry by entry"], m


@pytest.mark.parametrize("name", ["tree", "overwrite"])
def test_agree_on_the_real_kernels_images(tmp_path, monkeypatch, name):
    """Orphaned directory blocks and the rest of what the kernel leaves."""
    data = kernel_image(name, tmp_path).read_bytes()
    results = bulk_and_entry_by_entry(data, tmp_path, monkeypatch)
    assert results["bulk"] == results["entry by entry"]
    assert results["bulk"][1][0] == 1  # -y repaired something
