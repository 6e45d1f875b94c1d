"""What every command shares: turning library errors into one line and an exit code."""

from __future__ import annotations

import functools
import os
import sys

import click

from ..errors import UsageError, VexfsError


def fail(message: str, code: int) -> "NoReturn":  # noqa: F821
    prog = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "vexfs"
    click.echo(f"{prog}: {message}", err=True)
    sys.exit(code)


def handle_errors(error_code: int = 1, usage_code: int | None = None):
    """Run a command body: library errors become `prog: message` and `error_code`
    (usage errors `usage_code`), never a traceback."""

    def wrap(func):
        @functools.wraps(func)
        def inner(*args, **kwargs):
            try:
                return func(*args, **kwargs)
            except click.ClickException:
                raise
            except UsageError as e:
                fail(str(e), usage_code if usage_code is not None else error_code)
            except VexfsError as e:
                fail(str(e), error_code)
            except KeyboardInterrupt:
                fail("interrupted", 130 if error_code == 1 else 32)
            except BrokenPipeError:
                sys.stderr.close()
                sys.exit(0)
            except OSError as e:
                fail(f"{str(e.filename) + ': ' if e.filename else ''}{e.strerror or e}", error_code)
            except Exception as e:  # a bug of ours: still one line, unless asked for more
                if os.environ.get("VEXFS_TRACEBACK"):
                    raise
                fail(f"internal error: {type(e).__name__}: {e} (set VEXFS_TRACEBACK=1 for details)",
                     error_code)
        return inner

    return wrap


def run_standalone(command: click.Command, usage_code: int) -> None:
    """Invoke a click command as a program, with click's own usage errors mapped to
    `usage_code` (click would exit 2, which means something else to fsck)."""
    # Names from an image need not be UTF-8: print their bytes escaped, never fail on them.
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    try:
        command.main(standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as e:
        click.echo(e.ctx.get_help() if e.ctx else str(e), err=True)
        sys.exit(usage_code)
    except click.UsageError as e:
        e.show()
        sys.exit(usage_code)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(usage_code)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    sys.exit(0)
