"""mkfs: plan a new file system, write it, and optionally populate it from a directory."""

from .create import format_device
from .plan import MkfsOptions, MkfsPlan, make_plan

__all__ = ["MkfsOptions", "MkfsPlan", "make_plan", "format_device"]
