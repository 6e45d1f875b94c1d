"""Mounting: the -o options, the checks before a read-write mount, and handing the
operations to libfuse 3 through mfusepy (which daemonizes unless asked to stay)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ..errors import UsageError
from ..format import constants as C
from ..volume.volume import Volume

OURS = {"ro", "rw", "uid", "gid", "fakeroot", "errors"}
PASSED = {"allow_other", "allow_root", "default_permissions", "auto_unmount"}
ENTRY_TIMEOUT = 30.0  # seconds: every change of a name passes through this mount
IGNORED = {"defaults", "auto", "noauto", "user", "nouser", "users", "nofail", "_netdev", "exec",
           "noexec", "suid", "nosuid", "dev", "nodev", "atime", "noatime", "relatime"}


@dataclass
class MountOptions:
    writable: bool = True
    uid: int | None = None
    gid: int | None = None
    fakeroot: bool = False
    errors: str = "continue"
    fuse: dict = field(default_factory=dict)


def parse_options(text: str | None) -> MountOptions:
    """`-o ro,allow_other,uid=1000,...` as fuse2fs takes them; unknown ones are refused."""
    options = MountOptions()
    for item in filter(None, (text or "").split(",")):
        key, _, value = item.partition("=")
        if key in ("ro", "rw"):
            options.writable = key == "rw"
        elif key in ("uid", "gid"):
            if not value.isdigit():
                raise UsageError(f"-o {key}= needs a number, not {value!r}")
            setattr(options, key, int(value))
        elif key == "fakeroot":
            options.fakeroot = True
        elif key == "errors":
            if value not in ("continue", "remount-ro", "panic"):
                raise UsageError(f"-o errors= is continue, remount-ro or panic, not {value!r}")
            options.errors = value
        elif key in PASSED:
            options.fuse[key] = True
        elif key not in IGNORED:
            raise UsageError(f"unknown mount option {item!r}")
    return options


def open_for_mount(image: str, writable: bool) -> Volume:
    """The Volume to serve. Read-write needs an image that was cleanly unmounted and has no
    recorded errors; a device mounted elsewhere or held open exclusively is refused by Device."""
    volume = Volume.open(image, writable=writable, ignore_checksums=not writable)
    if writable:
        state = volume.sb.s_state
        if state & C.STATE_ERRORS or not state & C.STATE_CLEAN:
            volume.device.close()
            why = "has errors" if state & C.STATE_ERRORS else "was not cleanly unmounted"
            raise UsageError(f"{image} {why}; run fsck.vexfs on it (or mount it -o ro)")
    return volume


def fuse_arguments(image: str, options: MountOptions, foreground: bool) -> dict:
    """What libfuse is told: our inode numbers; names (and their absence) cached for
    ENTRY_TIMEOUT, as every change of a name passes through this mount's kernel, which
    updates its own cache; attributes and the page cache per answer (ops.py: libfuse's
    high-level API gives each name of a hard link its own kernel inode, so only what one
    name reaches is cached); the image's real path as the source (so our own tools and
    findmnt see what is mounted). No hard_remove: libfuse keeps a name for an open file
    whose last name goes (ops.HIDDEN_PREFIX, never on disk), so fstat and fchmod of it
    reach us."""
    args = dict(options.fuse)
    args.update(fsname=os.path.realpath(image), subtype="vexfs", use_ino=True, nothreads=True,
                foreground=foreground, entry_timeout=ENTRY_TIMEOUT,
                negative_timeout=ENTRY_TIMEOUT)
    if not options.writable:
        args["ro"] = True
    return args


def mount(image: str, mountpoint: str, options: MountOptions, *, foreground: bool = False) -> None:
    """Mount and serve until unmounted (libfuse forks into the background unless foreground)."""
    os.environ.setdefault("FUSE_LIBRARY_NAME", "fuse3")  # never libfuse 2, if both are here
    import mfusepy  # noqa: PLC0415 - libfuse3 is looked up only by the mount itself

    from .ops import VexfsFUSE, VexfsOperations  # noqa: PLC0415

    if not os.path.isdir(mountpoint):
        raise UsageError(f"{mountpoint}: not a directory")
    volume = open_for_mount(image, options.writable)
    ops = VexfsOperations(volume, writable=options.writable, uid=options.uid, gid=options.gid,
                          fakeroot=options.fakeroot, errors=options.errors)
    ops.mark_mounted()
    try:
        VexfsFUSE(ops, mountpoint, **fuse_arguments(image, options, foreground))
    except RuntimeError as exc:
        ops.destroy("/")  # never mounted: clean again
        raise UsageError(f"{mountpoint}: mount failed ({exc})") from None
