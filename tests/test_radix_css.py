"""The post-build rewrite of Radix Themes' root colour-scheme rule (app/radix_css.py) on real
files: the stylesheet, its gzip copy, and the compressed copies it cannot rewrite."""

from __future__ import annotations

import gzip

from app.radix_css import rewrite_static

RADIX = """.a{color:red}
:root:where(:has(.radix-themes[data-is-root-theme='true']:where(.light, .light-theme))) {
  color-scheme: light;
}
:root:where(:has(.radix-themes[data-is-root-theme=true]:where(.dark,.dark-theme))){color-scheme:dark}
.rt-CheckboxCardsItem:where(:has(:focus-visible)){outline:0}
"""


def test_root_rule_is_keyed_on_the_theme_class_in_the_sheet_and_its_copies(tmp_path):
    assets = tmp_path / "assets"
    assets.mkdir()
    sheet = assets / "global.css"
    sheet.write_text(RADIX)
    (assets / "global.css.gz").write_bytes(gzip.compress(RADIX.encode()))
    (assets / "global.css.br").write_bytes(b"old rule, brotli")
    other = assets / "other.css"
    other.write_text(".b{color:blue}")
    (assets / "other.css.br").write_bytes(b"untouched")

    assert rewrite_static(tmp_path) == 2

    css = sheet.read_text()
    assert ":root:where(.light, .light-theme) {" in css
    assert ":root:where(.dark,.dark-theme){color-scheme:dark}" in css
    assert ":has(.radix-themes" not in css
    assert ".rt-CheckboxCardsItem:where(:has(:focus-visible))" in css  # other :has() stay
    assert gzip.decompress((assets / "global.css.gz").read_bytes()).decode() == css
    assert not (assets / "global.css.br").exists()  # never served with the old rule
    assert other.read_text() == ".b{color:blue}"
    assert (assets / "other.css.br").exists()
    assert rewrite_static(tmp_path) == 0  # a second run finds nothing to do
