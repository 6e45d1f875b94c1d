"""Vector files on the host: .npy, and the TEXMEX formats (.fvecs, .bvecs, .ivecs), read
memory-mapped where possible, and written for export and ground truth.

TEXMEX rows are a little-endian int32 dimension followed by that many components: float32
(.fvecs), uint8 (.bvecs) or int32 (.ivecs).
"""

from __future__ import annotations

import os

import numpy as np

from ..errors import UsageError
from ..format import vector as V

TEXMEX = {".fvecs": np.dtype("<f4"), ".bvecs": np.dtype("u1"), ".ivecs": np.dtype("<i4")}
# mkfs -d turns NAME.vec.EXT into the vector file NAME.vec (ids from NAME.ids.npy|.ivecs).
VECTOR_SOURCE_SUFFIXES = tuple(".vec" + ext for ext in (".npy", ".fvecs", ".bvecs", ".ivecs"))
IDS_SUFFIXES = (".ids.npy", ".ids.ivecs")


def read_texmex(path: str) -> np.ndarray:
    dtype = TEXMEX[os.path.splitext(path)[1]]
    size = os.path.getsize(path)
    if size == 0:
        return np.zeros((0, 1), dtype)
    with open(path, "rb") as f:
        dims = int.from_bytes(f.read(4), "little", signed=True)
    row = 4 + dims * dtype.itemsize
    if not V.MIN_DIMENSIONS <= dims <= V.MAX_DIMENSIONS or size % row:
        raise UsageError(f"{path}: not a {os.path.splitext(path)[1]} file (dimension {dims}, {size} bytes)")
    raw = np.memmap(path, dtype=np.uint8, mode="r").reshape(size // row, row)
    heads = raw[:, :4].copy().view("<i4").reshape(-1)
    if (heads != dims).any():
        raise UsageError(f"{path}: rows of different dimensions ({int(heads[heads != dims][0])} after {dims})")
    return raw[:, 4:].view(dtype) if dtype.itemsize == 1 else np.ascontiguousarray(raw[:, 4:]).view(dtype)


def texmex_rows(array: np.ndarray, dtype: np.dtype) -> bytes:
    """TEXMEX bytes of `array`: each row a little-endian int32 dimension, then components."""
    array = np.ascontiguousarray(array, dtype=dtype).reshape(len(array), -1)
    out = np.empty((len(array), 4 + array.shape[1] * dtype.itemsize), np.uint8)
    out[:, :4] = np.full((len(array), 1), array.shape[1], "<i4").view(np.uint8)
    out[:, 4:] = array.view(np.uint8)
    return out.tobytes()


def write_texmex(path: str, array: np.ndarray) -> None:
    with open(path, "wb") as f:
        f.write(texmex_rows(array, TEXMEX[os.path.splitext(path)[1]]))


def load_array(path: str) -> np.ndarray:
    """A 2-D array from .npy, .fvecs, .bvecs or .ivecs (memory-mapped where possible)."""
    ext = os.path.splitext(path)[1]
    try:
        if ext == ".npy":
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        elif ext in TEXMEX:
            array = read_texmex(path)
        else:
            raise UsageError(f"{path}: unknown vector format (use .npy, .fvecs, .bvecs or .ivecs)")
    except (OSError, ValueError) as e:
        raise UsageError(f"{path}: {e}") from None
    if array.ndim == 1:
        array = array.reshape(1, -1) if ext != ".npy" else array.reshape(-1, 1)
    if array.ndim != 2:
        raise UsageError(f"{path}: a vector file needs a 2-D array, not {array.ndim}-D")
    return array


def as_element_type(array: np.ndarray, path: str) -> tuple[np.ndarray, int, int]:
    """(array to store, element type code, dimensions). bool arrays become packed binary
    vectors; uint8 and int32 (bvecs, ivecs) become float32, exactly; float64 becomes
    float32."""
    kind, size = array.dtype.kind, array.dtype.itemsize
    if kind == "b":
        return np.packbits(array, axis=1, bitorder="little"), V.ELEMENT_BINARY, array.shape[1]
    if kind == "f" and size == 2:
        return array, V.ELEMENT_FLOAT16, array.shape[1]
    if kind == "i" and size == 1:
        return array, V.ELEMENT_INT8, array.shape[1]
    if kind in "fiu":
        if kind in "iu" and array.size and np.abs(array.astype(np.int64)).max() > 2**24:
            raise UsageError(f"{path}: integer components above 2^24 can not be stored exactly as float32")
        return array.astype("<f4", copy=False), V.ELEMENT_FLOAT32, array.shape[1]
    raise UsageError(f"{path}: unsupported element type {array.dtype}")


def load_ids(path: str, count: int) -> np.ndarray:
    array = load_array(path).reshape(-1)
    if array.dtype.kind not in "iu" or (array.size and array.min() < 0):
        raise UsageError(f"{path}: ids must be non-negative integers")
    if len(array) != count:
        raise UsageError(f"{path}: {len(array)} ids for {count} vectors")
    return array.astype("<u8")


def companion_ids(source: str) -> str | None:
    base = source
    for suffix in VECTOR_SOURCE_SUFFIXES:
        if source.endswith(suffix):
            base = source[:-len(suffix)]
    for suffix in IDS_SUFFIXES:
        if os.path.exists(base + suffix):
            return base + suffix
    return None
