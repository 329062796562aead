"""The signal agent: the exchange's bar closes through the gateway, a moving-average crossover per
instrument (:mod:`.strategy`), each signal sent to the trading engine's ``signal-intake`` through the
gateway (:mod:`.service`); an A2A agent itself with ``strategy-config`` and ``signal-feed``
(:mod:`.skills`). Run it with ``python -m agents_examples.trading.signals`` (docs/trading.md, "The
signal agent")."""
