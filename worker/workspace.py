"""Task workspaces: a given directory, a fresh directory, or a git worktree on its own branch.

A task that names a repository runs in a git worktree of it, on branch `taskdeck/<task-id>`,
made from the task's base ref, so parallel tasks on one repository never touch each other's
files. The commit the worktree started from is kept in the worktree's private git directory,
so a follow-up in the same worktree diffs against the same base. `capture_diff` reports what a
run changed (files, + / - lines, the patch); `cleanup_workspaces` removes the workspaces of
finished tasks once the retention policy allows it (failed tasks are kept longer, and nothing
is removed when a run ends).
"""

from __future__ import annotations

import fcntl
import logging
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from app.settings import get_settings

log = logging.getLogger(__name__)

BRANCH_PREFIX = "taskdeck/"
BASE_FILE = "taskdeck-base"  # in the worktree's own git dir: the commit the task started from
PATCH_LIMIT = 500_000  # characters of patch kept (the counts always cover the whole diff)
GIT_TIMEOUT_S = 60


class WorkspaceError(RuntimeError):
    """The workspace could not be made (not a repository, unknown base ref, git failed)."""


@dataclass
class Diff:
    """What a run changed in a git workspace, relative to the task's base commit."""

    files: list[str] = field(default_factory=list)
    lines_added: int = 0
    lines_removed: int = 0
    patch: str = ""
    truncated: bool = False
    base: str | None = None

    @property
    def files_changed(self) -> int:
        return len(self.files)


def branch_for(task_id: int | str) -> str:
    """The branch a task's worktree is on."""
    return f"{BRANCH_PREFIX}{task_id}"


def workspace_path(task_id: int | str) -> Path:
    """Where Taskdeck makes the workspace of a task (a plain directory or a worktree)."""
    return get_settings().workspace_root / f"task-{task_id}"


def git(cwd: Path | str, *args: str, check: bool = True) -> str:
    """Run one git command in `cwd` and return its stdout; WorkspaceError if it fails."""
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            env=_git_env(),
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise WorkspaceError(f"git {args[0]} failed: {exc}") from exc
    if check and done.returncode != 0:
        raise WorkspaceError(f"git {' '.join(args[:2])} failed: {done.stderr.strip()[:500]}")
    return done.stdout


def _git_env() -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TZ")}
    # Our own commits/stashes never need an identity prompt; hooks and pagers stay out.
    env.update(GIT_TERMINAL_PROMPT="0", GIT_PAGER="cat", LC_ALL="C")
    return env


@contextmanager
def _repo_lock(repo: Path) -> Iterator[None]:
    """Serialize worktree changes of one repository across worker processes."""
    common = Path(git(repo, "rev-parse", "--git-common-dir").strip())
    if not common.is_absolute():
        common = repo / common
    with open(common / "taskdeck.lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def prepare_plain(task_id: int | str) -> Path:
    """A fresh (or the task's existing) directory for a task that named no place to work."""
    path = workspace_path(task_id)
    path.mkdir(parents=True, exist_ok=True)
    return path


def prepare_worktree(repo: str | Path, base_ref: str | None, task_id: int | str) -> Path:
    """The task's git worktree on branch `taskdeck/<task-id>`, made from `base_ref` (HEAD if
    None) the first time and reused as it is afterwards (retries and follow-ups continue there).
    """
    repo = Path(repo).expanduser().resolve()
    if not repo.is_dir():
        raise WorkspaceError(f"repository {repo} does not exist")
    path = workspace_path(task_id)
    if (path / ".git").exists():
        return path
    inside = git(repo, "rev-parse", "--is-inside-work-tree", check=False).strip()
    if inside != "true" and not git(repo, "rev-parse", "--git-dir", check=False).strip():
        raise WorkspaceError(f"{repo} is not a git repository")
    ref = base_ref or "HEAD"
    try:
        base = git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").strip()
    except WorkspaceError:
        raise WorkspaceError(f"base ref {ref!r} is not a commit in {repo}") from None
    branch = branch_for(task_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _repo_lock(repo):
        git(repo, "worktree", "prune")
        exists = git(repo, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}", check=False)
        if exists.strip():
            # A branch left by an earlier workspace of this task id: start from it again.
            git(repo, "worktree", "add", str(path), branch)
        else:
            git(repo, "worktree", "add", "-b", branch, str(path), base)
    Path(git(path, "rev-parse", "--git-path", BASE_FILE).strip()).write_text(base + "\n")
    if not Path(git(path, "rev-parse", "--absolute-git-dir").strip()).is_dir():
        raise WorkspaceError(f"git worktree {path} was not made")
    return path


def base_commit(worktree: Path) -> str | None:
    """The commit a task's worktree started from, if it is one of ours."""
    try:
        file = Path(git(worktree, "rev-parse", "--git-path", BASE_FILE).strip())
        if not file.is_absolute():
            file = worktree / file
        return file.read_text().strip() or None
    except (WorkspaceError, OSError):
        return None


def is_git_worktree(path: Path | str) -> bool:
    """Whether `path` is the top of a git working tree."""
    path = Path(path)
    if not (path / ".git").exists():
        return False
    top = git(path, "rev-parse", "--show-toplevel", check=False).strip()
    return bool(top) and Path(top).resolve() == path.resolve()


def capture_diff(worktree: Path | str, base: str | None = None) -> Diff:
    """Everything changed in `worktree` since `base` (its recorded base commit by default):
    commits made on the branch, edits, new and deleted files (untracked ones included, ignored
    ones not). Uses a throw-away index, so the worktree's own index is left as it was."""
    worktree = Path(worktree)
    base = base or base_commit(worktree) or "HEAD"
    index = Path(git(worktree, "rev-parse", "--git-path", "taskdeck-diff-index").strip())
    if not index.is_absolute():
        index = worktree / index
    env_index = {"GIT_INDEX_FILE": str(index)}
    try:
        _git_with_env(worktree, env_index, "read-tree", base)
        _git_with_env(worktree, env_index, "add", "-A", ".")
        numstat = _git_with_env(worktree, env_index, "diff", "--cached", "--numstat", "-z", base)
        patch = _git_with_env(worktree, env_index, "diff", "--cached", "--no-color", base)
    finally:
        index.unlink(missing_ok=True)
    diff = Diff(base=base)
    for path, added, removed in _parse_numstat(numstat):
        diff.files.append(path)
        diff.lines_added += added
        diff.lines_removed += removed
    if len(patch) > PATCH_LIMIT:
        cut = len(patch) - PATCH_LIMIT
        patch = patch[:PATCH_LIMIT] + f"\n... [patch cut: {cut} more characters]\n"
        diff.truncated = True
    diff.patch = patch
    return diff


def _git_with_env(cwd: Path, extra: dict[str, str], *args: str) -> str:
    env = {**_git_env(), **extra}
    done = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=GIT_TIMEOUT_S, env=env
    )
    if done.returncode != 0:
        raise WorkspaceError(f"git {args[0]} failed: {done.stderr.strip()[:500]}")
    return done.stdout


def _parse_numstat(text: str) -> Iterator[tuple[str, int, int]]:
    """Entries of `git diff --numstat -z`: (path, added, removed); binary files count 0 lines."""
    items = text.split("\0")
    i = 0
    while i < len(items):
        entry = items[i]
        i += 1
        if not entry.strip():
            continue
        added, removed, path = entry.split("\t", 2)
        if path == "":  # a rename: the old and new paths follow as their own items
            path = items[i + 1] if i + 1 < len(items) else items[i]
            i += 2
        yield path, int(added) if added.isdigit() else 0, int(removed) if removed.isdigit() else 0


def remove_workspace(path: Path | str, repo: Path | str | None = None) -> None:
    """Remove a workspace Taskdeck made. A worktree is unregistered from its repository; its
    branch is deleted only when it holds no commit beyond the base (work is never thrown away).
    """
    path = Path(path)
    root = get_settings().workspace_root.resolve()
    if not path.resolve().is_relative_to(root) or path.resolve() == root:
        raise WorkspaceError(f"{path} is not a Taskdeck workspace: refusing to remove it")
    if repo and Path(repo).is_dir() and (path / ".git").is_file():
        base = base_commit(path)
        branch = git(path, "rev-parse", "--abbrev-ref", "HEAD", check=False).strip()
        head = git(path, "rev-parse", "HEAD", check=False).strip()
        with _repo_lock(Path(repo)):
            git(repo, "worktree", "remove", "--force", str(path), check=False)
            if branch.startswith(BRANCH_PREFIX) and base and head == base:
                git(repo, "branch", "-D", branch, check=False)
            git(repo, "worktree", "prune", check=False)
    shutil.rmtree(path, ignore_errors=True)


def cleanup_workspaces(now: datetime | None = None) -> list[Path]:
    """Apply the retention policy: remove the workspaces Taskdeck made for tasks that ended
    longer ago than `workspace_retention_h` (succeeded, cancelled) or
    `failed_workspace_retention_h` (failed). Running and queued tasks, and directories the user
    gave as `cwd`, are never touched. Returns the removed paths."""
    from sqlmodel import col, select

    from app.db import aware, session_scope
    from app.models import Task, TaskStatus

    settings = get_settings()
    now = now or datetime.now(UTC)
    limits = {
        TaskStatus.SUCCEEDED: timedelta(hours=settings.workspace_retention_h),
        TaskStatus.CANCELLED: timedelta(hours=settings.workspace_retention_h),
        TaskStatus.FAILED: timedelta(hours=settings.failed_workspace_retention_h),
    }
    with session_scope() as session:
        rows = session.exec(
            select(Task.id, Task.status, Task.finished_at, Task.repo, Task.cwd, Task.workspace)
            .where(col(Task.status).in_(TaskStatus.TERMINAL))
            .where(col(Task.workspace).is_not(None))
        ).all()
    removed = []
    for task_id, status, finished_at, repo, cwd, workspace in rows:
        finished = aware(finished_at) if finished_at else None
        if finished is None or now - finished < limits[status]:
            continue
        path = Path(workspace)
        if cwd or path != workspace_path(task_id):
            continue  # the user's own directory
        if path.exists():
            try:
                remove_workspace(path, repo)
            except WorkspaceError:
                log.warning("could not remove workspace of task %s", task_id, exc_info=True)
                continue
            removed.append(path)
        _forget_workspace(task_id)
    return removed


def _forget_workspace(task_id: int) -> None:
    from app.db import session_scope
    from app.models import Task

    with session_scope() as session:
        task = session.get(Task, task_id)
        if task is not None:
            task.workspace = None
            session.add(task)


def main() -> None:
    """`python -m worker.workspace cleanup`: apply the retention policy once (e.g. from cron)."""
    import argparse

    parser = argparse.ArgumentParser(description="Taskdeck workspaces")
    parser.add_argument("command", choices=["cleanup"])
    parser.parse_args()
    for path in cleanup_workspaces():
        print(f"removed {path}")


if __name__ == "__main__":
    main()
