"""fsck's engine, in e2fsck's passes: 0 the superblock, 1 inodes and block maps (1B-1D blocks
claimed twice), 2 directory entries, 3 connectivity, 4 link counts, 5 the bitmap and counters.
run.py is fsck as one library call; the CLI only chooses the mode and prints.

It reads and repairs only through the volume library, and takes the library's findings as
data. Every finding fsck reports goes through Checker.fix (context.py) and the problem table
(problems.py), the one place fsck's words live.

Each pass works in bulk first, with numpy over whole chunks of the inode table and batches of
directory blocks, and goes one by one (in Python, through the problem table and the volume's
write path) only over what looks wrong: the inodes pass 1 flags, the directories pass 2 can
not prove clean, the inodes whose link count is off. The one-by-one code is the reference:
tests prove that both ways print the same findings and leave the same bytes.
"""
