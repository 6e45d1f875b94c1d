"""Hostile images for fsck.vexfs and the read-only tools: base images, where their metadata
lives, mutations of it, and one routine that puts a mutated image through
fsck -n, the read-only tools, fsck -y, fsck -n again (and the tools once more).

Shared by the pytest tests (test_fsck_fuzz.py, driven by hypothesis) and by soak.py (a
seeded generator, thousands of cases). Everything here is deterministic: the base images
are built with a fixed UUID, SOURCE_DATE_EPOCH and fixed file times, so a mutation (or a
soak seed) names the same bytes on every machine.

Not collected by pytest (no test_ prefix).
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from vexfs_tools.errors import VexfsError  # noqa: E402
from vexfs_tools.format import constants as C  # noqa: E402
from vexfs_tools.volume import checksums  # noqa: E402

BIN = Path(sys.executable).parent
KERNEL_IMAGES = ROOT.parent / "shared" / "kernel-images"
UUID = "0f0e0d0c-0b0a-0908-0706-050403020100"
EPOCH = "1700000000"
TIMEOUT = 60  # seconds for one run of one tool; a run that takes longer is a hang

BS = C.BLOCK_SIZE


# --- base images -------------------------------------------------------------------------


def _tool(name: str) -> str:
    path = BIN / name
    return str(path) if path.exists() else (shutil.which(name) or name)


def build_tree(top: Path, layout: str) -> None:
    """A small tree: nested directories, empty/small/multi-block files, a symlink, a fifo;
    extended: a file that needs an indirect block and a directory of two blocks."""
    (top / "sub" / "deep").mkdir(parents=True)
    (top / "many").mkdir()
    (top / "small.txt").write_bytes(b"hello\n")
    (top / "empty").write_bytes(b"")
    (top / "sub" / "mid.bin").write_bytes(bytes(i % 251 for i in range(30000)))
    (top / "sub" / "deep" / "x").write_bytes(b"x" * 5000)
    big = 49152 if layout == "kernel" else 200_000
    (top / "big.bin").write_bytes(bytes(i % 253 for i in range(big)))
    for i in range(60 if layout == "kernel" else 150):
        (top / "many" / f"file_with_a_longish_name_{i:04d}").write_bytes(str(i).encode())
    os.symlink("small.txt", top / "link")
    os.mkfifo(top / "fifo")
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            os.utime(os.path.join(dirpath, name), (1600000000, 1600000000), follow_symlinks=False)
    os.utime(top, (1600000000, 1600000000))


def _mkfs(image: Path, *args) -> None:
    env = dict(os.environ, SOURCE_DATE_EPOCH=EPOCH)
    env.pop("VEXFS_TRACEBACK", None)
    proc = subprocess.run([_tool("mkfs.vexfs"), "-q", "-U", UUID, *map(str, args), str(image)],
                          capture_output=True, text=True, env=env, timeout=TIMEOUT)
    if proc.returncode != 0:
        raise RuntimeError(f"mkfs.vexfs {args} failed: {proc.stderr}")


# name -> (how to make it). "kernel-tree" is the real kernel module's image (shared/).
BASE_NAMES = ["ext-tree", "ext-tree-nocsum", "kern-tree", "ext-fresh", "kern-fresh", "kernel-tree"]


def make_base_image(name: str, workdir: Path) -> Path | None:
    """Build base image `name` in workdir (None when it can not be had here)."""
    workdir.mkdir(parents=True, exist_ok=True)
    image = workdir / f"{name}.img"
    if image.exists():
        return image
    if name == "kernel-tree":
        source = KERNEL_IMAGES / "tree.img.gz"
        if not source.exists():
            return None
        with gzip.open(source, "rb") as f, open(image, "wb") as out:
            shutil.copyfileobj(f, out)
        return image
    layout = "kernel" if name.startswith("kern") else "extended"
    args: list = ["-s", "1M"]
    if layout == "kernel":
        args += ["--compat", "kernel"]
    else:
        args += ["-N", "256"]
    if name.endswith("-nocsum"):
        args += ["-O", "^metadata_csum"]
    if "tree" in name:
        tree = workdir / f"{name}.tree"
        shutil.rmtree(tree, ignore_errors=True)
        tree.mkdir()
        build_tree(tree, layout)
        args += ["-d", tree]
    _mkfs(image, *args)
    return image


class Base:
    """A clean base image and where its metadata is (not a dataclass, so that hypothesis
    prints it by its short repr, not as megabytes of bytes)."""

    def __init__(self, name: str, data: bytes, layout: str, blocks_count: int,
                 regions: dict[str, list[tuple[int, int]]], csum: bool = False,
                 tail_blocks: list[int] | None = None, inode_table: tuple[int, int] = (0, 0)):
        self.name = name
        self.data = data
        self.layout = layout
        self.blocks_count = blocks_count
        self.regions = regions  # name -> [(byte offset, length)]
        # For resealing checksums after a mutation (extended + metadata_csum only): bitmap,
        # directory and indirect blocks (a crc32c at byte 4092; a directory block's tail
        # entry keeps it there too), and the inode table (first block, slots).
        self.csum = csum
        self.tail_blocks = tail_blocks or []
        self.inode_table = inode_table

    def __repr__(self) -> str:
        return f"<Base {self.name}: {self.layout} layout, {len(self.data)} bytes>"


def describe_base(name: str, image: Path) -> Base:
    """Where the metadata of a (clean) base image is."""
    from vexfs_tools.volume.volume import Volume

    with Volume.open(str(image), ignore_checksums=True) as v:
        g = v.geometry
        regions: dict[str, list[tuple[int, int]]] = {"superblock": [(0, C.SUPERBLOCK_SIZE)]}
        if g.backup_sb_block:
            regions["backup_superblock"] = [(g.backup_sb_block * BS, C.SUPERBLOCK_SIZE)]
        bitmap = list(range(g.bitmap_start, g.bitmap_start + g.bitmap_blocks))
        regions["bitmap"] = [(b * BS, BS) for b in bitmap]
        table_blocks: set[int] = set()
        dirs: list[int] = []
        indirect: list[int] = []
        for ino in range(1, g.inode_slots + 1):
            inode = v.read_inode(ino)
            if not inode.i_mode:
                continue
            table_blocks.add(g.inode_location(ino)[0])
            if inode.is_dir:
                dirs += [b for _, b in v.dir_blocks(inode)]
            if not (inode.i_mode & C.S_IFMT in (C.S_IFCHR, C.S_IFBLK)):
                indirect += v.block_map(inode).indirect_blocks()
        if name == "kernel-tree":  # the kernel's orphaned directory blocks (FORMAT.md 9)
            for block in range(g.first_data_block, g.addressable_blocks):
                head = v.read_block(block)[:24]
                if head[4:8] == b"\x0c\x00\x01\x02" and head[8:9] == b".":
                    dirs.append(block)
        regions["inode_table"] = [(b * BS, BS) for b in sorted(table_blocks)]
        regions["directory"] = [(b * BS, BS) for b in sorted(set(dirs))]
        if indirect:
            regions["indirect"] = [(b * BS, BS) for b in sorted(set(indirect))]
        regions["metadata"] = [r for key in ("superblock", "bitmap", "inode_table", "directory", "indirect")
                               for r in regions.get(key, [])]
        csum = v.seed is not None
        return Base(name, image.read_bytes(), v.layout, g.blocks_count, regions, csum,
                    sorted(set(bitmap + dirs + indirect)), (g.inode_table_start, g.inode_slots))


_BASE_CACHE: dict[tuple[str, str], Base] = {}


def get_base(name: str, workdir: Path) -> Base | None:
    key = (name, str(workdir))
    if key not in _BASE_CACHE:
        image = make_base_image(name, workdir)
        if image is None:
            return None
        _BASE_CACHE[key] = describe_base(name, image)
    return _BASE_CACHE[key]


# --- mutations -----------------------------------------------------------------------------

INTERESTING = [0, 1, 2, 3, 4, 7, 8, 11, 12, 0x7F, 0x80, 0xFF, 0x100, 0xFFF, 0x1000, 0xFF4, 0xFFC,
               0x7FFF, 0x8000, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF]
# relative to the base: a block or inode number near an edge
RELATIVE = ["blocks-1", "blocks", "blocks+1", "first_data", "inodes", "inodes+1", "data_block"]


@dataclass(frozen=True)
class Mutation:
    """What to do to a base image. Repr'd in failure reports; apply(base, m) rebuilds it.

    kind: "flip" (edits: (position, bit)), "bytes" (edits: (position, byte value)),
    "u32"/"u16" (edits: (position, index into INTERESTING + RELATIVE)), positions taken
    modulo the region's total length; "random_image" (size, rng seed: random bytes as the
    whole image), "random_after_sb" (keep block 0 of the base, the rest random),
    "random_metadata" (every byte of the region random, rng seed).
    reseal: recompute every checksum afterwards (extended + metadata_csum bases), so the
    damage is seen by the consistency checks instead of only by the checksums.
    """
    base: str
    region: str
    kind: str
    edits: tuple = ()
    reseal: bool = False
    seed: int = 0
    size: int = 0


REGIONS = ["superblock", "backup_superblock", "bitmap", "inode_table", "directory", "indirect", "metadata"]


def region_ranges(base: Base, region: str) -> list[tuple[int, int]]:
    """A region of the base; one it does not have (a kernel image has no backup superblock
    and no indirect blocks) stands for all of its metadata."""
    return base.regions.get(region) or base.regions["metadata"]


def region_offset(base: Base, region: str, position: int) -> int:
    ranges = region_ranges(base, region)
    total = sum(length for _, length in ranges)
    position %= total
    for start, length in ranges:
        if position < length:
            return start + position
        position -= length
    raise AssertionError("unreachable")


def _relative_value(base: Base, name: str, rng: int) -> int:
    first_data = {"kernel": 66}.get(base.layout, None)
    if first_data is None:
        first_data = struct.unpack_from("<I", base.data, 24)[0]
    inodes = struct.unpack_from("<I", base.data, 16)[0]
    return {"blocks-1": base.blocks_count - 1, "blocks": base.blocks_count,
            "blocks+1": base.blocks_count + 1, "first_data": first_data, "inodes": inodes,
            "inodes+1": inodes + 1,
            "data_block": first_data + rng % max(1, base.blocks_count - first_data)}[name]


def value_of(base: Base, index: int, position: int) -> int:
    table = INTERESTING + RELATIVE
    item = table[index % len(table)]
    return item if isinstance(item, int) else _relative_value(base, item, position)


def apply(base: Base, m: Mutation) -> bytes:
    if m.kind == "random_image":
        return random.Random(m.seed).randbytes(m.size)
    if m.kind == "random_after_sb":
        rng = random.Random(m.seed)
        size = m.size or len(base.data)
        data = bytearray(rng.randbytes(size))
        keep = min(len(data), BS)
        data[:keep] = base.data[:keep]
        return bytes(data)
    data = bytearray(base.data)
    if m.kind == "random_metadata":
        rng = random.Random(m.seed)
        for start, length in region_ranges(base, m.region):
            data[start:start + length] = rng.randbytes(length)
    else:
        for position, value in m.edits:
            offset = region_offset(base, m.region, position)
            if m.kind == "flip":
                data[offset] ^= 1 << (value % 8)
            elif m.kind == "bytes":
                data[offset] = value % 256
            elif m.kind in ("u32", "u16"):
                width = 4 if m.kind == "u32" else 2
                offset -= offset % width
                v = value_of(base, value, position) & (0xFFFFFFFF if width == 4 else 0xFFFF)
                struct.pack_into("<I" if width == 4 else "<H", data, offset, v)
            else:
                raise ValueError(m.kind)
    if m.reseal and base.csum:
        reseal(base, data)
    return bytes(data)


def reseal(base: Base, data: bytearray) -> None:
    """Recompute the checksums of the base's metadata (inode records, bitmap, directory and
    indirect blocks, the superblock) over the mutated bytes."""
    seed = struct.unpack_from("<I", data, 624)[0]
    for block in base.tail_blocks:
        view = memoryview(data)[block * BS:(block + 1) * BS]
        checksums.set_tail(seed, block, view)
    start, slots = base.inode_table
    for ino in range(1, slots + 1):
        block = start + (ino - 1) // C.INODES_PER_BLOCK
        offset = block * BS + ((ino - 1) % C.INODES_PER_BLOCK) * C.INODE_SIZE
        if offset + C.INODE_SIZE > len(data):
            break
        record = memoryview(data)[offset:offset + C.INODE_SIZE]
        if any(record):
            checksums.set_inode_checksum(seed, ino, record)
    struct.pack_into("<I", data, 1020, checksums.superblock_checksum(bytes(data[:1024])))


def random_mutation(seed: int, bases: dict[str, Base]) -> Mutation:
    """The soak's generator: one mutation from one seed."""
    rng = random.Random(seed)
    roll = rng.random()
    names = sorted(bases)
    base = bases[rng.choice(names)]
    if roll < 0.04:
        size = rng.choice([0, 1, 100, 1023, 1024, 4095, BS, BS * 67, BS * 100, BS * 256, BS * 256 + 17])
        return Mutation(base.name, "", "random_image", seed=rng.getrandbits(32), size=size)
    if roll < 0.12:
        size = rng.choice([0, BS * 100, BS * 255, len(base.data)])
        return Mutation(base.name, "", "random_after_sb", seed=rng.getrandbits(32), size=size)
    region = rng.choice(sorted(base.regions))
    if roll < 0.17:
        return Mutation(base.name, region, "random_metadata", seed=rng.getrandbits(32),
                        reseal=base.csum and rng.random() < 0.7)
    kind = rng.choice(["flip", "flip", "bytes", "u32", "u32", "u16"])
    count = rng.choice([1, 1, 1, 2, 3, 4, 8, 16, 64])
    edits = tuple((rng.getrandbits(24), rng.getrandbits(16)) for _ in range(count))
    return Mutation(base.name, region, kind, edits, reseal=base.csum and rng.random() < 0.6)


# --- running the tools -----------------------------------------------------------------------


class CaseTimeout(BaseException):
    """Raised by the alarm in an in-process run that took too long (BaseException, so that no
    `except Exception` in the code under test can swallow it)."""


def _alarm(signum, frame):
    raise CaseTimeout()


def with_timeout(seconds: float, func, *args, **kwargs):
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return func(*args, **kwargs)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def digest(path: Path | str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@dataclass
class Run:
    what: str
    code: int | None  # None: hung or crashed
    error: str | None = None  # a traceback or "timeout"; None when it ended normally
    output: str = ""


def fsck_inprocess(image: Path, mode: str, timeout: float = TIMEOUT) -> Run:
    """run_check as the CLI would: a VexfsError is exit 8; any other exception is a bug."""
    from vexfs_tools.check.run import run_check

    lines: list[str] = []
    what = f"fsck -{mode[0]}"

    def emit(line: str) -> None:
        # The CLI prints each line with click.echo; under a UTF-8 locale stdout encodes
        # strictly, so a line that can not be encoded is a crash of fsck.vexfs.
        line.encode("utf-8")
        lines.append(line)

    try:
        result = with_timeout(timeout, run_check, str(image), mode, emit=emit)
    except CaseTimeout:
        return Run(what, None, f"timeout after {timeout} s", "\n".join(lines))
    except VexfsError as e:
        lines.append(f"fsck.vexfs: {e}")
        return Run(what, 8, None, "\n".join(lines))
    except BaseException:  # noqa: B036 - a crash, whatever it is
        return Run(what, None, traceback.format_exc(), "\n".join(lines))
    return Run(what, result.exit_code, None, "\n".join(lines))


TOOL_COMMANDS = [("dump", ["dump"]), ("ls", ["ls", "-l", None, "/"]), ("stat", ["stat", None, "1"])]


def tool_inprocess(image: Path, name: str, timeout: float = TIMEOUT) -> Run:
    """dump / ls -l / stat 1 through click's test runner; with VEXFS_TRACEBACK set an
    internal error surfaces as the exception itself."""
    from click.testing import CliRunner

    from vexfs_tools.cli.main import cli

    args = dict(TOOL_COMMANDS)[name]
    argv = [a if a is not None else str(image) for a in args]
    if name == "dump":
        argv = ["dump", str(image)]
    runner = CliRunner()
    try:
        result = with_timeout(timeout, runner.invoke, cli, argv, env={"VEXFS_TRACEBACK": "1"},
                              catch_exceptions=True)
    except CaseTimeout:
        return Run(name, None, f"timeout after {timeout} s")
    output = result.output
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        if isinstance(result.exception, CaseTimeout):
            return Run(name, None, f"timeout after {timeout} s", output)
        tb = "".join(traceback.format_exception(*result.exc_info))
        return Run(name, None, tb, output)
    return Run(name, result.exit_code, None, output)


def cli_run(args: list[str], timeout: float = TIMEOUT) -> Run:
    """A real subprocess of an installed CLI."""
    env = dict(os.environ)
    env.pop("VEXFS_TRACEBACK", None)
    # As under a UTF-8 locale such as en_US.UTF-8: stdout encodes strictly (under C/POSIX
    # or C.UTF-8 Python would escape undecodable bytes instead, and hide such a crash).
    env["PYTHONIOENCODING"] = "utf-8"
    cmd = [_tool(args[0]), *args[1:]]
    what = " ".join(args[:1] + [a for a in args[1:-1] if a.startswith("-")])
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout, env=env,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return Run(what, None, f"timeout after {timeout} s")
    out = proc.stdout.decode("utf-8", "replace") + proc.stderr.decode("utf-8", "replace")
    if "Traceback" in out or "internal error" in out:
        return Run(what, proc.returncode, out, out)
    return Run(what, proc.returncode, None, out)


@dataclass
class Outcome:
    runs: list[Run]
    failures: list[str]  # crash, hang, traceback, exit code out of range, -n wrote
    incomplete: str | None = None  # -y exited 0/1 but the next -n did not exit 0

    @property
    def codes(self) -> tuple:
        return tuple(r.code for r in self.runs if r.what.startswith("fsck"))


# -y: fsck(8) codes are a bit mask: 5 = some errors corrected, some left (e2fsck does the same).
FSCK_CODES = {"n": {0, 4, 8}, "y": {0, 1, 4, 5, 8}}
TOOL_CODES = {0, 1}


def _judge_fsck(run: Run, mode: str, failures: list[str]) -> None:
    if run.error:
        failures.append(f"{run.what}: {run.error.strip().splitlines()[-1] if run.error else ''}\n{run.error}")
    elif run.code not in FSCK_CODES[mode]:
        failures.append(f"{run.what}: exit {run.code} not in {sorted(FSCK_CODES[mode])}\n{run.output[-2000:]}")


def _judge_tool(run: Run, failures: list[str]) -> None:
    if run.error:
        failures.append(f"{run.what}: {run.error.strip().splitlines()[-1]}\n{run.error}")
    elif run.code not in TOOL_CODES:
        failures.append(f"{run.what}: exit {run.code}\n{run.output[-2000:]}")


def check_image(image: Path, *, subprocesses: bool = False, tools: bool = True,
                timeout: float = TIMEOUT) -> Outcome:
    """fsck -n, the read-only tools, fsck -y, fsck -n, the tools again. In-process unless
    `subprocesses` (then the installed CLIs, each under a timeout)."""
    runs: list[Run] = []
    failures: list[str] = []

    def fsck(mode: str) -> Run:
        if subprocesses:
            r = cli_run(["fsck.vexfs", f"-{mode}", str(image)], timeout)
            r.what = f"fsck -{mode}"
        else:
            r = fsck_inprocess(image, "no" if mode == "n" else "yes", timeout)
        runs.append(r)
        _judge_fsck(r, mode, failures)
        return r

    def run_tools(when: str) -> None:
        if not tools:
            return
        for name, args in TOOL_COMMANDS:
            if subprocesses:
                prog = "dump.vexfs" if name == "dump" else "vexfs"
                argv = [str(image)] if name == "dump" else [a if a is not None else str(image) for a in args]
                r = cli_run([prog, *argv], timeout)
                r.what = name
            else:
                r = tool_inprocess(image, name, timeout)
            r.what = f"{r.what} ({when})"
            runs.append(r)
            _judge_tool(r, failures)

    before = digest(image)
    fsck("n")
    if digest(image) != before:
        failures.append("fsck -n changed the image")
    run_tools("before repair")
    if digest(image) != before:
        failures.append("a read-only tool changed the image")
    y = fsck("y")
    after_y = digest(image)
    n2 = fsck("n")
    if digest(image) != after_y:
        failures.append("fsck -n (after -y) changed the image")
    run_tools("after repair")
    incomplete = None
    if y.error is None and y.code in (0, 1) and n2.error is None and n2.code != 0:
        incomplete = f"fsck -y exited {y.code}, then fsck -n exited {n2.code}:\n{n2.output[-3000:]}"
    return Outcome(runs, failures, incomplete)


def repro_snippet(m: Mutation) -> str:
    return ("from pathlib import Path\n"
            "from tests.fuzz.fuzzlib import Mutation, apply, get_base\n"
            f"m = {m!r}\n"
            "base = get_base(m.base, Path('/tmp/vexfs-fuzz-bases'))\n"
            "Path('case.img').write_bytes(apply(base, m))\n")


def as_dict(m: Mutation) -> dict:
    return dataclasses.asdict(m)
