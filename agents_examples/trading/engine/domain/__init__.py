"""The engine's domain: config, signals, entry and exit rules, performance. Pure Python, no I/O."""
