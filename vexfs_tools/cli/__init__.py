"""Command-line front ends: they parse, call the library once, and print."""
