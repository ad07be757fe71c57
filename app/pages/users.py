"""/users (admins only): the accounts with role and state, a form to create one (errors under
the field they name; an empty password is generated and shown once), role changes, disable and
enable. Non-admins see a refusal; their events are refused by AuthGuard too."""

from __future__ import annotations

import reflex as rx

from app.components.layout import page_frame, section, shown_once
from app.models import Role
from app.state.auth import AuthState
from app.state.users import UsersState as S


def field_error(name: str) -> rx.Component:
    return rx.cond(
        S.errors.contains(name),
        rx.text(
            S.errors[name], color_scheme="red", size="1", class_name="field-error", data_field=name
        ),
    )


def labelled(label: str, control: rx.Component, name: str, hint: str) -> rx.Component:
    return rx.vstack(
        rx.text(label, size="2", weight="medium", as_="label", html_for=f"user-{name}"),
        control,
        rx.cond(
            S.errors.contains(name), field_error(name), rx.text(hint, size="1", color_scheme="gray")
        ),
        spacing="1",
        width="100%",
        min_width="0",
    )


def create_form() -> rx.Component:
    return rx.form(
        rx.vstack(
            rx.flex(
                labelled(
                    "Username",
                    rx.input(name="username", id="user-username", max_length=64, width="100%"),
                    "username",
                    "2-64 letters, digits or . _ - @",
                ),
                labelled(
                    "Password",
                    rx.input(
                        name="password",
                        id="user-password",
                        type="password",
                        auto_complete="new-password",
                        max_length=256,
                        width="100%",
                    ),
                    "password",
                    "at least 8 characters; empty: one is made up and shown once",
                ),
                labelled(
                    "Role",
                    rx.select(list(Role.ALL), name="role", default_value=Role.MEMBER, width="100%"),
                    "role",
                    "viewers only look; members submit; admins also manage",
                ),
                direction=rx.breakpoints(initial="column", md="row"),
                spacing="3",
                width="100%",
            ),
            rx.button(
                rx.icon("user-plus", size=14), "Create user", type="submit", id="create-user"
            ),
            spacing="3",
            width="100%",
        ),
        on_submit=S.create_user,
        reset_on_submit=True,
        width="100%",
        id="user-form",
    )


def created_callout() -> rx.Component:
    return rx.cond(
        S.created != "",
        rx.callout(
            rx.vstack(
                rx.text("Created ", rx.text.span(S.created, weight="bold"), "."),
                rx.cond(
                    S.new_password != "",
                    shown_once(
                        "Give them this password now: it is shown once.",
                        S.new_password,
                        "new-password",
                        S.dismiss,
                    ),
                ),
                spacing="2",
            ),
            icon="user-check",
            color_scheme="green",
            width="100%",
            id="user-created",
        ),
    )


def user_card(u) -> rx.Component:  # noqa: ANN001
    """One account: name, role (a select), state and the disable / enable button."""
    is_self = u["self"] == "true"
    return rx.card(
        rx.flex(
            rx.vstack(
                rx.hstack(
                    rx.text(u["username"], weight="bold", style={"overflow_wrap": "anywhere"}),
                    rx.cond(is_self, rx.badge("you", variant="outline", size="1")),
                    rx.badge(
                        u["state"],
                        color_scheme=rx.cond(u["state"] == "active", "green", "gray"),
                        class_name="user-state",
                    ),
                    align="center",
                    wrap="wrap",
                ),
                rx.text(
                    "created ",
                    u["created"],
                    " · last sign-in ",
                    u["last_login"],
                    size="1",
                    color_scheme="gray",
                ),
                spacing="1",
                flex="1",
                min_width="0",
            ),
            rx.hstack(
                rx.select.root(
                    rx.select.trigger(class_name="user-role", aria_label="Role"),
                    rx.select.content(*[rx.select.item(role, value=role) for role in Role.ALL]),
                    value=u["role"],
                    on_change=lambda role: S.change_role(u["id"], role),
                    disabled=is_self,
                    size="2",
                ),
                rx.cond(
                    is_self,
                    rx.fragment(),
                    rx.cond(
                        u["state"] == "active",
                        rx.button(
                            "Disable",
                            size="2",
                            color_scheme="red",
                            variant="soft",
                            on_click=S.disable_user(u["id"]),
                            class_name="user-disable",
                        ),
                        rx.button(
                            "Enable",
                            size="2",
                            variant="soft",
                            on_click=S.enable_user(u["id"]),
                            class_name="user-enable",
                        ),
                    ),
                ),
                spacing="2",
                align="center",
            ),
            direction=rx.breakpoints(initial="column", sm="row"),
            align=rx.breakpoints(initial="start", sm="center"),
            spacing="3",
            width="100%",
        ),
        class_name="user-row",
        data_user=u["username"],
        data_role=u["role"],
        data_state=u["state"],
        width="100%",
    )


def users_page() -> rx.Component:
    """The page: create form, the password shown once, the accounts."""
    return page_frame(
        rx.heading("Users", size="6"),
        rx.cond(
            AuthState.is_admin,
            rx.vstack(
                section("New user", create_form(), created_callout()),
                rx.cond(
                    S.message != "",
                    rx.callout(S.message, icon="info", size="1", id="user-message", width="100%"),
                ),
                section(
                    "Accounts",
                    rx.text(
                        "A disabled account cannot sign in; its sessions end and its API tokens "
                        "stop working within seconds.",
                        size="2",
                        color_scheme="gray",
                    ),
                    rx.vstack(rx.foreach(S.users, user_card), spacing="2", width="100%"),
                    id="users",
                ),
                spacing="4",
                width="100%",
            ),
            rx.callout(
                "Only admins manage accounts.",
                icon="shield-x",
                color_scheme="red",
                id="users-forbidden",
                width="100%",
            ),
        ),
    )
