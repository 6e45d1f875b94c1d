"""Read-only views of a volume, for dump.vexfs and the `vexfs` views (ls, stat, cat, icheck,
ncheck, timeline, extract): what each block is and who owns it (blockmap), directories as
the kernel left them, orphaned blocks recovered (recovery), deleted names in directory
slack (deleted), tree walks (walk), inode slots (inodes), the superblock summary and the
backup comparison (summary, superblocks), the body file (timeline), a safe copy out of an
image (extract). Everything here reads through the volume library and returns plain data
and findings; nothing prints, nothing writes to the image."""
