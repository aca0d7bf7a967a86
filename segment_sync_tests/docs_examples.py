"""The shell examples of a documentation page, as the page marks them for its test.

Every ```sh block of a quick-start page carries a comment on the line above it:

- `<!-- test: run; expect: TEXT -->`: run (in one bash session with the page's other `run`
  blocks, in order, so an `eval` carries over); its output must hold TEXT (optional).
- `<!-- test: background; ready: TEXT -->`: started first and left running (a server) until
  it prints TEXT; stopped with SIGTERM after the `run` blocks.
- `<!-- test: skip; why: TEXT -->`: not run, and TEXT says why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

SHELL_FENCE = re.compile(r"^```(?:sh|bash|shell)\s*$", re.M)
MARKED = re.compile(
    r"^<!-- test: (?P<spec>[^\n]*?) -->\n```(?:sh|bash|shell)\s*\n(?P<body>.*?)\n```\s*$",
    re.M | re.S,
)
KINDS = {"run": "expect", "background": "ready", "skip": "why"}


@dataclass(frozen=True)
class Example:
    """One marked shell block: what to do with it, its text, and its expect/ready/why text."""

    kind: str
    body: str
    note: str
    line: int


def examples(page: Path) -> list[Example]:
    """The page's shell blocks in order; ValueError names a block without a valid marker."""
    text = page.read_text(encoding="utf-8")
    found = []
    for match in MARKED.finditer(text):
        kind, _, rest = match["spec"].partition(";")
        kind = kind.strip()
        label, _, note = rest.partition(":")
        line = text.count("\n", 0, match.start()) + 2
        if kind not in KINDS or (rest and label.strip() != KINDS[kind]):
            raise ValueError(f"{page.name}:{line}: marker '{match['spec']}' is not valid")
        if kind == "skip" and not note.strip():
            raise ValueError(f"{page.name}:{line}: a skipped example must say why")
        found.append(Example(kind, match["body"], note.strip(), line))
    fences = len(SHELL_FENCE.findall(text))
    if fences != len(found):
        raise ValueError(
            f"{page.name}: {fences} shell blocks but {len(found)} test markers; put "
            "<!-- test: run|background|skip; ... --> on the line above each"
        )
    return found
