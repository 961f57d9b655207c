"""Every ``python -m shapedemo`` line of the README runs as written, from the root of a fresh
copy of the repository, and leaves nothing behind in it.

The rules, so that a README line added later is tested with no change here:

- A command is a line of one of the README's fenced ``bash`` blocks that contains
  ``python -m shapedemo`` (a line ending in a backslash continues on the next; comment lines
  are not commands). Each is one test, named by its position and subcommand.
- It runs with ``bash -o pipefail -c`` from the root of a copy of the working tree (tracked files
  and new files git does not ignore, committed into a scratch repository), ``python`` being the
  interpreter running the tests, ``SHAPEDEMO_CACHE`` a temporary folder, each command within
  ``COMMAND_TIMEOUT_S``. It fails on a non-zero exit, on the timeout, and on any file it adds,
  changes or deletes in the copy, ignored files included (so ``.gitignore`` cannot hide a file
  left behind); only Python's own ``__pycache__`` folders are let pass.
- A command that serves until stopped (subcommand ``serve``, or any command given ``--port``)
  is started on a free port (its ``--port`` replaced, or added after the subcommand), must answer
  200 on ``GET /health`` within ``READY_TIMEOUT_S``, and is then stopped (SIGINT, then SIGKILL).
- A command that talks to a local server (``--url http://127.0.0.1:PORT...``) runs while the
  README's first serving command is up, the URL's port replaced by the one it serves on.
- A command is skipped, not failed, only where an optional extra is missing and the command says
  so as the CLI's one-line error: exit code 2, stderr a single line ``shapedemo: error: ...`` that
  contains ``pip install`` and names an optional extra of ``pyproject.toml`` (``[peers]``) or a
  package of one (``test`` does not count: the tests have it). Any other failure fails.

Deselect with ``-m "not readme"``.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

try:
    import tomllib
except ImportError:  # Python 3.10
    from pip._vendor import tomli as tomllib  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
COMMAND_TIMEOUT_S = 900  # a compare compiles several shapes; two cores may be shared
READY_TIMEOUT_S = 600  # a server compiles every shape of its configuration before /health is 200
SERVING_SUBCOMMANDS = {"serve"}
FENCES = {"bash", "sh", "shell"}
LOCAL_URL = re.compile(r"(--url[= ]+['\"]?https?://(?:127\.0\.0\.1|localhost|0\.0\.0\.0)):(\d+)")


def bash_lines(text: str) -> list[str]:
    """The command lines of the fenced bash blocks of a markdown text.

    >>> fence = "`" * 3
    >>> bash_lines(f'''python -m shapedemo plan  (prose, not a command)
    ... {fence}bash
    ... # python -m shapedemo in a comment
    ... python -m shapedemo embed \\\\
    ...   --texts-file assets/texts.txt
    ... pip install -e .
    ... {fence}
    ... {fence}python
    ... python -m shapedemo plan
    ... {fence}''')
    ['python -m shapedemo embed --texts-file assets/texts.txt', 'pip install -e .']
    """
    commands: list[str] = []
    fence: str | None = None
    pending = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("```"):
            fence = None if fence is not None else stripped[3:].strip()
            pending = ""
            continue
        if fence not in FENCES:
            continue
        line = pending + stripped
        if line.endswith("\\"):
            pending = line[:-1].rstrip() + " "
            continue
        pending = ""
        if line and not line.startswith("#"):
            commands.append(line)
    return commands


def subcommand(command: str) -> str:
    """The word after ``python -m shapedemo``.

    >>> subcommand("cat x | python -m shapedemo tune-buckets --k 4  # tuned")
    'tune-buckets'
    """
    words = shlex.split(command, comments=True)
    for i in range(len(words) - 2):
        if words[i : i + 3] == ["python", "-m", "shapedemo"]:
            return next((w for w in words[i + 3 :] if not w.startswith("-")), "")
    return ""


def serves(command: str) -> bool:
    return subcommand(command) in SERVING_SUBCOMMANDS or "--port" in shlex.split(command, comments=True)


def on_port(command: str, port: int) -> str:
    """The command with ``--port`` set to ``port``.

    >>> on_port("python -m shapedemo serve --port 8000 --strategy padding", 5)
    'python -m shapedemo serve --port 5 --strategy padding'
    >>> on_port("python -m shapedemo serve --strategy padding", 5)
    'python -m shapedemo serve --port 5 --strategy padding'
    """
    if re.search(r"--port[= ]+\S+", command):
        return re.sub(r"--port[= ]+\S+", f"--port {port}", command)
    name = subcommand(command)
    return command.replace(f"-m shapedemo {name}", f"-m shapedemo {name} --port {port}", 1)


def health_url(command: str, port: int) -> str:
    words = shlex.split(command, comments=True)
    host = words[words.index("--host") + 1] if "--host" in words[:-1] else "127.0.0.1"
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return f"http://{host}:{port}/health"


def optional_packages(pyproject: Path) -> set[str]:
    """The optional extras (``test`` aside) and their packages, normalised (PEP 503)."""
    extras = tomllib.loads(pyproject.read_text())["project"].get("optional-dependencies", {})
    names = set()
    for extra, requirements in extras.items():
        if extra == "test":
            continue
        names.add(f"[{extra}]")
        names.update(_normalise(re.match(r"[A-Za-z0-9._-]+", r).group()) for r in requirements)
    return names


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def missing_extra(returncode: int, stderr: str, pyproject: Path) -> str | None:
    """The CLI's one-line error, where it says an optional extra is missing; else None."""
    lines = stderr.strip().splitlines()
    if returncode != 2 or len(lines) != 1:
        return None
    line = lines[0]
    if not line.startswith("shapedemo: error:") or "pip install" not in line:
        return None
    wanted = optional_packages(pyproject)
    extras = {f"[{e}]" for found in re.findall(r"\[([\w,-]+)\]", line) for e in found.split(",")}
    words = {_normalise(re.split(r"[<>=!~;\[]", w.strip("'\"`,;:()"))[0]) for w in line.split()}
    return line if extras & wanted or words & wanted else None


# ------------------------------------------------------------------------------ the copy
def git_available() -> bool:
    return shutil.which("git") is not None


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=readme", "-c", "user.email=readme@localhost", "-c", "commit.gpgsign=false", *args],
        cwd=cwd, check=True, capture_output=True, text=True,
    ).stdout


def fresh_copy(dest: Path) -> Path:
    """The working tree as a fresh clone of it would be once committed: tracked files and new
    files git does not ignore, in a scratch repository with one commit."""
    listed = git("ls-files", "-z", "--cached", "--others", "--exclude-standard", cwd=ROOT)
    for rel in sorted(set(filter(None, listed.split("\0")))):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    git("init", "-q", cwd=dest)
    git("add", "-A", cwd=dest)
    git("commit", "-q", "-m", "snapshot", cwd=dest)
    return dest


def left_behind(repo: Path) -> list[str]:
    """Every path added, changed or deleted since the snapshot, ignored ones included."""
    status = git("status", "--porcelain", "--ignored", "--untracked-files=all", cwd=repo)
    return [line for line in status.splitlines() if "__pycache__" not in line.split("/")]


# ------------------------------------------------------------------------------ running
@pytest.fixture(scope="module")
def python_on_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder whose ``python`` is the interpreter running the tests (a venv's, say)."""
    folder = tmp_path_factory.mktemp("bin")
    shim = folder / "python"
    shim.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} "$@"\n')
    shim.chmod(0o755)
    return folder


@pytest.fixture
def env(cache_dir, python_on_path) -> dict[str, str]:
    values = dict(os.environ)
    values.pop("SHAPEDEMO_MODEL", None)
    values.update(
        SHAPEDEMO_CACHE=str(cache_dir), GRADIO_ANALYTICS_ENABLED="False",
        PATH=f"{python_on_path}{os.pathsep}{values.get('PATH', '')}",
    )
    return values


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path: Path, n: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-n:])


@contextmanager
def started(argv: list[str], *, cwd: Path, env: dict[str, str], url: str, log: Path, timeout: float) -> Iterator[None]:
    """Run ``argv`` (output in ``log``) until ``url`` answers 200, then hand over; stop it on the
    way out (SIGINT to its process group, SIGKILL after 30 s)."""
    with open(log, "w") as out:
        proc = subprocess.Popen(
            argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                pytest.fail(f"`{shlex.join(argv)}` exited with {proc.returncode} before {url} answered 200:\n{tail(log)}")
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass  # not listening yet, or 503 while it compiles
            if time.monotonic() > deadline:
                pytest.fail(f"`{shlex.join(argv)}`: {url} did not answer 200 within {timeout} s:\n{tail(log)}")
            time.sleep(0.5)
        yield
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@contextmanager
def serving(command: str, *, cwd: Path, env: dict[str, str], logs: Path) -> Iterator[int]:
    """A serving command on a free port, up once ``/health`` answers 200; the port."""
    port = free_port()
    command = on_port(command, port)
    argv = ["bash", "-o", "pipefail", "-c", command]
    with started(argv, cwd=cwd, env=env, url=health_url(command, port), log=logs / "serve.log", timeout=READY_TIMEOUT_S):
        yield port


def run_to_completion(command: str, *, cwd: Path, env: dict[str, str]) -> None:
    try:
        done = subprocess.run(
            ["bash", "-o", "pipefail", "-c", command], cwd=cwd, env=env,
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"`{command}` did not finish within {COMMAND_TIMEOUT_S} s")
    reason = missing_extra(done.returncode, done.stderr, cwd / "pyproject.toml")
    if reason:
        pytest.skip(f"optional extra missing: {reason}")
    assert done.returncode == 0, f"`{command}` exited with {done.returncode}:\n{done.stderr[-3000:]}"


README_LINES = bash_lines(README.read_text(encoding="utf-8"))
COMMANDS = [line for line in README_LINES if "python -m shapedemo" in line]


@pytest.mark.readme
@pytest.mark.skipif(not git_available(), reason="git is needed to copy the repository and see what is left behind")
@pytest.mark.parametrize("command", COMMANDS, ids=[f"{i}-{subcommand(c)}" for i, c in enumerate(COMMANDS)])
def test_readme_command_runs_as_written_and_leaves_nothing(command, env, tmp_path):
    repo = fresh_copy(tmp_path / "repo")
    logs = tmp_path / "logs"
    logs.mkdir()
    assert left_behind(repo) == []
    local = LOCAL_URL.search(command)
    if serves(command):
        with serving(command, cwd=repo, env=env, logs=logs):
            pass
    elif local:
        server = next((c for c in COMMANDS if serves(c)), None)
        assert server, f"`{command}` needs a local server, and the README starts none"
        with serving(server, cwd=repo, env=env, logs=logs) as port:
            run_to_completion(LOCAL_URL.sub(rf"\g<1>:{port}", command), cwd=repo, env=env)
    else:
        run_to_completion(command, cwd=repo, env=env)
    assert left_behind(repo) == [], f"`{command}` left files in the repository"


def test_the_readme_has_commands_for_this_test():
    assert COMMANDS, "no `python -m shapedemo` line found in the README's bash blocks"
    assert all(subcommand(c) for c in COMMANDS)


def test_the_readme_test_command_is_what_ci_runs():
    """`.ci/run` runs the README's test command verbatim, so CI checks what a reader types."""
    (command,) = [line for line in README_LINES if "pip install" in line and "python -m pytest" in line]
    assert command in (ROOT / ".ci" / "run").read_text().splitlines()
