"""Building blocks both apps share: identity, the outbound client, the task core and the base routes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.routing import BaseRoute

from a2a_gateway.agent import AgentDefinition, Skill
from a2a_gateway.api.cards import CardEndpoint
from a2a_gateway.api.health import HealthEndpoints
from a2a_gateway.api.jsonrpc import JsonRpcEndpoint
from a2a_gateway.api.metrics import Metrics, MetricsEndpoint
from a2a_gateway.api.principal import Authenticator
from a2a_gateway.api.rate_limiter import RateLimiter, parse_limit
from a2a_gateway.api.routes import build_routes
from a2a_gateway.app.cluster import new_holder
from a2a_gateway.auth.assertions import CallerAssertions
from a2a_gateway.auth.keyring import KeyRing
from a2a_gateway.auth.ports import IdentityStores
from a2a_gateway.auth.rate_limit import MemoryRateLimitStore
from a2a_gateway.auth.service import AuthService
from a2a_gateway.auth.signing import NonceStore
from a2a_gateway.auth.tokens import AccessTokens
from a2a_gateway.outbound.push_notifier import WebhookNotifier
from a2a_gateway.outbound.ssrf import GuardedTransport, Resolver, SsrfGuard
from a2a_gateway.outbound.webhook_delivery import WebhookDelivery
from a2a_gateway.protocol import v1
from a2a_gateway.protocol.card import CardSecurity, build_card
from a2a_gateway.settings import Settings
from a2a_gateway.storage import engine as db
from a2a_gateway.storage.identity_repository import (
    SqlApiKeyRepository,
    SqlLoginFailures,
    SqlRefreshTokenRepository,
    SqlUserRepository,
)
from a2a_gateway.storage.redis_store import RedisNonceStore, RedisRateLimitStore
from a2a_gateway.storage.redis_store import connect as connect_redis
from a2a_gateway.storage.redis_task_bus import RedisTaskEventBus
from a2a_gateway.storage.secrets import load_or_create
from a2a_gateway.storage.signing_key_repository import SqlSigningKeyStore
from a2a_gateway.storage.task_repository import SqlTaskRepository
from a2a_gateway.tasks.broker import TaskEventBroker
from a2a_gateway.tasks.limits import TaskLimits
from a2a_gateway.tasks.ports import TaskHolders
from a2a_gateway.tasks.service import TaskService

RPC_PATH = "/a2a"


def server_pepper(settings: Settings) -> bytes:
    """The server's pepper: the setting, or the secret generated into the data directory."""
    if settings.key_pepper is not None:
        return settings.key_pepper.get_secret_value().encode()
    return load_or_create(settings.data_dir, "api-key-pepper")


def key_ring(settings: Settings, engine: AsyncEngine) -> KeyRing:
    """The signing keys shared by every gateway process on this database (decision 0015)."""
    return KeyRing(SqlSigningKeyStore(engine, server_pepper(settings)))


def build_auth(
    settings: Settings, engine: AsyncEngine, nonces: NonceStore | None = None, ring: KeyRing | None = None
) -> AuthService:
    """The identity service with its SQL repositories, the key ring and the server secrets."""
    stores = IdentityStores(
        SqlUserRepository(engine),
        SqlApiKeyRepository(engine),
        SqlRefreshTokenRepository(engine),
        SqlLoginFailures(engine),
    )
    return AuthService(
        stores,
        AccessTokens(
            ring or key_ring(settings, engine),
            issuer=settings.issuer(),
            ttl_seconds=settings.access_token_ttl_seconds,
        ),
        server_pepper(settings),
        nonces=nonces,
        refresh_ttl=timedelta(days=settings.refresh_token_ttl_days),
    )


def build_authenticator(
    settings: Settings, engine: AsyncEngine, rate_limits: bool, ring: KeyRing
) -> tuple[Authenticator, Redis | None]:
    """Credentials, budgets and signature nonces; budgets and nonces go to Redis when a URL is configured."""
    redis = connect_redis(settings.redis_url) if settings.redis_url else None
    limits = {name: parse_limit(spec) for name, spec in settings.rate_limits.items()} if rate_limits else {}
    store = RedisRateLimitStore(redis, settings.redis_prefix) if redis is not None else MemoryRateLimitStore()
    nonces = RedisNonceStore(redis, settings.redis_prefix) if redis is not None else None
    auth = build_auth(settings, engine, nonces, ring)
    return Authenticator(
        auth, settings.open_gateway, RateLimiter(store, limits), settings.max_body_bytes
    ), redis


@dataclass(slots=True)
class Core:
    """What every app is made of: storage, events, the guarded outbound client, webhooks and callers."""

    settings: Settings
    engine: AsyncEngine
    migrate: bool
    repo: SqlTaskRepository
    broker: TaskEventBroker
    guard: SsrfGuard
    client: httpx.AsyncClient
    delivery: WebhookDelivery
    notifier: WebhookNotifier | None
    authn: Authenticator
    redis: Redis | None
    metrics: Metrics
    ring: KeyRing
    assertions: CallerAssertions
    # With several processes on one PostgreSQL and Redis (settings.shared()): this process's name, which
    # it writes on the tasks it runs, and the bus their events go to the other processes on.
    holder: str | None = None
    bus: RedisTaskEventBus | None = None


def build_core(
    settings: Settings,
    *,
    outbound_transport: httpx.AsyncBaseTransport | None,
    resolver: Resolver | None,
    auto_migrate: bool | None,
    rate_limits: bool,
) -> Core:
    """The shared core of an app on the configured database."""
    engine = db.create_engine(settings.resolved_database_url())
    migrate = auto_migrate if auto_migrate is not None else engine.dialect.name == "sqlite"
    guard = SsrfGuard(settings.outbound_allowlist, resolver)
    client = httpx.AsyncClient(
        transport=GuardedTransport(guard, outbound_transport),
        timeout=httpx.Timeout(settings.outbound_timeout_seconds),
        follow_redirects=False,
    )
    delivery = WebhookDelivery(
        client,
        timeout=settings.push_timeout_seconds,
        max_attempts=settings.push_max_attempts,
        base_backoff=settings.push_backoff_seconds,
    )
    notifier = WebhookNotifier(guard, delivery) if settings.push_notifications else None
    ring = key_ring(settings, engine)
    authn, redis = build_authenticator(settings, engine, rate_limits, ring)
    broker = TaskEventBroker(settings.stream_queue_size)
    holder = new_holder() if settings.shared() and redis is not None else None
    bus = RedisTaskEventBus(redis, settings.redis_prefix, broker) if holder and redis is not None else None
    return Core(
        settings=settings,
        engine=engine,
        migrate=migrate,
        repo=SqlTaskRepository(engine, holder),
        broker=broker,
        holder=holder,
        bus=bus,
        guard=guard,
        client=client,
        delivery=delivery,
        notifier=notifier,
        authn=authn,
        redis=redis,
        metrics=Metrics(),
        ring=ring,
        assertions=CallerAssertions(
            ring, issuer=settings.issuer(), ttl_seconds=settings.assertion_ttl_seconds
        ),
    )


def task_service(core: Core, agent: AgentDefinition, holders: TaskHolders | None = None) -> TaskService:
    """The task service over ``agent``'s skills (an AgentDefinition or the gateway's routing agent);
    ``holders``: the other processes on the same database, when there are (the gateway's cluster)."""
    settings = core.settings
    limits = TaskLimits(
        max_artifacts=settings.task_max_artifacts,
        max_history=settings.task_max_history,
        max_bytes=settings.task_max_bytes,
        window=settings.subscription_window,
    )
    return TaskService(
        agent,
        core.repo,
        core.broker,
        core.notifier,
        history_default=settings.history_default_length,
        limits=limits,
        bus=core.bus if holders is not None else None,
        holders=holders,
    )


def card_endpoint(
    core: Core, template: dict[str, Any], skills: list[Skill], security: CardSecurity | None = None
) -> CardEndpoint:
    """The app's own card, served at the well-known paths (a kit agent passes its own ``security``)."""
    settings = core.settings
    card = build_card(
        template,
        settings.public_url.rstrip("/") + RPC_PATH,
        [s.card_entry() for s in skills],
        v1.AgentCapabilities(
            streaming=True, push_notifications=settings.push_notifications, extended_agent_card=True
        ),
        anonymous_allowed=settings.open_gateway,
        security=security,
    )
    return CardEndpoint(card, settings.card_max_age)


Gauges = Callable[[], Awaitable[dict[str, tuple[str, dict[str, float]]]]]


def base_routes(
    core: Core, service: TaskService, cards: CardEndpoint, more_gauges: Gauges | None = None
) -> tuple[JsonRpcEndpoint, list[BaseRoute]]:
    """The JSON-RPC endpoint and what every app serves: A2A, its card, health and metrics (the gateway
    adds its own gauges: credits)."""
    rpc = JsonRpcEndpoint(service, core.metrics, core.settings.max_body_bytes, authn=core.authn, cards=cards)

    async def ready() -> bool:
        return await db.is_reachable(core.engine)

    async def gauges() -> dict[str, tuple[str, dict[str, float]]]:
        by_state = await core.repo.count_by_state()
        delivery = core.delivery
        extra = await more_gauges() if more_gauges is not None else {}
        return {
            **extra,
            "a2a_tasks": ("state", {k: float(v) for k, v in by_state.items()}),
            "a2a_live_tasks": ("", {"": float(service.live_count())}),
            "a2a_push_delivered_total": ("", {"": float(delivery.delivered)}),
            "a2a_push_failed_total": ("", {"": float(delivery.failed)}),
            "a2a_push_retried_total": ("", {"": float(delivery.retried)}),
            "a2a_push_dropped_total": ("", {"": float(delivery.dropped)}),
        }

    metrics = MetricsEndpoint(core.metrics, gauges)
    routes: list[BaseRoute] = build_routes(rpc, cards, HealthEndpoints(ready), metrics.serve)
    return rpc, routes
