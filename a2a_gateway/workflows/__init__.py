"""Workflows: DAGs of agent calls, each step a gateway task through routing (see service.py, engine.py)."""
