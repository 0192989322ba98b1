"""The ``nnspec`` command: parse with the one tree of :mod:`nnspec.cli.parser`, run, map errors.

Exit codes: 0 success; 2 invalid spec, data or arguments (every problem printed, never a
traceback); 1 an internal error (a one-line message; ``NNSPEC_DEBUG=1`` shows the traceback), and
for the commands that say so in their ``--help`` a failure of their own (a lint finding, a failed
check, a training run or sweep trial that failed);
130 interrupted; 143 (128 + SIGTERM) stopped by SIGTERM while training (the pending checkpoint is
written first); 141 (128 + SIGPIPE, what a shell reports for ``yes | head``) when the reader of
stdout went away, as in ``nnspec schema | head``: nothing more is printed, not even to stderr.
"""

from __future__ import annotations

import gc
import importlib
import os
import signal
import sys
import traceback
from typing import NoReturn

from nnspec._heap import own_process
from nnspec.cli.common import (
    DEBUG_ENV,
    EXIT_INTERNAL,
    EXIT_INVALID,
    UsageError,
    debug_enabled,
    print_error,
)
from nnspec.cli.parser import COMMANDS, build_parser, parse
from nnspec.errors import NNSpecError, Terminated

__all__ = ["main", "entry", "EXIT_BROKEN_PIPE"]

EXIT_BROKEN_PIPE = 141


def _command_index(args: list[str]) -> int | None:
    """Where the command name is: the first token that is not a top-level option."""
    for i, token in enumerate(args):
        if not token.startswith("-"):
            return i
    return None


def run_command(args: list[str]) -> int:
    """Parse ``args`` (everything after ``nnspec``) and run the command (no error mapping)."""
    at = _command_index(args)
    if at is None or args[:at]:  # no command, or options before it (--help, --version)
        top, _ = build_parser()
        ns = top.parse_args(args)
        if ns.version:
            from importlib.metadata import version  # the installed distribution's own version

            print(f"nnspec {version('nnspec')}")
            return 0
        top.print_usage(sys.stderr)
        print("nnspec: a command is needed (nnspec --help lists them)", file=sys.stderr)
        return EXIT_INVALID
    name = args[at]
    if name not in COMMANDS:
        from nnspec.errors import did_you_mean

        hint = did_you_mean(name, list(COMMANDS))
        raise UsageError(f"unknown command '{name}'" + (f"; {hint}" if hint else ""))
    module = importlib.import_module(COMMANDS[name].module)
    ns = parse(args[at:], _description(module.__doc__))
    ns.plugin_list = _load_plugins(ns.plugins or ())
    return int(module.run(ns))


def _load_plugins(explicit: list[str]) -> tuple[str, ...]:
    """Import the user's plugins (entry points, then ``--plugins``) before the command reads a
    spec; returns what was loaded, for sweep trials to load in their own processes."""
    from nnspec.run.plugins import load_plugins, plugin_list

    plugins = plugin_list(explicit)
    load_plugins(plugins)
    return plugins


def _description(doc: str | None) -> str:
    """A command module's docstring without its first line (argparse prints the usage)."""
    text = (doc or "").strip()
    return text.split("\n", 1)[1].strip() if text.startswith(("nnspec", "``nnspec")) else text


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``nnspec`` command; returns the exit code (see the module docstring)."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        code = run_command(args)
        sys.stdout.flush()  # a closed pipe is found here, not at interpreter exit
        return code
    except Terminated as e:  # SIGTERM while a run trained; its last checkpoint is complete
        name = signal.Signals(e.signum).name
        print(f"nnspec: stopped by {name}; the checkpoints written so far are complete "
              "(train.resume=auto continues the run)", file=sys.stderr)  # fmt: skip
        return 128 + e.signum
    except SystemExit as e:  # argparse: --help (0) or a usage error (2, message printed)
        return e.code if isinstance(e.code, int) else EXIT_INVALID
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except UsageError as e:
        print(f"nnspec: {e} (nnspec --help lists the commands)", file=sys.stderr)
        return EXIT_INVALID
    except NNSpecError as e:
        print_error(e)
        return EXIT_INVALID
    except KeyboardInterrupt:
        print("nnspec: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # the last line of defence: no raw traceback for users
        if debug_enabled():
            traceback.print_exc()
        else:
            print(
                f"nnspec: internal error ({type(e).__name__}: {e}); re-run with {DEBUG_ENV}=1 "
                "for the traceback and please report it",
                file=sys.stderr,
            )
        return EXIT_INTERNAL


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's last flush cannot fail again."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return  # not a real file (a test's capture): nothing is flushed at exit
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def entry() -> NoReturn:
    """The console script and ``python -m nnspec``: :func:`main` in a process nnspec owns.

    Owning the process lets a command that trains or evaluates import its heavy modules with full
    collections held off and freeze them (:mod:`nnspec._heap`; ``bench/bench_startup.py``). At exit
    the heap is frozen, so the collector's last passes skip the imported modules' objects: every
    file nnspec writes is closed before ``main`` returns, and ``sys.exit`` still runs the atexit
    handlers and flushes the standard streams. Neither is done inside :func:`main`, which tests
    and notebooks call in a process that goes on.
    """
    own_process()
    code = main()
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    entry()
