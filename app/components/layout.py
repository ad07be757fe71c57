"""The frame every page shares: navbar (links, colour mode), demo and alert banners, body.

Every page is wrapped by `page_frame`, so site-wide concerns (a login check, banners) live here.
"""

from __future__ import annotations

import reflex as rx

from app.state.auth import AuthState
from app.state.base import AppState

NAV = [
    ("Dashboard", "/", "layout-dashboard"),
    ("Tasks", "/tasks", "list-checks"),
    ("New task", "/new", "plus"),
    ("Queues", "/queues", "layers"),
    ("Health", "/health", "heart-pulse"),
    ("Tokens", "/tokens", "key-round"),
]
ADMIN_NAV = [("Users", "/users", "users")]  # shown to admins only

READ_ONLY_TEXT = (
    "Read-only: your account is a viewer, so you can look but not submit, cancel or change "
    "anything. Ask an admin for a member account to do that."
)


def demo_banner() -> rx.Component:
    return rx.cond(
        AppState.demo_mode,
        rx.callout(
            "Demo mode: tasks run against Taskdeck's scripted demo model, not Claude. "
            "Set ANTHROPIC_API_KEY and restart to use the real Claude API.",
            icon="flask-conical",
            color_scheme="amber",
            size="1",
            id="demo-banner",
            width="100%",
        ),
    )


def alert_banner() -> rx.Component:
    """The alerts that fire now (failure rate, queue wait, dead worker), one line each."""
    return rx.box(
        rx.foreach(
            AppState.alerts,
            lambda alert: rx.callout(
                alert["message"],
                icon="siren",
                color_scheme=rx.cond(alert["level"] == "red", "red", "amber"),
                size="1",
                class_name="alert-banner",
                data_alert=alert["alert"],
                width="100%",
            ),
        ),
        id="alerts",
        width="100%",
        on_mount=AppState.watch_alerts,
    )


def read_only_hint(**props) -> rx.Component:  # noqa: ANN003
    """The note a viewer sees where the write controls would be."""
    return rx.callout(
        READ_ONLY_TEXT,
        icon="eye",
        color_scheme="gray",
        size="1",
        class_name="read-only-hint",
        width="100%",
        **props,
    )


def writers_only(control: rx.Component, hint: bool = True) -> rx.Component:
    """`control` for members and admins; for viewers the read-only hint (or nothing)."""
    return rx.cond(AuthState.can_write, control, read_only_hint() if hint else rx.fragment())


def nav_link(label: str, href: str) -> rx.Component:
    return rx.link(label, href=href, size="2", class_name="nav-link", weight="medium")


def nav_links() -> rx.Component:
    return rx.hstack(
        *[nav_link(label, href) for label, href, _ in NAV],
        rx.cond(AuthState.is_admin, rx.fragment(*[nav_link(lb, h) for lb, h, _ in ADMIN_NAV])),
        spacing="4",
        align="center",
    )


def nav_item(label: str, href: str, icon: str) -> rx.Component:
    return rx.menu.item(
        rx.hstack(rx.icon(icon, size=16), rx.text(label)), on_click=rx.redirect(href)
    )


def nav_menu() -> rx.Component:
    """The links as a drop-down menu on phones."""
    return rx.menu.root(
        rx.menu.trigger(
            rx.icon_button(
                rx.icon("menu"), variant="ghost", size="2", aria_label="Menu", id="nav-menu"
            ),
        ),
        rx.menu.content(
            *[nav_item(*item) for item in NAV],
            rx.cond(AuthState.is_admin, rx.fragment(*[nav_item(*item) for item in ADMIN_NAV])),
        ),
    )


def user_menu() -> rx.Component:
    """Who is signed in (with the role) and a way out."""
    return rx.cond(
        AuthState.signed_in,
        rx.menu.root(
            rx.menu.trigger(
                rx.button(
                    rx.icon("user", size=16),
                    AuthState.username,
                    variant="soft",
                    size="1",
                    id="user-menu",
                    data_role=AuthState.role,
                ),
            ),
            rx.menu.content(
                rx.menu.item(rx.text("Role: ", AuthState.role), disabled=True),
                rx.menu.item("Sign out", on_click=AuthState.logout, id="logout"),
            ),
        ),
    )


def signed_out_placeholder() -> rx.Component:
    """Shown until the session is checked (then the page, or a redirect to /login)."""
    return rx.center(rx.spinner(size="3"), width="100%", padding="48px", id="auth-pending")


def navbar() -> rx.Component:
    return rx.hstack(
        rx.link(
            rx.hstack(
                rx.icon("square-terminal"),
                rx.heading("Taskdeck", size=rx.breakpoints(initial="4", sm="5")),
                align="center",
                spacing="2",
            ),
            href="/",
            underline="none",
            color="inherit",
        ),
        rx.cond(AppState.demo_mode, rx.badge("demo model", color_scheme="amber", id="demo-badge")),
        rx.spacer(),
        rx.tablet_and_desktop(nav_links()),
        rx.color_mode.button(size="2", variant="ghost", id="color-mode"),
        rx.mobile_only(nav_menu()),
        rx.cond(
            AuthState.signed_in & ~AuthState.can_write,
            rx.badge("read-only", color_scheme="gray", variant="surface", id="read-only-badge"),
        ),
        user_menu(),
        align="center",
        spacing=rx.breakpoints(initial="2", sm="3"),
        wrap="wrap",  # a long user name or a narrow phone: wrap, never scroll sideways
        row_gap="6px",
        padding_x=rx.breakpoints(initial="12px", md="24px"),
        padding_y="10px",
        border_bottom="1px solid var(--gray-a5)",
        width="100%",
        position="sticky",
        top="0",
        z_index="10",
        background="var(--color-background)",
    )


def page_frame(*children: rx.Component) -> rx.Component:
    """Wrap a page's content in the shared frame."""
    return rx.box(
        rx.script(src="/taskdeck.js"),
        navbar(),
        rx.vstack(
            rx.cond(
                AuthState.signed_in,
                rx.fragment(demo_banner(), alert_banner(), *children),
                signed_out_placeholder(),
            ),
            spacing="4",
            padding=rx.breakpoints(initial="12px", md="24px"),
            width="100%",
            max_width="1280px",
            margin_x="auto",
        ),
        width="100%",
        min_height="100vh",
    )


def section(title: str, *children: rx.Component, **props) -> rx.Component:  # noqa: ANN003
    """A titled card that fills its column."""
    return rx.card(
        rx.vstack(rx.heading(title, size="3"), *children, spacing="3", width="100%"),
        width="100%",
        min_width="0",
        **props,
    )


def shown_once(message: str, secret, element_id: str, on_done) -> rx.Component:  # noqa: ANN001
    """A secret (a new token, a made-up password) with the warning that it will not be shown
    again, and the button that hides it."""
    return rx.vstack(
        rx.text(message),
        rx.code(secret, id=element_id, word_break="break-all"),
        rx.button("Done", size="1", variant="soft", on_click=on_done),
        spacing="2",
    )
