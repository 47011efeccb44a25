"""README.md's fenced code blocks, read the way a user reads them: each command (with its
backslash continuations joined and its trailing comment dropped), the output the README
shows after it (``# KEY=VALUE`` lines and other ``# ...`` lines), and a way to compare
shown output with printed output by shape, not by value."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"

_FENCE = re.compile(r"^```(\w*)\s*$")


@dataclass
class Block:
    lang: str
    text: str
    line: int  # line number of the opening fence in README.md

    def where(self) -> str:
        return f"README.md:{self.line} ({self.lang or 'plain'} block starting {self.text.splitlines()[0]!r})"


@dataclass
class Command:
    line: str                                    # the command as one line, comment dropped
    shown: List[str] = field(default_factory=list)  # the "# ..." lines after it

    @property
    def argv(self) -> List[str]:
        return shlex.split(self.line)

    @property
    def shown_keys(self) -> List[str]:
        return [k for k, _ in (_key_value(s) for s in self.shown) if k]

    @property
    def shown_other(self) -> List[str]:
        """Shown lines that are not KEY=VALUE and not an ellipsis ("... the engine's output ...")."""
        return [s for s in self.shown if not _key_value(s)[0] and not s.startswith("...")]


def readme_blocks(path: Path = README) -> List[Block]:
    blocks: List[Block] = []
    lang: Optional[str] = None
    start = 0
    body: List[str] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        fence = _FENCE.match(line)
        if lang is None and fence:
            lang, start, body = fence.group(1), number, []
        elif lang is not None and line.strip() == "```":
            blocks.append(Block(lang, "\n".join(body), start))
            lang = None
        elif lang is not None:
            body.append(line)
    assert lang is None, f"README.md:{start}: a code block is never closed"
    return blocks


def _strip_comment(line: str) -> str:
    """``cmd --x y   # a comment`` -> ``cmd --x y`` (a # inside quotes stays)."""
    quote = None
    for index, char in enumerate(line):
        if quote:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or line[index - 1].isspace()):
            return line[:index].rstrip()
    return line.rstrip()


def commands(block: Block) -> List[Command]:
    """The commands of a bash block, each with the ``# ...`` output lines shown after it."""
    found: List[Command] = []
    pending = ""
    for raw in block.text.splitlines():
        stripped = raw.strip()
        if not stripped:
            continue
        if stripped.startswith("#") and not pending:
            assert found, f"{block.where()}: output shown before any command: {raw!r}"
            found[-1].shown.append(stripped.lstrip("#").strip())
            continue
        text = stripped[2:] if stripped.startswith("$ ") else stripped
        if text.endswith("\\"):
            pending += text[:-1].rstrip() + " "
            continue
        found.append(Command(_strip_comment(pending + text)))
        pending = ""
    assert not pending, f"{block.where()}: a command ends with a backslash"
    return found


def _key_value(line: str):
    key, sep, value = line.partition("=")
    if sep and re.fullmatch(r"[A-Z][A-Z0-9_]*", key):
        return key, value
    return None, None


def keys_of(text: str) -> List[str]:
    return [k for k, _ in (_key_value(line) for line in text.splitlines()) if k]


def shape(shown: str) -> "re.Pattern[str]":
    """A pattern for a line the README shows: ``...`` is anything, a number is any number,
    a word holding a ``/`` (a path, a URL, an image) is any such word, the rest literal."""
    parts = []
    for token in re.split(r"(\.\.\.|\S*/\S*|\d+(?:\.\d+)?)", shown):
        if token == "...":
            parts.append(r".*?")
        elif "/" in token:
            parts.append(r"\S+")
        elif re.fullmatch(r"\d+(?:\.\d+)?", token or "x"):
            parts.append(r"\d+(?:\.\d+)?")
        else:
            parts.append(re.escape(token))
    return re.compile("".join(parts))


def assert_shown_lines_printed(shown: List[str], printed: str, where: str) -> None:
    """Every line the README shows has a printed line of the same shape, in the same order."""
    lines = printed.splitlines()
    position = 0
    for expected in shown:
        pattern = shape(expected)
        for index in range(position, len(lines)):
            if pattern.search(lines[index]):
                position = index + 1
                break
        else:
            raise AssertionError(f"{where}: the README shows {expected!r}, but nothing printed after line "
                                 f"{position} has its shape; printed:\n{printed}")


def assert_shown_keys_printed(shown_keys: List[str], printed: str, where: str) -> None:
    """The KEY=VALUE lines the README shows are printed, in the same order (values differ)."""
    keys = keys_of(printed)
    missing = [k for k in shown_keys if k not in keys]
    assert not missing, f"{where}: the README shows {missing}, the command printed the keys {keys}"
    order = [k for k in keys if k in shown_keys]
    assert order == [k for k in dict.fromkeys(shown_keys)], (
        f"{where}: the README shows the keys in the order {shown_keys}, the command prints {order}")


def expand(line: str, env: Dict[str, str]) -> str:
    """``$HOME`` and ``${HOME}`` as the shell would expand them (outside single quotes)."""
    return re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: env.get(m.group(1), m.group(0)), line)
