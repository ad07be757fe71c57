"""A task's stored patch (`git diff` text, see worker/workspace.py) as the rows the diff view
shows: per file, its unified lines and its side-by-side pairs, with line numbers (no reflex
import; app/components/diff_view.py renders them).

Hunks are read by their counts (`@@ -a,b +c,d @@`), so a removed line that starts with `--`
is not taken for a file header. A patch cut at its size limit simply ends; what follows a
cut hunk shows as a note. At most MAX_ROWS lines of a task are turned into rows: a huge diff
says how many lines it leaves out rather than freezing the browser.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MAX_ROWS = 4_000  # unified lines shown for one task, all files together
MAX_LINE = 2_000  # characters of one line shown
HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
HIDDEN_HEADERS = ("diff --git ", "index ", "--- ", "+++ ")


@dataclass
class DiffLine:
    """One line of the unified view. kind: ctx, add, del, hunk (an @@ header) or meta."""

    kind: str
    old: str  # its number in the old file, "" if none
    new: str  # its number in the new file, "" if none
    text: str  # the line as in the patch, its +/-/space sign included


@dataclass
class DiffPair:
    """One row of the side-by-side view: the old side and the new side (kind "empty" when a
    side has no line there)."""

    left_kind: str
    left_no: str
    left_text: str
    right_kind: str
    right_no: str
    right_text: str


@dataclass
class DiffFile:
    """One file of the patch: its name, +/- counts and rows for both views."""

    name: str
    added: str = "+0"
    removed: str = "-0"
    lines: list[DiffLine] = field(default_factory=list)
    pairs: list[DiffPair] = field(default_factory=list)
    hidden: str = ""  # "N more lines not shown" when the row budget ran out


def _file_name(header: str) -> str:
    parts = header.split(" b/", 1)
    return parts[1] if len(parts) == 2 else header[len("diff --git ") :]


def parse(patch: str) -> list[DiffFile]:
    """The files of a unified diff, each with its unified lines (added / removed counted)."""
    files: list[DiffFile] = []
    counts: list[list[int]] = []
    current: DiffFile | None = None
    old_left = new_left = 0  # lines of the current hunk still to come
    old_no = new_no = 0
    for raw in patch.splitlines():
        if old_left > 0 or new_left > 0:
            sign = raw[:1]
            if sign in (" ", "") and old_left > 0 and new_left > 0:
                old_no, new_no, old_left, new_left = (
                    old_no + 1,
                    new_no + 1,
                    old_left - 1,
                    new_left - 1,
                )
                current.lines.append(DiffLine("ctx", str(old_no), str(new_no), raw))
                continue
            if sign == "-" and old_left > 0:
                old_no, old_left = old_no + 1, old_left - 1
                counts[-1][1] += 1
                current.lines.append(DiffLine("del", str(old_no), "", raw))
                continue
            if sign == "+" and new_left > 0:
                new_no, new_left = new_no + 1, new_left - 1
                counts[-1][0] += 1
                current.lines.append(DiffLine("add", "", str(new_no), raw))
                continue
            old_left = new_left = 0  # a cut patch: the hunk ends early
        if raw.startswith("\\"):  # "\ No newline at end of file"
            if current is not None:
                current.lines.append(DiffLine("meta", "", "", raw))
            continue
        if raw.startswith("diff --git ") or current is None:
            current = DiffFile(name=_file_name(raw) if raw.startswith("diff --git ") else "(diff)")
            files.append(current)
            counts.append([0, 0])
        match = HUNK.match(raw)
        if match:
            old_start, old_count, new_start, new_count = match.groups()
            old_no, new_no = int(old_start) - 1, int(new_start) - 1
            old_left = 1 if old_count is None else int(old_count)
            new_left = 1 if new_count is None else int(new_count)
            current.lines.append(DiffLine("hunk", "", "", raw))
        elif not raw.startswith(HIDDEN_HEADERS) and raw:
            current.lines.append(DiffLine("meta", "", "", raw))
    for diff_file, (added, removed) in zip(files, counts, strict=True):
        diff_file.added, diff_file.removed = f"+{added}", f"-{removed}"
    return files


def side_by_side(lines: list[DiffLine]) -> list[DiffPair]:
    """Pair a file's unified lines: context on both sides, each run of removed lines next to
    the added lines that follow it, headers and notes across."""
    pairs: list[DiffPair] = []
    removed: list[DiffLine] = []
    added: list[DiffLine] = []

    def flush() -> None:
        for index in range(max(len(removed), len(added))):
            left = removed[index] if index < len(removed) else None
            right = added[index] if index < len(added) else None
            pairs.append(
                DiffPair(
                    left.kind if left else "empty",
                    left.old if left else "",
                    left.text if left else "",
                    right.kind if right else "empty",
                    right.new if right else "",
                    right.text if right else "",
                )
            )
        removed.clear()
        added.clear()

    for line in lines:
        if line.kind == "del":
            if added:  # a new run of removals starts after additions
                flush()
            removed.append(line)
        elif line.kind == "add":
            added.append(line)
        else:
            flush()
            if line.kind == "ctx":
                pairs.append(DiffPair("ctx", line.old, line.text, "ctx", line.new, line.text))
            else:
                pairs.append(DiffPair(line.kind, "", line.text, line.kind, "", ""))
    flush()
    return pairs


def diff_files(patch: str, max_rows: int = MAX_ROWS) -> list[DiffFile]:
    """The files of a task's patch, ready for both views, within the row budget."""
    files = parse(patch)
    budget = max_rows
    for diff_file in files:
        lines = diff_file.lines
        if len(lines) > budget:
            diff_file.hidden = f"{len(lines) - budget} more lines not shown"
            lines = lines[:budget]
        budget -= len(lines)
        diff_file.lines = [
            DiffLine(line.kind, line.old, line.new, line.text[:MAX_LINE]) for line in lines
        ]
        diff_file.pairs = side_by_side(diff_file.lines)
    return files
