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
