"""/tokens: the signed-in user's API tokens for scripts and CI (created, listed, revoked)."""

from __future__ import annotations

import reflex as rx

from app.components.layout import page_frame, section, shown_once
from app.state.auth import AuthState
from app.state.tokens import TokensState

# Which scopes each role may give its tokens (app.auth.ROLE_SCOPES): only those are offered.
SCOPE_ALLOWED = {"read": True, "write": AuthState.can_write, "admin": AuthState.is_admin}


def scope_box(scope: str) -> rx.Component:
    return rx.checkbox(scope, name=f"scope_{scope}", id=f"scope-{scope}")


def create_form() -> rx.Component:
    return rx.form(
        rx.flex(
            rx.input(
                name="name",
                id="token-name",
                placeholder="what it is for, e.g. CI",
                max_length=100,
                width=rx.breakpoints(initial="100%", sm="240px"),
            ),
            rx.hstack(
                *[
                    scope_box(scope) if allowed is True else rx.cond(allowed, scope_box(scope))
                    for scope, allowed in SCOPE_ALLOWED.items()
                ],
                spacing="3",
            ),
            rx.select(
                ["", "7", "30", "90", "365"],
                name="expires_in_days",
                placeholder="expires: never",
                id="token-expiry",
            ),
            rx.button(
                rx.icon("key-round", size=14), "Create token", type="submit", id="create-token"
            ),
            direction=rx.breakpoints(initial="column", sm="row"),
            spacing="3",
            align=rx.breakpoints(initial="stretch", sm="center"),
            wrap="wrap",
        ),
        on_submit=TokensState.issue_token,
        reset_on_submit=True,
    )


def new_token_callout() -> rx.Component:
    return rx.cond(
        TokensState.new_token != "",
        rx.callout(
            shown_once(
                "Copy this token now: it is shown once and cannot be read again.",
                TokensState.new_token,
                "new-token",
                TokensState.dismiss,
            ),
            icon="key-round",
            color_scheme="green",
            width="100%",
        ),
    )


def token_table() -> rx.Component:
    return rx.box(
        rx.table.root(
            rx.table.header(
                rx.table.row(
                    *[
                        rx.table.column_header_cell(h)
                        for h in (
                            "Name",
                            "Token",
                            "Scopes",
                            "Created",
                            "Last used",
                            "Expires",
                            "Status",
                            "",
                        )
                    ]
                )
            ),
            rx.table.body(
                rx.foreach(
                    TokensState.tokens,
                    lambda t: rx.table.row(
                        rx.table.cell(t["name"]),
                        rx.table.cell(rx.code(t["prefix"])),
                        rx.table.cell(t["scopes"]),
                        rx.table.cell(t["created"]),
                        rx.table.cell(t["last_used"]),
                        rx.table.cell(t["expires"]),
                        rx.table.cell(
                            rx.badge(
                                t["status"],
                                color_scheme=rx.cond(t["status"] == "active", "green", "gray"),
                            )
                        ),
                        rx.table.cell(
                            rx.cond(
                                t["status"] == "active",
                                rx.button(
                                    "Revoke",
                                    size="1",
                                    color_scheme="red",
                                    variant="soft",
                                    on_click=TokensState.revoke_token(t["id"]),
                                    class_name="revoke-token",
                                    data_token=t["name"],
                                ),
                            )
                        ),
                        class_name="token-row",
                        data_status=t["status"],
                    ),
                )
            ),
            size="1",
            width="100%",
        ),
        overflow_x="auto",
        width="100%",
    )


def tokens_page() -> rx.Component:
    """The page: create form, the token shown once, the list."""
    return page_frame(
        rx.heading("API tokens", size="6"),
        rx.text(
            "Scripts and CI call the REST API (/api/v1/docs) with "
            "Authorization: Bearer <token>, or the taskdeck command with TASKDECK_TOKEN.",
            size="2",
            color_scheme="gray",
        ),
        section(
            "New token",
            create_form(),
            rx.cond(
                ~AuthState.can_write,
                rx.text(
                    "Read-only account: your tokens can read, never submit or change anything.",
                    size="1",
                    color_scheme="gray",
                    id="token-read-only",
                ),
            ),
            new_token_callout(),
            rx.cond(
                TokensState.error != "",
                rx.text(TokensState.error, color_scheme="red", size="2", id="token-error"),
            ),
        ),
        section("Your tokens", token_table()),
    )
