"""Radix Themes' root colour-scheme rule, rewritten without :has() in the built front end.

Radix Themes gives the root its colour scheme with
`:root:where(:has(.radix-themes[data-is-root-theme='true']:where(.light, .light-theme)))`.
Once Chromium has matched the root against a :has(), it checks the root's style again on every
DOM insertion anywhere in the page, and the root carries all of Radix's custom properties: about
0.5 ms of style work per new log entry on the task page (Chromium's invalidation tracking names
the root, "Affected by :has()"). Reflex puts the resolved theme on <html> as a class (`light` or
`dark`), so the same rule keyed on that class does the same job. Rewriting the rule in the page
(after load) came too late: the root stays marked once it was matched. So the plugin rewrites
the built stylesheets (and their gzip copies) after `reflex run --env prod` / `reflex export`
builds them, before anything is served.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

from reflex_components_radix.plugin import RadixThemesPlugin

ROOT_HAS = re.compile(
    r""":root:where\(:has\(\.radix-themes\[data-is-root-theme=['"]?true['"]?\]:where\(([^()]*)\)\)\)"""
)
# Compressed copies the build writes beside each file; gzip is rewritten, the others (which the
# standard library cannot write) removed so that a server never sends the old rule.
REWRITTEN_COPY = ".gz"
DROPPED_COPIES = (".br", ".zst")


def without_root_has(css: str) -> tuple[str, int]:
    """`css` with the root rule keyed on <html>'s theme class; and how many rules changed."""
    return ROOT_HAS.subn(r":root:where(\1)", css)


def rewrite_static(static_dir: Path) -> int:
    """Rewrite every built stylesheet under `static_dir`; return the rules changed."""
    changed = 0
    for sheet in sorted(static_dir.rglob("*.css")):
        css, count = without_root_has(sheet.read_text(encoding="utf-8"))
        if not count:
            continue
        changed += count
        sheet.write_text(css, encoding="utf-8")
        copy = sheet.with_name(sheet.name + REWRITTEN_COPY)
        if copy.exists():
            copy.write_bytes(gzip.compress(css.encode("utf-8"), compresslevel=9, mtime=0))
        for suffix in DROPPED_COPIES:
            sheet.with_name(sheet.name + suffix).unlink(missing_ok=True)
    return changed


class TaskdeckThemePlugin(RadixThemesPlugin):
    """Radix Themes as Reflex's own plugin, plus the rewrite above after a production build."""

    def post_build(self, **context) -> None:  # noqa: ANN003
        static_dir = context.get("static_dir")
        if static_dir is not None:
            rewrite_static(Path(static_dir))
