"""Idle placeholders in a job's command (pure): ``sleep infinity``, a bare or long
``sleep``, ``tail -f /dev/null``, endless ``while true`` loops, found through wrappers
(``exec``, ``env``, ``nohup``, ...) and inside ``sh -c`` scripts, which are parsed as
shell rather than scanned for words."""

from __future__ import annotations

import posixpath
import re
import shlex
from decimal import Decimal
from typing import List, Optional, Sequence, Tuple

# What each hit is; the policy turns them into finding codes and levels.
SLEEP_INFINITY = "sleep_infinity"
SLEEP_BARE = "sleep_bare"
SLEEP_LONG = "sleep_long"
TAIL_DEV_NULL = "tail_dev_null"
INFINITE_LOOP = "infinite_loop"
SLEEP_UNKNOWN = "sleep_unknown"
UNPARSEABLE = "unparseable"
SLEEPS = (SLEEP_INFINITY, SLEEP_BARE, SLEEP_LONG)

_SHELLS = {"sh", "bash", "dash", "zsh", "ash", "ksh", "mksh"}
# Words that run the rest of the line as the real command.
_WRAPPERS = {"exec", "nohup", "command", "builtin", "time", "busybox", "do", "then",
             "else", "elif", "if", "{", "}", "!"}
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_OPERATOR_CHARS = ";&|()<>\n"
# GNU sleep: a number (decimals, exponent, inf/infinity) with an optional s/m/h/d unit.
_DURATION = re.compile(
    r"^(?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|(?i:inf(?:inity)?))(?P<unit>[smhd]?)$"
)
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_NOOPS = {":", "true"}
_MAX_NESTING = 8

Hit = Tuple[str, str]  # (kind, description) of one idle pattern found in a command


def _show(argv: Sequence[str]) -> str:
    text = " ".join(" ".join(argv).split())
    return text if len(text) <= 80 else text[:77] + "..."


def _fmt_seconds(value: Decimal) -> str:
    return f"{value.normalize():f}" if value == value.to_integral_value() else f"{value:f}"


def _sleep_seconds(args: Sequence[str]) -> Optional[Decimal]:
    """Total GNU sleep duration in seconds (sums its operands), or None if not literal."""
    total = Decimal(0)
    for arg in args:
        if arg == "--":
            continue
        match = _DURATION.match(arg)
        if not match:
            return None
        total += Decimal(match.group("num")) * _UNIT_SECONDS[match.group("unit")]
    return total


def _strip_wrappers(argv: List[str]) -> List[str]:
    while argv:
        head = posixpath.basename(argv[0])
        if head in _WRAPPERS or _ASSIGNMENT.match(argv[0]):
            argv = argv[1:]
        elif head == "env":
            argv = argv[1:]
            while argv and (argv[0].startswith("-") or _ASSIGNMENT.match(argv[0])):
                takes_value = argv[0] in ("-u", "--unset", "-C", "--chdir")
                argv = argv[2:] if takes_value else argv[1:]
        else:
            return argv
    return argv


def _shell_script(args: Sequence[str]) -> Optional[str]:
    """The script of `sh -c SCRIPT` (also -lc, -ec, -o pipefail -c ...), else None."""
    in_c_mode, rest = False, list(args)
    while rest:
        arg = rest.pop(0)
        if arg in ("-o", "+o"):
            rest = rest[1:]  # its option name
        elif arg.startswith(("-", "+")) and not arg.startswith("--"):
            in_c_mode = in_c_mode or "c" in arg[1:]
        elif not arg.startswith("--"):
            return arg if in_c_mode else None  # no -c: a script file we cannot read
    return None


def _shell_segments(script: str) -> List[List[str]]:
    """Split a shell script into simple commands on ; && || | & ( ) and newlines.

    Raises ValueError (from shlex) on unbalanced quotes.
    """
    # Line continuations join lines; an fd number glued to a redirection ("2>") is not
    # an operand; newlines are doubled because shlex swallows the one ending a comment.
    text = script.replace("\\\n", " ")
    text = re.sub(r"(^|[\s;&|()])\d+(?=[<>])", r"\1", text)
    text = text.replace("\n", "\n\n")
    lexer = shlex.shlex(text, posix=True, punctuation_chars=_OPERATOR_CHARS)
    lexer.whitespace = " \t\r"
    lexer.whitespace_split = True
    tokens = iter(lexer)
    segments: List[List[str]] = [[]]
    for token in tokens:
        if not (token and set(token) <= set(_OPERATOR_CHARS)):
            segments[-1].append(token)
        elif "<" in token or ">" in token:
            next(tokens, None)  # a redirection's target is not an argument
        else:
            segments.append([])
    return [segment for segment in segments if segment]


def _loop_hits(segments: List[List[str]]) -> List[Hit]:
    """`while true` / `while :` / `until false` / `while sleep N` loops that idle forever."""
    hits: List[Hit] = []
    for start, segment in enumerate(segments):
        segment = _strip_wrappers(segment)
        if not segment:
            continue
        head, cond = segment[0], _strip_wrappers(segment[1:])
        forever = (head == "while" and cond and (cond[0] in _NOOPS or cond[0] == "sleep")) or (
            head == "until" and cond[:1] == ["false"]
        )
        if not forever:
            continue
        depth, body = 1, []
        for inner in map(_strip_wrappers, segments[start + 1:]):
            if inner[:1] and inner[0] in ("while", "until", "for", "select"):
                depth += 1
            elif inner[:1] == ["done"]:
                depth -= 1
                if depth == 0:
                    break
            body.append(inner)
        names = {posixpath.basename(cmd[0]) for cmd in body if cmd}
        if cond[0] == "sleep" or "sleep" in names or names <= _NOOPS:
            hits.append((INFINITE_LOOP, f"loops forever ('{_show(segment)} ...')"))
    return hits


def idle_hits(argv: Sequence[str], threshold: int, depth: int = 0) -> List[Hit]:
    """(kind, description) of each idle pattern in ``argv``; a literal ``sleep`` of at
    least ``threshold`` seconds counts as idle."""
    argv = _strip_wrappers(list(argv))
    if not argv or depth > _MAX_NESTING:
        return []
    name, args = posixpath.basename(argv[0]), argv[1:]
    shown = _show(argv)
    if name == "sleep":
        if not [a for a in args if a != "--"]:
            return [(SLEEP_BARE, f"runs a bare 'sleep' ('{shown}')")]
        seconds = _sleep_seconds(args)
        if seconds is None:
            return [(SLEEP_UNKNOWN, f"runs '{shown}' whose duration is not a literal")]
        if seconds.is_infinite():
            return [(SLEEP_INFINITY, f"runs '{shown}'")]
        if seconds >= threshold:
            return [(SLEEP_LONG, f"runs '{shown}' ({_fmt_seconds(seconds)} s, at or over the "
                                 f"{threshold} s idle threshold)")]
        return []
    if name == "tail" and "/dev/null" in args:
        follows = any(a.startswith("--follow") or
                      (a.startswith("-") and not a.startswith("--") and set(a[1:]) & {"f", "F"})
                      for a in args)
        return [(TAIL_DEV_NULL, f"runs '{shown}'")] if follows else []
    if name in _SHELLS:
        script = _shell_script(args)
        if script is None:
            return []
        try:
            segments = _shell_segments(script)
        except ValueError as exc:  # shlex: unbalanced quotes
            return [(UNPARSEABLE, f"{name} -c script cannot be parsed ({exc})")]
        hits = _loop_hits(segments)
        for segment in segments:
            hits.extend(idle_hits(segment, threshold, depth + 1))
        return hits
    return []
