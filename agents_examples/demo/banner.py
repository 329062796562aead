"""What the demo prints once the network is up: where everything is and what to try."""

from __future__ import annotations

from pathlib import Path

from agents_examples.demo.network import ENGINE_PRICES, EXCHANGE_PRICES, TRADER, Network

TEXT = """
A2A gateway is running at {url}
The trading network runs as its own processes, each agent registered by its owner's key:
  exchange  {exchange_url}  agent {exchange_id}  (owner {operator})
  engine    {engine_url}  agent {engine_id}  (owner {trader}, the demo user)
  signals   {signals_url}  agent {signals_id}  (owner {analyst})
  echo      {echo_url}  agent {echo_id}  (owner {trader})
Prices in credits: {prices}; everything else is free.{credits}

  Agent cards:      curl -s {exchange_url}/.well-known/agent-card.json   (and {engine_url}, {signals_url})
  Through the gateway: curl -s {url}/a2a/agents/{engine_id}/.well-known/agent-card.json
  Find agents:      curl -s '{url}/api/v1/discover?skillTags=trading'
  The demo user:    {email}, password in {password_file}
  Log in:           curl -s {url}/api/v1/auth/login -H 'Content-Type: application/json' \\
                      -d '{{"email":"{email}","password":"'$(cat {password_file})'"}}'
  Then, with TOKEN the accessToken:
    the gateway's tasks:   curl -s {url}/api/v1/tasks -H "Authorization: Bearer $TOKEN"
    your credits:          curl -s {url}/api/v1/billing/balance -H "Authorization: Bearer $TOKEN"
    positions (engine):    curl -s {engine_url}/api/v1/agent-positions -H "Authorization: Bearer $TOKEN"
    trades (engine):       curl -s {engine_url}/api/v1/agent-historical-swaps -H "Authorization: Bearer $TOKEN"
    live positions:        {engine_ws}?token=$TOKEN&agentId={trading_agent}
  Route a call by skill:   curl -s {url}/a2a -H 'A2A-Version: 1.0' -H 'Content-Type: application/json' \\
      -d '{{"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{{"message":{{"messageId":"m1","role":"ROLE_USER","parts":[{{"text":"hello"}}]}},"metadata":{{"skillId":"echo"}}}}}}'
  For scripts:      {demo_json}
  Agents' logs:     {logs}

{stop}
"""


def banner(network: Network, data_dir: Path, duration: float | None, *, credits: int | None) -> str:
    """The banner's text for ``network``."""
    nodes, users = network.nodes, network.accounts
    prices = ", ".join(f"{skill} {price}" for skill, price in (EXCHANGE_PRICES | ENGINE_PRICES).items())
    granted = (
        f"\nEach user's credits are topped up to {credits:,} when the demo starts."
        if credits
        else (
            "\nThis gateway is not the demo's: give the users credits with "
            "`a2a-gateway credits grant --user EMAIL --amount N --reason demo` where it runs."
        )
    )
    until = f"Stops after {duration:g} s." if duration is not None else "Press Ctrl+C to stop."
    trader = users[TRADER.name]
    return TEXT.format(
        url=network.gateway_url,
        **{f"{n}_url": node.url for n, node in nodes.items()},
        **{f"{n}_id": node.agent_id for n, node in nodes.items()},
        operator=users["operator"].role.email,
        trader=trader.role.email,
        analyst=users["analyst"].role.email,
        prices=prices,
        credits=granted,
        email=trader.role.email,
        password_file=trader.password_file,
        engine_ws=network.engine_ws,
        trading_agent=next(iter(network.trading_agents.values()), ""),
        demo_json=data_dir / "demo.json",
        logs=data_dir / "logs",
        stop=until,
    ).rstrip("\n")
