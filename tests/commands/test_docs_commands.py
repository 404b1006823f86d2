"""The shell commands in README.md and docs/ work as written right after the README's
set-up lines (``python3 -m venv .venv && .venv/bin/pip install ...``), which create a venv
and do not activate it: every command names the venv's program (``.venv/bin/...``).

The commands are read from the markdown itself: every line of a ``sh``/``bash`` block,
every ``$ `` line of any other block (the rest is output), and inline code that starts
with ``python``, ``pip`` or ``pytest`` (inline ``dataspace-agency serve`` and the like
name a command in prose). The cheap ones
(``--help``, ``--version``, ``example --list``, a short example) are also run, with the
venv running these tests standing in for ``.venv`` (in CI it is that ``.venv``).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
        ROOT / "examples" / "syndicate_interop" / "README.md"]
# First words that need no venv: the set-up itself, and the shell's and system's own.
NO_VENV = {"python3", "cd", "git", "sudo", "apt-get", "export", "source", "printf", "echo",
           "kill", "ls", "cat", "head", "curl"}
CHEAP = (r"\.venv/bin/dataspace-agency( \w+)? --help", r"\.venv/bin/dataspace-agency --version",
         r"\.venv/bin/dataspace-agency example --list",
         r"\.venv/bin/python examples/native_api\.py")


def commands(path: Path) -> list[tuple[int, str]]:
    """``(line number, command)`` for every shell command written in ``path``."""
    found = []
    language = None  # inside a fenced block: its language ("" if none)
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.startswith("```"):
            language = line[3:].strip() if language is None else None
            continue
        if language in ("sh", "bash", "shell"):
            text = line.split("  #")[0].strip()
            if text and not text.startswith("#"):
                found.append((number, text))
        elif language == "" and line.startswith("$ "):
            found.append((number, line[2:].split("  #")[0].strip()))
        elif language is None:
            for span in re.findall(r"`([^`]+)`", line):
                if re.match(r"(python|pip|pytest) ", span):  # a command, to be copied
                    found.append((number, span))
    return found


def programs(command: str) -> list[str]:
    """The program each part of a pipeline or ``&&`` chain runs (``VAR=...`` skipped)."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    names, starting = [], True
    for token in lexer:
        if token in ("&&", "||", "|", ";"):
            starting = True
        elif starting and not re.match(r"[A-Za-z_]+=", token):
            names.append(token)
            starting = False
    return names


ALL = [(path, number, command) for path in DOCS for number, command in commands(path)]


def test_the_docs_have_commands_to_check() -> None:
    assert len(ALL) > 40  # guards the extraction itself
    assert any(c.startswith(".venv/bin/dataspace-agency compare") for _, _, c in ALL)


@pytest.mark.parametrize("path, number, command", ALL,
                         ids=[f"{p.relative_to(ROOT)}:{n}" for p, n, _ in ALL])
def test_every_command_names_the_venv(path, number, command) -> None:
    for program in programs(command):
        assert program.startswith(".venv/bin/") or program in NO_VENV, (
            f"{path.relative_to(ROOT)}:{number}: `{program}` is not on PATH after the"
            f" README's set-up; write .venv/bin/{program.split('/')[-1]}")


def test_the_cheap_commands_run_as_written() -> None:
    cheap = sorted({c for _, _, c in ALL if any(re.fullmatch(p, c) for p in CHEAP)})
    assert len(cheap) >= 3, cheap
    venv_bin = str(Path(sys.executable).parent)  # the venv running these tests
    for command in cheap:
        argv = shlex.split(command)
        argv[0] = os.path.join(venv_bin, argv[0].removeprefix(".venv/bin/"))
        result = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, (command, result.stderr)
        assert result.stdout.strip(), command
