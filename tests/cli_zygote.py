"""Console scripts run as forks of one process that has imported them already.

``openstack`` spends about a second importing itself (cliff, keystoneauth, its
plugins) before it sends a request, ``cinder`` a third of one; the REST client
tests run a few hundred such commands. A ``Zygote`` is one Python process per
script that imports the script's package and its plugins once, then forks a child
for each command: the child sets ``sys.argv`` and its standard streams (stdin
empty, stdout and stderr to files), calls the script's own entry point (the
``console_scripts`` one its launcher calls), and exits with what
``sys.exit(main())`` would. Each command is a fresh process with the script's real
code; only the imports are shared.

The protocol is one JSON line each way on the zygote's stdin and stdout: in,
``{"argv": [...], "env": {...}, "timeout": s}`` (env: the child's whole
environment); out, ``{"rc": n, "stdout": "...", "stderr": "..."}`` (rc null: the
child was killed at the timeout). Run as ``python cli_zygote.py SCRIPT_PATH
[MODULE ...]`` it serves, having imported the modules named.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from importlib import import_module
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, TextIO

# what each script imports lazily on its first command, imported up front instead
WARM: dict[str, tuple[str, ...]] = {
    "openstack": ("openstackclient.shell", "openstackclient.volume.client",
                  "openstackclient.volume.v3.volume", "openstackclient.volume.v2.volume",
                  "cinderclient.v3.client", "keystoneauth1.loading", "osc_lib.shell"),
    "cinder": ("cinderclient.shell", "cinderclient.v3.shell", "cinderclient.v3.client",
               "keystoneauth1.loading"),
    "cinderblock": ("cinderblock.actors.cli.main",),  # reads no environment as it imports
}
# the zygote's own environment: none of what a command is given (a module that read it
# at import would take the zygote's, not the command's)
NOT_INHERITED = ("CINDERBLOCK_", "OS_", "CINDER_")
REPLY_SLACK_S = 10.0  # beyond a command's own timeout, for the zygote to answer


class Zygote:
    """The client side: one serving process for ``script``, started on first use."""

    def __init__(self, script: str) -> None:
        self.script = script  # its path, as its launcher's sys.argv[0]
        self._proc: subprocess.Popen[str] | None = None

    def run(self, argv: list[str], timeout: float, env: dict[str, str]
            ) -> subprocess.CompletedProcess[str]:
        """``argv`` (its first item: the script) run in a child; TimeoutExpired as
        ``subprocess.run`` raises it."""
        proc = self._started()
        assert proc.stdin is not None and proc.stdout is not None
        request = {"argv": argv[1:], "env": env, "timeout": timeout}
        proc.stdin.write(json.dumps(request) + "\n")
        proc.stdin.flush()
        line = _read_line(proc, timeout + REPLY_SLACK_S)
        reply = json.loads(line)
        if reply["rc"] is None:
            raise subprocess.TimeoutExpired(argv, timeout, reply["stdout"], reply["stderr"])
        return subprocess.CompletedProcess(argv, reply["rc"], reply["stdout"], reply["stderr"])

    def _started(self) -> subprocess.Popen[str]:
        if self._proc is None or self._proc.poll() is not None:
            self._proc = subprocess.Popen(
                [sys.executable, __file__, self.script, *WARM.get(Path(self.script).name, ())],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                env={k: v for k, v in os.environ.items() if not k.startswith(NOT_INHERITED)})
        return self._proc

    def stop(self) -> None:
        """The serving process ended: told by the end of its input, else killed (by
        its own pid). It runs one command at a time, and none is running now."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        assert proc.stdin is not None
        with contextlib.suppress(OSError):
            proc.stdin.close()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


_RUNNING: dict[str, Zygote] = {}


def run_script(argv: list[str], timeout: float, env: dict[str, str]
               ) -> subprocess.CompletedProcess[str]:
    """``subprocess.run(argv, capture_output=True, text=True, ...)`` for a console
    script (``argv[0]``: its path) with the environment ``env``, through its zygote."""
    zygote = _RUNNING.get(argv[0])
    if zygote is None:
        zygote = _RUNNING[argv[0]] = Zygote(argv[0])
    return zygote.run(argv, timeout, env)


def stop_all() -> None:
    while _RUNNING:
        _RUNNING.popitem()[1].stop()


def _read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    """The zygote's next reply line; a zygote that died or went silent is an error."""
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            proc.kill()
            raise AssertionError(f"the {proc.args!r} zygote did not answer in {timeout:g}s")
    line = proc.stdout.readline()
    if not line:
        raise AssertionError(f"the zygote {proc.args!r} ended (exit {proc.wait()})")
    return line


# ---- the serving side --------------------------------------------------------------


def serve(script: str, warm: list[str]) -> None:
    """``script``: the path of a console script. Its ``sys.argv[0]`` is set before
    anything is imported (cliff, for one, takes its name from it then)."""
    sys.argv = [script]
    (entry,) = entry_points(group="console_scripts", name=Path(script).name)
    main: Callable[[], Any] = entry.load()
    for module in warm:
        with contextlib.suppress(ImportError):  # only a second saved, if it is there
            import_module(module)
    for line in sys.stdin:
        request = json.loads(line)
        reply = _fork_and_run(script, main, list(request["argv"]), dict(request["env"]),
                              float(request["timeout"]))
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


def _fork_and_run(script: str, main: Callable[[], Any], argv: list[str],
                  env: dict[str, str], timeout: float) -> dict[str, Any]:
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        pid = os.fork()
        if pid == 0:  # the child: never returns
            _child(script, main, argv, env, out.fileno(), err.fileno())
        rc = _wait(pid, timeout)
        out.seek(0)
        err.seek(0)
        return {"rc": rc, "stdout": out.read().decode(errors="replace"),
                "stderr": err.read().decode(errors="replace")}


def _wait(pid: int, timeout: float) -> int | None:
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return None
        time.sleep(0.005)


def _child(script: str, main: Callable[[], Any], argv: list[str], env: dict[str, str],
           out: int, err: int) -> None:
    code = 1
    try:
        os.environ.clear()
        os.environ.update(env)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(out, 1)
        os.dup2(err, 2)
        sys.stdin = _stream(0, "r")
        sys.stdout = _stream(1, "w")
        sys.stderr = _stream(2, "w")
        sys.argv = [script, *argv]
        try:
            raise SystemExit(main())  # as the console script's launcher does
        except SystemExit as exit_:
            code = _exit_code(exit_.code)
    except BaseException:
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _exit_code(code: object) -> int:
    """What the interpreter makes of ``sys.exit(code)``."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def _stream(fd: int, mode: str) -> TextIO:
    raw = io.FileIO(fd, mode, closefd=False)
    if mode == "r":
        return io.TextIOWrapper(io.BufferedReader(raw), encoding="utf-8")
    return io.TextIOWrapper(io.BufferedWriter(raw), encoding="utf-8", errors="backslashreplace",
                            line_buffering=False)


if __name__ == "__main__":
    here = Path(__file__).parent.resolve()  # nothing of tests/ stands for a package
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
    serve(sys.argv[1], sys.argv[2:])

