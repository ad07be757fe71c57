"""AuthGuard, the Reflex middleware every page event passes, in-process on the real state tree:
a signed-out tab is sent to /login, a viewer's write events and a member's admin events are
refused (whatever buttons a page shows), allowed events run."""

from __future__ import annotations

import asyncio

import pytest

PASSWORD = "guard-test-password"


def _preprocess(secret: str, state_class, handler: str):  # noqa: ANN001, ANN202
    """What AuthGuard answers to `handler` of `state_class` from a tab with this session."""
    from reflex.state import State
    from reflex_base.event import Event

    import app.app  # noqa: F401  (registers every page state under the root)
    from app.state.auth import AuthGuard, AuthState

    async def run():  # noqa: ANN202
        root = State(_reflex_internal_init=True)
        (await root.get_state(AuthState)).session_token = secret
        root._clean()
        event = Event(name=f"{state_class.get_full_name()}.{handler}")
        return await AuthGuard().preprocess(None, root, event)

    return asyncio.run(run())


def _refusal(answer) -> str:  # noqa: ANN001
    """The text of the frontend events a refusal sends (a toast or a redirect)."""
    assert answer is not None, "the event was let through"
    return repr([(e.name, e.payload) for e in answer.events])


@pytest.fixture
def sessions(env) -> dict[str, str]:
    """A live web session secret per role."""
    from app import auth

    out = {}
    for role in ("admin", "member", "viewer"):
        user = auth.create_user(f"guard-{role}", PASSWORD, role)
        out[role], _ = auth.start_session(user)
    return out


def test_a_viewer_cannot_run_write_events(sessions):
    from app.state.new_task import NewTaskState
    from app.state.task_detail import TaskDetailState
    from app.state.tasks import TaskListState

    for state, handler in (
        (NewTaskState, "submit"),
        (TaskDetailState, "cancel"),
        (TaskDetailState, "retry"),
        (TaskDetailState, "send_follow_up_form"),
        (TaskListState, "bulk_cancel"),
    ):
        refused = _refusal(_preprocess(sessions["viewer"], state, handler))
        assert "viewers cannot change anything" in refused, (state, handler)
        assert _preprocess(sessions["member"], state, handler) is None, (state, handler)
    assert _preprocess(sessions["viewer"], TaskListState, "load") is None  # looking is fine


def test_only_admins_run_admin_events_and_the_users_page(sessions):
    from app.state.system import QueuesState
    from app.state.users import UsersState

    for state, handler in (
        (QueuesState, "pause"),
        (UsersState, "load"),
        (UsersState, "change_role"),
        (UsersState, "disable_user"),
    ):
        refused = _refusal(_preprocess(sessions["member"], state, handler))
        assert "only admins can do that" in refused, (state, handler)
        assert _preprocess(sessions["admin"], state, handler) is None, (state, handler)
    assert "only admins" in _refusal(_preprocess(sessions["viewer"], UsersState, "load"))


def test_a_signed_out_or_disabled_tab_goes_to_login(sessions):
    from app import auth
    from app.state.tasks import TaskListState

    assert "/login" in _refusal(_preprocess("", TaskListState, "load"))
    assert "/login" in _refusal(_preprocess("tds_not-a-session", TaskListState, "load"))
    member = next(u for u in auth.list_users() if u.username == "guard-member")
    auth.update_user(member.id, is_active=False)
    assert "/login" in _refusal(_preprocess(sessions["member"], TaskListState, "load"))
