"""Every Python example in the README and in ``docs/`` runs, as a reader would run it.

A fenced ``python`` block runs as a script in a fresh directory unless an HTML
comment just above its fence says otherwise:

* ``<!-- not run: REASON -->``: a fragment (it names the reader's own classes,
  or shows one method of a larger whole); the reason is required;
* ``<!-- run: pytest -->``: the block is a test module; pytest runs it;
* ``<!-- run: with the dummy gateway and Redis -->``: the servers the block
  talks to are started first (either or both): the dummy gateway by the
  document's own ``paycore dummy serve`` command, Redis by
  :class:`paycore.testing.redis.RedisServer`. Their addresses in the block
  (``127.0.0.1:8765``, ``redis://127.0.0.1:6379``) are replaced by the
  started servers' own.

A block (``text`` or ``console``) just after a run example, under
``<!-- output -->``, is what the example prints: it must print exactly that.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from paycore.testing.redis import RedisServer
from paycore.testing.servers import free_port, stop_process

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", ROOT / "adapters" / "memory" / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BIN = Path(sys.executable).parent

FENCE = re.compile(r"^(?P<indent>\s*)(?P<ticks>`{3,})\s*(?P<info>[\w+-]*)")
MARKER = re.compile(r"^\s*<!--\s*(?P<text>.*?)\s*-->\s*$")
PYTHON = {"python", "py"}
DUMMY_ADDRESS = "127.0.0.1:8765"
REDIS_ADDRESS = "redis://127.0.0.1:6379"
EXAMPLE_TIMEOUT = 120


@dataclass(frozen=True)
class Block:
    """A fenced block of a document, with the HTML comment just above its fence."""

    path: Path
    line: int
    info: str
    code: str
    marker: str | None

    @property
    def where(self) -> str:
        """``path:line`` of the fence, relative to the repository."""
        return f"{self.path.relative_to(ROOT)}:{self.line}"


@dataclass(frozen=True)
class Example:
    """A Python block, how it is run, and what it must print (if the document says)."""

    block: Block
    output: str | None


def blocks(path: Path) -> Iterator[Block]:
    """Every fenced block of ``path``, in order."""
    lines = path.read_text(encoding="utf-8").splitlines()
    marker: str | None = None
    index = 0
    while index < len(lines):
        line = lines[index]
        fence = FENCE.match(line)
        if fence is None:
            comment = MARKER.match(line)
            if comment is not None:
                marker = comment.group("text")
            elif line.strip():
                marker = None
            index += 1
            continue
        indent, ticks = fence.group("indent"), fence.group("ticks")
        body: list[str] = []
        index += 1
        while index < len(lines) and not lines[index].strip().startswith(ticks):
            body.append(lines[index].removeprefix(indent))
            index += 1
        yield Block(path, index - len(body), fence.group("info").lower(), "\n".join(body) + "\n", marker)
        marker = None
        index += 1


def examples(path: Path) -> list[Example]:
    """The Python blocks of ``path``, each with the output block that follows it, if any."""
    found: list[Example] = []
    for block in blocks(path):
        if block.info in PYTHON:
            found.append(Example(block, None))
        elif block.marker == "output" and found:
            found[-1] = Example(found[-1].block, block.code)
    return found


ALL = [example for document in DOCUMENTS for example in examples(document)]
RUN = [example for example in ALL if not (example.block.marker or "").startswith("not run")]


def _python_fences(path: Path) -> int:
    return sum(
        1
        for line in path.read_text(encoding="utf-8").splitlines()
        if (fence := FENCE.match(line)) and fence.group("info").lower() in PYTHON
    )


def test_every_python_block_is_found() -> None:
    assert len(ALL) == sum(_python_fences(document) for document in DOCUMENTS)
    assert any(example.block.path.name == "README.md" for example in RUN)


@pytest.mark.parametrize("example", ALL, ids=[example.block.where for example in ALL])
def test_every_python_block_is_run_or_marked_as_a_fragment_with_a_reason(example: Example) -> None:
    marker = example.block.marker
    if marker is None or marker == "run: pytest" or marker.startswith("run: with "):
        return
    reason = marker.removeprefix("not run:").strip()
    assert marker.startswith("not run:"), (
        f"{example.block.where}: unknown marker <!-- {marker} -->; use <!-- not run: REASON -->, "
        "<!-- run: pytest --> or <!-- run: with the dummy gateway and/or Redis -->"
    )
    assert reason, f"{example.block.where}: say why the block is not run: <!-- not run: fragment -->"


def _wait_for_port(port: int, process: subprocess.Popen[bytes], deadline: float) -> None:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on port {port}")


def _serve_command(path: Path) -> list[str]:
    """The document's own ``paycore dummy serve ...`` command, as words."""
    for line in path.read_text(encoding="utf-8").splitlines():
        if "paycore dummy serve" in line and "--api-key" in line:
            command = line.split("paycore dummy serve", 1)[1].split("#", 1)[0].replace("&", " ")
            return ["paycore", "dummy", "serve", *shlex.split(command)]
    raise AssertionError(f"{path.name} names no `paycore dummy serve --api-key ...` command to start the gateway")


@pytest.fixture
def servers(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """Starts what the example's marker names; yields the replacements of their addresses."""
    example: Example = request.param
    marker = (example.block.marker or "").lower()
    replacements: dict[str, str] = {}
    started: list[subprocess.Popen[bytes]] = []
    redis: RedisServer | None = None
    try:
        if "dummy gateway" in marker:
            port = free_port()
            words = _serve_command(example.block.path)
            if "--port" in words:
                at = words.index("--port")
                del words[at : at + 2]
            log = (tmp_path / "gateway.log").open("wb")
            process = subprocess.Popen(
                [str(BIN / words[0]), *words[1:], "--port", str(port)], stdout=log, stderr=subprocess.STDOUT
            )
            started.append(process)
            _wait_for_port(port, process, time.monotonic() + 30)
            replacements[DUMMY_ADDRESS] = f"127.0.0.1:{port}"
        if "redis" in marker:
            redis = RedisServer().start()
            replacements[REDIS_ADDRESS] = redis.url.rsplit("/", 1)[0]
        yield replacements
    finally:
        for process in started:
            stop_process(process, signal.SIGTERM, timeout=10)
        if redis is not None:
            redis.stop()


def _run(example: Example, code: str, directory: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PAYCORE_CONFIG", None)
    if example.block.marker == "run: pytest":
        script = directory / "test_example.py"
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(script)]
    else:
        script = directory / "example.py"
        command = [sys.executable, str(script)]
    script.write_text(code, encoding="utf-8")
    return subprocess.run(
        command, cwd=directory, env=env, capture_output=True, text=True, timeout=EXAMPLE_TIMEOUT, check=False
    )


@pytest.mark.parametrize("servers", RUN, ids=[example.block.where for example in RUN], indirect=True)
def test_example_runs(servers: dict[str, str], request: pytest.FixtureRequest, tmp_path: Path) -> None:
    example: Example = request.node.callspec.params["servers"]
    code = example.block.code
    for written, actual in servers.items():
        assert written in code, f"{example.block.where} does not use {written}"
        code = code.replace(written, actual)
    done = _run(example, code, tmp_path)
    assert done.returncode == 0, f"{example.block.where} failed:\n{done.stdout}\n{done.stderr}"
    if example.output is not None:
        assert done.stdout == example.output, f"{example.block.where} printed other than its documented output"
