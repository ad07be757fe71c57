"""Which model messages are rendered as markdown: any that markdown would change."""

from __future__ import annotations

import pytest

from app.presenters import MARKDOWN_SYNTAX


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
