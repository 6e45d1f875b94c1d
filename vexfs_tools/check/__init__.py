"""fsck's engine. This first version checks the superblock against the device and against
what the bitmap and inode table hold; the passes over inodes and directories come later."""
