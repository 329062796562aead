"""The gateway's app: identity, the registry, routing and the per-agent proxy over the shared core."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import httpx
from starlette.applications import Starlette

from a2a_gateway.agent import AgentDefinition, Skill
from a2a_gateway.api.proxy_cards import ProxyCards
from a2a_gateway.api.rest.billing_routes import BillingApi
from a2a_gateway.api.rest.idempotency import Idempotency
from a2a_gateway.api.rest.trust_routes import TrustApi
from a2a_gateway.api.rest.workflow_routes import WorkflowApi
from a2a_gateway.api.routes import gateway_routes
from a2a_gateway.app.building import Core, base_routes, build_core, card_endpoint, task_service
from a2a_gateway.app.cards import load_card_template
from a2a_gateway.app.cluster import Cluster
from a2a_gateway.app.ended_calls import CallEvidence, PausedTaskCanceler
from a2a_gateway.app.hold_sweeper import HoldSweeper
from a2a_gateway.app.runtime import Runtime, assemble
from a2a_gateway.app.workflows import LedgerBudgets, RegistrySteps, TaskSteps, WorkflowRunner
from a2a_gateway.billing.service import BillingService
from a2a_gateway.outbound.a2a_client import A2AClient
from a2a_gateway.outbound.card_fetcher import CardFetcher
from a2a_gateway.outbound.health_prober import HealthProber
from a2a_gateway.outbound.lean_http import LeanHttp, UnaryHttpFactory
from a2a_gateway.outbound.pooled_http import PooledHttp
from a2a_gateway.outbound.ssrf import Resolver
from a2a_gateway.outbound.stripe_client import StripeClient
from a2a_gateway.protocol.base import utc_now
from a2a_gateway.registry.discover_skill import discover_skill
from a2a_gateway.registry.service import RegistryService
from a2a_gateway.routing.agent import RoutingAgent
from a2a_gateway.routing.deadlines import Deadlines
from a2a_gateway.routing.metadata import AGENT_KEY, SKILL_KEY
from a2a_gateway.routing.service import Router
from a2a_gateway.settings import Settings
from a2a_gateway.storage.agent_repository import SqlAgentRepository
from a2a_gateway.storage.call_log import SqlCallLog
from a2a_gateway.storage.idempotency_repository import SqlIdempotencyStore
from a2a_gateway.storage.lease import SqlLease
from a2a_gateway.storage.ledger_repository import SqlLedger
from a2a_gateway.storage.pending_holds import SqlPendingHolds
from a2a_gateway.storage.trust_repository import SqlRaterStandings, SqlTrustStore
from a2a_gateway.storage.workflow_repository import SqlWorkflowStore
from a2a_gateway.trust.refresher import ScoreRefresher
from a2a_gateway.trust.service import TrustService
from a2a_gateway.workflows.service import WorkflowService
from a2a_gateway.workflows.skill import run_workflow_skill


def build_registry(
    core: Core, agents: SqlAgentRepository, clock: Callable[[], datetime] | None = None
) -> RegistryService:
    """The agent registry over its SQL store, the SSRF guard and the card fetcher."""
    settings = core.settings
    return RegistryService(
        agents,
        core.guard,
        CardFetcher(core.client, settings.outbound_timeout_seconds),
        offline_after_seconds=settings.agent_offline_after_seconds,
        clock=clock or utc_now,
    )


def _cluster(core: Core) -> Cluster | None:
    """This process's place among several on one PostgreSQL and Redis (None: the only process)."""
    if core.holder is None or core.redis is None:
        return None
    settings = core.settings
    return Cluster(
        core.holder,
        SqlLease(core.engine),
        core.repo,
        core.redis,
        settings.redis_prefix,
        lease_ttl_s=settings.process_lease_seconds,
    )


def create_gateway_app(
    settings: Settings,
    *,
    local_skills: Sequence[Skill] = (),
    outbound_transport: httpx.AsyncBaseTransport | None = None,
    resolver: Resolver | None = None,
    auto_migrate: bool | None = None,
    rate_limits: bool = True,
    clock: Callable[[], datetime] | None = None,
    unary_client: UnaryHttpFactory | None = None,
) -> Starlette:
    """The gateway: its own skills (discover), routing to registered agents, identity and the registry.

    ``local_skills`` are served by the gateway itself before its own (tests use this to have skills
    without a second app); ``outbound_transport`` and ``resolver`` are the test seams of outbound calls;
    ``clock`` is the registry's time (heartbeats, offline status), injected by tests; ``unary_client``
    builds the client of unary upstream calls (by default the one ``settings.upstream_http`` names, or
    none, so httpx, when an outbound transport is injected): tests hand in one with an in-process opener.
    """
    core = build_core(
        settings,
        outbound_transport=outbound_transport,
        resolver=resolver,
        auto_migrate=auto_migrate,
        rate_limits=rate_limits,
    )
    agents = SqlAgentRepository(core.engine)
    registry = build_registry(core, agents, clock)
    calls = SqlCallLog(core.engine, core.repo.writer)
    # The unary client speaks to real sockets; an injected (test) transport keeps every call on httpx
    # unless the test hands in a unary client as well.
    max_body, max_line = settings.upstream_max_body_bytes, settings.upstream_max_line_bytes
    if unary_client is None and outbound_transport is None:
        unary_client = PooledHttp if settings.upstream_http == "pooled" else LeanHttp
    lean = unary_client(core.guard, max_body_bytes=max_body) if unary_client is not None else None
    upstream = A2AClient(
        core.client,
        timeout=settings.outbound_timeout_seconds,
        lean=lean,
        max_body_bytes=max_body,
        max_line_bytes=max_line,
    )
    trust = TrustService(SqlTrustStore(core.engine), SqlRaterStandings(core.engine))
    scores = ScoreRefresher(trust, interval=settings.trust_refresh_seconds)
    ledger = SqlLedger(core.engine)
    billing = BillingService(ledger, fee_bps=settings.platform_fee_bps)
    router = Router(
        registry,
        upstream,
        calls,
        core.assertions,
        listeners=[CallEvidence(trust, registry, billing, scores)],
        payments=billing,
    )
    steps = TaskSteps()
    cluster = _cluster(core)
    workflows = WorkflowService(
        SqlWorkflowStore(core.engine, core.repo.writer),  # run saves ride the task writer's commits
        steps,
        LedgerBudgets(billing),
        RegistrySteps(registry, billing),
        lease=SqlLease(core.engine),
        lease_ttl_s=settings.workflow_lease_seconds,
        holder=core.holder,
        control=cluster,
        agent_key=AGENT_KEY,
        skill_key=SKILL_KEY,
    )
    template = load_card_template()
    own = AgentDefinition(
        name=str(template.get("name", "A2A Gateway")),
        description=str(template.get("description", "")),
        skills=[*local_skills, discover_skill(registry), run_workflow_skill(workflows)],
    )
    service = task_service(core, RoutingAgent.around(own, router), holders=cluster)
    steps.bind(service)
    deadlines = Deadlines(service)
    service.on_end(deadlines.clear)  # a task that ends before its deadline drops its timer
    runtime = Runtime(
        core, service, router=router, deadlines=deadlines, cluster=cluster, workflow_service=workflows
    )
    runtime.workflows = WorkflowRunner(workflows, settings.workflow_takeover_seconds)
    runtime.jobs.append(scores)
    pending = SqlPendingHolds(core.engine)
    if settings.hold_sweep_seconds > 0:
        runtime.jobs.append(
            HoldSweeper(
                pending,
                billing,
                PausedTaskCanceler(service),
                interval=settings.hold_sweep_seconds,
                paused_limit=timedelta(seconds=settings.paused_hold_seconds),
            )
        )
    if settings.health_check_seconds > 0:
        cards_in = CardFetcher(core.client, settings.outbound_timeout_seconds)
        probe_client = A2AClient(
            core.client,
            timeout=settings.outbound_timeout_seconds,
            max_body_bytes=max_body,
            max_line_bytes=max_line,
        )
        runtime.prober = HealthProber(
            registry, cards_in, probe_client, settings.health_check_seconds, core.assertions
        )
    cards = card_endpoint(core, template, own.skills)

    async def credit_gauges() -> dict[str, tuple[str, dict[str, float]]]:
        totals = await pending.totals()
        return {
            "a2a_credit_holds": ("state", {s: float(n) for s, (n, _) in totals.items()}),
            "a2a_credits_by_hold_state": ("state", {s: float(c) for s, (_, c) in totals.items()}),
            "a2a_credit_refusals_total": ("", {"": float(router.refused_credits)}),
        }

    rpc, routes = base_routes(core, service, cards, credit_gauges)
    proxy_cards = ProxyCards(
        registry,
        settings.public_url,
        settings.push_notifications,
        settings.open_gateway,
        settings.card_max_age,
    )
    runtime.closers.append(ledger.close)
    idempotency = Idempotency(SqlIdempotencyStore(core.engine))
    routes += gateway_routes(
        rpc,
        core.authn,
        registry,
        proxy_cards,
        service,
        calls=calls,
        deadlines=deadlines,
        ring=core.ring,
        resources=[
            billing_api(core, billing, idempotency),
            TrustApi(core.authn, trust, registry, service, calls),
            WorkflowApi(core.authn, workflows, idempotency),
        ],
        idempotency=idempotency,
    )
    app = assemble(runtime, routes)
    app.state.registry = registry
    app.state.billing = billing
    app.state.trust = trust
    app.state.trust_scores = scores
    app.state.workflows = workflows
    app.state.agents = agents  # the agent store, for setting server-owned fields (trust) from outside
    return app


def billing_api(core: Core, billing: BillingService, idempotency: Idempotency | None = None) -> BillingApi:
    """The billing routes; buying credits works once Stripe's keys are set."""
    settings = core.settings
    stripe = None
    if settings.stripe_secret_key is not None:
        stripe = StripeClient(
            core.client,
            settings.stripe_api_base,
            settings.stripe_secret_key.get_secret_value(),
            timeout=settings.stripe_timeout_seconds,
        )
    back = settings.public_url.rstrip("/") + "/billing"
    secret = settings.stripe_webhook_secret
    return BillingApi(
        core.authn,
        billing,
        stripe=stripe,
        webhook_secret=secret.get_secret_value() if secret is not None else None,
        success_url=settings.checkout_success_url or back + "?session_id={CHECKOUT_SESSION_ID}",
        cancel_url=settings.checkout_cancel_url or back,
        idempotency_layer=idempotency,
    )
