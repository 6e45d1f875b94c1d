"""mkfs: make a new file system. plan.py decides the geometry and features and refuses what
can not be made, before anything is written; create.py writes the empty metadata (the
kernel's C mkfs bit for bit, or the extended layout); populate.py copies a directory tree in;
run.py is the whole as one library call.
"""

from .create import format_device
from .plan import MkfsOptions, MkfsPlan, make_plan

__all__ = ["MkfsOptions", "MkfsPlan", "make_plan", "format_device"]
