"""The paper exchange agent: the Agent Connect REST API and A2A skills over replayed market data.

It runs as its own process (``python -m agents_examples.trading.exchange``) and uses only the gateway's
public helpers: the agent kit, the protocol models, request signing, the SSRF guard, the rate limiter.
"""
