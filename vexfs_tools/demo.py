"""The built-in sample tree of `vexfs demo`: small, deterministic, and touching every
feature the foundation has (nested directories, a symlink, an empty file, a file large
enough to need indirect blocks)."""

from __future__ import annotations

import hashlib
import os

import numpy as np

SAMPLE_TIME = 1_700_000_000  # fixed times keep the demo's output stable


def write_sample_tree(root: str, *, kernel_compatible: bool = False) -> list[str]:
    """Create the sample under `root`; returns the relative paths of its regular files.
    With kernel_compatible, leave out what the kernel layout can not hold (files > 48 KiB)."""
    files = {
        "README.txt": b"VexFS stores vectors next to files.\n",
        "docs/guide.md": b"# Guide\n\nmkfs.vexfs, fsck.vexfs, dump.vexfs and vexfs.\n" * 20,
        "docs/notes/todo.txt": b"- check the kernel's answers against an exact search\n",
        "data/empty": b"",
        "data/page.bin": bytes(range(256)) * 16,
    }
    if not kernel_compatible:
        rng = np.random.default_rng(7)
        files["data/embeddings.f32"] = rng.standard_normal((400, 128)).astype("<f4").tobytes()
    for rel, content in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(content)
    os.symlink("docs/guide.md", os.path.join(root, "guide"))
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames + dirnames:
            os.utime(os.path.join(dirpath, name), (SAMPLE_TIME, SAMPLE_TIME), follow_symlinks=False)
    os.utime(root, (SAMPLE_TIME, SAMPLE_TIME))
    return sorted(files)


def md5_of_host_file(path: str) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def lose_directory_block(image: str, path: str) -> int:
    """Do to directory `path` what the 2.0 kernel's mkdir does on disk: the inode keeps
    mode, links and size but loses i_block[0] and i_blocks; the block stays allocated."""
    from .volume import Volume

    with Volume.open(image, writable=True) as volume:
        inode = volume.resolve(path)
        inode.fields.i_block[0] = 0
        inode.fields.i_blocks = 0
        volume.write_inode(inode.ino, inode.fields)
        return inode.ino
