"""The echo example agent: echo, countdown and ask skills, built with the agent kit."""

from agents_examples.echo.skills import ECHO_AGENT

__all__ = ["ECHO_AGENT"]
