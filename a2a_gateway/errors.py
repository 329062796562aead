"""The gateway's one error hierarchy. Transport-free: api/errors.py maps each class to wire codes."""

from __future__ import annotations


class GatewayError(Exception):
    """Base of every error the gateway raises on purpose; its message is safe to show a caller."""

    reason = "GATEWAY_ERROR"
    default_message = "Gateway error"

    def __init__(self, message: str | None = None, *, metadata: dict[str, str] | None = None) -> None:
        self.message = message or self.default_message
        self.metadata: dict[str, str] = metadata or {}
        super().__init__(self.message)


# --- A2A protocol errors ---------------------------------------------------------------------------


class TaskNotFound(GatewayError):
    """The task (or push config) does not exist or is not visible to the caller."""

    reason = "TASK_NOT_FOUND"
    default_message = "Task not found"


class TaskNotCancelable(GatewayError):
    """The task is in a terminal state."""

    reason = "TASK_NOT_CANCELABLE"
    default_message = "Task cannot be canceled"


class PushNotificationNotSupported(GatewayError):
    """Push notifications are not served."""

    reason = "PUSH_NOTIFICATION_NOT_SUPPORTED"
    default_message = "Push Notification is not supported"


class UnsupportedOperation(GatewayError):
    """The operation is not supported for this task or agent."""

    reason = "UNSUPPORTED_OPERATION"
    default_message = "This operation is not supported"


class ContentTypeNotSupported(GatewayError):
    """A part's media type is not accepted."""

    reason = "CONTENT_TYPE_NOT_SUPPORTED"
    default_message = "Incompatible content types"


class InvalidAgentResponse(GatewayError):
    """An upstream agent answered with something that is not valid A2A."""

    reason = "INVALID_AGENT_RESPONSE"
    default_message = "Invalid agent response"


class ExtendedAgentCardNotConfigured(GatewayError):
    """The extended card is declared but not configured."""

    reason = "EXTENDED_AGENT_CARD_NOT_CONFIGURED"
    default_message = "Extended agent card is not configured"


class ExtensionSupportRequired(GatewayError):
    """A required extension was not activated by the client."""

    reason = "EXTENSION_SUPPORT_REQUIRED"
    default_message = "A required extension was not requested"


class VersionNotSupported(GatewayError):
    """The requested A2A protocol version is not served."""

    reason = "VERSION_NOT_SUPPORTED"
    default_message = "A2A version is not supported"


# --- request errors --------------------------------------------------------------------------------


class InvalidParams(GatewayError):
    """Request parameters are missing or malformed."""

    reason = "INVALID_PARAMS"
    default_message = "Invalid params"

    def __init__(
        self,
        message: str | None = None,
        *,
        violations: list[dict[str, str]] | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message, metadata=metadata)
        self.violations: list[dict[str, str]] = violations or []


class InvalidRequest(GatewayError):
    """The request is not a valid JSON-RPC request."""

    reason = "INVALID_REQUEST"
    default_message = "Invalid Request"


class ParseError(GatewayError):
    """The body is not valid JSON."""

    reason = "PARSE_ERROR"
    default_message = "Parse error"


class MethodNotFound(GatewayError):
    """The JSON-RPC method does not exist."""

    reason = "METHOD_NOT_FOUND"
    default_message = "Method not found"


class PayloadTooLarge(GatewayError):
    """The request body is over the configured limit."""

    reason = "PAYLOAD_TOO_LARGE"
    default_message = "Request body is too large"


# --- outbound errors -------------------------------------------------------------------------------


class OutboundRefused(GatewayError):
    """An outbound URL was refused by the SSRF guard."""

    reason = "OUTBOUND_REFUSED"
    default_message = "Destination address is not allowed"


class OutboundUnresolved(OutboundRefused):
    """The outbound host name does not resolve (yet); same wire form, so callers cannot probe DNS."""


class UpstreamUnavailable(GatewayError):
    """An upstream agent could not be reached or timed out."""

    reason = "UPSTREAM_UNAVAILABLE"
    default_message = "Upstream agent is unavailable"


class Unavailable(GatewayError):
    """The gateway cannot serve the request now (shutting down, database down)."""

    reason = "UNAVAILABLE"
    default_message = "Service unavailable"


# --- identity and access ---------------------------------------------------------------------------


class Unauthenticated(GatewayError):
    """No valid credentials were presented."""

    reason = "UNAUTHENTICATED"
    default_message = "Authentication required"


class Forbidden(GatewayError):
    """The caller is authenticated but lacks a scope or permission."""

    reason = "FORBIDDEN"
    default_message = "Insufficient permissions"


class NotFound(GatewayError):
    """A resource does not exist or is not visible to the caller (never 403, so ids cannot be probed)."""

    reason = "NOT_FOUND"
    default_message = "Not found"


class Conflict(GatewayError):
    """The request conflicts with existing state (for example an email already registered)."""

    reason = "CONFLICT"
    default_message = "Conflict"


class AccountLocked(GatewayError):
    """Too many failed logins; the account is locked for a while."""

    reason = "ACCOUNT_LOCKED"
    default_message = "Account temporarily locked"

    def __init__(self, message: str | None = None, *, retry_after: float = 0.0) -> None:
        super().__init__(message, metadata={"retryAfter": str(int(retry_after) + 1)})
        self.retry_after = retry_after


class RateLimited(GatewayError):
    """The caller's request budget is used up."""

    reason = "RATE_LIMITED"
    default_message = "Too many requests"

    def __init__(
        self, message: str | None = None, *, retry_after: float, limit: int, remaining: int = 0
    ) -> None:
        super().__init__(message, metadata={"retryAfter": str(max(1, round(retry_after)))})
        self.retry_after = retry_after
        self.limit = limit
        self.remaining = remaining


class InsufficientCredits(GatewayError):
    """The caller's wallet cannot cover a call's price: nothing was held and nothing was called."""

    reason = "INSUFFICIENT_CREDITS"
    default_message = "Not enough credits for this call"

    def __init__(self, message: str | None = None, *, price: int, available: int) -> None:
        super().__init__(message, metadata={"price": str(price), "available": str(available)})
        self.price = price
        self.available = available
