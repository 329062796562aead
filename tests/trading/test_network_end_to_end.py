"""End to end, the whole trading network in process (tests/trading/inprocess_network.py): the exchange
replays a fixed synthetic path, stepped one bar at a time by the test (the simulated clock); the
analyst's signal agent follows its prices through the gateway and sends its crossovers to the engine's
``signal-intake`` through the gateway; the trader's trading agent, following the analyst, buys on the
first and exits on the second, each order a ``place-order`` task on the exchange through the gateway.

Checked from outside each agent: the signals are in the signal agent's log and in the engine; the
orders in the exchange's book; the position in the engine, open and then closed. Every hop is a gateway
task that completed; the ledger moved exactly the credits the priced hops cost (the exchange's operator
charges for ``place-order``, the trader for ``signal-intake``), the platform fee taken as
docs/billing.md says, and ``ledger check`` is clean; trust evidence was recorded for every hop.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from agents_examples.trading.exchange.market.bars import Bar
from agents_examples.trading.exchange.market.simulator import CLOSE
from agents_examples.trading.exchange.service import ExchangeService
from agents_examples.trading.signals.strategy import Strategy, StrategyConfig
from tests.trading.engine.network import until
from tests.trading.inprocess_network import (
    ENGINE,
    EXCHANGE,
    InProcessNetwork,
    User,
    eventually,
    in_process_network,
)

# A synthetic path (its seed) whose BTC bars after the warm-up cross up and then down: one buy, one sell.
SEED = 7
STRATEGY = StrategyConfig(fast_window=2, slow_window=4, volume_factor=Decimal("0.5"), symbols=("BTC",))
ORDER_PRICE = 2  # the exchange's place-order, per call; its other skills are free
INTAKE_PRICE = 1  # the engine's signal-intake, per call; its other skills are free
FEE_BPS = 5000  # the platform's share: 1 of an order's 2 credits, 0 of an intake's 1 (rounded down)
GRANT = 100  # promotional credits of the trader and of the analyst
MAX_BARS = 200
UNIT = Decimal("0.00000001")
PAID = {"place-order": ORDER_PRICE, "signal-intake": INTAKE_PRICE}
SUBSCRIPTION = "order-updates"
Close = tuple[str, int, Decimal, Decimal]  # a replayed bar close: symbol, simulated ms, close, volume


def _fee(price: int) -> int:
    """The platform's share of a captured price (docs/billing.md: ``price x bps // 10000``)."""
    return price * FEE_BPS // 10_000


def _closes(market: ExchangeService) -> list[Close]:
    """Every bar close the exchange replays from now on."""
    seen: list[Close] = []

    def listen(symbol: str, ts_ms: int, price: int, phase: int, bar: Bar) -> None:
        if phase == CLOSE:
            seen.append((symbol, ts_ms, price * UNIT, bar.volume * UNIT))

    market.simulator.add_listener(listen)
    return seen


async def _step(net: InProcessNetwork, seen: list[Close], token: str) -> None:
    """One bar more, then wait until it has reached both agents, its signals are answered and the
    trades it caused are done (so each signal and exit happens at its own bar)."""
    before = len(seen)
    net.market.simulator.advance(1)
    assert len(seen) > before
    await until(lambda: net.signals.bars >= len(seen))
    last = max((ts for symbol, ts, _, _ in seen if symbol == "BTC"), default=0)
    await until(lambda: net.engine.trader.price_ms.get(token, 0) >= last)
    await until(lambda: all(v["status"] != "pending" for v in net.signals.recent()))
    await net.engine.trader.drain()


async def _tasks(net: InProcessNetwork, user: User) -> list[dict[str, Any]]:
    """Every gateway task of ``user`` (the payer), each as ``GET /api/v1/tasks/{id}`` shows it."""
    listed: list[dict[str, Any]] = []
    params = {"limit": "100"}
    for _ in range(10):
        page = await net.gw.get("/api/v1/tasks", headers=user.auth, params=params)
        assert page.status_code == 200, page.text
        listed += page.json()["data"]
        cursor = page.json()["meta"]["nextCursor"]
        if cursor is None:
            break
        params["cursor"] = cursor
    found = []
    for task in listed:
        read = await net.gw.get(f"/api/v1/tasks/{task['id']}", headers=user.auth)
        assert read.status_code == 200, read.text
        found.append(read.json()["data"])
    return found


def _skill(task: dict[str, Any]) -> str:
    return str(task["routing"]["skillId"])


@dataclass
class Trail:
    """What the replay left, as the checks found it: the signal agent's log (the buy, then the sell) and
    the follower's orders in the exchange's book."""

    log: list[dict[str, Any]]
    orders: list[dict[str, Any]]


async def _replay(net: InProcessNetwork, agent: dict[str, Any]) -> tuple[list[dict[str, Any]], list[Close]]:
    """Step the replay bar by bar until the follower's position opened and closed again: the position
    as the engine showed it while open, and the bar closes replayed."""
    btc = net.token_of("BTC")
    seen = _closes(net.market)
    opened: list[dict[str, Any]] = []
    for _ in range(MAX_BARS):
        await _step(net, seen, btc)
        held = net.engine.trader.open_positions(agent["id"])
        if held and not opened:
            opened = (await net.engine_api.get("/api/v1/agent-positions", headers=net.trader.auth)).json()
        if opened and not held:
            return opened, seen
    raise AssertionError(f"no buy and exit in {MAX_BARS} bars")


async def _check_agents(
    net: InProcessNetwork, agent: dict[str, Any], opened: list[dict[str, Any]], seen: list[Close]
) -> Trail:
    """The signals, the position and the orders, each in the agent that holds it."""
    btc = net.token_of("BTC")
    # The signal agent: its signals are the strategy's on the replayed bars, a buy then a sell, each
    # delivered to the engine and executed by the follower.
    offline = Strategy(STRATEGY)
    expected = []
    for symbol, ts_ms, close, volume in seen:
        signal = offline.on_bar(symbol, net.token_of(symbol), close, volume, ts_ms)
        if signal is not None:
            expected.append((signal.signal_type, signal.strength, ts_ms))
    assert [e[0] for e in expected] == ["buy", "sell"]
    log = net.signals.recent()
    emitted = [(v["signal"]["signalType"], v["signal"]["signalStrength"], v["bar"]["timestamp"]) for v in log]
    assert emitted == expected
    assert [v["status"] for v in log] == ["delivered", "delivered"], log
    [bought] = log[0]["outcome"]["executions"]
    [sold] = log[1]["outcome"]["executions"]
    for record in (bought, sold):
        assert (record["agentId"], record["status"]) == (agent["id"], "EXECUTED"), record

    # The engine: the signals, as their publisher (the analyst) reads them there.
    published = await net.engine_api.get("/api/v1/trading-signals", headers=net.analyst.auth)
    assert published.status_code == 200, published.text
    assert sorted((s["id"], s["signalType"], s["tokenAddress"]) for s in published.json()) == [
        (v["outcome"]["signalId"], v["signal"]["signalType"], btc) for v in log
    ]

    # The engine: the position, opened on the buy and closed on the sell.
    [position] = opened
    assert (position["agentId"], position["tokenAddress"]) == (agent["id"], btc)
    assert bought["positionId"] == sold["positionId"] == position["id"]
    assert (await net.engine_api.get("/api/v1/agent-positions", headers=net.trader.auth)).json() == []
    swaps = (await net.engine_api.get("/api/v1/agent-historical-swaps", headers=net.trader.auth)).json()
    assert [(s["positionId"], s["closeReason"], s["partial"]) for s in swaps] == [
        (position["id"], "signal", False)
    ]
    assert (swaps[0]["purchaseTransactionId"], swaps[0]["saleTransactionId"]) == (
        bought["transactionId"],
        sold["transactionId"],
    )

    # The exchange: the two orders the engine recorded, in the book of the follower's wallet.
    transactions = (await net.engine_api.get("/api/v1/agent-transactions", headers=net.trader.auth)).json()
    swapped = {t["id"]: t for t in transactions if t["transactionType"] == "SWAP"}
    assert set(swapped) == {bought["transactionId"], sold["transactionId"]}
    wallet = net.engine.trader.wallets[net.engine.trader.agents[agent["id"]].wallet_address or ""]
    account = net.market.by_key(wallet.api_key)
    assert account is not None
    book = [net.market.engine.order_view(o) for o in net.market.engine.orders(account.id)]
    assert [(o["id"], o["side"], o["status"]) for o in book] == [
        (swapped[bought["transactionId"]]["orderId"], "buy", "closed"),
        (swapped[sold["transactionId"]]["orderId"], "sell", "closed"),
    ]
    assert book[0]["filled"] == book[1]["filled"]  # the exit sold all that was bought
    return Trail(log, book)


async def _check_hops(net: InProcessNetwork, trail: Trail) -> dict[str, list[dict[str, Any]]]:
    """Every hop is a task of its payer at the gateway, completed; only the price subscriptions (one
    per agent following prices) still run. The tasks by payer ("trader", "analyst")."""
    hops: dict[str, list[dict[str, Any]]] = {}

    async def recorded() -> bool:  # the gateway writes task records in groups
        trader, analyst = await _tasks(net, net.trader), await _tasks(net, net.analyst)
        hops.update(trader=trader, analyst=analyst)
        ended = [t for t in trader + analyst if _skill(t) != SUBSCRIPTION]
        return (
            sum(_skill(t) == "place-order" for t in trader) == len(trail.orders)
            and sum(_skill(t) == "signal-intake" for t in analyst) == len(trail.log)
            and all(t["status"] == "completed" for t in ended)
        )

    await eventually(recorded, "the hops' tasks to be recorded completed")
    for name, tasks in hops.items():
        running = [t for t in tasks if t["status"] != "completed"]
        assert [(_skill(t), t["status"]) for t in running] == [(SUBSCRIPTION, "running")], name
    everything = hops["trader"] + hops["analyst"]
    assert {_skill(t) for t in everything} <= {"market-data", "portfolio", *PAID, SUBSCRIPTION}
    assert {t["assignedAgentId"] for t in hops["trader"]} == {net.exchange_id}
    intakes = [t for t in hops["analyst"] if _skill(t) == "signal-intake"]
    assert {t["assignedAgentId"] for t in intakes} == {net.engine_id}
    assert {t["id"] for t in intakes} == {v["outcome"]["taskId"] for v in trail.log}
    # The gateway's unary calls reached both agents over (socket-pair) connections.
    assert set(net.hosts.connections) == {EXCHANGE, ENGINE}, net.hosts.connections
    return hops


async def _check_ledger(net: InProcessNetwork, hops: dict[str, list[dict[str, Any]]]) -> None:
    """Each priced hop held and captured its price for its agent's owner, the free ones held nothing;
    each balance moved by exactly what the hops cost or earned; ``ledger check`` is clean."""
    billing = net.gateway_app.state.billing
    payees = {"place-order": net.operator.id, "signal-intake": net.trader.id}
    for payer, tasks in ((net.trader, hops["trader"]), (net.analyst, hops["analyst"])):
        for task in tasks:
            hold = await billing.hold_of(task["id"])
            price = PAID.get(_skill(task))
            if price is None:
                assert hold is None, task
                continue
            assert hold is not None, task
            assert (hold.state, hold.price, hold.payer_user_id, hold.payee_user_id, hold.fee_bps) == (
                "captured",
                price,
                payer.id,
                payees[_skill(task)],
                FEE_BPS,
            )
    orders = sum(_skill(t) == "place-order" for t in hops["trader"])
    intakes = sum(_skill(t) == "signal-intake" for t in hops["analyst"])
    assert orders and intakes  # something was charged
    expected = {
        net.trader.id: GRANT - orders * ORDER_PRICE + intakes * (INTAKE_PRICE - _fee(INTAKE_PRICE)),
        net.analyst.id: GRANT - intakes * INTAKE_PRICE,
        net.operator.id: orders * (ORDER_PRICE - _fee(ORDER_PRICE)),
    }
    balances = {user_id: await billing.balance(user_id) for user_id in expected}
    assert {u: (b.balance, b.held) for u, b in balances.items()} == {u: (m, 0) for u, m in expected.items()}
    # What left the users is the platform's fee, no more and no less.
    assert 2 * GRANT - sum(b.balance for b in balances.values()) == (
        orders * _fee(ORDER_PRICE) + intakes * _fee(INTAKE_PRICE)
    )
    report = await billing.check()
    assert report.ok, report.lines()


async def _check_trust(net: InProcessNetwork, hops: dict[str, list[dict[str, Any]]]) -> None:
    """Each priced hop is trust evidence of the agent that served it: a counted completed task (the
    payers are not the agents' owners)."""
    wanted = {
        net.exchange_id: {t["id"] for t in hops["trader"] if _skill(t) == "place-order"},
        net.engine_id: {t["id"] for t in hops["analyst"] if _skill(t) == "signal-intake"},
    }
    served: dict[str, set[str]] = {}

    async def recorded() -> bool:  # trust evidence is written in groups, after the answer
        for agent_id in wanted:
            history = await net.gw.get(
                f"/api/v1/trust/{agent_id}/history", headers=net.trader.auth, params={"limit": "100"}
            )
            assert history.status_code == 200, history.text
            events = history.json()["data"]
            served[agent_id] = {
                e["taskId"] for e in events if e["eventType"] == "task_completed" and e["counted"]
            }
        return all(wanted[a] <= served[a] for a in wanted)

    await eventually(recorded, "trust evidence of every hop")


async def test_a_replayed_path_buys_and_exits_through_the_gateway_in_process(tmp_path: Path) -> None:
    async with in_process_network(
        tmp_path,
        seed=SEED,
        strategy=STRATEGY,
        exchange_prices={"place-order": ORDER_PRICE},
        engine_prices={"signal-intake": INTAKE_PRICE},
        fee_bps=FEE_BPS,
        grant=GRANT,
    ) as net:
        # The trader's agent follows the analyst's signals; the exit is left to them (no stale-trade exit).
        config = {"signals": {"sources": [f"user:{net.analyst.id}"]}, "staleTrade": {"enabled": False}}
        agent = await net.trading_agent(config)
        await until(lambda: net.engine_feed.connected and net.signals_feed.connected)
        opened, seen = await _replay(net, agent)
        trail = await _check_agents(net, agent, opened, seen)
        hops = await _check_hops(net, trail)
        await _check_ledger(net, hops)
        await _check_trust(net, hops)
