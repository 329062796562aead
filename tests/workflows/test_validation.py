"""Each shape rule of a workflow body, its error naming the step and the field; references; the DAG."""

from __future__ import annotations

from typing import Any

import pytest

from a2a_gateway.errors import InvalidParams, NotFound
from a2a_gateway.workflows import refs, validation
from a2a_gateway.workflows.dag import Dag
from a2a_gateway.workflows.models import StepStatus
from tests.workflows.fakes import body, step


def _field(raw: Any) -> str:
    with pytest.raises(InvalidParams) as caught:
        validation.parse(raw)
    return caught.value.violations[0]["field"]


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ([], "body"),
        ({"steps": [step()]}, "name"),
        ({"name": "x" * 101, "steps": [step()]}, "name"),
        (body(), "steps"),
        (body(*[step() for _ in range(21)]), "steps"),
        (body(step(), "nope"), "steps[1]"),
        (body(step(), {**step(), "agentId": ""}), "steps[1].agentId"),
        (body({**step(), "skillId": 5}), "steps[0].skillId"),
        (body({**step(), "name": " "}), "steps[0].name"),
        (body(step(), step(deps=[1])), "steps[1].dependsOn"),  # itself
        (body(step(), step(deps=[2]), step()), "steps[1].dependsOn"),  # a later step: would allow cycles
        (body(step(), step(deps=[-1])), "steps[1].dependsOn"),
        (body(step(), step(deps=[0, 0])), "steps[1].dependsOn"),
        (body(step(), step(deps=[True])), "steps[1].dependsOn"),
        (body(step(), {**step(), "dependsOn": "0"}), "steps[1].dependsOn"),
        (body(step(timeout=9)), "steps[0].timeout"),
        (body(step(timeout=3601)), "steps[0].timeout"),
        (body(step(timeout=10.5)), "steps[0].timeout"),
        (body(step(retryPolicy={"maxRetries": 6})), "steps[0].retryPolicy.maxRetries"),
        (body(step(retryPolicy={"maxRetries": -1})), "steps[0].retryPolicy.maxRetries"),
        (body(step(retryPolicy={"backoffMs": 99})), "steps[0].retryPolicy.backoffMs"),
        (body(step(retryPolicy={"backoffMs": 60_001})), "steps[0].retryPolicy.backoffMs"),
        (body(step(retryPolicy=[1])), "steps[0].retryPolicy"),
        (body(step(input=[1])), "steps[0].input"),
        (body(step(input={"big": "x" * 70_000})), "steps[0].input"),
        (body(step(), step(input={"a": {"$ref": "steps.0.output"}})), "steps[1].input.a"),  # not a dependency
        (body(step(), step(deps=[0], input={"a": [{"$ref": "steps.0.nothing"}]})), "steps[1].input.a[0]"),
    ],
)
def test_each_rule_names_its_field(raw: Any, field: str) -> None:
    assert _field(raw) == field


def test_a_valid_body_keeps_defaults_and_order() -> None:
    draft = validation.parse(body(step(), step(deps=[0], input={"x": {"$ref": "steps.0.output#/a"}})))
    first, second = draft.steps
    assert (first.timeout_s, first.retry.max_retries, first.retry.backoff_ms) == (300, 0, 1000)
    assert second.depends_on == (0,)


def test_execute_input_overrides_name_a_step() -> None:
    assert validation.input_override({"1": {"a": 1}}, 2) == {"1": {"a": 1}}
    for raw, field in (
        ({"2": {}}, "inputs.2"),
        ({"x": {}}, "inputs.x"),
        ({"0": 1}, "inputs.0"),
        ([1], "inputs"),
    ):
        with pytest.raises(InvalidParams) as caught:
            validation.input_override(raw, 2)
        assert caught.value.violations[0]["field"] == field


def test_references_resolve_to_artifacts_output_text_and_pointers() -> None:
    artifacts = [
        {"artifactId": "a", "parts": [{"text": "hello"}]},
        {"artifactId": "b", "parts": [{"data": {"q": {"p": [1, 2]}, "a/b": 3}}, {"text": "bye"}]},
    ]
    outputs = {0: artifacts}
    value = {
        "all": {"$ref": "steps.0.artifacts"},
        "second": {"$ref": "steps.0.artifacts.1"},
        "out": {"$ref": "steps.0.output"},
        "p": {"$ref": "steps.0.output#/q/p/1"},
        "escaped": {"$ref": "steps.0.artifacts.1#/a~1b"},
        "text": [{"$ref": "steps.0.text"}],
        "plain": {"$ref": "steps.0.output", "other": 1},  # not a reference: two keys
    }
    got = refs.resolve(value, outputs)
    assert got["all"] == artifacts and got["second"] == artifacts[1]
    assert got["out"] == {"q": {"p": [1, 2]}, "a/b": 3}
    assert (got["p"], got["escaped"], got["text"]) == (2, 3, ["hello\nbye"])
    assert got["plain"] == {"$ref": "steps.0.output", "other": 1}
    with pytest.raises(refs.Unresolvable):
        refs.resolve({"$ref": "steps.0.artifacts.5"}, outputs)
    with pytest.raises(refs.Unresolvable):
        refs.resolve({"$ref": "steps.0.output#/q/p/9"}, outputs)
    assert refs.output_value([{"parts": [{"text": "only"}]}]) == "only"


@pytest.mark.parametrize(
    "bad",
    ["", "steps", "steps.x.output", "steps.01.output", "steps.0.output#q", "steps.0.text#/a", "x.0.output"],
)
def test_malformed_references_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        refs.parse(bad)


def test_the_dag_knows_transitive_dependents_the_critical_path_and_draws_mermaid() -> None:
    draft = validation.parse(
        body(
            step(timeout=10),
            step(deps=[0], timeout=100),
            step(deps=[0], timeout=20),
            step(deps=[1, 2], timeout=10),
            step(timeout=500),
            name="d",
        )
    )
    dag = Dag(draft.steps)
    assert dag.dependents(0) == {1, 2, 3} and dag.dependents(2) == {3} and dag.dependents(4) == frozenset()
    assert dag.critical_path() == [4]  # 500 s beats 10 + 100 + 10
    assert dag.critical_path(lambda i: 1.0) == [0, 1, 3]
    statuses = [
        StepStatus.COMPLETED,
        StepStatus.RUNNING,
        StepStatus.PENDING,
        StepStatus.PENDING,
        StepStatus.FAILED,
    ]
    assert dag.ready(statuses) == [2]
    text = dag.mermaid(dict(enumerate(statuses)))
    assert text.startswith("graph TD") and "s0 --> s1" in text and "s2 --> s3" in text
    assert 's1["1: work"]:::running' in text
    hostile = Dag(validation.parse(body(step(name='x"]; click s0 "http://evil'))).steps)
    assert '"' not in hostile.mermaid().split("[", 1)[1].split("]", 1)[0].strip('"')


async def test_creation_names_the_step_whose_agent_or_skill_is_missing() -> None:
    from tests.workflows.test_engine import World

    w = World()
    for bad, field in ((step(agent="ghost"), "steps[1].agentId"), (step(skill="nope"), "steps[1].skillId")):
        with pytest.raises(InvalidParams) as caught:
            await w.service.create("user-1", body(step(), bad))
        assert caught.value.violations[0]["field"] == field
    with pytest.raises(NotFound):
        await w.service.get("user-1", "no-such-workflow")
