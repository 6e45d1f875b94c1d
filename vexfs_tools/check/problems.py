"""The problem table (e2fsck's problem.c): every finding fsck can report.

A code carries its pass in the high byte (0 superblock, 1 inodes, 0x11 duplicate blocks,
2 directories, 3 connectivity, 4 reference counts, 5 summary, 6 vector files). The message is a template;
the prompt is the question asked before fixing; flags say how -p and -n treat it.
"""

from __future__ import annotations

from dataclasses import dataclass

PREEN_OK = 1  # -p fixes it without asking
NO_OK = 2  # answering no does not leave the file system invalid (stale counters)


@dataclass(frozen=True)
class Problem:
    """A row of the problem table: code, name, message, the fix offered, and when preen may fix it."""
    code: int
    name: str
    message: str
    prompt: str
    flags: int = 0

    @property
    def pass_number(self) -> int:
        return self.code >> 16


_TABLE = [
    # Pass 0: the superblock.
    Problem(0x000001, "SB_CHECKSUM", "Superblock checksum does not match superblock", "Fix"),
    Problem(0x000002, "SB_BLOCKS_PAST_BITMAP", "The superblock says {blocks} blocks, but the bitmap "
            "can describe only {limit} (the kernel overruns its bitmap past that)", "Set the block count to {limit}"),
    Problem(0x000003, "SB_INODES_PAST_TABLE", "The superblock says {count} inodes, but the inode table "
            "holds {slots}", "Set the inode count to {fix}"),
    Problem(0x000004, "SB_BACKUP_DIFFERS", "Backup superblock in block {block} differs from the primary",
            "Fix", PREEN_OK),
    Problem(0x000005, "SB_PRIMARY_DAMAGED", "Primary superblock is damaged ({reason}); using the backup "
            "in block {block}", "Restore the primary"),
    Problem(0x000006, "SB_FIELD", "Superblock field {field} is {found}, should be {expected} ({why})",
            "Set it to {expected}"),
    # Pass 1: inodes, blocks and sizes.
    Problem(0x010001, "BAD_MODE", "Inode {inode} has an invalid mode 0{mode:o}", "Clear"),
    Problem(0x010002, "INODE_CHECKSUM", "Inode {inode} checksum does not match inode", "Fix"),
    Problem(0x010003, "BAD_BLOCK", "Inode {inode} points at block {block} ({why}) for logical block {logical}",
            "Clear the pointer"),
    Problem(0x010004, "BLOCKS_PAST_EOF", "Inode {inode}, i_size is {size}, but {count} block(s) are mapped "
            "past it (a truncate that freed nothing)", "Free them", PREEN_OK),
    Problem(0x010005, "I_BLOCKS", "Inode {inode}, i_blocks is {found}, should be {expected}", "Fix", PREEN_OK),
    Problem(0x010006, "DIR_BLOCK_ORPHANED", "Directory inode {inode} lost its block pointer; block {block} "
            "holds its entries", "Reattach", PREEN_OK),
    Problem(0x010007, "DIR_NO_BLOCK", "Directory inode {inode} has no block", "Give it an empty one"),
    Problem(0x010008, "DIR_SIZE", "Directory inode {inode}, i_size is {size}, should be {expected}", "Fix",
            PREEN_OK),
    Problem(0x010009, "INDIRECT_TWICE", "Inode {inode}: indirect block {block} is referenced twice",
            "Clear the second pointer"),
    Problem(0x01000A, "INDIRECT_CHECKSUM", "Inode {inode}: indirect block {block} checksum does not match",
            "Fix"),
    Problem(0x01000B, "SPECIAL_HAS_BLOCKS", "Inode {inode} ({kind}) has block pointers", "Clear them"),
    Problem(0x01000C, "RESERVED_INODE_IN_USE", "Reserved inode {ino} is in use (mode 0{mode:o})", "Clear"),
    # Impossible field values (docs/FORMAT.md, "What fsck checks, field by field").
    Problem(0x01000D, "SIZE_BEYOND_LAYOUT", "Inode {inode}, i_size is {size}, more than the {layout} layout "
            "can address ({limit})", "Set i_size to {fixed}"),
    Problem(0x01000E, "FIELD_NOT_ZERO", "Inode {inode}, {field} is {value}, should be 0 ({why})", "Clear it"),
    Problem(0x01000F, "SYMLINK_SIZE", "Symlink inode {inode} has i_size {size} (a target is 1 to 4095 bytes)",
            "Clear"),
    Problem(0x010020, "INODE_PAST_MARK", "{count} inode record(s) past the inode table mark {mark} "
            "(the last: inode {last})", "Raise the mark to {fix}"),
    # Pass 1B: blocks claimed twice.
    Problem(0x110001, "DUP_BLOCKS", "Inode {inode} shares {count} block(s) with inode(s) {others}",
            "Clone the shared blocks"),
    # Pass 2: directory structure.
    Problem(0x020001, "DIR_CHAIN", "Directory inode {inode}, block {block}: {problem}", "Salvage"),
    Problem(0x020002, "DIR_CHECKSUM", "Directory inode {inode}, block {block}: checksum does not match",
            "Fix"),
    Problem(0x020003, "ENTRY_BAD_INODE", "Entry '{name}' in directory inode {inode} has inode {child} "
            "out of range", "Clear"),
    Problem(0x020004, "ENTRY_FREE_INODE", "Entry '{name}' in directory inode {inode} names free inode {child}",
            "Clear"),
    Problem(0x020005, "ENTRY_FILE_TYPE", "Entry '{name}' in directory inode {inode} has file type {found}, "
            "should be {expected}", "Fix", PREEN_OK),
    Problem(0x020006, "DOT_BAD", "'.' in directory inode {inode} is missing or wrong", "Fix"),
    Problem(0x020007, "DOTDOT_MISSING", "'..' in directory inode {inode} is missing", "Fix"),
    Problem(0x020008, "DUP_NAME", "Duplicate entry '{name}' in directory inode {inode}", "Rename it to '{new}'"),
    Problem(0x020009, "BAD_NAME", "Entry '{name}' in directory inode {inode} has an illegal character",
            "Fix"),
    Problem(0x02000A, "DIR_HARDLINK", "Entry '{name}' in directory inode {inode} is a second link to "
            "directory inode {child}", "Clear"),
    Problem(0x02000B, "DIR_TAIL", "Directory inode {inode}, block {block}: the checksum tail is damaged",
            "Fix"),
    # Pass 3: connectivity.
    Problem(0x030001, "ROOT_BAD", "Root inode is not a directory", "Recreate it"),
    Problem(0x030002, "NO_LOST_FOUND", "/lost+found not found", "Create", PREEN_OK),
    Problem(0x030003, "UNCONNECTED_DIR", "Unconnected directory inode {inode}", "Connect to /lost+found"),
    Problem(0x030004, "BAD_DOTDOT", "'..' in directory inode {inode} is {found}, should be {expected}",
            "Fix", PREEN_OK),
    # Pass 4: reference counts.
    Problem(0x040001, "DELETED_INODE", "Inode {inode} was deleted by the kernel ('{name}' is gone from "
            "directory inode {parent}) but still holds {blocks} block(s)", "Reclaim", PREEN_OK),
    Problem(0x040002, "UNATTACHED_EMPTY", "Unattached zero-length inode {inode}", "Clear", PREEN_OK),
    Problem(0x040003, "UNATTACHED", "Unattached inode {inode}", "Connect to /lost+found"),
    Problem(0x040004, "LINK_COUNT", "Inode {inode} ref count is {found}, should be {expected}", "Fix",
            PREEN_OK),
    # Pass 5: summary information.
    Problem(0x050001, "BITMAP_DIFFERENCES", "Block bitmap differences: {diff}", "Fix", PREEN_OK),
    Problem(0x050002, "BITMAP_PADDING", "Padding at the end of the block bitmap is not {want}", "Fix",
            PREEN_OK),
    Problem(0x050003, "BITMAP_CHECKSUM", "Block bitmap block {index} checksum does not match", "Fix"),
    Problem(0x050004, "FREE_BLOCKS", "Free blocks count wrong ({found}, counted={expected})", "Fix",
            PREEN_OK | NO_OK),
    Problem(0x050005, "FREE_INODES", "Free inodes count wrong ({found}, counted={expected})", "Fix",
            PREEN_OK | NO_OK),
    # Pass 6: vector files (check/pass_vectors.py); "report only" ones have nothing good to
    # be repaired from and stay uncorrected.
    Problem(0x060001, "VECTOR_NO_FEATURE", "Inode {inode} is a vector file, but the vector_files feature "
            "is not set", "Set the feature", PREEN_OK),
    Problem(0x060002, "VECTOR_FLAG_NOT_VECTOR", "Inode {inode} is flagged as a vector file but holds no "
            "vector header (and no copy of one)", "Clear the flag"),
    Problem(0x060003, "VECTOR_FLAG_NOT_REGULAR", "Inode {inode} is flagged as a vector file but is not a "
            "regular file", "Clear the flag"),
    Problem(0x060004, "VECTOR_HEADER_DAMAGED", "Vector file {inode}: header is damaged ({reason}); its "
            "copy at byte {offset} is good", "Restore the header from its copy"),
    Problem(0x060005, "VECTOR_HEADER_LOST", "Vector file {inode}: header is damaged ({reason}) and has no "
            "good copy", "Leave it"),
    Problem(0x060006, "VECTOR_COPY_DIFFERS", "Vector file {inode}: the header's copy at byte {offset} "
            "differs from the header", "Rewrite the copy", PREEN_OK),
    Problem(0x060007, "VECTOR_CHUNK_CHECKSUM", "Vector file {inode}: chunk {chunk} (rows {first}-{last}) "
            "checksum does not match", "Leave it"),
    Problem(0x060008, "VECTOR_IDS_CHECKSUM", "Vector file {inode}: the ids' checksum does not match "
            "(rows 0-{last})", "Leave it"),
    Problem(0x060009, "VECTOR_IDS_DUPLICATE", "Vector file {inode}: {count} id(s) held by more than one "
            "row: {ids}", "Leave it"),
]

PROBLEMS = {p.name: p for p in _TABLE}
BY_CODE = {p.code: p for p in _TABLE}
