"""Pass 3: directory connectivity. Every directory must be reachable from the root; those
that are not go to /lost+found as #INODE, and every '..' must name the real parent."""

from __future__ import annotations

from ..errors import LimitError, NoSpaceError
from ..format import constants as C
from ..format.dtypes import DIRENT_HEADER
from ..volume import directory
from ..volume.geometry import KERNEL
from .context import Checker
from .state import CheckState

LOST_FOUND = b"lost+found"


def run_pass3(checker: Checker, state: CheckState) -> None:
    checker.emit("Pass 3: Checking directory connectivity")
    volume = checker.volume
    if state.inodes.mode(C.ROOT_INO) & C.S_IFMT != C.S_IFDIR:
        if not checker.fix("ROOT_BAD"):
            return
        _recreate_root(checker, state)
    state.parents[C.ROOT_INO] = C.ROOT_INO
    if volume.layout != KERNEL:
        # The extended layout always has /lost+found (s_lpf_ino; mkfs makes it): a missing
        # one is made again, as e2fsck does, not only when something needs it.
        ensure_lost_found(checker, state)
    reachable = _reachable(state)
    for ino in sorted(state.directories):
        if ino in reachable or ino not in state.inodes:
            continue
        if not checker.fix("UNCONNECTED_DIR", ino=ino):
            continue
        lost_found = ensure_lost_found(checker, state)
        if not lost_found or not link_into_lost_found(checker, lost_found, ino, C.FT_DIR):
            continue
        state.inodes.add_ref(ino)
        old = state.parents.get(ino)
        if old is not None and old != lost_found:
            state.subdirs[old] -= 1
        state.parents[ino] = lost_found
        state.subdirs[lost_found] = state.subdirs.get(lost_found, 0) + 1
        reachable = _reachable(state)
    for ino in sorted(reachable):
        expected = state.parents.get(ino)
        found = state.dotdot.get(ino)
        if expected is None or found is None or found == expected:
            continue
        if checker.fix("BAD_DOTDOT", ino=ino, found=found, expected=expected):
            set_dotdot(checker, ino, expected)
            state.dotdot[ino] = expected


def _reachable(state: CheckState) -> set[int]:
    children: dict[int, list[int]] = {}
    for child, parent in state.parents.items():
        if child != parent:
            children.setdefault(parent, []).append(child)
    seen = {C.ROOT_INO}
    stack = [C.ROOT_INO]
    while stack:
        for child in children.get(stack.pop(), ()):
            if child not in seen:
                seen.add(child)
                stack.append(child)
    return seen


def set_dotdot(checker: Checker, ino: int, parent: int) -> None:
    volume = checker.volume
    blocks = volume.dir_blocks(volume.read_inode(ino))
    if not blocks:
        return
    block = blocks[0][1]
    data = bytearray(volume.read_block(block))
    records = directory.walk_block(data, chain_end=volume.chain_end).records
    if len(records) > 1 and records[1].name == b"..":
        r = records[1]
        DIRENT_HEADER.pack_into(data, r.offset, parent, r.rec_len, r.name_len, r.file_type)
        volume.write_dir_block(block, data)


def link_into_lost_found(checker: Checker, lost_found: int, ino: int, file_type: int) -> bool:
    """Name `ino` as /lost+found/#INO. When /lost+found has no room (the kernel layout gives
    a directory one block) the inode stays unattached: the fix just promised is taken back
    and counted as not made, and the check goes on."""
    try:
        checker.volume.add_entry(lost_found, b"#%d" % ino, ino, file_type)
        return True
    except (LimitError, NoSpaceError) as e:
        checker.emit(f"/lost+found has no room for inode {ino} ({e}); it stays unattached.")
        if checker.findings:
            checker.findings[-1].fixed = False
        checker.uncorrected = True
        return False


def ensure_lost_found(checker: Checker, state: CheckState) -> int:
    """/lost+found's inode, made when missing (and allowed); 0 when there is none."""
    if state.lost_found:
        return state.lost_found
    volume = checker.volume
    root = volume.read_inode(C.ROOT_INO)
    found = volume.lookup(root, LOST_FOUND)
    if found and state.inodes.mode(found) & C.S_IFMT == C.S_IFDIR:
        state.lost_found = found
        return found
    if not checker.fix("NO_LOST_FOUND"):
        return 0
    if found:  # the name is taken by something else: it becomes lost+found.old
        checker.emit("(the existing non-directory /lost+found is left as it is)")
        return 0
    ino = volume.mkdir(C.ROOT_INO, LOST_FOUND, mode=0o40700)
    state.inodes.put(ino, C.S_IFDIR | 0o700, 2, C.BLOCK_SIZE, refs=1)
    state.directories.append(ino)
    state.parents[ino] = C.ROOT_INO
    state.dotdot[ino] = C.ROOT_INO
    state.subdirs[C.ROOT_INO] = state.subdirs.get(C.ROOT_INO, 0) + 1
    state.inodes.put(C.ROOT_INO, state.inodes.mode(C.ROOT_INO), volume.read_inode(C.ROOT_INO).i_links_count,
                     C.BLOCK_SIZE, refs=state.inodes.ref_count(C.ROOT_INO))
    state.lost_found = ino
    return ino


def _recreate_root(checker: Checker, state: CheckState) -> None:
    """A fresh, empty root directory in inode 1; everything else is reconnected below."""
    volume = checker.volume
    fields = volume.new_inode_fields(0o40755, links=2)
    block = volume.allocate_block()
    volume.write_dir_block(block, directory.pack_entries(
        [(b".", C.ROOT_INO, C.FT_DIR), (b"..", C.ROOT_INO, C.FT_DIR)], chain_end=volume.chain_end)[0])
    fields.i_block[0] = block
    fields.i_blocks = 1
    fields.i_size = C.BLOCK_SIZE
    fields.i_generation = 1
    volume.write_inode(C.ROOT_INO, fields)
    state.inodes.put(C.ROOT_INO, fields.i_mode, 2, C.BLOCK_SIZE)
    if C.ROOT_INO not in state.directories:
        state.directories.append(C.ROOT_INO)
    state.dotdot[C.ROOT_INO] = C.ROOT_INO
    state.parents = {child: parent for child, parent in state.parents.items() if parent != C.ROOT_INO}
