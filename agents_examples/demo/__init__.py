"""The demo: the gateway and the example trading network, each agent its own process, in one command.

``python -m agents_examples.demo`` (``make demo``) runs the gateway in this process on an embedded
SQLite database and starts the echo agent, the paper exchange, the trading engine and the signal agent
as child processes on the next ports, each registered at the gateway by its own owner's key. It makes
the users, grants demo credits, prices the skills, makes two trading agents, and shows the network
working live until Ctrl+C or ``--duration``. ``--agents-only --gateway-url URL`` runs the agents
against a gateway started elsewhere. Modules: cli (flags, start and stop), accounts (the users and
keys), network (the set-up steps), children (the agent processes), child (the wrapper that ties each to
the demo), observe (what the view polls), view (the live view), banner (what to open).
"""
