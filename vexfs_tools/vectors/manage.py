"""What `vexfs vectors` and `vexfs search` do, without the printing: open vector files by
path, list them, add and export them, read queries, save ground truth."""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Sequence

import numpy as np

from ..errors import CorruptionError, UsageError, VexfsError
from ..format import constants as C
from ..format import vector as V
from ..volume.geometry import KERNEL
from ..volume.volume import Volume
from . import sources, store
from .codec import METRIC_CODES
from .files import VectorFile, find_vector_files

EXPORT_CHUNK_BYTES = 32 << 20
EXPORT_FORMATS = (".npy", ".fvecs", ".bvecs")


def open_vector_file(volume: Volume, path: str) -> VectorFile:
    """The vector file at `path`; a usage error when it is something else."""
    if volume.layout == KERNEL:
        raise UsageError("the kernel layout has no vector files")
    inode = volume.resolve(path)
    if not inode.is_reg or not inode.i_flags & C.INODE_FLAG_VECTOR:
        raise UsageError(f"{path}: not a vector file")
    return VectorFile.open(volume, inode, path)


def open_vector_files(volume: Volume, paths: Sequence[str]) -> list[VectorFile]:
    """The vector files named, or every vector file of the image when none is named."""
    if paths:
        return [open_vector_file(volume, path) for path in paths]
    files = [VectorFile.open(volume, inode, path) for path, inode in find_vector_files(volume)]
    if not files:
        raise UsageError("the image holds no vector files")
    return files


def describe(volume: Volume) -> list[dict]:
    """One entry per vector file (`vexfs vectors ls`), checksums verified. A file whose
    header can not be read gets "error" instead of its shape."""
    out = []
    for path, inode in find_vector_files(volume):
        entry = {"path": path, "inode": inode.ino, "size": inode.i_size}
        try:
            file = VectorFile.open(volume, inode, path)
        except CorruptionError as e:
            entry.update(checksums="bad", error=str(e))
            out.append(entry)
            continue
        info = file.info
        bad = file.bad_chunks()
        entry.update(dimensions=info.dimensions, element_type=info.element_name, count=info.count,
                     metric=info.metric_name, checksums="ok" if not bad else "bad",
                     bad_chunks=[b for b in bad if b >= 0], ids_checksum_ok=-1 not in bad,
                     bad_rows=[list(info.rows_of_chunk(b)) for b in bad if b >= 0],
                     contiguous=file.contiguous_offset() is not None or not info.data_bytes)
        out.append(entry)
    return out


def add_from_file(volume: Volume, path: str, source_path: str, *, ids_path: str | None = None,
                  metric: str | None = None, append: bool = False, dataset: str = "train") -> VectorFile:
    """`vexfs vectors add`: the host file `source_path` becomes (or, with append, is added to)
    the vector file `path`; from HDF5, its `dataset`."""
    source = store.source_from_file(source_path, ids_path, metric, dataset=dataset)
    if append and metric is not None:
        try:
            existing = open_vector_file(volume, path)
        except (UsageError, FileNotFoundError):
            existing = None
        if existing is not None and existing.info.metric != METRIC_CODES[metric]:
            raise UsageError(f"{path} has metric {existing.info.metric_name}; appending keeps it "
                             f"(leave out --metric {metric})")
    ino = store.add_vector_file(volume, path, source, append=append)
    return VectorFile.open(volume, volume.read_inode(ino), path)


def export(file: VectorFile, out: str, *, ids_out: str | None = None) -> int:
    """Write the vectors of `file` to `out` (.npy: as stored, binary as bool rows; .fvecs:
    float32; .bvecs: uint8, components that are integers 0..255 only) and its ids to
    `ids_out` (.npy uint64, or .ivecs below 2^31). Returns the number of vectors."""
    info = file.info
    ext = os.path.splitext(out)[1].lower()
    if ext not in EXPORT_FORMATS:
        raise UsageError(f"{out}: unknown output format (use .npy, .fvecs or .bvecs)")
    binary = info.element_type == V.ELEMENT_BINARY
    if binary and ext != ".npy":
        raise UsageError(f"{file.path} holds binary vectors: export them to .npy (bool rows)")
    ids = None
    if ids_out is not None:
        ids_ext = os.path.splitext(ids_out)[1].lower()
        if ids_ext not in (".npy", ".ivecs"):
            raise UsageError(f"{ids_out}: ids go to .npy or .ivecs")
        ids = file.ids()
        if ids_ext == ".ivecs" and len(ids) and int(ids.max()) >= 1 << 31:
            raise UsageError(f"{ids_out}: ids of {file.path} reach {int(ids.max())}; .ivecs holds ids "
                             "below 2^31 (use .npy)")
    file.require_intact()
    rows_per_chunk = max(1, EXPORT_CHUNK_BYTES // max(info.row_bytes, 1))
    temporary = f"{out}.tmp-{os.getpid()}"
    ids_temporary = f"{ids_out}.tmp-{os.getpid()}" if ids_out else None
    try:
        with open(temporary, "wb") as f:
            if ext == ".npy":
                _write_npy(file, f, rows_per_chunk)
            else:
                _write_texmex(file, f, ext, rows_per_chunk)
        if ids is not None:
            if ids_out.lower().endswith(".ivecs"):
                with open(ids_temporary, "wb") as f:
                    f.write(sources.texmex_rows(ids.reshape(-1, 1), np.dtype("<i4")))
            else:
                with open(ids_temporary, "wb") as f:
                    np.save(f, ids.astype(np.uint64))
            os.replace(ids_temporary, ids_out)
        os.replace(temporary, out)
    except OSError as e:  # ENOSPC and the like: one line, nothing left behind
        raise VexfsError(f"{out}: {e.strerror or e}; nothing was written") from None
    finally:
        for leftover in (temporary, ids_temporary):
            if leftover and os.path.exists(leftover):
                os.unlink(leftover)
    return info.count


def _write_npy(file: VectorFile, f, rows_per_chunk: int) -> None:
    """The .npy header, then the rows through ordinary writes (no memory-mapped output: a
    full disk is an OSError here, not a bus error). Binary vectors as bool rows."""
    info = file.info
    binary = info.element_type == V.ELEMENT_BINARY
    dtype = np.dtype(bool) if binary else info.numpy_type
    np.lib.format.write_array_header_1_0(f, {"descr": np.lib.format.dtype_to_descr(dtype),
                                             "fortran_order": False, "shape": (info.count, info.dimensions)})
    if not binary and _copy_in_kernel(file, f):
        return
    for _, rows in file.iter_rows(rows_per_chunk):
        if binary:
            rows = np.unpackbits(rows, axis=1, count=info.dimensions, bitorder="little").astype(bool)
        f.write(np.ascontiguousarray(rows, dtype).reshape(-1).view(np.uint8))


def _copy_in_kernel(file: VectorFile, f) -> bool:
    """Copy the rows image to file in the kernel (copy_file_range, as cp does) when they
    are one run of the image: they never pass through this process. False, with nothing
    copied, where the kernel can not (a block device, another file system): the caller
    writes them."""
    info = file.info
    where = file.contiguous_offset()
    if where is None or file.skipped or file.window is not None or not hasattr(os, "copy_file_range"):
        return False
    f.flush()
    start, done = f.tell(), 0
    while done < info.data_bytes:
        try:
            n = os.copy_file_range(file.volume.device.fd, f.fileno(), info.data_bytes - done,
                                   where + done, start + done)
        except OSError as e:
            if done == 0 and e.errno in (errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EBADF):
                return False
            raise
        if n == 0:
            raise OSError(errno.EIO, "the image ends inside the vector data")
        done += n
    f.seek(start + done)
    return True


def _write_texmex(file: VectorFile, f, ext: str, rows_per_chunk: int) -> None:
    dtype = sources.TEXMEX[ext]
    for first, rows in file.iter_rows(rows_per_chunk):
        if ext == ".bvecs":
            values = rows.astype(np.float64)
            bad = ~((values >= 0) & (values <= 255) & (values == np.round(values))).all(axis=1)
            if bad.any():
                raise UsageError(f"{file.path}: row {first + int(np.flatnonzero(bad)[0])} has "
                                 "components that are not integers 0..255; .bvecs can not "
                                 "hold them (use .npy or .fvecs)")
        f.write(sources.texmex_rows(rows, dtype))


def parse_vector(text: str) -> np.ndarray:
    """One query from "0.1,0.2,..." (commas and/or spaces; for binary vectors 0s and 1s)."""
    parts = [p for p in re.split(r"[,\s]+", text.strip().strip("[]")) if p]
    if not parts:
        raise UsageError("--vector: no components given")
    try:
        values = np.array([float(p) for p in parts], np.float64)
    except ValueError:
        raise UsageError(f"--vector: {text!r} is not a comma-separated list of numbers") from None
    if not np.isfinite(values).all():
        raise UsageError("--vector: components must be finite")
    return values.reshape(1, -1)


def load_queries(path: str | None = None, vector: str | None = None) -> np.ndarray:
    """Queries from a file (.npy, .fvecs, .bvecs, or an HDF5 file's test) or one --vector."""
    if (path is None) == (vector is None):
        raise UsageError("give the queries with exactly one of --query FILE and --vector LIST")
    if vector is not None:
        return parse_vector(vector)
    if path.lower().endswith(".ivecs"):
        return sources.load_array(path).astype(np.float64)
    return sources.load_array(path, "test")  # HDF5: ann-benchmarks' test queries


def save_groundtruth(prefix: str, ids: np.ndarray, distances: np.ndarray, *,
                     width: int | None = None) -> tuple[str, str]:
    """PREFIX.ivecs (ids, -1 where fewer than k) and PREFIX.fvecs (float32 distances, NaN
    there): the TEXMEX / ann-benchmarks ground truth files. `width` (k, when the search
    found fewer per query): rows padded to it as they are written, never in memory."""
    ids = np.asarray(ids)
    if ids.size and (int(ids.max()) >= 1 << 31 or int(ids.min()) < -1):
        raise UsageError(f"ids reach {int(ids.max())}; .ivecs ground truth holds ids below 2^31")
    paths = (prefix + ".ivecs", prefix + ".fvecs")
    if width is None or width <= ids.shape[1]:
        sources.write_texmex(paths[0], ids.astype(np.int32))
        sources.write_texmex(paths[1], np.asarray(distances, np.float64).astype(np.float32))
        return paths
    sources.write_texmex_padded(paths[0], ids.astype(np.int32), width, -1)
    sources.write_texmex_padded(paths[1], np.asarray(distances, np.float64).astype(np.float32), width, np.nan)
    return paths
