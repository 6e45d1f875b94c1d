"""Pass 1's bulk check of files with one single indirect block: the pointer slots past each
file's own end of file are checked per file, also where a larger file read in the same batch
maps those slots legitimately."""

from __future__ import annotations

import subprocess
from pathlib import Path

from vexfs_tools.format import constants as C

from .corpus import Img

SMALL_BLOCKS, LARGE_BLOCKS = 14, 40  # 2 and 28 data blocks through the indirect block


def _image(tmp_path: Path) -> Img:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "small.bin").write_bytes(b"s" * (SMALL_BLOCKS * C.BLOCK_SIZE))
    (tree / "large.bin").write_bytes(b"L" * (LARGE_BLOCKS * C.BLOCK_SIZE))
    image = tmp_path / "two.img"
    subprocess.run(["mkfs.vexfs", "-q", "-s", "16M", "-d", str(tree), str(image)], check=True)
    return Img(image, "extended")


def _fsck(image: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["fsck.vexfs", "-fn", str(image)], capture_output=True, text=True)


def test_two_indirect_files_pass(tmp_path):
    img = _image(tmp_path)
    assert _fsck(img.path).returncode == 0


def test_a_pointer_past_the_small_files_eof_is_found_beside_a_larger_file(tmp_path):
    img = _image(tmp_path)
    ino = img.ino("/small.bin")
    free_block = img.geometry.blocks_count - 2
    slot = 10  # logical block 22: past small.bin's 14 blocks, within large.bin's 40
    img.set_indirect_pointer("/small.bin", slot, free_block)
    img.set_inode(ino, i_blocks=img.inode(ino).fields.i_blocks + 1)  # the count agrees
    result = _fsck(img.path)
    assert result.returncode == 4, result.stdout
    assert f"Inode {ino} (/small.bin), i_size is {SMALL_BLOCKS * C.BLOCK_SIZE}, but 1 block(s) are " \
        "mapped past it" in result.stdout


def test_row_bits_packs_every_pattern_of_twelve_pointers():
    import numpy as np

    from vexfs_tools.check.pass1 import _row_bits

    patterns = np.arange(1 << C.DIRECT_BLOCKS)
    flags = ((patterns[:, None] >> np.arange(C.DIRECT_BLOCKS)) & 1).astype(bool)
    assert _row_bits(flags).tolist() == patterns.tolist()
    assert _row_bits(flags[::3]).tolist() == patterns[::3].tolist()  # rows not contiguous
