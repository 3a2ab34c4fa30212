"""arq worker settings. Start with `portal worker` (which supplies the Redis address).

Cron jobs keep a unique job id per run time, so several workers run each scheduled run
once; every job is also safe to run twice (the ledger's keys make each effect happen once).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from arq import cron

from portal import db
from portal.accounts.signup import signups_purge
from portal.booking.services import bookings_confirm_due
from portal.booking.sync import calendar_sync, calendars_sync
from portal.booking.tables import ExternalCalendar
from portal.consumers import CONSUMERS
from portal.credits.reconcile import purchases_reconcile
from portal.credits.services import lots_expire
from portal.events.consume import consume, retry_failed
from portal.events.log import recording
from portal.notify.reminders import reminders_due
from portal.notify.services import Outbox, notifications_send_due
from portal.ops import record_heartbeat, record_sweep
from portal.questions.services import questions_settle_due, settle
from portal.settings import get_settings

log = logging.getLogger("portal.worker")


async def startup(ctx: dict[str, Any]) -> None:
    ctx.setdefault("settings", get_settings())
    await db.start_pool()
    await record_heartbeat(ctx["redis"])


async def shutdown(ctx: dict[str, Any]) -> None:
    await db.close_pool()


async def process_events(ctx: dict[str, Any]) -> dict[str, int]:
    """Let every consumer read the event log up to now; the emails written go at once.
    Queued after a write that recorded events, and run every 5 seconds as the sweep."""
    read = {consumer.name: await consume(consumer) for consumer in CONSUMERS}
    if read["notify"]:
        await send_notifications(ctx)
    return read


async def retry_failed_events(ctx: dict[str, Any]) -> dict[str, int]:
    """Try again the events a consumer could not act on (a template fixed since, say)."""
    done = {}
    for consumer in CONSUMERS:
        done[consumer.name], failing = await retry_failed(consumer)
        if failing:
            log.warning("%s: %s events still fail (see /healthz)", consumer.name, failing)
    if any(done.values()):
        await send_notifications(ctx)
    return done


async def _then_events(ctx: dict[str, Any], work: Any) -> Any:
    """Run a job's `work`, then the consumers if it recorded events."""
    with recording() as recorded:
        result = await work
    if recorded.events:
        await process_events(ctx)
    return result


async def heartbeat(ctx: dict[str, Any]) -> None:
    """Tell /healthz this worker is alive."""
    await record_heartbeat(ctx["redis"])


async def reconcile_purchases(ctx: dict[str, Any]) -> dict[str, int]:
    """Ask Stripe about purchases still open after 30 minutes (a lost webhook)."""
    settings = ctx["settings"]
    report = await _then_events(
        ctx,
        purchases_reconcile(api_key=settings.stripe_secret_key, api_base=settings.stripe_api_base),
    )
    if report.checked:
        log.info("purchases reconciled: %s", report)
    return {name: getattr(report, name) for name in report.__slots__}


async def expire_lots(ctx: dict[str, Any]) -> int:
    """Expire the credits of lots past their date."""
    expired = await _then_events(ctx, lots_expire())
    if expired:
        log.info("credits expired: %s", expired)
    return expired


async def confirm_bookings(ctx: dict[str, Any]) -> int:
    """Capture the credits of bookings that took place (30 minutes after their end)."""
    confirmed = await _then_events(ctx, bookings_confirm_due())
    await record_sweep(ctx["redis"])
    if confirmed:
        log.info("bookings confirmed: %s", confirmed)
    return confirmed


async def sync_calendars(ctx: dict[str, Any]) -> dict[str, int]:
    """Read the experts' other calendars not read for 15 minutes."""
    report = await calendars_sync(allow_private=ctx["settings"].calendars_allow_private)
    return {"ok": report.ok, "failed": report.failed}


async def sync_calendar(ctx: dict[str, Any], calendar_id: int) -> bool:
    """Read one calendar now (just added)."""
    calendar = await ExternalCalendar.objects().where(ExternalCalendar.id == calendar_id).first()
    if calendar is None:
        return False
    allow_private = ctx["settings"].calendars_allow_private
    async with httpx.AsyncClient() as client:
        return await calendar_sync(
            calendar, client=client, now=datetime.now(UTC), allow_private=allow_private
        )


async def settle_question(ctx: dict[str, Any], question_id: int) -> bool:
    """Capture or release the credits of a question just answered."""
    return await _then_events(ctx, settle(question_id=question_id)) is not None


async def settle_questions(ctx: dict[str, Any]) -> int:
    """Answered questions not settled yet (a lost job), and open ones past their limit."""
    settled = await _then_events(ctx, questions_settle_due())
    if settled:
        log.info("questions settled or expired: %s", settled)
    return settled


async def send_notifications(ctx: dict[str, Any]) -> int:
    """Send the emails due (new ones, and failed ones whose time to retry has come)."""
    settings = ctx["settings"]
    host = urlsplit(settings.base_url).hostname or "localhost"
    outbox = Outbox(
        smtp_url=settings.smtp_url, folder=settings.var_dir / "outbox", sender=f"noreply@{host}"
    )
    return await notifications_send_due(outbox)


async def send_reminders(ctx: dict[str, Any]) -> None:
    """Write the reminders and notices due (the emails go with the next sending round)."""
    await reminders_due()


async def purge_signups(ctx: dict[str, Any]) -> int:
    """Forget sign-ups never confirmed, once expired."""
    return await signups_purge()


class WorkerSettings:
    functions: list[Any] = [
        reconcile_purchases,
        expire_lots,
        confirm_bookings,
        sync_calendars,
        sync_calendar,
        settle_question,
        settle_questions,
        send_notifications,
        process_events,
        retry_failed_events,
        send_reminders,
        purge_signups,
    ]
    cron_jobs = [
        cron(confirm_bookings, second=10, run_at_startup=True),
        cron(settle_questions, second=40, run_at_startup=True),
        cron(send_notifications, second={5, 20, 35, 50}, run_at_startup=True),
        cron(process_events, second=set(range(2, 60, 5)), run_at_startup=True),
        cron(retry_failed_events, minute=set(range(3, 60, 10)), second=45),
        cron(send_reminders, second=55, run_at_startup=True),
        cron(sync_calendars, minute=set(range(0, 60, 5)), second=30, run_at_startup=True),
        cron(heartbeat, second={0, 15, 30, 45}, run_at_startup=True, unique=False),
        cron(reconcile_purchases, minute=set(range(0, 60, 5)), second=20, run_at_startup=True),
        # Hourly rather than daily: a lot expires at the minute it was bought, and balances
        # should not show expired credits for long.
        cron(expire_lots, minute=7, second=40, run_at_startup=True),
        cron(purge_signups, minute=37, second=25),
    ]
    on_startup = startup
    on_shutdown = shutdown
    poll_delay = 0.1
    queue_read_limit = 500
    health_check_interval = 30
    handle_signals = True
