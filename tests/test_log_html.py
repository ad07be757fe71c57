"""An entry's HTML, made on the server for the task page's log: every text escaped, the model's
markdown rendered without raw HTML or unsafe links, tool calls folded with their result."""

from __future__ import annotations

from html.parser import HTMLParser

from app.log_html import code_css, entry_html, entry_row, typing_html
from app.presenters import attach_result, event_item
from app.schemas import TaskEventOut

TS = 1_767_000_000.0


def item(event_type: str, stream_id: str = "1-1", **data) -> dict[str, str]:  # noqa: ANN003
    """An event's display dict, as the task page gets it."""
    return event_item(
        TaskEventOut(stream_id=stream_id, attempt=1, type=event_type, ts=TS, data=data)
    )


class Tags(HTMLParser):
    """The start tags of a piece of HTML, with their attributes, and its text."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text = ""
        self.feed(html)

    def handle_starttag(self, tag, attrs):  # noqa: ANN001
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):  # noqa: ANN001
        self.text += data

    def names(self) -> list[str]:
        return [tag for tag, _ in self.tags]


def test_every_text_is_escaped():
    hostile = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
    for entry in (
        item("stderr", line=hostile),
        item("error", kind=hostile, message=hostile),
        item("tool_use", id="c1", name=hostile, input={"command": hostile}),
        item("thinking", text=hostile),
        item("text", text="plain " + hostile.replace("<", "").replace(">", "")),
    ):
        tags = Tags(entry_html(entry))
        assert not {"img", "script"} & set(tags.names()), entry_html(entry)
        assert all(not name.startswith("on") for _, attrs in tags.tags for name in attrs)
    assert hostile in Tags(entry_html(item("stderr", line=hostile))).text  # shown, as text


def test_the_models_markdown_is_rendered_without_raw_html_or_unsafe_links():
    text = (
        "Done: **bold**, `code`, ~~gone~~.\n\n<b>not html</b> [click](javascript:alert(1)) "
        "[docs](https://example.com/x)\n\n| a | b |\n|---|---|\n| 1 | 2 |"
    )
    tags = Tags(entry_html(item("text", text=text)))
    names = tags.names()
    assert {"strong", "code", "s", "table", "td"} <= set(names)
    assert "b" not in names  # raw HTML stays text
    assert "<b>not html</b>" in tags.text
    links = [attrs.get("href") for tag, attrs in tags.tags if tag == "a"]
    assert links == ["https://example.com/x"]  # no javascript: link


def test_text_without_markdown_is_shown_as_it_is():
    html = entry_html(item("text", text="All 12 tests pass.\nNothing else."))
    tags = Tags(html)
    assert ("div", {"class": "assistant-text plain-text"}) in tags.tags
    assert "p" not in tags.names()
    assert "All 12 tests pass.\nNothing else." in tags.text


def test_a_tool_call_is_folded_and_shows_its_result_once_back():
    items = [item("tool_use", stream_id="5-0", id="c1", name="Bash", input={"command": "ls"})]
    pending = Tags(entry_html(items[0]))
    details = dict(pending.tags)["details"]
    assert details == {"class": "tool-call", "data-id": "5-0", "data-state": "pending"}
    assert "Bash: ls" in pending.text and "Result" not in pending.text

    result = TaskEventOut(
        stream_id="6-0",
        attempt=1,
        type="tool_result",
        ts=TS,
        data={"tool_use_id": "c1", "output": "a.txt", "is_error": True},
    )
    assert attach_result(items, result)
    kind, error, html = entry_row(items[0])
    done = Tags(html)
    assert (kind, error) == ("tool_use", "true")
    assert dict(done.tags)["details"]["data-state"] == "error"
    assert "✗ error" in done.text and "a.txt" in done.text


def test_the_text_being_typed():
    assert typing_html("") == ""
    assert Tags(typing_html("so far <i>")).text.strip() == "so far <i>"  # raw HTML: text
    assert "strong" in Tags(typing_html("so **far**")).names()


def test_code_blocks_are_coloured_when_they_name_their_language():
    text = '```python\nx = "<a>"\n```\n\n```nosuch" onclick="alert(1)\n<b>\n```\n\n```\nplain\n```'
    tags = Tags(entry_html(item("text", text=text)))
    spans = [attrs["class"] for tag, attrs in tags.tags if tag == "span" and "class" in attrs]
    assert "tk-s2" in spans  # the string's token, coloured (code_css has its colours)
    assert 'x = "<a>"' in tags.text and "<b>" in tags.text  # the code itself, as text
    assert "b" not in tags.names()
    assert all(not name.startswith("on") for _, attrs in tags.tags for name in attrs)
    assert ".dark .markdown .tk-s2" in code_css() and ".light .markdown .tk-s2" in code_css()
