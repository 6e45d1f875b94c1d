"""Tests of the installed command-line tools, run as a user runs them (subprocesses)."""
