"""The built-in sample tree of `vexfs demo`: small, deterministic, and touching every
feature the tools have (nested directories, a symlink, an empty file, a file large
enough to need indirect blocks, a vector source that mkfs -d turns into a vector file), and
the queries and made-up kernel answers the demo scores with `vexfs verify`."""

from __future__ import annotations

import hashlib
import os

import numpy as np

from .volume import Volume

SAMPLE_TIME = 1_700_000_000  # fixed times keep the demo's output stable
# mkfs -d's naming rule: NAME.vec.npy becomes the vector file NAME.vec, ids from NAME.ids.npy.
VECTOR_SOURCE, VECTOR_IDS = "data/embeddings.vec.npy", "data/embeddings.ids.npy"
VECTOR_FILE = "/data/embeddings.vec"
VECTOR_COUNT, VECTOR_DIMS = 1000, 32


def sample_vectors() -> tuple[np.ndarray, np.ndarray]:
    """The sample's vectors (float32) and their ids (not 0..n-1, to show the mapping)."""
    rng = np.random.default_rng(11)
    return (rng.standard_normal((VECTOR_COUNT, VECTOR_DIMS)).astype("<f4"),
            np.arange(VECTOR_COUNT, dtype=np.uint64) * 7 + 1000)


def sample_queries(count: int = 3) -> np.ndarray:
    """Queries near some of the sample's vectors."""
    vectors, _ = sample_vectors()
    rng = np.random.default_rng(12)
    rows = rng.choice(len(vectors), count, replace=False)
    return (vectors[rows] + 0.3 * rng.standard_normal((count, vectors.shape[1]))).astype("<f4")


def imperfect_answers(exact: dict, queries: np.ndarray) -> dict:
    """A kernel's answer set, made up from the exact one (the `vexfs search --json` layout):
    query 1's last id replaced by the farthest vector's, and query 2's second distance a
    placeholder 0. `vexfs verify` must catch both."""
    answers = {"metric": exact["metric"], "k": exact["k"],
               "results": [dict(item, ids=list(item["ids"]), distances=list(item["distances"]))
                           for item in exact["results"]]}
    vectors, ids = sample_vectors()
    results = answers["results"]
    if len(results) > 1:
        query = np.asarray(queries[1], np.float64)
        far = int(np.argmax(((vectors.astype(np.float64) - query) ** 2).sum(axis=1)))
        results[1]["ids"][-1] = int(ids[far])
        results[1]["distances"][-1] = float(((vectors[far].astype(np.float64) - query) ** 2).sum())
    if len(results) > 2:
        results[2]["distances"][1] = 0.0
    return answers


def write_sample_tree(root: str, *, kernel_compatible: bool = False) -> list[str]:
    """Create the sample under `root`; returns the relative paths of the regular files mkfs
    copies as they are (not the vector source and its ids). With kernel_compatible, leave out
    what the kernel layout can not hold (files > 48 KiB, the vector source)."""
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
        vectors, ids = sample_vectors()
        os.makedirs(os.path.join(root, "data"), exist_ok=True)
        np.save(os.path.join(root, VECTOR_SOURCE), vectors)
        np.save(os.path.join(root, VECTOR_IDS), ids)
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
    with Volume.open(image, writable=True) as volume:
        inode = volume.resolve(path)
        inode.fields.i_block[0] = 0
        inode.fields.i_blocks = 0
        volume.write_inode(inode.ino, inode.fields)
        return inode.ino
