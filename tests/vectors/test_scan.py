"""scan_rows: the one-pass check and checksums vectors add and mkfs -d use."""

from __future__ import annotations

import numpy as np
import pytest

from vexfs_tools.errors import UsageError
from vexfs_tools.format import vector as V
from vexfs_tools.vectors import codec
from tests.conftest import run


def _rows(count: int, dims: int = 100) -> np.ndarray:
    return np.random.default_rng(3).standard_normal((count, dims), dtype=np.float32)


def test_checksums_match_the_plain_ones_across_parts():
    rows = _rows(7000)  # 2.8 MB: three chunks, the last one partial, parts not chunk-aligned
    parts = [rows[:1234], rows[1234:]]
    expected = codec.chunk_checksums([rows.view(np.uint8).reshape(-1)])
    assert codec.scan_rows(parts, V.ELEMENT_FLOAT32, 100) == expected
    assert len(expected) == 3


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_a_value_that_is_not_finite_is_named_by_its_row(value):
    rows = _rows(7000)
    rows[5001, 17] = value
    with pytest.raises(UsageError, match="row 5001 has a NaN or infinite component"):
        codec.scan_rows([rows], V.ELEMENT_FLOAT32, 100)


def test_large_finite_values_pass():
    rows = np.full((3000, 100), np.finfo(np.float32).max, np.float32)  # sums overflow, products with 0 do not
    assert codec.scan_rows([rows], V.ELEMENT_FLOAT32, 100) == codec.chunk_checksums([rows.view(np.uint8).reshape(-1)])


def test_other_element_types_are_checked_as_before():
    rows = _rows(10, 8).astype(np.float16)
    rows[4, 2] = np.nan
    with pytest.raises(UsageError, match="row 4"):
        codec.scan_rows([rows], V.ELEMENT_FLOAT16, 8)
    with pytest.raises(UsageError, match="dimensions"):
        codec.scan_rows([np.zeros((1, 70000), np.float32)], V.ELEMENT_FLOAT32, 70000)


def test_append_keeps_the_old_whole_chunks_checksums_and_they_hold(tmp_path):
    """An append over 1 MiB: the old whole chunks' checksums are carried over, the partial
    one and the new rows' are computed; every one matches the merged rows."""
    from vexfs_tools.mkfs.plan import MkfsOptions
    from vexfs_tools.mkfs.run import run_mkfs
    from vexfs_tools.vectors import manage
    from vexfs_tools.volume import Volume

    image = str(tmp_path / "a.img")
    run_mkfs(image, MkfsOptions(), size=32 << 20)
    old, new = _rows(7000), _rows(900)[::-1].copy()
    np.save(tmp_path / "old.npy", old)
    np.save(tmp_path / "new.npy", new)
    with Volume.open(image, writable=True) as volume:
        manage.add_from_file(volume, "/e.vec", str(tmp_path / "old.npy"))
        file = manage.add_from_file(volume, "/e.vec", str(tmp_path / "new.npy"), append=True)
        merged = np.concatenate([old, new])
        assert list(file.info.chunk_checksums) == codec.chunk_checksums([merged.view(np.uint8).reshape(-1)])
        assert file.bad_chunks() == []
        assert np.array_equal(file.vectors(), merged)
        assert file.ids().tolist() == list(range(7900))
        del file  # its memory maps share the image's lock
    assert run("fsck.vexfs", "-fn", image).returncode == 0  # the old copy's blocks, indirect ones too, freed


def test_threads_share_the_chunks_and_agree(monkeypatch):
    """Runs of chunks on several threads: the same checksums, in order, and a NaN in the
    last thread's run is still found and named."""
    rows = _rows(7000)
    expected = codec.chunk_checksums([rows.view(np.uint8).reshape(-1)])
    monkeypatch.setattr(codec, "SCAN_THREAD_MIN_BYTES", 1)
    monkeypatch.setattr(codec, "_cpus", lambda: 3)
    assert codec.scan_rows([rows[:3000], rows[3000:]], V.ELEMENT_FLOAT32, 100) == expected
    rows[6999, 99] = np.nan
    with pytest.raises(UsageError, match="row 6999"):
        codec.scan_rows([rows], V.ELEMENT_FLOAT32, 100)


def test_appends_in_one_session_reuse_the_run_the_old_copy_freed(tmp_path, monkeypatch):
    """The old copy an append frees is noted as a run (FREED_RUN_MIN lowered, so this small
    file's is one); the next appends of the same session allocate after the flush that lets
    go of it, and may take its blocks again: the rows, and fsck, hold."""
    from vexfs_tools.mkfs.plan import MkfsOptions
    from vexfs_tools.mkfs.run import run_mkfs
    from vexfs_tools.vectors import manage
    from vexfs_tools.volume import Volume
    from vexfs_tools.volume import volume as volume_module

    monkeypatch.setattr(volume_module, "FREED_RUN_MIN", 16)
    image = str(tmp_path / "a.img")
    run_mkfs(image, MkfsOptions(), size=32 << 20)
    parts = [_rows(3000), _rows(500)[::-1].copy(), _rows(200) + 1]
    for index, part in enumerate(parts):
        np.save(tmp_path / f"{index}.npy", part)
    with Volume.open(image, writable=True) as volume:
        for index in range(len(parts)):
            file = manage.add_from_file(volume, "/e.vec", str(tmp_path / f"{index}.npy"), append=index > 0)
        assert np.array_equal(file.vectors(), np.concatenate(parts)) and file.bad_chunks() == []
        del file
    assert run("fsck.vexfs", "-fn", image).returncode == 0


def test_damaged_chunks_found_on_threads_are_those_found_one_at_a_time(tmp_path, monkeypatch):
    """A memory-mapped file's chunks are checksummed in one threaded pass: it names the same
    damaged chunks as the chunk-by-chunk reading, for the whole file and for a window."""
    from vexfs_tools.mkfs.plan import MkfsOptions
    from vexfs_tools.mkfs.run import run_mkfs
    from vexfs_tools.vectors import manage
    from vexfs_tools.vectors.files import VectorFile
    from vexfs_tools.volume import Volume

    monkeypatch.setattr(codec, "SCAN_THREAD_MIN_BYTES", 1)
    monkeypatch.setattr(codec, "_cpus", lambda: 3)
    image = str(tmp_path / "a.img")
    run_mkfs(image, MkfsOptions(), size=32 << 20)
    np.save(tmp_path / "r.npy", _rows(14000))  # 5.6 MB: six chunks, the last partial
    with Volume.open(image, writable=True) as volume:
        manage.add_from_file(volume, "/e.vec", str(tmp_path / "r.npy"))
    with Volume.open(image) as volume:
        vf = VectorFile.open(volume, volume.resolve("/e.vec"), "/e.vec")
        where = vf.contiguous_offset()
    with open(image, "r+b") as f:
        for chunk in (1, 5):
            f.seek(where + chunk * codec.CHUNK_SIZE + 77)
            byte = f.read(1)
            f.seek(-1, 1)
            f.write(bytes([byte[0] ^ 1]))
    with Volume.open(image) as volume:
        vf = VectorFile.open(volume, volume.resolve("/e.vec"), "/e.vec")
        assert vf.mapped()
        mapped = vf._view(vf.info.data_offset, vf.info.data_bytes)
        assert vf.bad_chunks() == [1, 5] == vf._bad_read_chunks(None) == vf._bad_read_chunks(mapped)
        vf.window = (5000, 9000)  # rows of chunks 1 to 3 (2621.44 rows a chunk)
        assert vf.bad_chunks() == [1] == vf._bad_read_chunks(mapped)
        del vf, mapped
