"""The extended layout as mkfs writes it: checksums, the backup superblock, the options that
shape the geometry, and that damage to checksummed metadata is noticed."""

from __future__ import annotations

import json
import os
import struct
import time
import uuid as uuidlib

import pytest
from crc32c import crc32c

from tests.conftest import run
from vexfs_tools.errors import BadMagicError, ChecksumError, FormatError
from vexfs_tools.volume import Volume

BLOCK = 4096
MiB = 1 << 20
GiB = 1 << 30
DEFAULT_FEATURES = ["backup_super", "metadata_csum", "lazy_itable", "flex_geometry", "indirect_blocks", "large_dir"]


def u16(data: bytes, offset: int) -> int:
    return struct.unpack_from("<H", data, offset)[0]


def u32(data: bytes, offset: int) -> int:
    return struct.unpack_from("<I", data, offset)[0]


def read_at(path, offset: int, length: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(length)


def write_at(path, offset: int, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, data, offset)
    finally:
        os.close(fd)


def dump(image, *args) -> dict:
    return json.loads(run("dump.vexfs", "--json", *args, image, check=True).stdout)


# --- superblock and backup --------------------------------------------------------------


def test_superblock_checksum(fresh_image):
    image = fresh_image("16M")
    sb = read_at(image, 0, 1024)
    assert u32(sb, 1020) == crc32c(sb[:1020])
    assert u32(sb, 1020) != 0
    assert sb[373] == 1  # s_checksum_type: crc32c
    assert not any(read_at(image, 1024, BLOCK - 1024))  # rest of block 0 zero


def test_backup_superblock_in_the_last_block(fresh_image):
    image = fresh_image("16M")
    primary = read_at(image, 0, 1024)
    last = 16 * MiB // BLOCK - 1
    backup_block = read_at(image, last * BLOCK, BLOCK)
    backup = backup_block[:1024]
    assert u32(primary, 0) == 0x56455846 == u32(backup, 0)
    assert u32(primary, 656) == last  # s_backup_sb_block
    assert u16(primary, 86) == 0 and u16(backup, 86) == 1  # s_block_group_nr
    assert u32(backup, 1020) == crc32c(backup[:1020])
    same_primary = primary[:86] + primary[88:1020]
    same_backup = backup[:86] + backup[88:1020]
    assert same_primary == same_backup
    assert not any(backup_block[1024:])
    assert dump(image)["geometry"]["backup_superblock"] == last


def test_open_from_backup_when_the_primary_is_destroyed(fresh_image):
    image = fresh_image("16M", "-L", "rescue-me")
    with Volume.open(str(image)) as volume:
        label, uuid = volume.sb.s_volume_name, volume.sb.s_uuid
        root_entries = sorted(r.name for r in volume.iter_dir(volume.read_inode(1)))
    write_at(image, 0, bytes(BLOCK))  # block 0 wiped
    with pytest.raises(BadMagicError):
        Volume.open(str(image))
    with Volume.open(str(image), backup=True) as volume:
        assert volume.sb.s_volume_name == label == b"rescue-me".ljust(16, b"\0")
        assert volume.sb.s_uuid == uuid
        assert volume.superblock_block == volume.device.size // BLOCK - 1
        assert sorted(r.name for r in volume.iter_dir(volume.read_inode(1))) == root_entries
        assert volume.count_free_blocks() == volume.sb.s_free_blocks
    info = dump(image, "-b")
    assert info["label"] == "rescue-me"
    assert info["uuid"] == str(uuidlib.UUID(bytes=bytes(uuid)))


# --- features and options -------------------------------------------------------------


def test_default_features(fresh_image):
    image = fresh_image("16M")
    assert dump(image)["features"] == DEFAULT_FEATURES
    sb = read_at(image, 0, 1024)
    assert (u32(sb, 88), u32(sb, 92), u32(sb, 96)) == (0x1, 0x7, 0x5)  # compat, incompat, ro_compat (metadata_csum, lazy_itable)
    with Volume.open(str(image)) as volume:
        assert volume.layout == "extended"
        assert volume.seed is not None and volume.indirect and volume.large_dir


def test_without_metadata_csum(fresh_image):
    image = fresh_image("16M", "-O", "^metadata_csum")
    sb = read_at(image, 0, 1024)
    assert u32(sb, 1020) == 0  # s_checksum
    assert sb[373] == 0  # s_checksum_type
    assert u32(sb, 96) & 1 == 0
    last = 16 * MiB // BLOCK - 1
    assert u32(read_at(image, last * BLOCK, 1024), 1020) == 0  # the backup's too
    features = dump(image)["features"]
    assert "metadata_csum" not in features
    assert features == [f for f in DEFAULT_FEATURES if f != "metadata_csum"]
    root = read_at(image, u32(sb, 648) * BLOCK, 112)  # s_inode_table_start
    assert u32(root, 108) == 0  # no inode checksum
    with Volume.open(str(image)) as volume:
        assert volume.seed is None


def test_without_backup_super(fresh_image):
    image = fresh_image("16M", "-O", "^backup_super")
    sb = read_at(image, 0, 1024)
    assert u32(sb, 656) == 0  # s_backup_sb_block
    info = dump(image)
    assert "backup_super" not in info["features"]
    assert info["free_blocks"]["recorded"] == info["free_blocks"]["counted"]


@pytest.mark.parametrize("args, size, inodes", [
    ((), "16M", 1044),  # 16 MiB / 16384 = 1024, up to 29 blocks of 36
    (("-N", "1000"), "16M", 1008),
    (("-N", "36"), "16M", 36),
    (("-N", "37"), "16M", 72),
    (("-N", "5000"), "16M", 5004),
    (("-i", "4096"), "16M", 4104),  # 4096 inodes -> 114 blocks of 36
    (("-i", "65536"), "16M", 288),  # 256 -> 8 blocks
])
def test_inode_count(fresh_image, args, size, inodes):
    image = fresh_image(size, *args)
    sb = read_at(image, 0, 1024)
    assert u32(sb, 16) == inodes  # s_inodes_count
    assert u32(sb, 652) == inodes // 36  # s_inode_table_blocks
    info = dump(image)
    assert info["inodes_count"] == inodes
    # inodes 1..10 reserved, 11 is lost+found
    assert info["free_inodes"]["recorded"] == info["free_inodes"]["counted"] == inodes - 11
    assert info["free_blocks"]["recorded"] == info["free_blocks"]["counted"]


def test_inode_options_refused_out_of_range(tmp_path):
    for args in (("-N", "15"), ("-i", "512"), ("--compat", "kernel", "-N", "2000")):
        image = tmp_path / "x.img"
        result = run("mkfs.vexfs", *args, "-s", "16M", image)
        assert result.returncode != 0, args
        assert result.stderr.strip(), args
        assert not image.exists(), args


def test_uuid_option(fresh_image):
    wanted = "0123abcd-4567-89ef-0123-456789abcdef"
    image = fresh_image("16M", "-U", wanted)
    sb = read_at(image, 0, 1024)
    assert sb[100:116] == uuidlib.UUID(wanted).bytes
    assert u32(sb, 624) == crc32c(uuidlib.UUID(wanted).bytes)  # s_checksum_seed
    assert dump(image)["uuid"] == wanted
    null = fresh_image("16M", "-U", "null")
    assert read_at(null, 100, 16) == bytes(16)


def test_random_uuids_differ(fresh_image):
    a, b = fresh_image("1M"), fresh_image("1M")
    assert read_at(a, 100, 16) != read_at(b, 100, 16)
    assert any(read_at(a, 100, 16))


def test_one_tebibyte_sparse_image(tmp_path):
    image = tmp_path / "huge.img"
    start = time.monotonic()
    run("mkfs.vexfs", "-q", "-s", "1T", image, check=True)
    elapsed = time.monotonic() - start
    st = os.stat(image)
    assert st.st_size == 1 << 40
    assert st.st_blocks * 512 < 64 * MiB, f"{st.st_blocks * 512} bytes allocated"
    assert elapsed < 30, f"mkfs -s 1T took {elapsed:.1f} s"
    info = dump(image)
    assert info["blocks_count"] == (1 << 40) // BLOCK
    assert info["inodes_count"] % 36 == 0
    assert info["inodes_count"] >= (1 << 40) // 16384
    assert info["free_blocks"]["recorded"] == info["free_blocks"]["counted"]
    assert info["free_inodes"]["recorded"] == info["free_inodes"]["counted"]
    assert info["checksum"]["ok"] is True
    assert info["problems"] == []
    backup = read_at(image, ((1 << 40) // BLOCK - 1) * BLOCK, 1024)
    assert u32(backup, 0) == 0x56455846 and u16(backup, 86) == 1


# --- damage is detected ----------------------------------------------------------------


def _open_after_flip(image, fd, original: bytes, bit: int):
    damaged = bytearray(original)
    damaged[bit >> 3] ^= 1 << (bit & 7)
    os.pwrite(fd, bytes(damaged), 0)
    try:
        Volume.open(str(image)).close()
        return None
    except Exception as e:  # noqa: BLE001 - classified by the caller
        return e
    finally:
        os.pwrite(fd, original, 0)


def _flip_every_superblock_bit(image):
    """{bit: exception or None} for every bit of bytes 0..1019."""
    original = read_at(image, 0, 1024)
    fd = os.open(image, os.O_RDWR)
    try:
        return {bit: _open_after_flip(image, fd, original, bit) for bit in range(1020 * 8)}
    finally:
        os.close(fd)


@pytest.fixture(scope="module")
def superblock_flips(tmp_path_factory):
    image = tmp_path_factory.mktemp("flips") / "sb.img"
    run("mkfs.vexfs", "-q", "-s", "1M", image, check=True)
    return _flip_every_superblock_bit(image)


def test_every_superblock_bit_flip_is_detected(superblock_flips):
    """Not one of the 8160 single-bit errors in the checksummed bytes opens silently."""
    silent = [(bit >> 3, bit & 7) for bit, error in superblock_flips.items()
              if not isinstance(error, FormatError)]
    assert silent == [], f"(byte, bit) flips that Volume.open accepted: {silent}"


def test_superblock_bit_flips_are_checksum_errors(superblock_flips):
    """Past the magic number, a damaged superblock is reported as a checksum mismatch (so the
    user is sent to the backup), as e2fsprogs verifies the checksum before the features."""
    wrong = {}
    for bit, error in superblock_flips.items():
        if bit < 32:
            assert isinstance(error, BadMagicError), (bit, error)
        elif error is not None and not isinstance(error, ChecksumError):  # None: test above
            wrong[(bit >> 3, bit & 7)] = type(error).__name__
    assert wrong == {}, f"{len(wrong)} flips not reported as ChecksumError: {wrong}"


def test_inode_bit_flips_are_detected(fresh_image):
    image = fresh_image("1M")
    with Volume.open(str(image)) as volume:
        block, offset = volume.geometry.inode_location(1)
        position = block * BLOCK + offset
        root = volume.read_inode(1)
        assert volume.inode_checksum_ok(root)
        original = read_at(image, position, 112)
        assert original == root.raw
        fd = os.open(image, os.O_RDWR)
        try:
            for bit in range(112 * 8):
                damaged = bytearray(original)
                damaged[bit >> 3] ^= 1 << (bit & 7)
                os.pwrite(fd, bytes(damaged), position)
                # a fresh volume each time: a read-only one keeps the inode block it last read
                with Volume.open(str(image)) as fresh:
                    assert not fresh.inode_checksum_ok(fresh.read_inode(1)), f"byte {bit >> 3} bit {bit & 7}"
            os.pwrite(fd, original, position)
        finally:
            os.close(fd)
        with Volume.open(str(image)) as fresh:
            assert fresh.inode_checksum_ok(fresh.read_inode(1))


def test_directory_block_bit_flips_are_detected(fresh_image):
    image = fresh_image("1M")
    with Volume.open(str(image)) as volume:
        root = volume.read_inode(1)
        [(_, block)] = volume.dir_blocks(root)
        original = volume.read_block(block)
        assert volume.dir_block_checksum_ok(block, original)
        fd = os.open(image, os.O_RDWR)
        try:
            for bit in range(0, BLOCK * 8, 7):  # a seventh of the bits, every byte reached
                damaged = bytearray(original)
                damaged[bit >> 3] ^= 1 << (bit & 7)
                os.pwrite(fd, bytes(damaged), block * BLOCK)
                data = volume.read_block(block)
                assert data != original
                assert not volume.dir_block_checksum_ok(block, data), f"byte {bit >> 3} bit {bit & 7}"
            os.pwrite(fd, original, block * BLOCK)
        finally:
            os.close(fd)
        assert volume.dir_block_checksum_ok(block, volume.read_block(block))
        # the checksum is bound to the block number: the same bytes elsewhere do not verify
        assert not volume.dir_block_checksum_ok(block + 1, original)
