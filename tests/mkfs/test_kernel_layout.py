"""mkfs.vexfs --compat kernel writes what the kernel's C mkfs writes, byte for byte.

The reference is the pair of images the real C mkfs wrote (shared/kernel-images/
NAME.mkfs-before.img.gz, `mkfs.vexfs -f -L kernelimg` on a fresh 16 MiB file).
"""

from __future__ import annotations

import gzip
import struct
import time

import pytest

from tests.conftest import KERNEL_IMAGES, run

MiB = 1 << 20
BLOCK = 4096
ROOT_INODE = 2 * BLOCK  # inode 1 is the first record of the first inode table block
# Every byte offset where "now" is written: s_wtime, s_lastcheck, s_mkfs_time, and the
# root inode's atime, ctime, mtime.
TIME_OFFSETS = (44, 60, 260, ROOT_INODE + 24, ROOT_INODE + 28, ROOT_INODE + 32)


def reference(name: str) -> bytes:
    source = KERNEL_IMAGES / f"{name}.mkfs-before.img.gz"
    if not source.exists():
        pytest.skip(f"{source} is not here (shared/ missing)")
    with gzip.open(source, "rb") as f:
        return f.read()


def u32(data: bytes, offset: int) -> int:
    return struct.unpack_from("<I", data, offset)[0]


def mask_times(data: bytes) -> bytes:
    out = bytearray(data)
    for offset in TIME_OFFSETS:
        out[offset:offset + 4] = bytes(4)
    return bytes(out)


def first_difference(a: bytes, b: bytes) -> str:
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return f"first difference at byte {i} (block {i // BLOCK}, +{i % BLOCK}): {x:#04x} != {y:#04x}"
    return f"lengths {len(a)} != {len(b)}"


@pytest.mark.parametrize("name", ["tree", "overwrite"])
def test_same_bytes_as_the_c_mkfs(tmp_path, name):
    expected = reference(name)
    stamp = u32(expected, 44)
    assert all(u32(expected, off) == stamp for off in TIME_OFFSETS)  # one "now" everywhere
    image = tmp_path / "k.img"
    run("mkfs.vexfs", "--compat", "kernel", "-L", "kernelimg", "-s", "16M", image,
        env={"SOURCE_DATE_EPOCH": str(stamp)}, check=True)
    got = image.read_bytes()
    assert len(got) == len(expected) == 16 * MiB
    assert got == expected, first_difference(got, expected)


def test_without_source_date_epoch_only_the_timestamps_differ(tmp_path, monkeypatch):
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    expected = reference("tree")
    image = tmp_path / "k.img"
    before = int(time.time())
    run("mkfs.vexfs", "-q", "--compat", "kernel", "-L", "kernelimg", "-s", "16M", image, check=True)
    after = int(time.time()) + 1
    got = image.read_bytes()
    stamps = {u32(got, off) for off in TIME_OFFSETS}
    assert len(stamps) == 1, stamps
    assert before <= stamps.pop() <= after
    assert mask_times(got) == mask_times(expected), first_difference(mask_times(got), mask_times(expected))


def test_rest_of_block_0_is_left_untouched(tmp_path):
    """The C mkfs writes only the 1024 superblock bytes of block 0."""
    expected = reference("tree")
    image = tmp_path / "k.img"
    content = bytearray(16 * MiB)
    content[1024:4096] = b"\x5a" * 3072
    image.write_bytes(bytes(content))
    env = {"SOURCE_DATE_EPOCH": str(u32(expected, 44))}

    refused = run("mkfs.vexfs", "--compat", "kernel", "-L", "kernelimg", image, env=env)
    assert refused.returncode != 0
    assert "-f" in refused.stderr
    assert image.read_bytes() == bytes(content)  # refused: nothing written

    run("mkfs.vexfs", "-q", "-f", "--compat", "kernel", "-L", "kernelimg", image, env=env, check=True)
    got = image.read_bytes()
    assert got[1024:4096] == b"\x5a" * 3072
    assert got[:1024] == expected[:1024]
    assert got[4096:] == expected[4096:]


def test_device_larger_than_128_mib(tmp_path):
    """The bitmap is one block: only the first 32768 blocks are formatted, with a warning,
    and nothing past them is written."""
    image = tmp_path / "big.img"
    size = 200 * MiB
    markers = {128 * MiB: b"first byte past 128 MiB!", 150 * MiB + 123: b"in the middle",
               size - 16: b"the last 16 byte"}
    with open(image, "wb") as f:
        f.truncate(size)
        for offset, marker in markers.items():
            f.seek(offset)
            f.write(marker)
    result = run("mkfs.vexfs", "--compat", "kernel", image)
    assert result.returncode == 0, result.stderr
    assert "32768" in result.stderr and "128 MiB" in result.stderr
    with open(image, "rb") as f:
        head = f.read(BLOCK)
        assert u32(head, 8) == 32768  # s_blocks_count
        assert u32(head, 12) == 32768 - 67  # s_free_blocks
        for offset, marker in markers.items():
            f.seek(offset)
            assert f.read(len(marker)) == marker
        f.seek(128 * MiB)
        rest = f.read()
    assert len(rest) == size - 128 * MiB  # size unchanged
    assert rest.count(0) == len(rest) - sum(len(m) - m.count(0) for m in markers.values())


@pytest.mark.parametrize("label, stored", [
    (None, b"VexFS"),
    ("kernelimg", b"kernelimg"),
    ("A" * 15, b"A" * 15),
    ("x", b"x"),
])
def test_label_nul_padded(tmp_path, label, stored):
    image = tmp_path / "k.img"
    args = ["-L", label] if label is not None else []
    run("mkfs.vexfs", "-q", "--compat", "kernel", *args, "-s", "1M", image, check=True)
    with open(image, "rb") as f:
        name = f.read(1024)[116:132]
    assert name == stored.ljust(16, b"\0")
    dumped = run("dump.vexfs", "--json", image, check=True).stdout
    assert f'"label": "{stored.decode()}"' in dumped


def test_label_of_16_bytes_refused(tmp_path):
    image = tmp_path / "k.img"
    result = run("mkfs.vexfs", "--compat", "kernel", "-L", "B" * 16, "-s", "1M", image)
    assert result.returncode != 0
    assert "15" in result.stderr
    assert not image.exists()


def test_kernel_superblock_fields(tmp_path):
    """The values the kernel reads at mount, and the fields the reference fixes, on a size
    that is not the reference's (so that the counts are computed, not copied)."""
    image = tmp_path / "k.img"
    run("mkfs.vexfs", "-q", "--compat", "kernel", "-s", "5000K", image, check=True)  # 1250 blocks
    with open(image, "rb") as f:
        data = f.read(67 * BLOCK)
    assert data[:4] == b"FXEV"
    assert u32(data, 0) == 0x56455846
    assert u32(data, 4) == 4096
    assert u32(data, 8) == 1250
    assert u32(data, 12) == 1250 - 67
    assert u32(data, 16) == 1024
    assert u32(data, 20) == 1023
    assert u32(data, 24) == 66
    assert data[100:116] == bytes(16)  # the C mkfs writes no uuid
    assert u32(data, 1020) == 0  # no checksum
    bitmap = data[BLOCK:2 * BLOCK]
    assert bitmap[:8] == b"\xff" * 8 and bitmap[8] == 0x07 and not any(bitmap[9:])  # bits 0..66
    root = data[ROOT_INODE:ROOT_INODE + 112]
    mode, links = struct.unpack_from("<HH", root, 0)
    assert (mode, links) == (0o40755, 2)
    assert struct.unpack_from("<Q", root, 16)[0] == 4096  # i_size
    assert u32(root, 36) == 1 and u32(root, 40) == 66  # i_blocks, i_block[0]
    assert u32(root, 92) == 1  # i_generation
    assert not any(data[ROOT_INODE + 112:66 * BLOCK])  # the rest of the table
