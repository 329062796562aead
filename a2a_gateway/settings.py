"""Configuration from environment variables (prefix ``A2A_GATEWAY_``) and an optional ``.env`` file."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob of the gateway; docs/operations.md lists them all."""

    model_config = SettingsConfigDict(env_prefix="A2A_GATEWAY_", env_file=".env", extra="ignore")

    data_dir: Path = Field(default=Path("data"), description="Where the embedded database lives.")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy async URL; default sqlite+aiosqlite in data_dir."
    )
    public_url: str = Field(
        default="http://127.0.0.1:8000", description="Base URL clients use to reach the gateway."
    )
    host: str = "127.0.0.1"
    port: int = 8000
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses or CIDRs of reverse proxies whose X-Forwarded-For/-Proto are believed.",
    )
    header_timeout_seconds: float = Field(
        default=10.0, gt=0, description="A connection's request line and headers must arrive within this."
    )
    max_connections_per_client: int = Field(
        default=256, ge=1, description="Open connections allowed from one client address."
    )
    drain_seconds: int = Field(
        default=10,
        ge=1,
        le=600,
        description="How long a stopping process waits for calls in flight before cancelling them.",
    )
    workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="serve: processes on one listening socket; more than 1 needs PostgreSQL and Redis.",
    )
    log_level: str = "INFO"
    log_json: bool = False
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    card_max_age: int = Field(default=300, ge=0, description="Cache-Control max-age of agent cards.")
    outbound_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description="Calls to agents: connect and send timeout, unary answers, card fetches and probes.",
    )
    upstream_http: Literal["lean", "pooled"] = Field(
        default="lean",
        description="Client of unary calls to agents: the hand-written HTTP/1.1 client or httpcore's pool.",
    )
    upstream_max_body_bytes: int = Field(
        default=16 * 1024 * 1024, ge=1024, description="Largest answer body read from an agent."
    )
    upstream_max_line_bytes: int = Field(
        default=4 * 1024 * 1024, ge=1024, description="Largest SSE line, and SSE event, read from an agent."
    )
    push_notifications: bool = True
    push_timeout_seconds: float = Field(default=10.0, gt=0)
    push_max_attempts: int = Field(default=5, ge=1)
    push_backoff_seconds: float = Field(default=0.5, ge=0)
    outbound_allowlist: list[str] = Field(
        default_factory=list, description="Hosts, IPs or CIDRs the SSRF guard lets through."
    )
    history_default_length: int | None = Field(
        default=None, ge=0, description="History returned when a request gives no historyLength."
    )
    stream_queue_size: int = Field(default=1000, ge=1, description="Events buffered per subscriber.")
    task_max_artifacts: int = Field(
        default=1000,
        ge=1,
        description="Artifacts one task may hold; past it the task fails (not subscriptions).",
    )
    task_max_history: int = Field(
        default=1000, ge=1, description="Messages one task's history may hold; past it the task fails."
    )
    task_max_bytes: int = Field(
        default=16 * 1024 * 1024, ge=1024, description="Bytes of artifacts and history one task may store."
    )
    subscription_window: int = Field(
        default=100, ge=1, description="Latest artifacts (and history messages) a subscription task keeps."
    )

    open_gateway: bool = Field(
        default=True, description="Accept anonymous JSON-RPC calls (all skills are free until billing lands)."
    )
    key_pepper: SecretStr | None = Field(
        default=None,
        description="HMAC key of stored API-key hashes and the key that encrypts signing keys; generated.",
    )
    token_issuer: str | None = Field(
        default=None,
        description="The iss of access tokens and caller assertions; default public_url.",
    )
    assertion_ttl_seconds: int = Field(
        default=60, ge=5, le=3600, description="Lifetime of the caller assertion on a relayed call."
    )
    access_token_ttl_seconds: int = Field(default=900, ge=60, le=86_400)
    refresh_token_ttl_days: int = Field(default=30, ge=1, le=365)

    platform_fee_bps: int = Field(
        default=500, ge=0, le=10_000, description="The platform's share of a captured price, in basis points."
    )
    paused_hold_seconds: float = Field(
        default=3600.0,
        gt=0,
        description="A priced task waiting for input longer than this is canceled and its hold released.",
    )
    trust_refresh_seconds: float = Field(
        default=2.0, gt=0, description="Stored trust scores follow new evidence within this many seconds."
    )
    workflow_takeover_seconds: float = Field(
        default=15.0,
        ge=0,
        description="Look this often for open workflow runs no gateway process drives (their lease "
        "expired) and take them over; 0: only at start.",
    )
    workflow_lease_seconds: float = Field(
        default=30.0,
        ge=3,
        description="How long a process's lease on a workflow run lasts unless renewed (every third of it).",
    )
    process_lease_seconds: float = Field(
        default=15.0,
        ge=3,
        description="With several processes on one PostgreSQL and Redis: how long a process's lease lasts "
        "unless renewed (every third of it); once it has expired, another process takes its tasks over.",
    )
    hold_sweep_seconds: float = Field(
        default=60.0,
        ge=0,
        description="Settle holds nobody else will (and end paid tasks paused too long) this often; 0: off.",
    )
    stripe_secret_key: SecretStr | None = Field(
        default=None, description="Stripe API secret key (sk_...); checkout is off without it."
    )
    stripe_webhook_secret: SecretStr | None = Field(
        default=None, description="Signing secret of the Stripe webhook endpoint (whsec_...)."
    )
    stripe_api_base: str = Field(default="https://api.stripe.com", description="Stripe's API base URL.")
    stripe_timeout_seconds: float = Field(default=10.0, gt=0, description="Timeout of one Stripe API call.")
    checkout_success_url: str | None = Field(
        default=None, description="Where Stripe sends a buyer after paying; default public_url + /billing."
    )
    checkout_cancel_url: str | None = Field(
        default=None, description="Where Stripe sends a buyer who cancels; default public_url + /billing."
    )

    rate_limits: dict[str, str] = Field(
        default_factory=lambda: {
            "tasks:create": "30/minute",
            "dashboard:tasks": "20/minute",
            "connect": "60/minute",
            "auth:login": "30/minute",
            "auth:login:account": "10/minute",
            "auth:register": "20/hour",
            "auth:introspect": "300/minute",
        },
        description='Budgets per caller, e.g. {"tasks:create": "30/minute"}; an empty object turns them off.',
    )
    agent_offline_after_seconds: float = Field(
        default=120.0, gt=0, description="An agent without a heartbeat for this long is shown offline."
    )
    gateway_url: str | None = Field(
        default=None, description="Kit agents: the gateway to register with (needs gateway_key)."
    )
    gateway_key: SecretStr | None = Field(
        default=None, description="Kit agents: the owner's key used to register and heartbeat."
    )
    heartbeat_seconds: float = Field(default=30.0, gt=0, description="Kit agents: heartbeat interval.")
    agent_id: str | None = Field(
        default=None,
        description="Kit agents: this agent's id at the gateway, when it is not registered by gateway_key.",
    )
    agent_key: SecretStr | None = Field(
        default=None,
        description="Kit agents: this agent's nxk_ key (heartbeat, introspection); minted if unset.",
    )
    gateway_issuer: str | None = Field(
        default=None, description="Kit agents: the iss the gateway's tokens carry; default gateway_url."
    )
    require_gateway: bool = Field(
        default=False,
        description="Kit agents: refuse calls without a valid caller assertion (owner direct calls pass).",
    )
    direct_callers: list[str] = Field(
        default_factory=list,
        description="Kit agents: gateway user ids allowed to call directly when require_gateway is on.",
    )
    health_check_seconds: float = Field(
        default=0.0,
        ge=0,
        description="Gateway: probe every registered agent with a real A2A call this often; 0 turns it off.",
    )
    redis_url: str | None = Field(default=None, description="Share rate limits and nonces between processes.")
    redis_prefix: str = "a2a-gateway:"

    def issuer(self) -> str:
        """The issuer of the gateway's tokens: the setting, or the public URL without a trailing slash."""
        return (self.token_issuer or self.public_url).rstrip("/")

    def shared(self) -> bool:
        """Whether this process may be one of several behind one address: PostgreSQL for state and
        Redis for task events, limits and nonces (SQLite is one process's embedded database)."""
        return bool(self.redis_url) and self.resolved_database_url().startswith("postgresql")

    def resolved_database_url(self) -> str:
        """The configured database URL, or the embedded SQLite file in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'gateway.db').resolve()}"
