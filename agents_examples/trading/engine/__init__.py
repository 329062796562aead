"""The trading engine agent: Nexgent's REST API and WebSocket, signal-driven paper trading through the
gateway (orders are the exchange's ``place-order`` skill, called as A2A tasks), exits and risk limits."""
