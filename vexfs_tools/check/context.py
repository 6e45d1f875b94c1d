"""What every pass shares: the volume, the answer policy, the findings, names for inodes.

`Checker.fix()` is the only path from a finding to the user (e2fsck's fix_problem): it
formats the message, decides the answer for -n / -p / -y / interactive, logs the finding
and says whether to repair.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import VexfsError
from ..format import constants as C
from ..volume.volume import Volume
from .problems import NO_OK, PREEN_OK, PROBLEMS

NO, PREEN, YES, ASK = "no", "preen", "yes", "ask"


# What -p prints after a fix it made without asking, by the prompt's first word (e2fsck:
# "FIXED.", "CLEARED.").
PREEN_DONE = {"Fix": "FIXED", "Clear": "CLEARED", "Free": "FREED", "Reattach": "REATTACHED",
              "Reclaim": "RECLAIMED", "Create": "CREATED", "Salvage": "SALVAGED", "Set": "FIXED"}


class PreenStop(VexfsError):
    """-p met a problem that is not safe to fix without asking (e2fsck: UNEXPECTED
    INCONSISTENCY; RUN fsck MANUALLY)."""


@dataclass
class Finding:
    """A problem met: its code and the fields its message is made of, and what was done."""
    code: int
    name: str
    pass_number: int
    message: str
    fixed: bool
    fields: dict = field(default_factory=dict)

    def as_json(self) -> dict:
        out = {"code": f"0x{self.code:06x}", "problem": self.name, "pass": self.pass_number,
               "message": self.message, "fixed": self.fixed}
        for key in ("ino", "block", "path", "child", "name"):
            if key in self.fields:
                out[key] = self.fields[key]
        return out


class Checker:
    def __init__(self, volume: Volume, mode: str, *, emit: Callable[[str], None],
                 ask: Callable[[str], bool] | None = None,
                 progress: Callable[[str, int, int], None] | None = None):
        self.volume = volume
        self.mode = mode
        self.emit = emit
        self.ask = ask
        self.report_progress = progress  # (what, done, total), for a display on a terminal
        self.findings: list[Finding] = []
        self.uncorrected = False
        self._paths: dict[int, str] | None = None
        # Blocks the bitmap marks used, as pass 5 counted them while comparing (read-only
        # runs, where the bitmap is not changed: the summary line needs no second read).
        self.bitmap_used: int | None = None

    @property
    def writing(self) -> bool:
        return self.mode != NO

    def fix(self, problem_name: str, /, **fields) -> bool:
        """Report a problem and answer whether to repair it. The problem's name is
        positional-only, so that a field may be called `name` (an entry's)."""
        problem, message = self._message(problem_name, fields)
        prompt = problem.prompt.format(**fields)
        if self.mode == NO:
            answer = False
            self.emit(f"{message}.  {prompt}? no")
        elif self.mode == YES:
            answer = True
            self.emit(f"{message}.  {prompt}? yes")
        elif self.mode == PREEN:
            if not problem.flags & PREEN_OK:
                self.emit(f"{message}.")
                self.findings.append(Finding(problem.code, problem_name, problem.pass_number, message,
                                             False, fields))
                raise PreenStop("UNEXPECTED INCONSISTENCY; RUN fsck MANUALLY (without -a or -p)")
            answer = True
            self.emit(f"{self.volume.device.path}: {message}.  {PREEN_DONE.get(prompt.split()[0], 'FIXED')}.")
        else:
            answer = bool(self.ask(f"{message}.  {prompt}?")) if self.ask else False
        if not answer and not problem.flags & NO_OK:
            self.uncorrected = True
        self.findings.append(Finding(problem.code, problem_name, problem.pass_number, message, answer,
                                     fields))
        return answer

    def report(self, problem_name: str, /, **fields) -> None:
        """A problem no repair may touch (there is nothing good to repair it from): said, kept
        uncorrected (exit 4) whatever the answer policy."""
        problem, message = self._message(problem_name, fields)
        self.emit(f"{message}.")
        self.uncorrected = True
        self.findings.append(Finding(problem.code, problem_name, problem.pass_number, message, False, fields))

    def _message(self, problem_name: str, fields: dict):
        """The problem and its message, `path` and `inode` filled in from `ino` (in `fields`)."""
        problem = PROBLEMS[problem_name]
        ino = fields.get("ino")
        if ino is not None:
            path = self.path_of(ino)
            if path is not None:
                fields.setdefault("path", path)
            fields.setdefault("inode", f"{ino} ({path})" if path else str(ino))
        return problem, problem.message.format(**fields)

    def progress(self, what: str, done: int, total: int) -> None:
        if self.report_progress is not None:
            self.report_progress(what, done, total)

    @property
    def modified(self) -> bool:
        return any(f.fixed for f in self.findings)

    # --- names, for messages -----------------------------------------------------------------

    def path_of(self, ino: int) -> str | None:
        if ino == C.ROOT_INO:
            return "/"
        if self._paths is None:
            self._paths = self._walk_names()
        return self._paths.get(ino)

    def forget_paths(self) -> None:
        """After the tree changed (reattached directories), names are looked up afresh."""
        self._paths = None

    def _walk_names(self) -> dict[int, str]:
        from ..inspect.walk import walk_tree  # only a check that names something walks the tree
        names: dict[int, str] = {}
        known_problems = len(self.volume.problems)
        try:
            for path, inode in walk_tree(self.volume):
                names.setdefault(inode.ino, path.decode("utf-8", "backslashreplace"))
        except VexfsError:
            pass
        del self.volume.problems[known_problems:]  # the passes report these themselves
        return names
