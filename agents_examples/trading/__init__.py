"""The example trading network: a paper exchange, a trading engine and a signal agent (docs/trading.md)."""
