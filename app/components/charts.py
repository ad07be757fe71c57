"""The dashboard's plotly charts: figure builders (pure plotly) and the card that shows one."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
import reflex as rx

OUTCOME_COLORS = {"succeeded": "#30a46c", "failed": "#e5484d", "cancelled": "#f76b15"}
CONFIG = {"displayModeBar": False, "responsive": True}


def _layout(fig: go.Figure, **extra: Any) -> go.Figure:
    extra["xaxis"] = {"automargin": True, **extra.get("xaxis", {})}
    extra["yaxis"] = {"rangemode": "nonnegative", "automargin": True, **extra.get("yaxis", {})}
    fig.update_layout(
        height=260,
        margin={"l": 40, "r": 10, "t": 10, "b": 40},
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
        legend={"orientation": "h", "y": -0.25, "x": 0},
        autosize=True,
        font={"size": 11},
        **extra,
    )
    return fig


def _note_if_empty(fig: go.Figure, values: list, note: str) -> go.Figure:
    """On a chart with nothing to show yet, say so in its middle (not blank axes alone)."""
    if not any(values):
        fig.add_annotation(
            text=note,
            xref="paper",
            yref="paper",
            x=0.5,
            y=0.5,
            showarrow=False,
            font={"size": 13, "color": "#8b8d98"},
        )
    return fig


def finished_figure(data: dict[str, list]) -> go.Figure:
    """Tasks finished per hour, stacked by outcome."""
    fig = go.Figure(
        [
            go.Bar(name=outcome, x=data["hours"], y=data[outcome], marker_color=color)
            for outcome, color in OUTCOME_COLORS.items()
        ]
    )
    _note_if_empty(
        fig,
        [n for outcome in OUTCOME_COLORS for n in data[outcome]],
        "No task finished in the last 24 h",
    )
    return _layout(
        fig, barmode="stack", xaxis={"type": "category", "automargin": True, "nticks": 12}
    )


def duration_figure(data: dict[str, list]) -> go.Figure:
    """How long finished tasks took, in buckets."""
    fig = go.Figure(
        [go.Bar(x=data["labels"], y=data["counts"], marker_color="#3e63dd", name="tasks")]
    )
    _note_if_empty(fig, data["counts"], "No task finished in the last 7 days")
    return _layout(fig)


def cost_figure(data: dict[str, list]) -> go.Figure:
    """Cost (bars, left axis) and tokens (line, right axis) per day."""
    days = [d[5:] for d in data["days"]]
    fig = go.Figure(
        [
            go.Bar(x=days, y=data["cost"], name="cost (USD)", marker_color="#8e4ec6"),
            go.Scatter(
                x=days,
                y=data["tokens"],
                name="tokens",
                yaxis="y2",
                mode="lines+markers",
                line={"color": "#12a594"},
            ),
        ]
    )
    _note_if_empty(fig, [*data["cost"], *data["tokens"]], "Nothing spent in the last 14 days")
    return _layout(
        fig,
        xaxis={"type": "category", "automargin": True},
        yaxis2={"overlaying": "y", "side": "right", "showgrid": False, "rangemode": "nonnegative"},
    )


def depth_figure(data: dict[str, list]) -> go.Figure:
    """Queued and running jobs, and live workers, over time (from the metric samples)."""
    fig = go.Figure(
        [
            go.Scatter(
                x=data["ts"],
                y=data["queued"],
                name="queued",
                mode="lines",
                line={"shape": "hv", "color": "#f76b15"},
            ),
            go.Scatter(
                x=data["ts"],
                y=data["running"],
                name="running",
                mode="lines",
                line={"shape": "hv", "color": "#3e63dd"},
            ),
            go.Scatter(
                x=data["ts"],
                y=data["workers"],
                name="workers",
                mode="lines",
                line={"shape": "hv", "dash": "dot", "color": "#8d8d8d"},
            ),
        ]
    )
    return _layout(fig)


def chart_card(title: str, figure, chart_id: str) -> rx.Component:  # noqa: ANN001
    """A titled card holding one chart that follows its container's width."""
    return rx.card(
        rx.vstack(
            rx.text(title, size="2", weight="medium"),
            rx.box(
                rx.cond(
                    figure,
                    rx.plotly(
                        data=figure.to(go.Figure),  # set: rx.cond shows it only then
                        config=CONFIG,
                        use_resize_handler=True,
                        style={"width": "100%", "height": "260px"},
                    ),
                ),
                width="100%",
                min_width="0",
                min_height="260px",
            ),
            spacing="2",
            width="100%",
        ),
        id=chart_id,
        class_name="chart-card",
        width="100%",
        min_width="0",
    )
