"""Nexgent's REST API of the trading engine, mounted at ``/api/v1`` (:class:`.routes.EngineApi`)."""
