"""extract's writer thread (small files finished while the walk goes on): its failures are
reported as extract's own, every descriptor is closed, and many small files in one
directory stay under a low limit of open files."""

from __future__ import annotations

import os
import resource
import subprocess
import sys

from tests.inspect.images import build
from vexfs_tools.inspect.extract import _Writer


def test_writer_reports_failures_and_closes(tmp_path):
    good = os.open(tmp_path / "good", os.O_WRONLY | os.O_CREAT, 0o600)
    bad = os.open(tmp_path / "bad", os.O_RDONLY | os.O_CREAT, 0o600)  # pwrite fails: EBADF
    writer = _Writer()
    writer.add((good, [(memoryview(b"data"), 0)], 0o640, (1600000000, 1600000001), b"/good"))
    writer.add((bad, [(memoryview(b"data"), 0)], None, (1600000000, 1600000001), b"/bad"))
    writer.close()
    assert [path for path, _ in writer.failures] == [b"/bad"]
    st = os.stat(tmp_path / "good")
    assert (tmp_path / "good").read_bytes() == b"data" and st.st_mode & 0o777 == 0o640
    assert int(st.st_mtime) == 1600000001
    for fd in (good, bad):
        try:
            os.fstat(fd)
            raise AssertionError(f"descriptor {fd} left open")
        except OSError:
            pass


def test_many_small_files_under_a_low_descriptor_limit(tmp_path):
    tree = {"d": None} | {f"d/f{i:03d}": b"%d\n" % i * (i % 7) for i in range(400)}
    image = build(tmp_path, "-N", "1000", tree=tree)

    def limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (32, 32))

    proc = subprocess.run([sys.executable, "-c", "from vexfs_tools.cli.forensic import main; main()", "extract", "-q",
                           str(image), "/", str(tmp_path / "out")], capture_output=True, text=True,
                          preexec_fn=limit, check=False)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert all((tmp_path / "out" / "d" / f"f{i:03d}").read_bytes() == b"%d\n" % i * (i % 7) for i in range(400))
