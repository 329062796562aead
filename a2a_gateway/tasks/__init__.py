"""Tasks: lifecycle, persistence port, event fan-out and the service that runs skills as tasks."""
