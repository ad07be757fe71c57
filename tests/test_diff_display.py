"""The stored patch as the diff view's rows: unified lines and side-by-side pairs, numbered."""

from __future__ import annotations

from app.diff_display import diff_files, parse

PATCH = """diff --git a/app.py b/app.py
index 1111111..2222222 100644
--- a/app.py
+++ b/app.py
@@ -1,4 +1,5 @@
 import os
--- a comment that starts with dashes
-old = 1
+new = 2
+newer = 3
 print(os)
@@ -10,2 +11,2 @@ def f():
-    return 1
+    return 2
 # end
diff --git a/notes.md b/notes.md
new file mode 100644
index 0000000..3333333
--- /dev/null
+++ b/notes.md
@@ -0,0 +1 @@
+hello
\\ No newline at end of file
"""


def test_unified_lines_are_numbered_and_counted_per_file():
    app, notes = parse(PATCH)
    assert (app.name, app.added, app.removed) == ("app.py", "+3", "-3")
    assert (notes.name, notes.added, notes.removed) == ("notes.md", "+1", "-0")
    kinds = [(line.kind, line.old, line.new) for line in app.lines]
    assert kinds[:7] == [
        ("hunk", "", ""),
        ("ctx", "1", "1"),
        ("del", "2", ""),  # "--- a comment": a removed line, not a file header
        ("del", "3", ""),
        ("add", "", "2"),
        ("add", "", "3"),
        ("ctx", "4", "4"),
    ]
    assert [(line.kind, line.old, line.new) for line in app.lines[7:]] == [
        ("hunk", "", ""),
        ("del", "10", ""),
        ("add", "", "11"),
        ("ctx", "11", "12"),
    ]
    assert [line.kind for line in notes.lines] == ["meta", "hunk", "add", "meta"]
    assert notes.lines[2].text == "+hello" and notes.lines[2].new == "1"


def test_side_by_side_pairs_removals_with_the_additions_after_them():
    app = diff_files(PATCH)[0]
    rows = [(p.left_kind, p.left_no, p.right_kind, p.right_no) for p in app.pairs]
    assert rows[:5] == [
        ("hunk", "", "hunk", ""),
        ("ctx", "1", "ctx", "1"),
        ("del", "2", "add", "2"),
        ("del", "3", "add", "3"),
        ("ctx", "4", "ctx", "4"),
    ]
    assert app.pairs[2].left_text == "--- a comment that starts with dashes"
    assert app.pairs[2].right_text == "+new = 2"
    assert rows[6] == ("del", "10", "add", "11")


def test_a_removal_without_a_partner_leaves_the_new_side_empty():
    patch = "diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1,2 +1 @@\n-gone\n kept\n"
    (x,) = diff_files(patch)
    assert [(p.left_kind, p.right_kind) for p in x.pairs] == [
        ("hunk", "hunk"),
        ("del", "empty"),
        ("ctx", "ctx"),
    ]


def test_a_huge_diff_says_how_many_lines_it_leaves_out():
    body = "".join(f"+line {n}\n" for n in range(50))
    patch = f"diff --git a/a b/a\n--- /dev/null\n+++ b/a\n@@ -0,0 +1,50 @@\n{body}"
    patch += patch.replace(" a/a b/a", " a/b b/b").replace("b/a\n", "b/b\n")
    first, second = diff_files(patch, max_rows=30)
    assert len(first.lines) == 30 and first.hidden == "21 more lines not shown"
    assert second.lines == [] and second.hidden == "51 more lines not shown"
    assert first.added == "+50"  # the counts cover the whole file


def test_a_cut_patch_ends_its_hunk_with_a_note():
    patch = "diff --git a/a b/a\n--- a/a\n+++ b/a\n@@ -1,5 +1,5 @@\n-x\n+y\n"
    patch += "... [patch cut: 99 more characters]\n"
    (a,) = diff_files(patch)
    assert [line.kind for line in a.lines] == ["hunk", "del", "add", "meta"]
