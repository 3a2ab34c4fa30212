"""Writing emails, and sending them.

`notify()` renders an email in the recipient's language and time zone and stores it; the
notify consumer (consumer.py) calls it for each event of the log, and reminders.py for
what falls due. Its key makes it once per event, however often the code that tells it
runs. Within `drafting()` it renders without storing: the consumer renders an event's
emails before its transaction and stores them (`drafts_write`) in the transaction that
moves its cursor, so rendering never holds the database's write lock. The worker sends
what is pending (right after writing it, and a sweep every 15 seconds): through SMTP when
SMTP_URL is set, else as .eml files in var/outbox/. A failure is retried after 1, 5, 30
minutes and 2 hours; then the email is marked failed, shown to the expert, and tried again
by the sweep every 6 hours. An email that cannot be sent as it is (an address that is not
one address, an address the server refuses to encode...) is failed at once with its error,
and the round goes on with the others.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from functools import cache
from pathlib import Path
from urllib.parse import unquote, urlsplit

from jinja2 import Environment

from portal import i18n
from portal.accounts.tables import User
from portal.db import is_unique_violation
from portal.notify.tables import Notification, NotificationStatus
from portal.templating import environment

log = logging.getLogger(__name__)

RETRY_AFTER = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
)
FAILED_RETRY = timedelta(hours=6)
LEASE = timedelta(minutes=10)
SENDER_NAME = "Portail"


@cache
def _env() -> Environment:
    return environment()


_drafts: ContextVar[list[Notification] | None] = ContextVar("notify_drafts", default=None)


@contextmanager
def drafting() -> Iterator[list[Notification]]:
    """Within: `notify()` adds the emails it renders to the list yielded, stores nothing."""
    drafts: list[Notification] = []
    token = _drafts.set(drafts)
    try:
        yield drafts
    finally:
        _drafts.reset(token)


async def drafts_write(drafts: list[Notification]) -> None:
    """Store emails rendered in `drafting()`; one whose key is stored already is skipped."""
    if drafts:  # copies: an insert gives its rows ids, which a second try must not reuse
        columns = [column._meta.name for column in Notification._meta.non_default_columns]
        copies = [Notification(**{name: draft[name] for name in columns}) for draft in drafts]
        await Notification.insert(*copies).on_conflict(target=Notification.key, action="DO NOTHING")


@dataclass(frozen=True, slots=True)
class Email:
    """What an email says, composed in the recipient's language (see messages.py)."""

    subject: str
    lines: list[str]
    link: tuple[str, str] | None = None  # (label, address)


def render(email: Email, user: User) -> tuple[str, str]:
    """(text, html) of an email, from templates/emails/message.txt and .html."""
    env = _env()
    context = {"email": email, "user": user}
    text = env.get_template("emails/message.txt").render(context)
    html = env.get_template("emails/message.html").render(context)
    return text.strip() + "\n", html


async def notify(
    *,
    user: User,
    kind: str,
    key: str,
    compose: Callable[[], Email],
    ics: bytes = b"",
    ics_method: str = "",
) -> None:
    """Write an email for `user` about what just happened, once per `key`. `compose` runs
    in the user's language and time zone."""
    if await Notification.exists().where(Notification.key == key):
        return
    with i18n.speaking(user.locale, user.timezone):
        email = compose()
        text, html = render(email, user)
    notification = Notification(
        user=user.id,
        kind=kind,
        key=key,
        to_address=user.email,
        # One line, even from a name written before names were checked.
        subject=" ".join(email.subject.splitlines()),
        text=text,
        html=html,
        ics=ics.decode(),
        ics_method=ics_method,
    )
    if (drafts := _drafts.get()) is not None:
        drafts.append(notification)
        return
    try:
        await notification.save()
    except Exception as exc:  # told twice at once (outside a transaction): once is written
        if not is_unique_violation(exc):
            raise


def header_text(value: str) -> str:
    """A header's text as people wrote it, and nothing more: one line, and no RFC 2047
    encoded word. The header parser decodes `=?utf-8?q?=0D=0ABcc:...?=` into a line break
    that older Pythons then write out raw (CVE-2024-6923): a name could add headers. A
    zero-width space after the `=` keeps the text as it reads and makes it plain text."""
    return " ".join(value.splitlines()).replace("=?", "=\u200b?")


def message_of(notification: Notification, sender: str) -> EmailMessage:
    """The email: plain text and HTML, and the invite as a calendar part when there is one
    (`method=` in the part, so calendar clients act on it rather than offer a file) and as
    an attachment. Both say their charset (Outlook garbles unlabelled parts), and the
    attachment its name in the content type too (some clients read only that)."""
    message = EmailMessage()
    message["Subject"] = header_text(notification.subject)
    message["From"] = f"{SENDER_NAME} <{sender}>"
    message["To"] = header_text(notification.to_address)
    if len(message["To"].addresses) != 1 or message["To"].defects:  # one person, no more
        raise ValueError(f"Not one address: {notification.to_address[:80]!r}")
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(idstring=f"n{notification.id}", domain=sender.split("@")[-1])
    message.set_content(notification.text)
    message.add_alternative(notification.html, subtype="html")
    if notification.ics:
        message.add_alternative(
            notification.ics.encode(),
            maintype="text",
            subtype="calendar",
            params={"method": notification.ics_method or "REQUEST", "charset": "UTF-8"},
        )
        message.add_attachment(
            notification.ics.encode(),
            maintype="application",
            subtype="ics",
            filename="invite.ics",
            params={"charset": "UTF-8", "name": "invite.ics"},
        )
    return message


@dataclass(frozen=True, slots=True)
class Outbox:
    """Where emails go: an SMTP server (smtp://user:password@host:port, smtps:// for TLS
    from the start; STARTTLS is used when the server offers it), or files in a folder."""

    smtp_url: str | None
    folder: Path
    sender: str

    def send(self, message: EmailMessage, notification_id: int) -> None:
        if not self.smtp_url:
            self.folder.mkdir(parents=True, exist_ok=True)
            path = self.folder / f"{notification_id:08d}.eml"
            path.write_bytes(bytes(message))
            return
        url = urlsplit(self.smtp_url)
        host, port = url.hostname or "localhost", url.port
        if url.scheme == "smtps":
            client: smtplib.SMTP = smtplib.SMTP_SSL(host, port or 465, timeout=20)
        else:
            client = smtplib.SMTP(host, port or 25, timeout=20)
        with client:
            if url.scheme != "smtps" and client.has_extn("starttls"):
                client.starttls(context=ssl.create_default_context())
            if url.username:
                client.login(unquote(url.username), unquote(url.password or ""))
            client.send_message(message)


async def _not_sent(
    notification: Notification, exc: Exception, now: datetime, *, again_soon: bool
) -> None:
    """Record a failure: tried again after a while, or failed (shown to its expert when
    it was for them) once the tries run out or when it cannot be sent as it is."""
    attempts = notification.attempts + 1
    failed = not again_soon or attempts > len(RETRY_AFTER)
    await Notification.update(
        {
            Notification.attempts: attempts,
            Notification.last_error: f"{type(exc).__name__}: {exc}"[:300],
            Notification.status: NotificationStatus.failed.value
            if failed
            else NotificationStatus.pending.value,
            Notification.next_attempt_at: now
            + (FAILED_RETRY if failed else RETRY_AFTER[attempts - 1]),
        }
    ).where(Notification.id == notification.id)
    log.warning("email %s not sent (%s: %s)", notification.id, type(exc).__name__, exc)


async def send_one(notification_id: int, outbox: Outbox, now: datetime | None = None) -> bool:
    """Send one pending email; True once sent. A failure is recorded with the next try."""
    now = now or datetime.now(UTC)
    # Take it first: of two workers (or a job and the sweep), one sends. A worker that dies
    # while sending leaves it taken for LEASE only.
    taken = (
        await Notification.update(
            {
                Notification.status: NotificationStatus.sending.value,
                Notification.next_attempt_at: now + LEASE,
            }
        )
        .where(
            (Notification.id == notification_id)
            & (Notification.status != NotificationStatus.sent.value)
            & (Notification.next_attempt_at <= now)
        )
        .returning(Notification.id)
    )
    if not taken:
        return False
    notification = await Notification.objects().get(Notification.id == notification_id)
    if notification is None:  # gone since it was taken (an unconfirmed address purged)
        return False
    try:
        message = message_of(notification, outbox.sender)
        await asyncio.to_thread(outbox.send, message, notification.id)
    except (OSError, smtplib.SMTPException) as exc:  # the server or the folder, for now
        await _not_sent(notification, exc, now, again_soon=True)
        return False
    except Exception as exc:  # what the email holds cannot be sent: trying soon won't help
        await _not_sent(notification, exc, now, again_soon=False)
        return False
    # Marked sent only after the server took it: a crash between the two sends it again
    # (at least once), never loses it.
    await Notification.update(
        {Notification.status: NotificationStatus.sent.value, Notification.sent_at: now}
    ).where(Notification.id == notification.id)
    return True


async def notifications_send_due(
    outbox: Outbox, *, now: datetime | None = None, limit: int = 200
) -> int:
    """Send every email due (pending, or failed and waited long enough); the number sent."""
    now = now or datetime.now(UTC)
    due = (
        await Notification.select(Notification.id)
        .where(
            (Notification.status != NotificationStatus.sent.value)
            & (Notification.next_attempt_at <= now)
        )
        .order_by(Notification.id)
        .limit(limit)
    )
    sent = 0
    for row in due:
        if await send_one(row["id"], outbox, now):
            sent += 1
    return sent
