"""The `portal` command: run everything locally, or each production process on its own."""

from __future__ import annotations

import argparse
import asyncio
import functools
import getpass
import logging
import os
import socket
import stat
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from portal.serve import PortInUse, listen, serve
from portal.settings import Settings, SettingsError, get_settings
from portal.supervise import Child, dies_with_this_process, portal_process, supervise


def _run_async(main: Coroutine[Any, Any, Any]) -> Any:
    from portal import db

    async def run_then_close() -> Any:
        try:
            return await main
        finally:
            await db.close_pool()

    return asyncio.run(run_then_close())


async def migrate(settings: Settings) -> None:
    from piccolo.apps.migrations.commands.forwards import run_forwards

    from portal import db

    if settings.database_engine == "sqlite":
        settings.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
    await db.prepare_sqlite(db.get_engine())
    result = await run_forwards(app_name="all")
    if not result.success:
        raise SystemExit(f"migrations failed: {result.message}")


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    _run_async(migrate(settings))
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from portal.demo import seed

    logins = _run_async(seed())
    for login in logins:
        print(f"  {login.role:<7} {login.email}  /  {login.password}")
    return 0


def _password(args: argparse.Namespace) -> str:
    if args.password == "-":  # noqa: S105 (read from standard input)
        return sys.stdin.readline().rstrip("\n")
    return args.password or getpass.getpass("Password: ")


def _report_errors(run: Callable[[], Coroutine[Any, Any, Any]]) -> int:
    """Run; a refusal (bad input, unknown account, not enough credits) is exit code 2."""
    from portal.credits.ledger import InsufficientCredits
    from portal.errors import DomainError, ValidationFailed

    try:
        _run_async(run())
    except ValidationFailed as exc:
        for name, message in exc.errors.items():
            print(f"error: {name}: {message}", file=sys.stderr)
        return 2
    except InsufficientCredits as exc:
        print(f"error: {exc.message} ({exc.missing} missing)", file=sys.stderr)
        return 2
    except DomainError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    return 0


def cmd_create_expert(args: argparse.Namespace, settings: Settings) -> int:
    from portal.accounts.services import expert_create

    password = _password(args)
    code = _report_errors(
        lambda: expert_create(email=args.email, password=password, slug=args.slug, name=args.name)
    )
    if code == 0:
        print(f"Expert created: {args.email} -> {settings.base_url}/e/{args.slug}")
    return code


def cmd_create_client(args: argparse.Namespace, settings: Settings) -> int:
    from portal.accounts.services import user_create

    password = _password(args)
    code = _report_errors(
        lambda: user_create(email=args.email, password=password, name=args.name or "")
    )
    if code == 0:
        print(f"Client created: {args.email}")
    return code


def cmd_credits_grant(args: argparse.Namespace, settings: Settings) -> int:
    """Give or take back credits (a signed number) with a reason."""
    import uuid

    from portal.accounts.services import user_by_email
    from portal.charter.services import expert_by_slug, version_current
    from portal.credits.services import wallet_adjust
    from portal.errors import NotFound

    async def run() -> Any:
        client = await user_by_email(args.client)
        if client is None:
            raise NotFound(f"no account for {args.client}")
        expert = await expert_by_slug(args.expert)
        current = await version_current(expert=expert)
        months = current.rules.credit_validity_months if current else 12
        return await wallet_adjust(
            client_id=client.id,
            expert_id=expert.id,
            credits=args.credits,
            reason=args.reason,
            validity_months=months,
            key=f"cli:{uuid.uuid4().hex}",
        )

    code = _report_errors(run)
    if code == 0:
        print(f"{args.credits:+d} credits for {args.client} with {args.expert}: {args.reason}")
    return code


def cmd_credits_verify(args: argparse.Namespace, settings: Settings) -> int:
    """Recompute every wallet from its ledger; exit 1 on any difference."""
    from portal.credits.services import verify_all

    problems = _run_async(verify_all())
    for wallet_id, found in problems.items():
        for problem in found:
            print(f"wallet {wallet_id}: {problem}")
    if problems:
        print(f"{len(problems)} wallet(s) with differences", file=sys.stderr)
        return 1
    print("every wallet matches its ledger")
    return 0


def cmd_credits_reconcile(args: argparse.Namespace, settings: Settings) -> int:
    """What the worker does on its own: settle open purchases, expire lots past their date."""
    from portal.credits.reconcile import purchases_reconcile
    from portal.credits.services import lots_expire

    async def run() -> tuple[Any, int]:
        report = await purchases_reconcile(
            api_key=settings.stripe_secret_key, api_base=settings.stripe_api_base
        )
        return report, await lots_expire()

    report, expired = _run_async(run())
    print(
        f"purchases checked {report.checked}: paid {report.paid}, processing "
        f"{report.processing}, failed {report.failed}, mismatched {report.mismatched} (failed, "
        f"nothing granted), expired {report.expired}, unchanged {report.unchanged}, Stripe "
        f"errors {report.errors}; credits expired {expired}"
    )
    return 1 if report.errors else 0


def _payments_missing(settings: Settings) -> str | None:
    """Why a public (https) site cannot take payments, or None. Only what serves the site
    asks: the worker receives no Stripe events."""
    if not settings.is_https:
        return None
    if not settings.stripe_secret_key:
        return (
            "STRIPE_SECRET_KEY must be set when BASE_URL is https: "
            "without it, no one can buy credits"
        )
    if not settings.stripe_webhook_secret:
        return (
            "STRIPE_WEBHOOK_SECRET must be set when BASE_URL is https: without it, every "
            "event Stripe sends (payments, refunds, disputes) is refused"
        )
    return None


def cmd_events_retry(args: argparse.Namespace, settings: Settings) -> int:
    """Try again, now, the events a consumer could not act on; exit 1 if some still fail.
    (The worker does it every 10 minutes; this is for right after a fix.)"""
    from portal.consumers import CONSUMERS
    from portal.events.consume import retry_failed

    async def run() -> dict[str, tuple[int, int]]:
        return {consumer.name: await retry_failed(consumer) for consumer in CONSUMERS}

    still = 0
    for name, (done, failing) in _run_async(run()).items():
        print(f"{name}: {done} done, {failing} still failing")
        still += failing
    return 1 if still else 0


def cmd_web(args: argparse.Namespace, settings: Settings) -> int:
    if (missing := _payments_missing(settings)) is not None:
        print(f"error: {missing}", file=sys.stderr)
        return 2
    if args.fd is not None:  # a socket `portal run` keeps listening across restarts
        listener = socket.socket(fileno=args.fd)
    else:
        try:
            listener = listen(args.host, args.port)
        except PortInUse as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    serve(listener, server=args.server, host=args.host, port=args.port, workers=args.workers)
    return 0


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from arq.worker import run_worker

    from portal.redis import EmbeddedRedis, redis_settings
    from workers.settings import WorkerSettings

    embedded = None
    url = settings.redis_url
    if url is None:
        embedded = EmbeddedRedis(settings.var_dir)
        url = embedded.start()
    try:
        run_worker(WorkerSettings, redis_settings=redis_settings(url))  # type: ignore[arg-type]
    finally:
        if embedded is not None:
            embedded.stop()
    return 0


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    """Everything on one machine: migrations, embedded Redis, worker and web server."""
    from portal.redis import EmbeddedRedis

    if (missing := _payments_missing(settings)) is not None:
        print(f"error: {missing}", file=sys.stderr)
        return 2
    try:
        listener = listen(args.host, args.port)  # kept: the web server restarts on it
    except PortInUse as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    embedded = EmbeddedRedis(settings.var_dir) if settings.redis_url is None else None
    if embedded is not None and embedded.answers():
        print(
            f"error: a Redis server already answers in {embedded.folder} "
            "(another `portal run` in this folder?)",
            file=sys.stderr,
        )
        return 2
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    _run_async(migrate(settings))
    logins = []
    if args.demo:
        from portal.demo import seed

        logins = _run_async(seed())

    env = dict(os.environ)
    env.setdefault("SECRET_KEY", settings.secret_key)
    if not os.environ.get("BASE_URL"):  # links in pages name the address actually served
        env["BASE_URL"] = f"http://{args.host}:{args.port}"
    if args.demo:
        env["DEMO"] = "1"  # the demo shows the emails it would send at /outbox
    env["TEST_CHECKOUT"] = "1"  # credits are bought through the labelled test checkout
    redis: list[Child] = []
    if embedded is not None:
        env["REDIS_URL"] = embedded.url
        spawn = functools.partial(embedded.spawn, dies_with_this_process())
        redis.append(Child("embedded Redis", spawn, ready=embedded.wait_ready))
    fd = listener.fileno()
    web = ["web", "--host", args.host, "--port", str(args.port), "--fd", str(fd)]
    children = [
        Child("web server", lambda: portal_process(web, env, pass_fds=(fd,))),
        Child("worker", lambda: portal_process(["worker"], env)),
    ]

    url = f"http://{args.host}:{args.port}"
    print(f"\n  The portal is starting at {url}", flush=True)
    for login in logins:
        print(f"  demo {login.role:<7} {login.email}  /  {login.password}", flush=True)
    code = supervise(url, redis, children)
    listener.close()
    print("The portal has stopped.", flush=True)
    return code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="portal", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser(
        "run",
        help="migrate, then run Redis (embedded if REDIS_URL is unset), "
        "the worker and the web server on this machine",
    )
    run.add_argument("--demo", action="store_true", help="seed demo expert and client first")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=8000)
    run.set_defaults(func=cmd_run)

    web = sub.add_parser("web", help="the production web server")
    web.add_argument("--host", default="127.0.0.1")
    web.add_argument("--port", type=int, default=8000)
    web.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("WEB_WORKERS", "1")),
        help="processes (default: WEB_WORKERS or 1)",
    )
    web.add_argument("--server", choices=["granian", "uvicorn"], default="granian")
    web.add_argument("--fd", type=int, help=argparse.SUPPRESS)  # a listening socket, inherited
    web.set_defaults(func=cmd_web)

    worker = sub.add_parser("worker", help="a background worker (arq)")
    worker.set_defaults(func=cmd_worker)

    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=cmd_migrate)
    sub.add_parser("demo", help="seed demo data (idempotent)").set_defaults(func=cmd_demo)

    expert = sub.add_parser("create-expert", help="create an expert account")
    expert.add_argument("--email", required=True)
    expert.add_argument("--password", help="'-' reads it from standard input; omitted: prompt")
    expert.add_argument("--slug", required=True, help="public address: /e/<slug>")
    expert.add_argument("--name", required=True)
    expert.set_defaults(func=cmd_create_expert)

    client = sub.add_parser("create-client", help="create a client account")
    client.add_argument("--email", required=True)
    client.add_argument("--password", help="'-' reads it from standard input; omitted: prompt")
    client.add_argument("--name", default="")
    client.set_defaults(func=cmd_create_client)
    credits = sub.add_parser("credits", help="wallets and the credits ledger")
    credits_sub = credits.add_subparsers(dest="credits_command", required=True)
    grant = credits_sub.add_parser("grant", help="give (or, negative, take back) credits")
    grant.add_argument("--client", required=True, help="the client's email")
    grant.add_argument("--expert", required=True, help="the expert's slug")
    grant.add_argument("--credits", required=True, type=int, help="may be negative")
    grant.add_argument("--reason", required=True, help="shown to the client")
    grant.set_defaults(func=cmd_credits_grant)
    credits_sub.add_parser(
        "verify", help="recompute every wallet from its entries; exit 1 on a difference"
    ).set_defaults(func=cmd_credits_verify)
    credits_sub.add_parser(
        "reconcile",
        help="now, what the worker does on its own: ask Stripe about purchases open for "
        "30 minutes, expire credits past their date",
    ).set_defaults(func=cmd_credits_reconcile)
    events = sub.add_parser("events", help="the domain event log and its consumers")
    events_sub = events.add_subparsers(dest="events_command", required=True)
    events_sub.add_parser(
        "retry", help="try again the events a consumer could not act on (see /healthz)"
    ).set_defaults(func=cmd_events_retry)
    return parser


def _keep_private(settings: Settings) -> None:
    """Local data (the database, Redis's files, emails, the secret key) is for this user
    alone: what the portal creates is private by its umask (see `main`); this takes the
    group's and others' rights from what an earlier version or another program left."""
    places = [settings.var_dir]
    if settings.database_engine == "sqlite":
        database = settings.sqlite_path
        places += [database.with_name(database.name + end) for end in ("", "-wal", "-shm")]
    for place in places:
        if not place.exists():
            continue
        for path in [place, *place.rglob("*")] if place.is_dir() else [place]:
            mode = stat.S_IMODE(path.lstat().st_mode)
            if mode & 0o077 and not path.is_symlink():
                path.chmod(mode & ~0o077)


def main(argv: list[str] | None = None) -> int:
    os.umask(0o077)  # files and folders readable by this user only, in every process started
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    args = build_parser().parse_args(argv)
    try:
        settings = get_settings()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _keep_private(settings)
    return int(args.func(args, settings) or 0)


if __name__ == "__main__":
    sys.exit(main())
