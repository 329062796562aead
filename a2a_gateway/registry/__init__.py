"""The agent registry: registration, ownership, heartbeats and status, discovery."""
