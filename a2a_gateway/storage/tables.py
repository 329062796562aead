"""The database schema (the migrations create exactly this)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    false,
    text,
    true,
)

metadata = MetaData()

tasks = Table(
    "tasks",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("context_id", String(255), nullable=False),
    Column("owner", String(255), nullable=False),
    Column("state", String(32), nullable=False),
    Column("status", Text, nullable=False),
    # Microseconds since the epoch: sorts and compares the same way on every database.
    Column("status_ts", BigInteger, nullable=False),
    Column("metadata", Text, nullable=True),
    Column("created_us", BigInteger, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
    # The skill and request a task started from (JSON), so a paused task can be answered after a restart.
    Column("origin", Text, nullable=True),
    # The gateway process that runs the task (NULL: a single-process gateway), and the number of the
    # task's last event this row reflects (decision 0020).
    Column("holder", String(64), nullable=True),
    Column("last_seq", BigInteger, nullable=False, server_default="0"),
    Index("ix_tasks_owner_status_ts", "owner", "status_ts", "id"),
    Index("ix_tasks_context_id", "context_id"),
    Index("ix_tasks_state", "state"),
    Index("ix_tasks_holder_state", "holder", "state"),
)

task_messages = Table(
    "task_messages",
    metadata,
    Column("task_id", String(64), ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("message", Text, nullable=False),
)

task_artifacts = Table(
    "task_artifacts",
    metadata,
    Column("task_id", String(64), ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True),
    Column("artifact_id", String(255), primary_key=True),
    Column("seq", Integer, nullable=False),
    Column("artifact", Text, nullable=False),
)

task_push_configs = Table(
    "task_push_configs",
    metadata,
    Column("task_id", String(64), ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True),
    Column("id", String(255), primary_key=True),
    Column("config", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("email", String(254), nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("created_us", BigInteger, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("owner_id", String(255), nullable=False, index=True),
    Column("kind", String(16), nullable=False),
    Column("name", String(100), nullable=False),
    Column("lookup", String(32), nullable=False, index=True),
    Column("hashed", String(64), nullable=False, unique=True),
    Column("scopes", Text, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("expires_us", BigInteger, nullable=True),
    Column("revoked_us", BigInteger, nullable=True),
    Column("agent_id", String(64), nullable=True, index=True),
    # Credits a nex_ user key's priced calls may hold or spend per UTC day (null: no cap); see
    # key_daily_spend with the ledger.
    Column("daily_spend_cap", BigInteger, nullable=True),
)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("family_id", String(64), nullable=False, index=True),
    Column("user_id", String(64), nullable=False),
    Column("issued_us", BigInteger, nullable=False),
    Column("expires_us", BigInteger, nullable=False),
    Column("used_us", BigInteger, nullable=True),
    Column("revoked_us", BigInteger, nullable=True),
)

login_failures = Table(
    "login_failures",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("identifier", String(254), nullable=False, index=True),
    Column("at_us", BigInteger, nullable=False),
)

agents = Table(
    "agents",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("owner_id", String(255), nullable=False, index=True),
    Column("name", String(100), nullable=False),
    Column("description", Text, nullable=False),
    Column("endpoint", String(2048), nullable=False),
    Column("skills", Text, nullable=False),
    Column("tags", Text, nullable=False),
    Column("category", String(100), nullable=True, index=True),
    Column("metadata", Text, nullable=False),
    Column("price_per_task", BigInteger, nullable=False),
    Column("protocol_version", String(8), nullable=False),
    Column("reported_status", String(16), nullable=False),
    Column("last_heartbeat_us", BigInteger, nullable=True),
    Column("trust_score", Float, nullable=False),
    Column("search_text", Text, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
    Column("card_url", String(2048), nullable=True),
    Column("streaming", Boolean, nullable=False, server_default=true()),
    Column("call_failing", Boolean, nullable=False, server_default=false()),
    Column("latency_ms", Float, nullable=True),
    Column("probed_us", BigInteger, nullable=True),
    Column("probe_ok", Boolean, nullable=True),
)

agent_tags = Table(
    "agent_tags",
    metadata,
    Column("agent_id", String(64), ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True),
    Column("tag", String(50), primary_key=True),
    Index("ix_agent_tags_tag", "tag", "agent_id"),
)

routed_calls = Table(
    "routed_calls",
    metadata,
    Column("task_id", String(64), primary_key=True),
    Column("requester", String(255), nullable=False, index=True),
    Column("agent_id", String(64), nullable=False, index=True),
    Column("skill_id", String(100), nullable=True),
    Column("upstream_task_id", String(255), nullable=True),
    Column("upstream_context_id", String(255), nullable=True),
    Column("started_us", BigInteger, nullable=False),
    Column("first_response_ms", Float, nullable=True),
    Column("finished_us", BigInteger, nullable=True),
    Column("outcome", String(32), nullable=True, index=True),
    Column("error", Text, nullable=True),
)

signing_keys = Table(
    "signing_keys",
    metadata,
    Column("kid", String(64), primary_key=True),
    Column("algorithm", String(16), nullable=False),
    # Base64 of the AES-256-GCM nonce and ciphertext of the PKCS#8 PEM: unreadable without the pepper.
    Column("private_key", Text, nullable=False),
    Column("public_jwk", Text, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("retires_us", BigInteger, nullable=True),
)

# --- the credit ledger (billing): counters per account, immutable transfers, one hold per task ---------

LEDGER_ACCOUNT_KINDS = (
    "'user_wallet', 'user_promo', 'escrow', 'platform_revenue', 'purchases_clearing', 'promo_grants'"
)
LEDGER_NO_OVERDRAFT = "'user_wallet', 'user_promo', 'escrow', 'platform_revenue'"
LEDGER_TRANSFER_KINDS = (
    "'purchase', 'grant', 'hold', 'capture_payout', 'capture_fee', 'release', 'adjustment'"
)

ledger_accounts = Table(
    "ledger_accounts",
    metadata,
    Column("id", String(300), primary_key=True),  # wallet:{user}, promo:{user}, escrow:{user}, or the kind
    Column("kind", String(32), nullable=False),
    Column("owner_id", String(255), nullable=True),
    Column("debits_pending", BigInteger, nullable=False),
    Column("debits_posted", BigInteger, nullable=False),
    Column("credits_pending", BigInteger, nullable=False),
    Column("credits_posted", BigInteger, nullable=False),
    CheckConstraint(f"kind IN ({LEDGER_ACCOUNT_KINDS})", name="ck_ledger_accounts_kind"),
    CheckConstraint(
        "debits_pending >= 0 AND debits_posted >= 0 AND credits_pending >= 0 AND credits_posted >= 0",
        name="ck_ledger_accounts_counters",
    ),
    # The database, not only Python, keeps wallets, promo accounts, escrow and revenue from going negative.
    CheckConstraint(
        f"kind NOT IN ({LEDGER_NO_OVERDRAFT}) OR debits_posted + debits_pending <= credits_posted",
        name="ck_ledger_accounts_no_overdraft",
    ),
)

ledger_transfers = Table(
    "ledger_transfers",
    metadata,
    # The order transfers were written in (running balances); SQLite wants INTEGER for its rowid alias.
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("id", String(36), nullable=False, unique=True),  # uuid5 of reference: the idempotency key
    Column("reference", String(400), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("debit_account_id", String(300), ForeignKey("ledger_accounts.id"), nullable=False),
    Column("credit_account_id", String(300), ForeignKey("ledger_accounts.id"), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("task_id", String(64), nullable=True),
    Column("pending_id", String(36), nullable=True),  # the hold leg a release voids
    Column("checkout_session_id", String(255), nullable=True),
    Column("event_id", String(255), nullable=True),
    Column("description", Text, nullable=True),
    Column("created_us", BigInteger, nullable=False),
    Column("budget_id", String(64), nullable=True),  # a run budget's own legs and releases
    CheckConstraint("amount > 0", name="ck_ledger_transfers_amount"),
    CheckConstraint("debit_account_id <> credit_account_id", name="ck_ledger_transfers_accounts"),
    CheckConstraint(f"kind IN ({LEDGER_TRANSFER_KINDS})", name="ck_ledger_transfers_kind"),
    Index("ix_ledger_transfers_debit", "debit_account_id", "created_us", "seq"),
    Index("ix_ledger_transfers_credit", "credit_account_id", "created_us", "seq"),
    # One purchase per checkout session and per event. These and the balance totals' indexes are
    # partial: only purchases and adjustments enter them, so holds and captures pay nothing for them.
    Index(
        "uq_ledger_transfers_session",
        "checkout_session_id",
        unique=True,
        sqlite_where=text("checkout_session_id IS NOT NULL"),
        postgresql_where=text("checkout_session_id IS NOT NULL"),
    ),
    Index(
        "uq_ledger_transfers_event",
        "event_id",
        unique=True,
        sqlite_where=text("event_id IS NOT NULL"),
        postgresql_where=text("event_id IS NOT NULL"),
    ),
    Index(
        "ix_ledger_transfers_purchases",
        "credit_account_id",
        sqlite_where=text("kind = 'purchase'"),
        postgresql_where=text("kind = 'purchase'"),
    ),
    Index(
        "ix_ledger_transfers_adjustments",
        "kind",
        sqlite_where=text("kind = 'adjustment'"),
        postgresql_where=text("kind = 'adjustment'"),
    ),
)

ledger_holds = Table(
    "ledger_holds",
    metadata,
    Column("task_id", String(64), primary_key=True),  # one hold per task
    Column("payer_user_id", String(255), nullable=False),
    Column("payee_user_id", String(255), nullable=False),
    Column("price", BigInteger, nullable=False),
    Column("fee_bps", Integer, nullable=False),
    Column("promo", BigInteger, nullable=False),
    Column("purchased", BigInteger, nullable=False),
    Column("state", String(16), nullable=False),  # pending -> captured | released, once
    Column("created_us", BigInteger, nullable=False),
    Column("expires_us", BigInteger, nullable=True),
    Column("settled_us", BigInteger, nullable=True),
    # A subscription's hold is captured when it starts streaming, whatever state its task ends in.
    Column("subscription", Boolean, nullable=False, server_default=false()),
    # The capped key whose key_daily_spend counter (of the day the hold was made) counts this hold.
    Column("cap_key_id", String(64), nullable=True),
    # The run budget a workflow step's hold was carved out of (ledger_budgets).
    Column("budget_id", String(64), nullable=True),
    CheckConstraint(
        "price > 0 AND promo >= 0 AND purchased >= 0 AND promo + purchased = price",
        name="ck_ledger_holds_amounts",
    ),
    CheckConstraint("fee_bps >= 0 AND fee_bps <= 10000", name="ck_ledger_holds_fee"),
    CheckConstraint("state IN ('pending', 'captured', 'released')", name="ck_ledger_holds_state"),
    Index("ix_ledger_holds_payer", "payer_user_id"),
    Index(
        "ix_ledger_holds_expiry",
        "expires_us",
        sqlite_where=text("state = 'pending'"),
        postgresql_where=text("state = 'pending'"),
    ),
)

ledger_budgets = Table(
    "ledger_budgets",
    metadata,
    # One workflow run's credits for all its steps: opened as one hold, steps' holds carved out of it.
    Column("run_id", String(64), primary_key=True),
    Column("payer_user_id", String(255), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("promo", BigInteger, nullable=False),
    Column("purchased", BigInteger, nullable=False),
    Column("remaining_promo", BigInteger, nullable=False),
    Column("remaining_purchased", BigInteger, nullable=False),
    Column("refunded", BigInteger, nullable=False),  # what closing gave back
    Column("state", String(16), nullable=False),  # open -> closed, once
    Column("created_us", BigInteger, nullable=False),
    Column("closed_us", BigInteger, nullable=True),
    Column("cap_key_id", String(64), nullable=True),
    CheckConstraint(
        "amount > 0 AND promo >= 0 AND purchased >= 0 AND promo + purchased = amount",
        name="ck_ledger_budgets_amounts",
    ),
    CheckConstraint(
        "remaining_promo >= 0 AND remaining_purchased >= 0 AND remaining_promo <= promo "
        "AND remaining_purchased <= purchased AND refunded >= 0 AND refunded <= amount",
        name="ck_ledger_budgets_remaining",
    ),
    CheckConstraint(
        "state = 'open' OR (state = 'closed' AND remaining_promo = 0 AND remaining_purchased = 0)",
        name="ck_ledger_budgets_state",
    ),
)

key_daily_spend = Table(
    "key_daily_spend",
    metadata,
    # What the holds made with a capped key on one UTC day hold or have captured: a hold adds its price
    # (refused past the key's cap), a release takes it off, a capture leaves it.
    Column("key_id", String(64), primary_key=True),
    Column("day", Integer, primary_key=True),  # days since 1970-01-01, UTC
    Column("held", BigInteger, nullable=False),
    CheckConstraint("held >= 0", name="ck_key_daily_spend_held"),
)

# --- trust: what the score is computed from (one evidence row and one rating per task), the last score --

TRUST_OUTCOMES = "'success', 'agent_failure', 'neutral'"

trust_evidence = Table(
    "trust_evidence",
    metadata,
    Column("task_id", String(64), primary_key=True),  # a task's end counts once, however often reported
    Column("agent_id", String(64), nullable=False),
    Column("requester", String(255), nullable=False),
    Column("agent_owner", String(255), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("at_us", BigInteger, nullable=False),
    Column("latency_ms", Float, nullable=True),
    Column("credit_weight", Float, nullable=False),
    CheckConstraint(f"outcome IN ({TRUST_OUTCOMES})", name="ck_trust_evidence_outcome"),
    CheckConstraint("credit_weight > 0 AND credit_weight <= 1", name="ck_trust_evidence_weight"),
    Index("ix_trust_evidence_agent_at", "agent_id", "at_us"),
)

trust_ratings = Table(
    "trust_ratings",
    metadata,
    Column("task_id", String(64), primary_key=True),  # one rating per task, even when two race
    Column("agent_id", String(64), nullable=False),
    Column("requester", String(255), nullable=False),
    Column("agent_owner", String(255), nullable=False),
    Column("rating", Integer, nullable=False),
    Column("comment", Text, nullable=False),
    Column("at_us", BigInteger, nullable=False),
    Column("credibility", Float, nullable=False),
    CheckConstraint("rating >= 1 AND rating <= 5", name="ck_trust_ratings_rating"),
    CheckConstraint("credibility >= 0 AND credibility <= 1", name="ck_trust_ratings_credibility"),
    Index("ix_trust_ratings_agent_at", "agent_id", "at_us"),
)

trust_scores = Table(
    "trust_scores",
    metadata,
    # The newest computed score of an agent; agents.trust_score mirrors trust_score for discovery. The
    # instant it was computed at keeps a slower, older computation from overwriting a newer one.
    Column("agent_id", String(64), primary_key=True),
    Column("trust_score", Float, nullable=False),
    Column("rank_key", Float, nullable=False),
    Column("computed_us", BigInteger, nullable=False),
)

# --- idempotency: the stored answer of a request made with an Idempotency-Key (24 h, Stripe's semantics) --

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    # One claim per principal and key: the primary key is what makes a claim atomic.
    Column("principal_id", String(255), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("request_hash", String(64), nullable=False),  # sha256 of method, path and body
    Column("state", String(16), nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("response_body", Text, nullable=True),
    Column("created_us", BigInteger, nullable=False),
    CheckConstraint("state IN ('in_progress', 'done')", name="ck_idempotency_keys_state"),
    Index("ix_idempotency_keys_created", "created_us"),
)


# --- workflows: saved DAGs, their runs (state saved at every transition) and the runs' events ----------

workflows = Table(
    "workflows",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("owner_id", String(255), nullable=False),
    Column("name", String(100), nullable=False),
    Column("description", Text, nullable=False),
    Column("steps", Text, nullable=False),  # JSON: the steps as saved, prices included
    Column("created_us", BigInteger, nullable=False),
    Index("ix_workflows_owner_created", "owner_id", "created_us"),
)

workflow_runs = Table(
    "workflow_runs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("workflow_id", String(36), ForeignKey("workflows.id"), nullable=False),
    Column("owner_id", String(255), nullable=False),
    Column("status", String(16), nullable=False),
    Column("steps", Text, nullable=False),  # JSON: each step's progress
    Column("inputs", Text, nullable=False),  # JSON: per-step input overrides
    Column("budget", BigInteger, nullable=False),
    Column("seq", Integer, nullable=False),  # the last event's number: saves are conditional on it
    Column("error", Text, nullable=True),
    Column("created_us", BigInteger, nullable=False),
    Column("ended_us", BigInteger, nullable=True),
    CheckConstraint(
        "status IN ('running', 'completed', 'failed', 'canceled')", name="ck_workflow_runs_status"
    ),
    Index("ix_workflow_runs_workflow_created", "workflow_id", "created_us"),
    Index("ix_workflow_runs_status", "status"),
)

workflow_run_events = Table(
    "workflow_run_events",
    metadata,
    Column("run_id", String(36), ForeignKey("workflow_runs.id"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("at_us", BigInteger, nullable=False),
    Column("data", Text, nullable=False),  # JSON
)

# --- leases: one holder at a time per name until it expires (workflow runs; tasks later) -------------

leases = Table(
    "leases",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("holder", String(64), nullable=False),
    Column("expires_us", BigInteger, nullable=False),
)
