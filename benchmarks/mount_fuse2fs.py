"""`vexfs mount` against `fuse2fs` (e2fsprogs' FUSE ext2/3/4) on an ext2 image of the same
size, in the same run: sequential write and read of one big file (dd, 1 MiB requests,
fsync'ed), many small files created and read back, `ls -lR`, `rm -r`. Each step runs on a
freshly mounted file system for each side (reads after a remount: no page cache to help).

Goal (the issue): at least fuse2fs's throughput on each (ratio ours/fuse2fs <= 1.0 in time).
The streaming figures are also given as MB/s, to compare with the FUSE channel's own limit
(~750 MB/s reading in 1 MiB requests with do-nothing handlers on this machine).

    python benchmarks/mount_fuse2fs.py [--mib 1024] [--files 10000] [--size 2G] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import anchor, run_timed, tool  # noqa: E402


def is_mounted(mnt: str) -> bool:
    with open("/proc/self/mounts") as f:
        return any(len(line.split()) > 1 and line.split()[1] == mnt for line in f)


class Side:
    """One file system under test: how to make, mount and unmount it."""

    def __init__(self, name: str, image: str, mnt: str, size: str):
        self.name, self.image, self.mnt, self.size = name, image, mnt, size
        self.proc = None

    def make(self) -> None:
        if self.name == "vexfs":
            run_timed([tool("mkfs.vexfs"), "-q", "-f", "-s", self.size, self.image])
        else:
            if os.path.exists(self.image):
                os.unlink(self.image)
            subprocess.run(["truncate", "-s", self.size, self.image], check=True)
            run_timed([anchor("mke2fs"), "-q", "-F", "-t", "ext2", self.image])

    def mount(self) -> None:
        os.makedirs(self.mnt, exist_ok=True)
        argv = ([tool("vexfs"), "mount", "-f", self.image, self.mnt] if self.name == "vexfs" else
                [shutil.which("fuse2fs") or "/usr/sbin/fuse2fs", "-f", "-o", "fakeroot", self.image, self.mnt])
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        end = time.monotonic() + 20
        while not is_mounted(self.mnt):
            if self.proc.poll() is not None or time.monotonic() > end:
                sys.exit(f"{self.name}: mount failed: {self.proc.stderr.read().decode()}")
            time.sleep(0.05)

    def unmount(self) -> float:
        """Seconds until the daemon has written everything and exited."""
        start = time.perf_counter()
        subprocess.run(["fusermount3", "-u", self.mnt], check=True)
        self.proc.wait(timeout=600)
        return time.perf_counter() - start


def shell(command: str) -> float:
    return run_timed(["sh", "-c", command])


def steps(mib: int, files: int) -> list[tuple[str, str, bool]]:
    """(name, shell command on $M, whether it writes: timed including the unmount)."""
    per_dir = 1000
    make = (f"i=0; while [ $i -lt {files} ]; do d=$M/small/d$((i / {per_dir})); "
            f"[ -d $d ] || mkdir -p $d; head -c $((i % 4096 + 1)) /tmp/.bench_src > $d/f$i; i=$((i+1)); done")
    return [
        ("sequential write", f"dd if=/dev/zero of=$M/big bs=1M count={mib} conv=fsync status=none", True),
        ("sequential read", "dd if=$M/big of=/dev/null bs=1M status=none", False),
        (f"create {files} small files", make, True),
        (f"read {files} small files", "cat $M/small/*/* > /dev/null", False),
        ("ls -lR", "ls -lR $M > /dev/null", False),
        ("rm -r", "rm -r $M/small $M/big", True),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mib", type=int, default=1024, help="size of the big file in MiB")
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--size", default="2G", help="image size, both sides")
    parser.add_argument("--dir", default=tempfile.gettempdir())
    args = parser.parse_args()
    with open("/tmp/.bench_src", "wb") as f:
        f.write(os.urandom(4096))
    work = tempfile.mkdtemp(dir=args.dir, prefix="mountbench-")
    sides = [Side("vexfs", os.path.join(work, "vexfs.img"), os.path.join(work, "m-vexfs"), args.size),
             Side("fuse2fs", os.path.join(work, "ext2.img"), os.path.join(work, "m-ext2"), args.size)]
    for side in sides:
        side.make()
    print(f"{'step':<28} {'vexfs s':>9} {'fuse2fs s':>10} {'ratio':>6}")
    try:
        for name, command, writes in steps(args.mib, args.files):
            times = {}
            for side in sides:
                side.mount()
                seconds = shell(command.replace("$M", side.mnt))
                seconds += side.unmount() if writes else (side.unmount() * 0)
                times[side.name] = seconds
            ratio = times["vexfs"] / times["fuse2fs"]
            extra = ""
            if name.startswith("sequential"):
                extra = "   MB/s: " + ", ".join(f"{n} {args.mib * 1.048576 / t:.0f}" for n, t in times.items())
            print(f"{name:<28} {times['vexfs']:>9.2f} {times['fuse2fs']:>10.2f} {ratio:>6.2f}{extra}", flush=True)
    finally:
        for side in sides:
            if is_mounted(side.mnt):
                subprocess.run(["fusermount3", "-uz", side.mnt], check=False)
        check = subprocess.run([tool("fsck.vexfs"), "-fn", sides[0].image], capture_output=True, text=True)
        print(f"fsck.vexfs -fn after the run: exit {check.returncode}")
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
