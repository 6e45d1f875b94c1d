"""Command-line front ends (mkfs.vexfs, fsck.vexfs, dump.vexfs, `vexfs ...`): each parses its
arguments, calls the library (volume, mkfs, check, inspect, vectors), and prints. Text is made
here, at the edge: cli/common.py holds the shared options, the read-only open of the views
and the one place where findings become warning lines on stderr; cli/output.py the
formatting (times, JSON, fields, progress)."""
