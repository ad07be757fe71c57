"""Which model messages are rendered as markdown (any that markdown would change), and how a
diff's size reads in the log."""

from __future__ import annotations

import pytest

from app.presenters import MARKDOWN_SYNTAX, event_item
from app.schemas import TaskEventOut


@pytest.mark.parametrize(
    "text",
    [
        "Done: **bold**",
        "use `make test`",
        "# Heading",
        "Title\n=====",
        "see [the docs](x)",
        "- one\n- two",
        "1. first\n2. second",
        "> quoted",
        "| a | b |",
        "a_b_c",
        "line one  \nline two",
        "go to https://example.com",
        "&amp;",
        "~~gone~~",
    ],
)
def test_text_markdown_would_change_is_rendered_as_markdown(text):
    assert MARKDOWN_SYNTAX.search(text)


@pytest.mark.parametrize(
    "text", ["All 12 tests pass.", "Fixed it.\nNothing else to change.", "It costs 5 - 3 = 2."]
)
def test_plain_text_is_shown_as_it_is(text):
    assert not MARKDOWN_SYNTAX.search(text)


@pytest.mark.parametrize(("files", "words"), [(1, "1 file, +9 -0"), (3, "3 files, +40 -2")])
def test_a_diff_entry_counts_its_files_in_words(files, words):
    added, removed = (9, 0) if files == 1 else (40, 2)
    data = {"files_changed": files, "lines_added": added, "lines_removed": removed}
    event = TaskEventOut(stream_id="1-0", attempt=1, type="diff", ts=0.0, data=data)
    assert event_item(event)["body"] == words
