"""Reading the images the real kernel module wrote (shared/kernel-images)."""

from __future__ import annotations

import hashlib

import pytest

from tests.conftest import kernel_image, kernel_md5
from vexfs_tools.errors import PathNotFoundError
from vexfs_tools.inspect.walk import walk_tree
from vexfs_tools.volume import Volume


def md5_of(volume, inode) -> str:
    digest = hashlib.md5()
    for chunk in volume.read_file(inode):
        digest.update(chunk)
    return digest.hexdigest()


@pytest.mark.parametrize("name,reachable", [("tree", 4), ("overwrite", 3)])
def test_files_reachable_from_the_root_read_back_with_the_kernels_md5(tmp_path, name, reachable):
    image = kernel_image(name, tmp_path)
    expected = kernel_md5(name)
    with Volume.open(str(image)) as volume:
        found = {path.decode(): md5_of(volume, inode) for path, inode in walk_tree(volume) if inode.is_reg}
    assert len(found) == reachable
    for path, digest in found.items():
        assert expected[path] == digest, path


def test_tree_image_directories_lost_their_block_pointer(tmp_path):
    """mkdir'd directories: links 2, size 4096, i_blocks 0, i_block[0] 0 (the reference)."""
    with Volume.open(str(kernel_image("tree", tmp_path))) as volume:
        for path in ("/docs", "/vectors"):
            inode = volume.resolve(path)
            assert inode.is_dir and inode.i_size == 4096 and inode.i_blocks == 0 and inode.i_block[0] == 0
            assert list(volume.iter_dir(inode)) == []
        with pytest.raises(PathNotFoundError):
            volume.resolve("/docs/max.bin")
        assert volume.read_inode(1).i_flags == 4096  # the size snapshot, not flags
        assert volume.count_used_inodes() == 17
        assert volume.count_free_blocks() == 3982 and volume.sb.s_free_blocks == 4029


def test_truncated_files_read_up_to_i_size_only(tmp_path):
    expected = kernel_md5("overwrite")
    with Volume.open(str(kernel_image("overwrite", tmp_path))) as volume:
        zap = volume.resolve("/zap.bin")
        assert zap.i_size == 100 and zap.i_blocks == 12  # truncate freed nothing
        assert md5_of(volume, zap) == expected["/zap.bin"]
