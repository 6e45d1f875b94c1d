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
VECTOR_SOURCE_SUFFIXES = tuple(".vec" + ext for ext in (".npy", ".fvecs", ".bvecs", ".ivecs", ".hdf5"))
HDF5_EXTENSIONS = (".hdf5", ".h5")  # ann-benchmarks' files: train, test, neighbors, distances
# ann-benchmarks' "distance" attribute <-> our metric; its euclidean distances are not squared.
ANN_METRICS = {"euclidean": "l2", "angular": "cosine", "hamming": "hamming", "dot": "dot"}
ANN_DISTANCE = {metric: name for name, metric in ANN_METRICS.items()}
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


def h5py_module():
    """h5py, or a usage error saying how to install it."""
    try:
        import h5py
    except ImportError:
        raise UsageError("HDF5 files need h5py: pip install 'vexfs-tools[hdf5]'") from None
    return h5py


def load_hdf5(path: str, dataset: str) -> np.ndarray:
    """One dataset of an HDF5 file as a 2-D array: memory-mapped when it is stored
    contiguous and uncompressed (ann-benchmarks' files are), read otherwise."""
    h5py = h5py_module()
    try:
        with h5py.File(path, "r") as f:
            if dataset not in f or not isinstance(f[dataset], h5py.Dataset):
                names = ", ".join(sorted(k for k in f if isinstance(f[k], h5py.Dataset))) or "none"
                raise UsageError(f"{path}: no dataset {dataset!r} (datasets: {names})")
            ds = f[dataset]
            offset = ds.id.get_offset()
            if ds.chunks is None and ds.compression is None and offset is not None and ds.size:
                array = np.memmap(path, dtype=ds.dtype, mode="r", offset=offset, shape=ds.shape)
            else:
                array = ds[()]
    except OSError as e:
        raise UsageError(f"{path}: not a readable HDF5 file ({e})") from None
    array = np.asarray(array) if not isinstance(array, np.memmap) else array
    if array.ndim == 1:
        array = array.reshape(-1, 1)
    if array.ndim != 2:
        raise UsageError(f"{path}: dataset {dataset!r} is {array.ndim}-D, not 2-D")
    return array


def hdf5_metric(path: str) -> str | None:
    """Our metric for the file's ann-benchmarks "distance" attribute (None without one)."""
    h5py = h5py_module()
    with h5py.File(path, "r") as f:
        name = f.attrs.get("distance")
    if name is None:
        return None
    name = name.decode() if isinstance(name, bytes) else str(name)
    if name not in ANN_METRICS:
        raise UsageError(f"{path}: distance {name!r} is not one of {', '.join(ANN_METRICS)}")
    return ANN_METRICS[name]


def is_hdf5(path: str) -> bool:
    return os.path.splitext(path)[1].lower() in HDF5_EXTENSIONS


def load_array(path: str, dataset: str = "train") -> np.ndarray:
    """A 2-D array from .npy, .fvecs, .bvecs, .ivecs (memory-mapped where possible), or an
    HDF5 file's `dataset` (ann-benchmarks' train by default)."""
    ext = os.path.splitext(path)[1]
    if ext.lower() in HDF5_EXTENSIONS:
        return load_hdf5(path, dataset)
    try:
        if ext == ".npy":
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        elif ext in TEXMEX:
            array = read_texmex(path)
        else:
            raise UsageError(f"{path}: unknown vector format (use .npy, .fvecs, .bvecs, .ivecs or .hdf5)")
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


PAD_PIECE_ITEMS = 1 << 18  # padding values written at a time


def write_texmex_padded(path: str, array: np.ndarray, width: int, fill) -> None:
    """TEXMEX rows of `width` components: each row of `array`, then `fill` up to width,
    written piece by piece (a large width costs file space, not memory)."""
    dtype = TEXMEX[os.path.splitext(path)[1]]
    array = np.ascontiguousarray(array, dtype=dtype).reshape(len(array), -1)
    pad = np.full(min(PAD_PIECE_ITEMS, width - array.shape[1]), fill, dtype).tobytes()
    head = np.array([width], "<i4").tobytes()
    with open(path, "wb") as f:
        for row in array:
            f.write(head + row.tobytes())
            left = width - array.shape[1]
            while left:
                n = min(left, PAD_PIECE_ITEMS)
                f.write(pad[:n * dtype.itemsize])
                left -= n


def write_hdf5_groundtruth(path: str, queries: np.ndarray, ids: np.ndarray, distances: np.ndarray,
                           metric: str, train=None) -> None:
    """ann-benchmarks' layout: test (the queries), neighbors (int32 ids, -1 where fewer
    than k), distances (float32; Euclidean, not squared, for l2 as ann-benchmarks keeps
    them; NaN where fewer than k), attribute distance; and train, streamed from
    `train` ((rows iterator, count, dims, dtype)) when given."""
    h5py = h5py_module()
    distances = np.asarray(distances, np.float64)
    if metric == "l2":
        distances = np.sqrt(distances)
    temporary = f"{path}.tmp-{os.getpid()}"
    try:
        with h5py.File(temporary, "w") as f:
            f.attrs["distance"] = ANN_DISTANCE[metric]
            f.attrs["point_type"] = "bit" if metric == "hamming" else "float"
            f.create_dataset("test", data=np.asarray(queries))
            f.create_dataset("neighbors", data=np.asarray(ids).astype(np.int32))
            f.create_dataset("distances", data=distances.astype(np.float32))
            if train is not None:
                rows, count, dims, dtype = train
                ds = f.create_dataset("train", shape=(count, dims), dtype=dtype)
                for first, block in rows:
                    ds[first:first + len(block)] = block
        os.replace(temporary, path)
    except OSError as e:
        raise UsageError(f"{path}: {e}") from None
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
