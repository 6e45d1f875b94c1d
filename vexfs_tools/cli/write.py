"""Offline writes (debugfs -w): `vexfs write|mkdir|rm|mv|ln|chmod IMAGE ...`, each through
the write API (volume/namespace.py), each with -z UNDO as fsck has. A mounted image, or one
not cleanly unmounted, is refused before anything is written."""

from __future__ import annotations

import errno as E
import os
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click

from ..errors import UsageError
from ..format import constants as C
from ..undo import UndoRecorder
from ..volume.namespace import Namespace, NamespaceError
from ..volume.volume import Volume
from .common import SETTINGS, handle_errors, undo_option

COPY_CHUNK = 1 << 20


def check_clean(volume: Volume, image: str) -> None:
    """Writes go only to an image that was cleanly unmounted and has no known errors."""
    state = volume.sb.s_state
    if state & C.STATE_ERRORS or not state & C.STATE_CLEAN:
        why = "has errors" if state & C.STATE_ERRORS else "was not cleanly unmounted (or is mounted)"
        raise UsageError(f"{image} {why}; run fsck.vexfs on it first")


@contextmanager
def writing(image: str, undo_file: str | None) -> Iterator[Namespace]:
    """The image open for writing (a mounted one is refused by Device), flushed on success."""
    volume = Volume.open(image, writable=True)
    try:
        check_clean(volume, image)
        if undo_file:
            volume.device.undo = UndoRecorder(volume.device, undo_file)
        yield Namespace(volume)
    except BaseException:
        volume.device.close()  # the cached metadata is dropped: the tree stays as it was
        raise
    volume.close()


def parse_mode(text: str) -> int:
    try:
        mode = int(text, 8)
    except ValueError:
        raise UsageError(f"mode {text!r} is not an octal number") from None
    if not 0 <= mode <= 0o7777:
        raise UsageError(f"mode {text!r} is out of range (0..7777)")
    return mode


def into(ns: Namespace, dest: str, source_name: str) -> tuple[int, bytes]:
    """(parent, name) for a destination: into DEST when it is a directory (as cp and mv)."""
    try:
        ino = ns.resolve(dest)
    except NamespaceError:
        return ns.split(dest)
    if ns.inode(ino).is_dir:
        return ino, os.fsencode(os.path.basename(source_name.rstrip("/")))
    return ns.split(dest)


def copy_in(ns: Namespace, source: str, parent: int, name: bytes) -> int:
    """A host file's bytes, mode, owner and times into the image (an existing file is
    overwritten); holes of the source stay holes."""
    st = os.stat(source)
    if not stat.S_ISREG(st.st_mode):
        raise UsageError(f"{source}: not a regular file")
    if st.st_size > ns.volume.max_file_size():
        raise NamespaceError(E.EFBIG, f"{source}: {st.st_size} bytes is more than a file holds in the "
                                 f"{ns.volume.layout} layout ({ns.volume.max_file_size()} bytes)")
    ino = ns.find(parent, name)
    if ino is None:
        ino = ns.create(parent, name, st.st_mode & 0o7777, uid=st.st_uid, gid=st.st_gid)
    elif not ns.inode(ino).is_reg:
        raise NamespaceError(E.EISDIR, f"{os.fsdecode(name)}: not a regular file in the image")
    ns.truncate(ino, 0)
    with open(source, "rb") as f:
        offset = 0
        while chunk := f.read(COPY_CHUNK):
            if chunk.count(0) != len(chunk):
                ns.write(ino, offset, chunk)
            offset += len(chunk)
    ns.truncate(ino, st.st_size)
    ns.utimens(ino, int(st.st_atime), int(st.st_mtime))
    return ino


def replace_in(ns: Namespace, source: str, parent: int, name: bytes) -> int:
    """Copy in so that a crash leaves the old file or the new one, never a mix: over a file
    with one link the new copy is written whole under a temporary name first (as rsync does)
    and then renamed over it. A file with more links is overwritten in place, as cp does."""
    old = ns.find(parent, name)
    keep = ns.inode(old) if old is not None else None
    if keep is None or not keep.is_reg or keep.i_links_count > 1:
        return copy_in(ns, source, parent, name)
    temporary = temporary_name(ns, parent, name)
    try:
        ino = copy_in(ns, source, parent, temporary)
    except NamespaceError as e:
        if e.errno != E.ENOSPC:
            raise
        raise NamespaceError(E.ENOSPC, f"{os.fsdecode(name)}: no room for the new copy beside the old one "
                                       "(a file is replaced whole, so both must fit until the switch)") from None
    ns.chmod(ino, keep.mode & 0o7777)
    ns.chown(ino, keep.fields.i_uid, keep.fields.i_gid)
    ns.volume.flush_metadata()  # the new copy is on disk, whole, before the name moves to it
    ns.rename(parent, temporary, parent, name)
    return ino


def temporary_name(ns: Namespace, parent: int, name: bytes) -> bytes:
    """`.NAME.vexfs-new` (shortened to fit a name), numbered when taken."""
    for n in range(1000):
        suffix = b".vexfs-new" + (b"%d" % n if n else b"")
        candidate = b"." + name[:C.MAX_NAME_LEN - 1 - len(suffix)] + suffix
        if ns.find(parent, candidate) is None:
            return candidate
    raise NamespaceError(E.EEXIST, f"{os.fsdecode(name)}: no free temporary name beside it")


@contextmanager
def about(path: str) -> Iterator[None]:
    """Name the path the user gave in a refusal: `PATH: File exists`."""
    try:
        yield
    except NamespaceError as e:
        raise NamespaceError(e.errno, f"{path}: {os.strerror(e.errno)}") from None


def each(paths: tuple[str, ...], action: Callable[[str], None]) -> None:
    for path in paths:
        with about(path):
            action(path)


@click.command("write", context_settings=SETTINGS, epilog="""\b
Examples:
  vexfs write disk.img notes.txt /docs/notes.txt   copy a host file in
  vexfs write -z w.undo disk.img big.bin /         into / as big.bin, undoable
""")
@click.argument("image", type=click.Path(dir_okay=False))
@click.argument("source", type=click.Path(exists=True, dir_okay=False))
@click.argument("dest")
@undo_option
@handle_errors(error_code=1)
def write_command(image, source, dest, undo_file):
    """Copy the host file SOURCE to DEST in IMAGE (into DEST when it is a directory)."""
    with writing(image, undo_file) as ns, about(dest):
        replace_in(ns, source, *into(ns, dest, source))


@click.command("mkdir", context_settings=SETTINGS, epilog="""\b
Examples:
  vexfs mkdir disk.img /docs /data
  vexfs mkdir -p -m 700 disk.img /a/b/c
""")
@click.argument("image", type=click.Path(dir_okay=False))
@click.argument("paths", nargs=-1, required=True)
@click.option("-p", "--parents", is_flag=True, help="Make missing parents; no error if it exists.")
@click.option("-m", "--mode", default="755", show_default=True, help="Permission bits, octal.")
@undo_option
@handle_errors(error_code=1)
def mkdir_command(image, paths, parents, mode, undo_file):
    """Make directories in IMAGE."""
    bits = parse_mode(mode)
    with writing(image, undo_file) as ns:
        def make(path: str) -> None:
            if not parents:
                ns.mkdir(*ns.split(path), bits)
                return
            ino = C.ROOT_INO
            for part in os.fsencode(path).split(b"/"):
                if part:
                    found = ns.find(ino, part)
                    ino = found if found is not None else ns.mkdir(ino, part, bits)
                    ns.directory(ino)
        each(paths, make)


@click.command("rm", context_settings=SETTINGS, epilog="""\b
Examples:
  vexfs rm disk.img /docs/old.txt
  vexfs rm -r -z rm.undo disk.img /build
""")
@click.argument("image", type=click.Path(dir_okay=False))
@click.argument("paths", nargs=-1, required=True)
@click.option("-r", "-R", "--recursive", is_flag=True, help="Remove directories and their contents.")
@click.option("-f", "--force", is_flag=True, help="No error for a path that does not exist.")
@undo_option
@handle_errors(error_code=1)
def rm_command(image, paths, recursive, force, undo_file):
    """Remove files (and with -r directories) from IMAGE."""
    with writing(image, undo_file) as ns:
        def remove(path: str) -> None:
            parent, name = ns.split(path)
            if force and ns.find(parent, name) is None:
                return
            if recursive:
                ns.remove_tree(parent, name)
            elif ns.inode(ns.lookup(parent, name)).is_dir:
                raise UsageError(f"{path} is a directory (use -r)")
            else:
                ns.unlink(parent, name)
        each(paths, remove)


@click.command("mv", context_settings=SETTINGS, epilog="""\b
Examples:
  vexfs mv disk.img /docs/a.txt /docs/b.txt    rename (over b.txt if it exists)
  vexfs mv disk.img /docs/a.txt /archive       move into a directory
""")
@click.argument("image", type=click.Path(dir_okay=False))
@click.argument("source")
@click.argument("dest")
@undo_option
@handle_errors(error_code=1)
def mv_command(image, source, dest, undo_file):
    """Rename or move SOURCE to DEST in IMAGE (into DEST when it is a directory)."""
    with writing(image, undo_file) as ns:
        with about(source):
            old_parent, old_name = ns.split(source)
            ns.lookup(old_parent, old_name)
        with about(dest):
            ns.rename(old_parent, old_name, *into(ns, dest, source))


@click.command("ln", context_settings=SETTINGS, epilog="""\b
Examples:
  vexfs ln disk.img /docs/a.txt /a-link.txt     a hard link
  vexfs ln -s disk.img docs/a.txt /a-sym        a symlink holding 'docs/a.txt'
""")
@click.argument("image", type=click.Path(dir_okay=False))
@click.argument("target")
@click.argument("link_name")
@click.option("-s", "--symbolic", is_flag=True, help="Make a symlink holding TARGET.")
@undo_option
@handle_errors(error_code=1)
def ln_command(image, target, link_name, symbolic, undo_file):
    """Make LINK_NAME in IMAGE a hard link to TARGET, or with -s a symlink to it."""
    with writing(image, undo_file) as ns, about(link_name):
        if symbolic:
            ns.symlink(*into(ns, link_name, target), os.fsencode(target))
        else:
            ns.link(ns.resolve(target), *into(ns, link_name, target))


@click.command("chmod", context_settings=SETTINGS, epilog="""\b
Examples:
  vexfs chmod disk.img 640 /docs/a.txt /docs/b.txt
""")
@click.argument("image", type=click.Path(dir_okay=False))
@click.argument("mode")
@click.argument("paths", nargs=-1, required=True)
@undo_option
@handle_errors(error_code=1)
def chmod_command(image, mode, paths, undo_file):
    """Set the permission bits (octal MODE) of PATHS in IMAGE."""
    bits = parse_mode(mode)
    with writing(image, undo_file) as ns:
        each(paths, lambda path: ns.chmod(ns.resolve(path), bits))


WRITE_COMMANDS = (write_command, mkdir_command, rm_command, mv_command, ln_command, chmod_command)
