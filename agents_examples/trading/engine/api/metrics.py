"""``GET /metrics``: the engine's counters in the Prometheus text exposition format, version 0.0.4.

The trading figures come from the trader's :class:`~agents_examples.trading.engine.trading.Counters`
(Nexgent's metric names where it has them: ``signal_processing_latency_seconds``,
``trade_execution_total``, ``stop_loss_trigger_total``, ``stale_trade_trigger_total``, ...); the HTTP
figures (``api_requests_total{method,status}``, ``errors_total{status}``) from :class:`RequestCounts`,
which the API's endpoint wrapper feeds. Every label value is one of a small known set (methods, status
codes, sides, execution states), so the number of series stays bounded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from agents_examples.trading.engine.trading import Counters

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
METHODS: Final = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})

# Close reason -> (metric, help). Nexgent names the first three.
EXIT_METRICS: Final = {
    "stop_loss": ("stop_loss_trigger_total", "Positions sold by their stop loss."),
    "take_profit": ("take_profit_trigger_total", "Take-profit levels sold."),
    "stale_trade": ("stale_trade_trigger_total", "Positions closed as stale trades."),
    "signal": ("signal_sell_total", "Positions closed by a sell signal."),
    "manual": ("manual_close_total", "Positions closed by their owner."),
    "risk_limit": ("risk_limit_close_total", "Positions sold when a risk limit was breached."),
}


@dataclass
class RequestCounts:
    """Answers of the REST API by method and status."""

    requests: dict[tuple[str, int], int] = field(default_factory=dict)
    errors: dict[int, int] = field(default_factory=dict)

    def count(self, method: str, status: int) -> None:
        """One answer; a 4xx or 5xx also counts as an error."""
        label = method if method in METHODS else "OTHER"
        key = (label, status)
        self.requests[key] = self.requests.get(key, 0) + 1
        if status >= 400:
            self.errors[status] = self.errors.get(status, 0) + 1


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{name}="{_escape(value)}"' for name, value in labels.items()) + "}"


def _value(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    return repr(float(value))


class Exposition:
    """Builds one exposition: each family's ``# HELP`` and ``# TYPE`` once, then its samples."""

    def __init__(self) -> None:
        self._lines: list[str] = []

    def family(
        self, name: str, kind: str, help_text: str, samples: Iterable[tuple[Mapping[str, str], float]]
    ) -> None:
        """A metric family and its samples (label set -> value)."""
        self._head(name, kind, help_text)
        for labels, value in samples:
            self._lines.append(f"{name}{_labels(labels)} {_value(value)}")

    def summary(self, name: str, help_text: str, total: float, count: int) -> None:
        """A summary without quantiles: its ``_sum`` and ``_count``."""
        self._head(name, "summary", help_text)
        self._lines.append(f"{name}_sum {_value(total)}")
        self._lines.append(f"{name}_count {_value(count)}")

    def _head(self, name: str, kind: str, help_text: str) -> None:
        self._lines.append(f"# HELP {name} {help_text}")
        self._lines.append(f"# TYPE {name} {kind}")

    def simple(self, name: str, kind: str, help_text: str, value: float) -> None:
        """A family of one unlabelled sample."""
        self.family(name, kind, help_text, [({}, value)])

    def text(self) -> str:
        """The exposition, newline-terminated."""
        return "\n".join(self._lines) + "\n"


def render(
    counters: Counters,
    requests: RequestCounts,
    *,
    gauges: Mapping[str, tuple[str, float]] | None = None,
) -> str:
    """The whole exposition: trading counters, HTTP counters, then ``gauges`` (name -> (help, value))."""
    out = Exposition()
    out.summary(
        "signal_processing_latency_seconds",
        "Time taken to decide a posted signal for the agents that follow its publisher.",
        counters.signal_seconds,
        counters.signals,
    )
    out.simple("signals_received_total", "counter", "Trading signals accepted.", counters.signals)
    out.simple(
        "signal_evaluations_total",
        "counter",
        "Signal decisions made, one per following agent.",
        counters.evaluations,
    )
    trades = []
    for key, value in sorted(counters.trades.items()):
        side, _, status = key.partition(":")
        trades.append(({"side": side, "status": status}, value))
    out.family("trade_execution_total", "counter", "Orders settled, by side and outcome.", trades)
    for reason, (name, help_text) in EXIT_METRICS.items():
        out.simple(name, "counter", help_text, counters.exits.get(reason, 0))
    out.simple("price_ticks_total", "counter", "Price ticks applied.", counters.ticks)
    out.simple(
        "risk_limit_breach_total",
        "counter",
        "Risk-limit breaches that paused an agent's automated trading.",
        counters.risk_breaches,
    )
    out.family(
        "api_requests_total",
        "counter",
        "REST API answers by method and status.",
        [
            ({"method": method, "status": str(status)}, value)
            for (method, status), value in sorted(requests.requests.items())
        ],
    )
    out.family(
        "errors_total",
        "counter",
        "REST API error answers (4xx and 5xx) by status.",
        [({"status": str(status)}, value) for status, value in sorted(requests.errors.items())],
    )
    for name, (help_text, reading) in (gauges or {}).items():
        out.simple(name, "gauge", help_text, reading)
    return out.text()
