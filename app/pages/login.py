"""The sign-in page: username and password, an error that never says which one was wrong."""

from __future__ import annotations

import reflex as rx

from app.state.auth import AuthState


def login_page() -> rx.Component:
    """/login: the only page a signed-out browser can see."""
    return rx.center(
        rx.card(
            rx.form(
                rx.vstack(
                    rx.hstack(
                        rx.icon("square-terminal"), rx.heading("Taskdeck", size="6"), align="center"
                    ),
                    rx.text("Sign in to continue", size="2", color_scheme="gray"),
                    rx.text("Username", size="2", weight="medium"),
                    rx.input(
                        name="username",
                        id="username",
                        auto_complete="username",
                        width="100%",
                        auto_focus=True,
                    ),
                    rx.text("Password", size="2", weight="medium"),
                    rx.input(
                        name="password",
                        id="password",
                        type="password",
                        auto_complete="current-password",
                        width="100%",
                    ),
                    rx.cond(
                        AuthState.login_error != "",
                        rx.callout(
                            AuthState.login_error,
                            icon="triangle-alert",
                            color_scheme="red",
                            size="1",
                            id="login-error",
                            width="100%",
                        ),
                    ),
                    # Busy until the page is connected: a click before that would be lost.
                    rx.button(
                        "Sign in",
                        type="submit",
                        id="login-submit",
                        width="100%",
                        loading=~rx.State.is_hydrated,
                    ),
                    rx.text(
                        "No account yet? An admin creates one with ",
                        rx.code("taskdeck user create NAME"),
                        ".",
                        size="1",
                        color_scheme="gray",
                    ),
                    spacing="3",
                    width="100%",
                ),
                on_submit=AuthState.login,
                reset_on_submit=False,
            ),
            width="100%",
            max_width="380px",
        ),
        min_height="100vh",
        padding="4",
    )
