"""Composition root: build every service and adapter, the routes and the lifespan."""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response

from a2a_gateway.agent import AgentDefinition
from a2a_gateway.api.cards import CardEndpoint
from a2a_gateway.api.health import HealthEndpoints
from a2a_gateway.api.jsonrpc import JsonRpcEndpoint
from a2a_gateway.api.metrics import Metrics
from a2a_gateway.api.middleware import RequestLogMiddleware
from a2a_gateway.api.principal import Authenticator
from a2a_gateway.api.proxy_cards import ProxyCards
from a2a_gateway.api.rate_limiter import RateLimiter, parse_limit
from a2a_gateway.api.routes import build_routes, gateway_routes
from a2a_gateway.auth.ports import IdentityStores
from a2a_gateway.auth.rate_limit import MemoryRateLimitStore
from a2a_gateway.auth.service import AuthService
from a2a_gateway.auth.signing import NonceStore
from a2a_gateway.auth.tokens import AccessTokens
from a2a_gateway.outbound.a2a_client import A2AClient
from a2a_gateway.outbound.card_fetcher import CardFetcher
from a2a_gateway.outbound.gateway_registrar import GatewayRegistrar
from a2a_gateway.outbound.health_prober import HealthProber
from a2a_gateway.outbound.lean_http import LeanHttp
from a2a_gateway.outbound.push_notifier import WebhookNotifier
from a2a_gateway.outbound.router import Router, RoutingAgent
from a2a_gateway.outbound.ssrf import GuardedTransport, Resolver, SsrfGuard
from a2a_gateway.outbound.webhook_delivery import WebhookDelivery
from a2a_gateway.protocol import v1
from a2a_gateway.protocol.card import build_card
from a2a_gateway.registry.discover_skill import discover_skill
from a2a_gateway.registry.service import RegistryService
from a2a_gateway.settings import Settings
from a2a_gateway.storage import engine as db
from a2a_gateway.storage.agent_repository import SqlAgentRepository
from a2a_gateway.storage.call_log import SqlCallLog
from a2a_gateway.storage.identity_repository import (
    SqlApiKeyRepository,
    SqlLoginFailures,
    SqlRefreshTokenRepository,
    SqlUserRepository,
)
from a2a_gateway.storage.redis_store import RedisNonceStore, RedisRateLimitStore
from a2a_gateway.storage.redis_store import connect as connect_redis
from a2a_gateway.storage.secrets import load_or_create
from a2a_gateway.storage.task_repository import SqlTaskRepository
from a2a_gateway.tasks.broker import TaskEventBroker
from a2a_gateway.tasks.service import TaskService

log = logging.getLogger(__name__)
RPC_PATH = "/a2a"
CARD_TEMPLATE = Path(__file__).resolve().parent.parent / "well-known" / "agent-card.json"


def load_card_template(path: Path = CARD_TEMPLATE) -> dict[str, Any]:
    """The gateway's card template (identity fields; interfaces and capabilities are filled in)."""
    loaded = orjson.loads(path.read_bytes())
    if not isinstance(loaded, dict):
        raise ValueError(f"{path} must hold a JSON object")
    return loaded


def agent_template(agent: AgentDefinition) -> dict[str, Any]:
    """A card template for an agent built with the kit, from its definition."""
    template: dict[str, Any] = {
        "name": agent.name,
        "description": agent.description,
        "version": agent.version,
        "defaultInputModes": agent.default_input_modes,
        "defaultOutputModes": agent.default_output_modes,
    }
    if agent.provider is not None:
        template["provider"] = agent.provider.wire()
    if agent.documentation_url:
        template["documentationUrl"] = agent.documentation_url
    return template


def build_auth(settings: Settings, engine: AsyncEngine, nonces: NonceStore | None = None) -> AuthService:
    """The identity service with its SQL repositories and the server secrets."""
    jwt_key = settings.jwt_secret.get_secret_value().encode() if settings.jwt_secret else None
    pepper = settings.key_pepper.get_secret_value().encode() if settings.key_pepper else None
    stores = IdentityStores(
        SqlUserRepository(engine),
        SqlApiKeyRepository(engine),
        SqlRefreshTokenRepository(engine),
        SqlLoginFailures(engine),
    )
    return AuthService(
        stores,
        AccessTokens(
            jwt_key or load_or_create(settings.data_dir, "jwt-signing-key"),
            ttl_seconds=settings.access_token_ttl_seconds,
        ),
        pepper or load_or_create(settings.data_dir, "api-key-pepper"),
        nonces=nonces,
        refresh_ttl=timedelta(days=settings.refresh_token_ttl_days),
    )


def build_outbound(
    settings: Settings, transport: httpx.AsyncBaseTransport | None, resolver: Resolver | None
) -> tuple[SsrfGuard, httpx.AsyncClient, WebhookDelivery, WebhookNotifier | None]:
    """The one shared outbound client (behind the SSRF guard) and the webhook deliverer."""
    guard = SsrfGuard(settings.outbound_allowlist, resolver)
    client = httpx.AsyncClient(
        transport=GuardedTransport(guard, transport),
        timeout=httpx.Timeout(settings.push_timeout_seconds),
        follow_redirects=False,
    )
    delivery = WebhookDelivery(
        client,
        timeout=settings.push_timeout_seconds,
        max_attempts=settings.push_max_attempts,
        base_backoff=settings.push_backoff_seconds,
    )
    notifier = WebhookNotifier(guard, delivery) if settings.push_notifications else None
    return guard, client, delivery, notifier


def build_registrar(
    settings: Settings, agent: AgentDefinition, client: httpx.AsyncClient
) -> GatewayRegistrar | None:
    """For a kit agent given a gateway URL and key: self-registration and heartbeats."""
    if not settings.gateway_url or settings.gateway_key is None:
        return None
    return GatewayRegistrar(
        client,
        settings.gateway_url,
        settings.gateway_key.get_secret_value(),
        agent=agent,
        public_url=settings.public_url,
        interval=settings.heartbeat_seconds,
    )


def build_registry(
    settings: Settings, engine: AsyncEngine, guard: SsrfGuard, client: httpx.AsyncClient
) -> RegistryService:
    """The agent registry with its SQL store, the SSRF guard and the card fetcher."""
    return RegistryService(
        SqlAgentRepository(engine),
        guard,
        CardFetcher(client, settings.push_timeout_seconds),
        offline_after_seconds=settings.agent_offline_after_seconds,
    )


def build_authenticator(
    settings: Settings, engine: AsyncEngine, rate_limits: bool
) -> tuple[Authenticator, Redis | None]:
    """Credentials, budgets and signature nonces; budgets and nonces go to Redis when a URL is configured."""
    redis = connect_redis(settings.redis_url) if settings.redis_url else None
    limits = {name: parse_limit(spec) for name, spec in settings.rate_limits.items()} if rate_limits else {}
    store = RedisRateLimitStore(redis, settings.redis_prefix) if redis is not None else MemoryRateLimitStore()
    nonces = RedisNonceStore(redis, settings.redis_prefix) if redis is not None else None
    auth = build_auth(settings, engine, nonces)
    return Authenticator(
        auth, settings.open_gateway, RateLimiter(store, limits), settings.max_body_bytes
    ), redis


@dataclass(slots=True)
class Runtime:
    """What starts with the app and stops with it, in order."""

    engine: AsyncEngine
    migrate: bool
    service: TaskService
    delivery: WebhookDelivery
    repo: SqlTaskRepository
    client: httpx.AsyncClient
    redis: Redis | None
    registrar: GatewayRegistrar | None
    router: Router | None
    prober: HealthProber | None = None

    async def start(self) -> None:
        """Migrate, resume relayed tasks and fail other tasks left in flight, start background work."""
        if self.migrate:
            await db.upgrade(self.engine)
        if self.router is not None:
            resumed, failed = await self.router.recover(self.service)
            if resumed:
                log.info("resumed %d relayed tasks after a restart", resumed)
        else:
            failed = await self.service.recover()
        if failed:
            log.warning("marked %d in-flight tasks failed after a restart", failed)
        await self.delivery.start()
        if self.registrar is not None:
            await self.registrar.start()
        if self.prober is not None:
            await self.prober.start()
        # Start-up objects (modules, tables, compiled statements) never die: moving them out of the
        # collector's view keeps full collections short, which trims the latency tail under load.
        gc.collect()
        gc.freeze()

    async def stop(self) -> None:
        """End tasks and streams, drain deliveries and writes, close connections."""
        if self.registrar is not None:
            await self.registrar.close()
        if self.prober is not None:
            await self.prober.close()
        if self.router is not None:
            await self.router.close()
        await self.service.shutdown()
        if self.router is not None:
            await self.router.release()
        await self.delivery.close()
        await self.repo.close()
        await self.client.aclose()
        if self.redis is not None:
            await self.redis.aclose()
        await self.engine.dispose()


def create_app(
    settings: Settings,
    agent: AgentDefinition,
    *,
    template: dict[str, Any] | None = None,
    outbound_transport: httpx.AsyncBaseTransport | None = None,
    resolver: Resolver | None = None,
    auto_migrate: bool | None = None,
    rate_limits: bool = True,
) -> Starlette:
    """The ASGI app serving ``agent``'s skills over A2A; the gateway and every kit agent use this."""
    engine = db.create_engine(settings.resolved_database_url())
    migrate = auto_migrate if auto_migrate is not None else engine.dialect.name == "sqlite"
    repo = SqlTaskRepository(engine)
    broker = TaskEventBroker(settings.stream_queue_size)
    guard, client, delivery, notifier = build_outbound(settings, outbound_transport, resolver)
    registry = build_registry(settings, engine, guard, client)
    router: Router | None = None
    calls = SqlCallLog(engine, repo.writer)
    if template is None:
        # The gateway itself (not a kit agent) serves registry discovery as a skill and routes messages
        # that name an agent to it.
        # The lean client speaks to real sockets; an injected (test) transport keeps every call on httpx.
        lean = LeanHttp(guard) if outbound_transport is None else None
        router = Router(registry, A2AClient(client, lean=lean), calls)
        agent = replace(agent, skills=[*agent.skills, discover_skill(registry)])
        agent = RoutingAgent.around(agent, router)
    service = TaskService(agent, repo, broker, notifier, history_default=settings.history_default_length)
    authn, redis = build_authenticator(settings, engine, rate_limits)
    registrar = build_registrar(settings, agent, client) if template is not None else None
    metrics = Metrics()
    card = build_card(
        template if template is not None else load_card_template(),
        settings.public_url.rstrip("/") + RPC_PATH,
        [s.card_entry() for s in agent.skills],
        v1.AgentCapabilities(
            streaming=True, push_notifications=settings.push_notifications, extended_agent_card=True
        ),
        anonymous_allowed=settings.open_gateway,
    )

    async def database_ready() -> bool:
        try:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            return True
        except Exception:
            log.warning("database readiness check failed", exc_info=True)
            return False

    async def metrics_endpoint(request: Request) -> Response:
        by_state = await repo.count_by_state()
        gauges = {
            "a2a_tasks": ("state", {k: float(v) for k, v in by_state.items()}),
            "a2a_live_tasks": ("", {"": float(service.live_count())}),
            "a2a_push_delivered_total": ("", {"": float(delivery.delivered)}),
            "a2a_push_failed_total": ("", {"": float(delivery.failed)}),
            "a2a_push_retried_total": ("", {"": float(delivery.retried)}),
            "a2a_push_dropped_total": ("", {"": float(delivery.dropped)}),
        }
        return Response(metrics.render(gauges), media_type="text/plain; version=0.0.4")

    runtime = Runtime(engine, migrate, service, delivery, repo, client, redis, registrar, router)
    if template is None and settings.health_check_seconds > 0:
        cards_in = CardFetcher(client, settings.push_timeout_seconds)
        runtime.prober = HealthProber(registry, cards_in, A2AClient(client), settings.health_check_seconds)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    cards = CardEndpoint(card, settings.card_max_age)
    rpc = JsonRpcEndpoint(service, metrics, settings.max_body_bytes, authn=authn, cards=cards)
    routes = build_routes(rpc, cards, HealthEndpoints(database_ready), metrics_endpoint)
    if template is None:
        # Identity and the registry are the gateway's; a kit agent serves only A2A, its card and health.
        proxy_cards = ProxyCards(
            registry,
            settings.public_url,
            settings.push_notifications,
            settings.open_gateway,
            settings.card_max_age,
        )
        routes += gateway_routes(rpc, authn, registry, proxy_cards, service, calls=calls)
    app = Starlette(
        routes=routes, lifespan=lifespan, middleware=[Middleware(RequestLogMiddleware, metrics=metrics)]
    )
    app.state.service = service
    app.state.registry = registry
    return app


def create_agent_app(agent: AgentDefinition, settings: Settings, **kwargs: Any) -> Starlette:
    """Serve an agent built with the kit: its own card, JSON-RPC endpoint and task store.

    Callers' budgets are the gateway's business, so a kit agent applies no rate limits unless asked.
    """
    kwargs.setdefault("rate_limits", False)
    return create_app(settings, agent, template=agent_template(agent), **kwargs)
