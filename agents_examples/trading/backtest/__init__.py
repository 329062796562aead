"""Backtests: the trading engine, the paper exchange and the signal strategy run together in one process.

``python -m agents_examples.trading.backtest`` replays one instrument's bars over a date range at full
speed on the simulation clock: every bar close goes to the strategy, its signals to the engine's
``post_signal``, the prices to the engine's ``on_ticks`` (exits and risk limits) and the engine's orders
to the exchange's own fill model through an in-process port (:mod:`.inprocess`) instead of the gateway.
The decisions and the fills are the same code as in the network; only the transport is left out.
:mod:`.runner` runs it, :mod:`.report` writes ``summary.json``, ``trades.csv`` and ``equity.png``.
"""
