"""Workspaces: git worktrees on their own branch, the diff of a run, the retention policy."""

from __future__ import annotations

import asyncio
import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app import service
from app.db import session_scope
from app.models import Task
from app.schemas import TaskCreate
from tests.conftest import wait_for_status
from worker import workspace
from worker.claude_code import RunSpec, run_claude


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path) -> Path:
    """A small repository: README.md and src/app.py on main, a `feature` branch one commit on."""
    path = tmp_path / "repo"
    (path / "src").mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.email", "t@example.com")
    git(path, "config", "user.name", "T")
    (path / "README.md").write_text("# Project\n\nOld text.\nMore old text.\n")
    (path / "src" / "app.py").write_text("print('app')\n")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "first")
    git(path, "branch", "feature")
    (path / "NOTES.md").write_text("on main only\n")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "second")
    return path


def test_edit_in_a_worktree_gives_its_diff_and_leaves_the_repository_alone(env, repo):
    events = []
    spec = RunSpec(
        prompt="improve it [scenario:edit]",
        repo=str(repo),
        base_ref="feature",
        workspace_id="41",
        allowed_tools=["Read", "Write", "Edit"],
        max_turns=5,
    )
    outcome = asyncio.run(run_claude(spec, events.append))

    assert outcome.ok, outcome.error or outcome.result
    tree = Path(outcome.cwd)
    assert tree == workspace.workspace_path(41)
    assert git(tree, "rev-parse", "--abbrev-ref", "HEAD") == "taskdeck/41"
    assert not (tree / "NOTES.md").exists()  # made from `feature`, not from main
    assert "Edited by" in (tree / "README.md").read_text()
    # The repository's own checkout is untouched.
    assert (repo / "README.md").read_text().startswith("# Project\n\nOld text.")
    assert not (repo / "src" / "new_file.py").exists()
    assert git(repo, "status", "--porcelain") == ""

    diff = outcome.diff
    assert sorted(diff.files) == ["README.md", "src/new_file.py"]
    assert diff.files_changed == 2
    # README: 3 old lines out, 2 new in (the blank line stays); new_file.py: 5 lines in.
    assert diff.lines_added == 2 + 5
    assert diff.lines_removed == 3
    assert diff.base == git(repo, "rev-parse", "feature")
    assert "+++ b/src/new_file.py" in diff.patch and "-Old text." in diff.patch
    assert git(tree, "status", "--porcelain")  # the worktree's own index was left alone

    event = next(e for e in events if e.type == "diff")
    assert (event.files_changed, event.lines_added, event.lines_removed) == (2, 7, 3)
    assert event.branch == "taskdeck/41"
    assert [e.type for e in events].index("diff") > [e.type for e in events].index("result")


def test_parallel_tasks_on_one_repository_get_their_own_worktrees(env, repo):
    async def both():
        specs = [
            RunSpec(
                prompt=f"task {n} [scenario:edit]",
                repo=str(repo),
                workspace_id=str(n),
                allowed_tools=["Read", "Write", "Edit"],
            )
            for n in (1, 2)
        ]
        return await asyncio.gather(*(run_claude(spec, lambda e: None) for spec in specs))

    first, second = asyncio.run(both())
    assert first.ok and second.ok
    assert first.cwd != second.cwd
    branches = git(repo, "branch", "--list", "taskdeck/*", "--format=%(refname:short)")
    assert branches.split() == ["taskdeck/1", "taskdeck/2"]
    assert first.diff.files == second.diff.files == ["README.md", "src/new_file.py"]


def test_runs_side_by_side_in_one_process_each_spawn_with_their_own_environment(env, tmp_path):
    """The SDK gives claude a copy of os.environ: each run's (its pid file among it) must be
    its own even when runs in one process start together."""
    before = dict(os.environ)
    specs = []
    for n in range(4):
        (tmp_path / f"dir{n}").mkdir()
        specs.append(RunSpec(prompt=f"run {n} [scenario:text]", cwd=str(tmp_path / f"dir{n}")))

    async def together():
        return await asyncio.gather(*(run_claude(spec, lambda e: None) for spec in specs))

    outcomes = asyncio.run(together())
    assert all(o.ok for o in outcomes), [o.error for o in outcomes]
    groups = [o.pgid for o in outcomes]
    assert None not in groups and len(set(groups)) == len(groups), groups
    assert dict(os.environ) == before


def test_a_reused_worktree_keeps_its_base_and_commits_count_in_the_diff(env, repo):
    tree = workspace.prepare_worktree(repo, None, "7")
    base = git(repo, "rev-parse", "HEAD")
    (tree / "src" / "app.py").write_text("print('changed')\nprint('more')\n")
    git(tree, "-c", "user.email=t@e", "-c", "user.name=T", "commit", "-qam", "by claude")
    (tree / "new.txt").write_text("untracked\n")
    (tree / "NOTES.md").unlink()

    assert workspace.prepare_worktree(repo, "feature", "7") == tree  # reused as it is
    diff = workspace.capture_diff(tree)
    assert diff.base == base
    assert sorted(diff.files) == ["NOTES.md", "new.txt", "src/app.py"]
    assert (diff.lines_added, diff.lines_removed) == (3, 2)


def test_bad_repository_or_ref_is_a_workspace_error_naming_it(env, repo, tmp_path):
    events = []
    spec = RunSpec(prompt="x [scenario:text]", repo=str(repo), base_ref="no-such-ref")
    outcome = asyncio.run(run_claude(spec, events.append))
    assert outcome.error.kind == "workspace"
    assert "no-such-ref" in outcome.error.message
    assert [e.type for e in events] == ["prompt", "error"]


def test_a_repository_task_stores_its_diff(env, worker_pool, repo):
    task = service.create_task(
        TaskCreate(prompt="update [scenario:edit]", repo=str(repo), base_ref="main", max_turns=5)
    )
    done = wait_for_status(task.id, ("succeeded", "failed"), timeout=90)
    assert done.status == "succeeded", done.status_reason
    assert done.workspace == str(workspace.workspace_path(task.id))
    with session_scope() as session:
        row = session.get(Task, task.id)
        assert (row.files_changed, row.lines_added, row.lines_removed) == (2, 7, 3)
        assert "+++ b/src/new_file.py" in row.diff
    diffs = [e for e in service.list_events(task.id) if e.type == "diff"]
    assert len(diffs) == 1 and diffs[0].data["branch"] == f"taskdeck/{task.id}"


def test_retention_removes_old_workspaces_keeps_failed_longer_and_never_user_dirs(env, repo):
    own_dir = repo.parent / "users-own-dir"
    own_dir.mkdir()
    old = datetime.now(UTC) - timedelta(hours=100)
    recent = datetime.now(UTC) - timedelta(hours=1)

    def add(status: str, finished, **fields) -> int:
        with session_scope() as session:
            task = Task(
                title="t",
                prompt="p",
                model="m",
                max_turns=1,
                status=status,
                finished_at=finished,
                **fields,
            )
            session.add(task)
            session.flush()
            return task.id

    clean_id = add("succeeded", old, repo=str(repo))
    tree = workspace.prepare_worktree(repo, None, clean_id)
    dirty_id = add("succeeded", old, repo=str(repo))
    dirty = workspace.prepare_worktree(repo, None, dirty_id)
    git(
        dirty,
        "-c",
        "user.email=t@e",
        "-c",
        "user.name=T",
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "work",
    )
    failed_id = add("failed", old)
    failed_dir = workspace.prepare_plain(failed_id)
    fresh_id = add("succeeded", recent)
    fresh_dir = workspace.prepare_plain(fresh_id)
    running_id = add("running", None)
    running_dir = workspace.prepare_plain(running_id)
    user_id = add("succeeded", old, cwd=str(own_dir))
    for task_id, path in [
        (clean_id, tree),
        (dirty_id, dirty),
        (failed_id, failed_dir),
        (fresh_id, fresh_dir),
        (running_id, running_dir),
        (user_id, own_dir),
    ]:
        with session_scope() as session:
            row = session.get(Task, task_id)
            row.workspace = str(path)
            session.add(row)

    removed = workspace.cleanup_workspaces()

    assert sorted(removed) == sorted([tree, dirty])
    assert not tree.exists() and not dirty.exists()
    assert failed_dir.exists() and fresh_dir.exists() and running_dir.exists()
    assert own_dir.exists()
    branches = git(repo, "branch", "--list", "taskdeck/*", "--format=%(refname:short)").split()
    assert branches == [f"taskdeck/{dirty_id}"]  # a branch with commits is kept
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
    assert service.get_task(clean_id).workspace is None

    later = datetime.now(UTC) + timedelta(hours=24 * 7)
    assert failed_dir in workspace.cleanup_workspaces(now=later)
    assert not failed_dir.exists() and own_dir.exists()


def test_cleanup_runs_from_the_command_line(env, tmp_path):
    import os
    import sys

    from tests.conftest import ROOT

    with session_scope() as session:
        task = Task(
            title="t",
            prompt="p",
            model="m",
            max_turns=1,
            status="cancelled",
            finished_at=datetime.now(UTC) - timedelta(days=30),
        )
        session.add(task)
        session.flush()
        task_id = task.id
    path = workspace.prepare_plain(task_id)
    with session_scope() as session:
        row = session.get(Task, task_id)
        row.workspace = str(path)
        session.add(row)
    done = subprocess.run(
        [sys.executable, "-m", "worker.workspace", "cleanup"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"removed {path}"
    assert not path.exists()
