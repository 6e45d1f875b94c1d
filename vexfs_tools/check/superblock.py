"""Superblock checks: the first pass of fsck.vexfs.

Each finding has a stable code, a message, and whether answering "no" leaves the file
system invalid (e2fsck's PR_NO_OK: stale free counters are ordinary on kernel images).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..volume.volume import Volume


@dataclass
class Finding:
    code: str
    message: str
    fixable: bool
    no_ok: bool = False  # declining the fix does not leave the file system invalid
    preen_ok: bool = False  # safe to fix without asking under -p
    fixed: bool = False


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    used_inodes: int = 0
    inodes_count: int = 0
    used_blocks: int = 0
    blocks_count: int = 0


def check_superblock(volume: Volume) -> Report:
    """Find what is wrong in the superblock; nothing is changed here."""
    sb, g = volume.sb, volume.geometry
    report = Report(inodes_count=g.inodes_count, blocks_count=g.blocks_count)
    for problem in volume.problems:
        report.findings.append(Finding("0x000001", problem, fixable=False))
    if g.addressable_blocks < g.blocks_count:
        report.findings.append(Finding(
            "0x000002", f"the superblock says {g.blocks_count} blocks but the bitmap describes "
                        f"only {g.addressable_blocks} (the kernel overruns its bitmap here)",
            fixable=False))
    if g.layout == "kernel" and g.inodes_count - 1 > g.inode_table_blocks * 36:
        report.findings.append(Finding(
            "0x000003", f"s_inodes_count {g.inodes_count} maps inodes past the 64-block inode table",
            fixable=False))
    free_blocks = volume.count_free_blocks()
    free_inodes = volume.count_free_inodes()
    report.used_blocks = g.addressable_blocks - free_blocks
    report.used_inodes = volume.count_used_inodes()
    if sb.s_free_blocks != free_blocks:
        report.findings.append(Finding(
            "0x000010", f"Free blocks count wrong ({sb.s_free_blocks}, counted={free_blocks})",
            fixable=True, no_ok=True, preen_ok=True))
    if sb.s_free_inodes != free_inodes:
        report.findings.append(Finding(
            "0x000011", f"Free inodes count wrong ({sb.s_free_inodes}, counted={free_inodes})",
            fixable=True, no_ok=True, preen_ok=True))
    return report


def fix_counters(volume: Volume, report: Report) -> None:
    """Apply the fixes marked `fixed` in the report."""
    for finding in report.findings:
        if finding.fixed and finding.code == "0x000010":
            volume.sb.s_free_blocks = volume.count_free_blocks()
            volume.sb_dirty = True
        if finding.fixed and finding.code == "0x000011":
            volume.sb.s_free_inodes = volume.count_free_inodes()
            volume.sb_dirty = True


EXIT_OK, EXIT_CORRECTED, EXIT_UNCORRECTED = 0, 1, 4
MODES = ("no", "preen", "yes")


@dataclass
class CheckResult:
    report: Report
    modified: bool
    exit_code: int


def run_check(path: str, mode: str = "no", *, backup: bool = False) -> CheckResult:
    """Check the file system at `path`: mode "no" opens it read-only and changes nothing,
    "preen" fixes only what is safe, "yes" fixes everything it can."""
    writing = mode in ("preen", "yes")
    with Volume.open(path, writable=writing, backup=backup, ignore_checksums=True) as volume:
        report = check_superblock(volume)
        uncorrected = False
        for finding in report.findings:
            if finding.fixable and (mode == "yes" or (mode == "preen" and finding.preen_ok)):
                finding.fixed = True
            elif not finding.no_ok:
                uncorrected = True
        fix_counters(volume, report)
        modified = any(f.fixed for f in report.findings)
    code = (EXIT_UNCORRECTED if uncorrected else EXIT_OK) | (EXIT_CORRECTED if modified else EXIT_OK)
    return CheckResult(report, modified, code)
