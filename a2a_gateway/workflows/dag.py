"""A workflow's steps as a networkx DAG: what depends on a step, the critical path, the Mermaid text."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import networkx as nx

from a2a_gateway.workflows.models import StepSpec, StepStatus


class Dag:
    """The dependency graph of a workflow's steps (an edge d -> i for every d in step i's dependsOn)."""

    def __init__(self, steps: Sequence[StepSpec]) -> None:
        self._steps = tuple(steps)
        graph: nx.DiGraph[int] = nx.DiGraph()
        graph.add_nodes_from(range(len(steps)))
        for i, step in enumerate(steps):
            graph.add_edges_from((d, i) for d in step.depends_on)
        self._graph = graph
        self._dependents = {i: frozenset(nx.descendants(graph, i)) for i in graph.nodes}

    def __len__(self) -> int:
        return len(self._steps)

    def dependents(self, index: int) -> frozenset[int]:
        """Every step that depends on ``index``, directly or through others."""
        return self._dependents[index]

    def ready(self, statuses: Sequence[StepStatus]) -> list[int]:
        """Pending steps whose dependencies have all completed, in index order."""
        return [
            i
            for i, step in enumerate(self._steps)
            if statuses[i] is StepStatus.PENDING
            and all(statuses[d] is StepStatus.COMPLETED for d in step.depends_on)
        ]

    def critical_path(self, duration: Callable[[int], float] | None = None) -> list[int]:
        """The longest chain of steps, by ``duration`` of each step (its timeout when not given)."""
        weight = duration or (lambda i: float(self._steps[i].timeout_s))
        # Longest path by node weight: each edge carries the weight of the step it leads to, and the
        # first step of the chain is added by comparing chains from every start.
        best: dict[int, tuple[float, list[int]]] = {}
        for node in nx.topological_sort(self._graph):
            preds = [best[p] for p in self._graph.predecessors(node)]
            length, chain = max(preds, key=lambda b: b[0]) if preds else (0.0, [])
            best[node] = (length + weight(node), [*chain, node])
        return max(best.values(), key=lambda b: b[0])[1] if best else []

    def mermaid(self, statuses: Mapping[int, StepStatus] | None = None) -> str:
        """``graph TD`` text with one node per step (named, and styled by status when given)."""
        lines = ["graph TD"]
        for i, step in enumerate(self._steps):
            label = _label(f"{i}: {step.name}")
            state = statuses.get(i) if statuses else None
            lines.append(f'  s{i}["{label}"]' + (f":::{state.value}" if state else ""))
        lines.extend(f"  s{d} --> s{i}" for d, i in sorted(self._graph.edges))
        if statuses:
            lines.extend(f"  classDef {name} {style}" for name, style in _STYLES.items())
        return "\n".join(lines)


_STYLES = {
    "pending": "fill:#eee,stroke:#999",
    "running": "fill:#cce5ff,stroke:#004085",
    "input_required": "fill:#fff3cd,stroke:#856404",
    "retry_wait": "fill:#fff3cd,stroke:#856404",
    "completed": "fill:#d4edda,stroke:#155724",
    "failed": "fill:#f8d7da,stroke:#721c24",
    "skipped": "fill:#f5f5f5,stroke:#bbb,stroke-dasharray:3",
    "canceled": "fill:#f5f5f5,stroke:#721c24",
}


def _label(text: str) -> str:
    """Step names are the user's: keep only what cannot break out of a quoted Mermaid label."""
    return "".join(c if c.isalnum() or c in " _-.:,()/" else " " for c in text)[:120]
