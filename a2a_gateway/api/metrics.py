"""In-process counters and histograms, rendered in the Prometheus text exposition format."""

from __future__ import annotations

import bisect
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable

from starlette.requests import Request
from starlette.responses import Response

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Histogram:
    """Cumulative-bucket latency histogram per label value."""

    def __init__(self) -> None:
        self.counts: dict[str, list[int]] = defaultdict(lambda: [0] * (len(BUCKETS) + 1))
        self.sums: dict[str, float] = defaultdict(float)

    def observe(self, label: str, seconds: float) -> None:
        """Record one duration."""
        self.counts[label][bisect.bisect_left(BUCKETS, seconds)] += 1
        self.sums[label] += seconds

    def render(self, name: str, label_name: str) -> Iterable[str]:
        """Exposition lines for this histogram."""
        for label, counts in sorted(self.counts.items()):
            running = 0
            for bound, count in zip((*BUCKETS, float("inf")), counts, strict=True):
                running += count
                le = "+Inf" if bound == float("inf") else repr(bound)
                yield f'{name}_bucket{{{label_name}="{label}",le="{le}"}} {running}'
            yield f'{name}_sum{{{label_name}="{label}"}} {self.sums[label]:.6f}'
            yield f'{name}_count{{{label_name}="{label}"}} {running}'


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Metrics:
    """The gateway's metrics; gauges that need a query are passed in at render time."""

    def __init__(self) -> None:
        self.rpc_total: dict[tuple[str, str], int] = defaultdict(int)
        self.rpc_latency = Histogram()
        self.http_total: dict[tuple[str, int], int] = defaultdict(int)
        self.http_latency = Histogram()
        self.streams_open = 0
        self.slow_drops: Callable[[], int] = _none  # subscriptions cut off as slow readers (the service's)

    def rpc(self, method: str, outcome: str, started: float) -> None:
        """Count one JSON-RPC call and its latency (``method`` must be a known name or "other")."""
        self.rpc_total[(method, outcome)] += 1
        self.rpc_latency.observe(method, time.perf_counter() - started)

    def http(self, method: str, status: int, seconds: float) -> None:
        """Count one HTTP request and its latency."""
        self.http_total[(method, status)] += 1
        self.http_latency.observe(method, seconds)

    def render(self, gauges: dict[str, tuple[str, dict[str, float]]]) -> str:
        """The exposition text; ``gauges`` maps name -> (label name, {label value: number})."""
        out = [
            "# HELP a2a_rpc_requests_total JSON-RPC calls by method and outcome.",
            "# TYPE a2a_rpc_requests_total counter",
        ]
        for (method, outcome), n in sorted(self.rpc_total.items()):
            out.append(f'a2a_rpc_requests_total{{method="{method}",outcome="{outcome}"}} {n}')
        out += [
            "# HELP a2a_rpc_duration_seconds JSON-RPC latency by method.",
            "# TYPE a2a_rpc_duration_seconds histogram",
        ]
        out.extend(self.rpc_latency.render("a2a_rpc_duration_seconds", "method"))
        out += [
            "# HELP http_requests_total HTTP requests by method and status.",
            "# TYPE http_requests_total counter",
        ]
        for (method, status), n in sorted(self.http_total.items()):
            out.append(f'http_requests_total{{method="{method}",status="{status}"}} {n}')
        out += [
            "# HELP http_request_duration_seconds HTTP latency.",
            "# TYPE http_request_duration_seconds histogram",
        ]
        out.extend(self.http_latency.render("http_request_duration_seconds", "method"))
        out += ["# HELP a2a_active_streams Open SSE streams.", "# TYPE a2a_active_streams gauge"]
        out.append(f"a2a_active_streams {self.streams_open}")
        out += [
            "# HELP a2a_stream_slow_reader_drops_total Streams cut off as their reader fell too far behind.",
            "# TYPE a2a_stream_slow_reader_drops_total counter",
            f"a2a_stream_slow_reader_drops_total {self.slow_drops()}",
        ]
        for name, (label_name, values) in gauges.items():
            out.append(f"# TYPE {name} gauge")
            if not label_name:
                out.append(f"{name} {values.get('', 0)}")
                continue
            for label, value in sorted(values.items()):
                out.append(f'{name}{{{label_name}="{_escape(label)}"}} {value}')
        return "\n".join(out) + "\n"


Gauges = dict[str, tuple[str, dict[str, float]]]


class MetricsEndpoint:
    """GET /metrics: the counters plus gauges read at scrape time, in the Prometheus text format."""

    def __init__(self, metrics: Metrics, gauges: Callable[[], Awaitable[Gauges]]) -> None:
        self._metrics = metrics
        self._gauges = gauges

    async def serve(self, request: Request) -> Response:
        """The exposition text."""
        body = self._metrics.render(await self._gauges())
        return Response(body, media_type="text/plain; version=0.0.4")


def _none() -> int:
    return 0
