"""One log entry as HTML, made on the server: the task page inserts it as it is.

The log is the busiest part of the task page. As React components each entry kept some ten
fibers and props in every tab, and each new entry made the browser compare the whole re-sent
log part, field by field; as one string per entry the browser compares strings and React keeps
one element. The markup is the same as the components made (assets/taskdeck.css styles it):

    <div class="entry-head"><span class="entry-label" data-accent-color=TONE>LABEL</span>
      <span class="entry-time">TIME</span></div>
    BODY (by kind: the model's text as markdown or plain text, a folded tool call, a <pre>)

inside the entry's own element (class log-entry, data-kind, data-error), which the page makes.
Every text is escaped; the model's markdown is rendered with raw HTML off (it stays text) and
markdown-it's link check (no javascript: or data: links), its code blocks coloured by Pygments
when they name their language. No reflex import.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from html import escape

from markdown_it import MarkdownIt
from pygments import highlight
from pygments.filter import simplefilter
from pygments.formatters import HtmlFormatter
from pygments.lexer import Lexer
from pygments.lexers import get_lexer_by_name
from pygments.token import Token
from pygments.util import ClassNotFound

from app.presenters import MARKDOWN_SYNTAX

CODE_FORMATTER = HtmlFormatter(nowrap=True, classprefix="tk-")  # token spans: <span class=tk-k>
CODE_STYLES = {"light": "default", "dark": "github-dark"}  # Pygments styles, by colour mode


# Tokens shown in the text's own colour: no span of their own (most of a block's tokens are
# names, punctuation and spaces; a span each doubled a long conversation's DOM).
PLAIN_TOKENS = {Token.Text, Token.Text.Whitespace, Token.Name, Token.Punctuation}


@simplefilter
def plain_tokens(_self, _lexer, stream, _options):  # noqa: ANN001, ANN201
    """A Pygments filter: the plain tokens as text (the formatter merges them, unwrapped)."""
    for token, value in stream:
        yield (Token.Text if token in PLAIN_TOKENS else token), value


@lru_cache(maxsize=64)
def code_lexer(language: str) -> Lexer | None:
    """Pygments' lexer for a code block's language (```python), or None if it knows none."""
    try:
        lexer = get_lexer_by_name(language)
    except ClassNotFound:
        return None
    lexer.add_filter(plain_tokens())
    return lexer


def highlight_code(code: str, language: str, _attrs: str) -> str:
    """A fenced code block's tokens in coloured spans (markdown-it's highlight hook); empty,
    so that markdown-it escapes the code as it is, when the block names no language we know."""
    lexer = code_lexer(language.lower()) if language else None
    return highlight(code, lexer, CODE_FORMATTER) if lexer else ""


def code_css() -> str:
    """The code tokens' colours in light and dark mode (for a <style> on the task page)."""
    rules = []
    for mode, style in CODE_STYLES.items():
        defs = HtmlFormatter(style=style, classprefix="tk-").get_style_defs(f".{mode} .markdown")
        rules += [rule for rule in defs.splitlines() if " .tk-" in rule]
    return "\n".join(rules)


# CommonMark with GitHub's tables and strikethrough; raw HTML is shown as text.
MARKDOWN = MarkdownIt(
    "commonmark", {"html": False, "breaks": False, "highlight": highlight_code}
).enable(["table", "strikethrough"])
RESULT_MARKS = {
    "ok": '<span class="result-mark" data-state="ok">  ✓</span>',
    "error": '<span class="result-mark" data-state="error">  ✗ error</span>',
    "pending": '<span class="result-mark">  …</span>',
}


@lru_cache(maxsize=4096)
def markdown_html(text: str) -> str:
    """A finished message's markdown as HTML. Kept for the next page that shows it: a long
    conversation's code blocks take Pygments most of the page's load (2,250 entries, a code
    block in every third: 290 ms of the server's time), and a task page is opened again and
    again, by many tabs."""
    return MARKDOWN.render(text)


def text_html(
    text: str, class_name: str, markdown: bool, render: Callable[[str], str] = markdown_html
) -> str:
    """The model's text: rendered markdown when it has markdown in it, else plain text."""
    if markdown:
        return f'<div class="{class_name} markdown">{render(text)}</div>'
    return f'<div class="{class_name} plain-text">{escape(text)}</div>'


def model_text(item: dict[str, str], class_name: str) -> str:
    """A finished message or result of the model (its markdown kept for the next page)."""
    return text_html(item["body"], class_name, item["markdown"] == "true")


def tool_call(item: dict[str, str]) -> str:
    """A tool call, folded: its one-line summary; open: its input and (once back) its result."""
    state = item["result_state"] or "pending"
    result = (
        ""
        if state == "pending"
        else '<div class="entry-sub">Result</div>'
        f'<pre class="log-pre tool-result">{escape(item["result"])}</pre>'
    )
    return (
        f'<details class="tool-call" data-id="{escape(item["id"])}" data-state="{escape(state)}">'
        f"<summary>{escape(item['summary'])}{RESULT_MARKS.get(state, RESULT_MARKS['pending'])}"
        "</summary>"
        '<div class="entry-sub">Input</div>'
        f'<pre class="log-pre tool-input">{escape(item["body"])}</pre>{result}</details>'
    )


def body_html(item: dict[str, str]) -> str:
    """What an entry shows below its head line, by kind."""
    kind, body = item["kind"], escape(item["body"])
    if kind == "text":
        return model_text(item, "assistant-text")
    if kind == "result":
        return model_text(item, "result-text")
    if kind == "tool_use":
        return tool_call(item)
    if kind in ("tool_result", "stderr"):
        return f'<pre class="log-pre">{body}</pre>'
    if kind == "thinking":
        return f'<div class="plain-text thinking">{body}</div>'
    if kind == "raw":
        return (
            '<details class="tool-call"><summary>details</summary>'
            f'<pre class="log-pre">{body}</pre></details>'
        )
    return f'<div class="plain-text">{body}</div>' if body else ""


def entry_html(item: dict[str, str]) -> str:
    """An entry's inner HTML (a display dict of app.presenters.event_item)."""
    return (
        '<div class="entry-head">'
        f'<span class="entry-label" data-accent-color="{escape(item["tone"])}">'
        f"{escape(item['label'])}</span>"
        f'<span class="entry-time">{escape(item["time"])}</span></div>{body_html(item)}'
    )


def entry_row(item: dict[str, str]) -> list[str]:
    """An entry as the page gets it: [kind, error, inner HTML] (three strings, cheap for the
    browser to compare when the list around it is re-sent)."""
    return [item["kind"], item["error"], entry_html(item)]


def typing_html(text: str) -> str:
    """The model's text while it is being typed: markdown once it has markdown in it."""
    if not text:
        return ""
    # Not kept: each delta makes a new text.
    return text_html(text, "typing-text", bool(MARKDOWN_SYNTAX.search(text)), MARKDOWN.render)
