"""The hold sweeper against the real ledger and task store: a hold no task came of is released, a task
that ended without settling is settled by its stored state, and a paid task paused too long is canceled
and its credits given back."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from a2a_gateway.app.ended_calls import PausedTaskCanceler
from a2a_gateway.app.hold_sweeper import HoldSweeper
from a2a_gateway.protocol.base import utc_now
from a2a_gateway.storage import engine as db
from a2a_gateway.storage.pending_holds import SqlPendingHolds
from tests.api.test_paid_calls import PRICE, market
from tests.conftest import make_settings


async def test_the_sweeper_settles_what_nobody_else_will(tmp_path: Path) -> None:
    async with market(tmp_path) as shop:
        app_service = shop.app.state.service
        engine = db.create_engine(make_settings(tmp_path).resolved_database_url())  # the gateway's database
        await shop.billing.grant(shop.buyer_id, 5 * PRICE, "test")
        # A hold whose task was never stored (a crash between the two), old enough to be an orphan.
        await shop.billing.hold("never-stored", shop.buyer_id, PRICE, payee_user_id=shop.owner_id)
        # A paid task paused for its caller's input.
        paused = (await shop.send("ask"))["result"]["task"]
        assert paused["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
        assert await shop.balance(shop.buyer_id) == (5 * PRICE, 2 * PRICE)
        clock = {"now": utc_now()}
        sweeper = HoldSweeper(
            SqlPendingHolds(engine),
            shop.billing,
            PausedTaskCanceler(app_service),
            interval=3600,
            paused_limit=timedelta(hours=1),
            orphan_after=timedelta(minutes=10),
            clock=lambda: clock["now"],
        )
        assert await sweeper.sweep() == 0  # too young to judge: nothing happens
        clock["now"] += timedelta(hours=2)
        assert await sweeper.sweep() == 2  # the orphan released, the paused task canceled
        task = (await shop.gw.get(f"/api/v1/tasks/{paused['id']}", headers=shop.buyer)).json()["data"]
        assert task["status"] == "cancelled"
        assert await shop.balance(shop.buyer_id) == (5 * PRICE, 0)
        assert await sweeper.sweep() == 0
        report = await shop.billing.check()
        assert report.ok, report.lines()
        await engine.dispose()


async def test_the_sweeper_closes_run_budgets_no_run_came_of(tmp_path: Path) -> None:
    async with market(tmp_path) as shop:
        engine = db.create_engine(make_settings(tmp_path).resolved_database_url())
        await shop.billing.grant(shop.buyer_id, 5 * PRICE, "test")
        # A budget whose run was never saved (a crash between the two).
        await shop.billing.open_budget("lost-run", shop.buyer_id, 3 * PRICE)
        assert await shop.balance(shop.buyer_id) == (5 * PRICE, 3 * PRICE)
        clock = {"now": utc_now()}
        sweeper = HoldSweeper(
            SqlPendingHolds(engine),
            shop.billing,
            PausedTaskCanceler(shop.app.state.service),
            interval=3600,
            paused_limit=timedelta(hours=1),
            orphan_after=timedelta(minutes=10),
            clock=lambda: clock["now"],
        )
        assert await sweeper.sweep() == 0  # young: the run's first save may still come
        clock["now"] += timedelta(minutes=11)
        assert await sweeper.sweep() == 1
        assert await shop.balance(shop.buyer_id) == (5 * PRICE, 0)
        budget = await shop.billing.budget_of("lost-run")
        assert budget is not None and budget.refunded == 3 * PRICE
        assert await sweeper.sweep() == 0
        report = await shop.billing.check()
        assert report.ok, report.lines()
        await engine.dispose()
