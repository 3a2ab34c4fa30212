"""What each email says, composed in the recipient's language and time zone (notify() has
made them current). Written by the notify consumer from the event log (consumer.py) and by
the reminders (reminders.py), never by a domain service."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from portal import i18n
from portal.accounts.tables import Expert, User
from portal.booking.invites import client_invite
from portal.booking.tables import Booking
from portal.credits.selectors import hold_captured
from portal.credits.tables import Purchase
from portal.errors import N_, NotFound
from portal.i18n import gettext as _
from portal.i18n import ngettext
from portal.notify.services import Email, notify
from portal.questions.tables import Question
from portal.settings import get_settings


def _when(booking: Booking) -> str:
    """The start in the reader's zone, the zone named (an expert abroad reads it right)."""
    zone = i18n.current_timezone()
    when = i18n.format_datetime_in(booking.starts_at, zone)
    return f"{when} ({zone.replace('_', ' ')})"


def _what(booking: Booking) -> str:
    kind = _("Call") if booking.channel == "call" else _("Video call")
    return f"{kind} · {i18n.format_minutes(booking.duration)}"


def _how(booking: Booking, *, for_client: bool) -> str:
    """How the exchange happens, in words for whoever reads it."""
    if booking.meeting_url:
        return _("Video room: %(url)s") % {"url": booking.meeting_url}
    if booking.call_mode == "client_calls" and booking.expert_phone:
        if for_client:
            return _("You call %(phone)s at the time.") % {"phone": booking.expert_phone}
        return _("The client calls %(phone)s.") % {"phone": booking.expert_phone}
    if booking.phone:
        if for_client:
            return _("The expert calls you at %(phone)s.") % {"phone": booking.phone}
        return _("You call the client at %(phone)s.") % {"phone": booking.phone}
    return ""


async def hold_kept(booking: Booking) -> int:
    return await hold_captured(hold_id=booking.hold) or 0


def _url(path: str) -> str:
    return get_settings().base_url + path


async def _expert(expert_id: int) -> Expert:
    expert = await Expert.objects().get(Expert.id == expert_id)
    if expert is None:
        raise NotFound(N_("This expert does not exist."))
    return expert


async def _user(user_id: int) -> User:
    user = await User.objects().get(User.id == user_id)
    if user is None:
        raise NotFound()
    return user


def _cancelled_by_expert(booking: Booking, values: dict[str, str], page: str) -> Email:
    """The client's email when the expert cancelled: who, why, and that nothing is kept."""
    credits = ngettext("%(num)d credit", "%(num)d credits", booking.credits) % {
        "num": booking.credits
    }
    lines = [
        _("%(name)s cancelled your booking of %(when)s.") % values,
        _("Their reason: %(reason)s") % {"reason": booking.cancel_reason},
        _("All its credits (%(credits)s) are released: they are yours to use again.")
        % {"credits": credits},
        _("The cancellation is attached for your calendar."),
    ]
    return Email(
        subject=_("%(name)s cancelled your booking: %(what)s, %(when)s") % values,
        lines=lines,
        link=(_("Book another time"), _url(f"/e/{values['slug']}/book")),
    )


async def booking_changed(booking: Booking, change: str) -> None:
    """Tell the client (with the calendar invite or cancellation) and the expert that a
    booking was made, moved or cancelled. `change`: booked, moved, cancelled."""
    expert = await _expert(booking.expert)
    client = await _user(booking.client)
    expert_user = await _user(expert.user)
    page = f"/me/bookings/{booking.id}"
    invite = client_invite(booking, expert, client, base_url=get_settings().base_url, page=page)
    method = "CANCEL" if change == "cancelled" else "REQUEST"

    def for_client() -> Email:
        subjects = {
            "booked": _("Booking confirmed: %(what)s with %(name)s, %(when)s"),
            "moved": _("Booking moved: %(what)s with %(name)s, now %(when)s"),
            "cancelled": _("Booking cancelled: %(what)s with %(name)s, %(when)s"),
        }
        lines = {
            "booked": _(
                "Your booking is confirmed for %(when)s. "
                "The credits are held until it has taken place."
            ),
            "moved": _("Your booking now takes place on %(when)s. The same credits stay held."),
            "cancelled": _(
                "Your booking of %(when)s is cancelled. Your history shows what was released."
            ),
        }
        values = {"what": _what(booking), "name": expert.display_name, "when": _when(booking)}
        if change == "cancelled" and booking.cancelled_by == "expert":
            values["slug"] = expert.slug
            return _cancelled_by_expert(booking, values, page)
        said = [lines[change] % values]
        if change != "cancelled":
            said += [
                how
                for how in (
                    _how(booking, for_client=True),
                    _("To move or cancel it, open its page: %(url)s") % {"url": _url(page)},
                )
                if how
            ]
        said.append(_("The invite is attached for your calendar."))
        return Email(
            subject=subjects[change] % values,
            lines=said,
            link=(_("See the booking"), _url(page)),
        )

    def for_expert() -> Email:
        subjects = {
            "booked": _("New booking: %(what)s, %(when)s"),
            "moved": _("Booking moved: %(what)s, now %(when)s"),
            "cancelled": _("Booking cancelled: %(what)s, %(when)s"),
        }
        values = {"what": _what(booking), "when": _when(booking)}
        who = client.name or client.email
        said = [_("Client: %(who)s (%(email)s).") % {"who": who, "email": client.email}]
        if change != "cancelled" and (how := _how(booking, for_client=False)):
            said.append(how)
        if change == "cancelled" and booking.cancelled_by == "expert":
            said.append(_("You cancelled it: %(reason)s") % {"reason": booking.cancel_reason})
        return Email(
            subject=subjects[change] % values,
            lines=said,
            link=(_("Your schedule"), _url("/expert/schedule")),
        )

    key = f"booking:{booking.id}:{change}:{booking.sequence}"
    await notify(
        user=client,
        kind=f"booking_{change}",
        key=f"client:{key}",
        compose=for_client,
        ics=invite,
        ics_method=method,
    )
    await notify(
        user=expert_user, kind=f"expert_booking_{change}", key=f"expert:{key}", compose=for_expert
    )


async def question_asked(question: Question) -> None:
    """Tell the expert a question is waiting, and by when to answer it."""
    expert = await _expert(question.expert)
    expert_user = await _user(expert.user)

    def compose() -> Email:
        when = i18n.format_datetime_in(question.due_at, i18n.current_timezone())
        subject = (
            _("Urgent question to answer by %(when)s")
            if question.urgent
            else _("New question to answer by %(when)s")
        )
        return Email(
            subject=subject % {"when": when},
            lines=[question.body[:600] + ("…" if len(question.body) > 600 else "")],
            link=(_("Answer"), _url(f"/expert/questions/{question.id}")),
        )

    await notify(
        user=expert_user, kind="question_new", key=f"question:{question.id}:asked", compose=compose
    )


async def question_answered(question: Question) -> None:
    """Tell the client the answer is there, and what it costs."""
    client = await _user(question.client)
    expert = await _expert(question.expert)

    def compose() -> Email:
        said = (
            _("This answer is expertise: it is billed.")
            if question.billable
            else _("This answer is coordination: it is free.")
        )
        return Email(
            subject=_("%(name)s answered your question") % {"name": expert.display_name},
            lines=[
                question.answer[:1500] + ("…" if len(question.answer) > 1500 else ""),
                said,
            ],
            link=(_("Read the answer"), _url(f"/me/questions/{question.id}")),
        )

    await notify(
        user=client,
        kind="question_answered",
        key=f"question:{question.id}:answered",
        compose=compose,
    )


async def purchase_receipt(purchase: Purchase) -> None:
    client = await _user(purchase.client)
    expert = await _expert(purchase.expert)

    def compose() -> Email:
        credits = ngettext("%(num)d credit", "%(num)d credits", purchase.credits) % {
            "num": purchase.credits
        }
        return Email(
            subject=_("Receipt: %(pack)s with %(name)s")
            % {"pack": purchase.pack_name, "name": expert.display_name},
            lines=[
                _(
                    "%(credits)s added for %(price)s "
                    "(purchase n° %(id)d, charter version %(version)d)."
                )
                % {
                    "credits": credits,
                    "price": i18n.format_money(purchase.price_minor, purchase.currency),
                    "id": purchase.id,
                    "version": purchase.charter_version,
                }
            ],
            link=(_("My credits"), _url(f"/me/purchases/{purchase.id}")),
        )

    await notify(
        user=client, kind="purchase_receipt", key=f"purchase:{purchase.id}:paid", compose=compose
    )


async def booking_reminder(booking: Booking, user: User, lead: timedelta) -> None:
    """A booking soon, told to the client or the expert (`user`)."""
    expert = await _expert(booking.expert)
    for_client = user.id == booking.client
    hours = int(lead.total_seconds() // 3600)

    def compose() -> Email:
        values = {"what": _what(booking), "when": _when(booking), "name": expert.display_name}
        subject = ngettext("In %(num)d hour: %(what)s", "In %(num)d hours: %(what)s", hours) % {
            **values,
            "num": hours,
        }
        line = _("%(what)s on %(when)s.") % values
        if how := _how(booking, for_client=for_client):
            line += " " + how
        page = f"/me/bookings/{booking.id}" if for_client else "/expert/schedule"
        return Email(subject=subject, lines=[line], link=(_("See the booking"), _url(page)))

    who = "client" if for_client else "expert"
    await notify(
        user=user,
        kind="booking_reminder",
        key=f"{who}:booking:{booking.id}:remind:{hours}h:{booking.sequence}",
        compose=compose,
    )


async def deadline_soon(question: Question, user: User) -> None:
    def compose() -> Email:
        when = i18n.format_datetime_in(question.due_at, i18n.current_timezone())
        return Email(
            subject=_("A question is due by %(when)s") % {"when": when},
            lines=[question.body[:300] + ("…" if len(question.body) > 300 else "")],
            link=(_("Answer"), _url(f"/expert/questions/{question.id}")),
        )

    await notify(
        user=user, kind="deadline_soon", key=f"question:{question.id}:due-soon", compose=compose
    )


async def credits_expiring(
    lot_id: int, remaining: int, expires_at: datetime, expert_id: int, user: User
) -> None:
    expert = await _expert(expert_id)

    def compose() -> Email:
        when = i18n.format_datetime_in(expires_at, i18n.current_timezone())
        credits = ngettext("%(num)d credit", "%(num)d credits", remaining) % {"num": remaining}
        return Email(
            subject=_("Credits expiring with %(name)s") % {"name": expert.display_name},
            lines=[
                _("%(credits)s expire on %(when)s. Book a call or ask a question before then.")
                % {"credits": credits, "when": when}
            ],
            link=(_("Book or ask"), _url(f"/e/{expert.slug}")),
        )

    await notify(user=user, kind="credits_expiring", key=f"lot:{lot_id}:expiring", compose=compose)


async def balance_low(wallet: Any, expert: Expert, user: User, last_entry: int) -> None:
    def compose() -> Email:
        credits = ngettext("%(num)d credit", "%(num)d credits", wallet.available) % {
            "num": wallet.available
        }
        return Email(
            subject=_("Your balance with %(name)s is low") % {"name": expert.display_name},
            lines=[_("%(credits)s left: not enough for the next exchange.") % {"credits": credits}],
            link=(_("Buy credits"), _url(f"/e/{expert.slug}")),
        )

    await notify(
        user=user, kind="balance_low", key=f"wallet:{wallet.id}:low:{last_entry}", compose=compose
    )


async def signup_confirmation(user: User, link: str, event_key: str) -> None:
    """To an address without an account: the link that finishes the sign-ups made with it
    (`event_key` names the sign-up it was sent for). The email greets the address, never a
    name typed in the form: whoever signs up can choose an address that is not theirs."""
    addressee = User(
        id=user.id, email=user.email, name="", locale=user.locale, timezone=user.timezone
    )

    def compose() -> Email:
        return Email(
            subject=_("Confirm your account"),
            lines=[
                _(
                    "Someone, probably you, asked to create an account with this email address. "
                    "To finish, open the link below and enter the password you chose. "
                    "The link works for 24 hours."
                ),
                _("If you did not ask for it, ignore this email: nothing happens without it."),
            ],
            link=(_("Confirm my account"), link),
        )

    await notify(
        user=addressee,
        kind="signup_confirm",
        key=event_key,
        compose=compose,
    )


async def signup_attempted(user: User, hour: str) -> None:
    """To the owner of an existing account: someone tried to sign up with their address (at
    most once an hour: `hour` names it)."""

    def compose() -> Email:
        return Email(
            subject=_("Someone tried to create an account with your email address"),
            lines=[
                _(
                    "Someone, maybe you, tried to sign up with this email address, which "
                    "already has an account. Nothing was changed and no account was created."
                ),
                _(
                    "If it was you, log in with your password (below). If it was not, you can "
                    "ignore this email; to change your password all the same, log in and open "
                    "your account page: %(url)s"
                )
                % {"url": _url("/account")},
            ],
            link=(_("Log in"), _url("/login")),
        )

    await notify(
        user=user, kind="signup_existing", key=f"signup-existing:{user.id}:{hour}", compose=compose
    )


async def login_code(user: User, code: str, minutes: int, nonce: str) -> None:
    """To an account held after many failed logins from other networks: the one-time code
    that lets its owner in from a new one."""

    def compose() -> Email:
        return Email(
            subject=_("Your login code"),
            lines=[
                _(
                    "Many attempts to log in to your account failed from networks you have "
                    "not used, so it is protected. To log in from a new network, enter this "
                    "code with your password (it works once, for %(minutes)d minutes):"
                )
                % {"minutes": minutes},
                code,
                _(
                    "If you are not trying to log in, someone else is guessing your password: "
                    "ignore this email, nobody gets in without the password. A long password "
                    "keeps them out; you can change it on your account page: %(url)s"
                )
                % {"url": _url("/account")},
            ],
        )

    await notify(
        user=user,
        kind="login_code",
        key=f"login-code:{user.id}:{nonce}",
        compose=compose,
    )


async def password_reset(user: User, link: str, event_key: str) -> None:
    """The link that sets a new password, to the account's address."""

    def compose() -> Email:
        return Email(
            subject=_("Reset your password"),
            lines=[
                _(
                    "Someone, probably you, asked to set a new password for your account. "
                    "Open the link below within an hour to choose it; it works once, and "
                    "every session and API token of the account ends when it is used."
                ),
                _(
                    "If you did not ask for it, ignore this email: your password stays as it "
                    "is, and the link ends the next time you log in."
                ),
            ],
            link=(_("Choose a new password"), link),
        )

    await notify(user=user, kind="password_reset", key=event_key, compose=compose)


async def email_change_link(user: User, new_email: str, link: str, event_key: str) -> None:
    """To the new address: the link that moves the account there."""
    addressee = User(
        id=user.id, email=new_email, name=user.name, locale=user.locale, timezone=user.timezone
    )

    def compose() -> Email:
        return Email(
            subject=_("Confirm your new email address"),
            lines=[
                _(
                    "You asked to use this address for your account. Open the link below "
                    "within 24 hours and confirm: your account then uses this address to log "
                    "in and for every email."
                ),
                _("If you did not ask for it, ignore this email: nothing changes without it."),
            ],
            link=(_("Confirm this address"), link),
        )

    await notify(user=addressee, kind="email_change", key=event_key, compose=compose)


async def email_changed(user: User, former: str, new_email: str, event_key: str) -> None:
    """To the former address: the account has moved (so a change nobody asked for shows)."""
    addressee = User(
        id=user.id, email=former, name=user.name, locale=user.locale, timezone=user.timezone
    )

    def compose() -> Email:
        return Email(
            subject=_("Your account's email address was changed"),
            lines=[
                _(
                    "Your account now uses %(email)s to log in and for every email. "
                    "If you did not change it, someone who knows your password did: contact "
                    "the portal's team at once. Do not ask for a new password from the login "
                    "page: its link would go to the new address."
                )
                % {"email": new_email},
            ],
            link=(_("Log in"), _url("/login")),
        )

    await notify(user=addressee, kind="email_changed", key=event_key, compose=compose)


async def no_show_told(booking: Booking, event_key: str) -> None:
    """A no-show recorded: the client is told what it costs (and how to contest a no-show
    of theirs); when the client reported the expert absent, the expert is told."""
    expert = await _expert(booking.expert)
    client = await _user(booking.client)
    page = _url(f"/me/bookings/{booking.id}")
    kept = await hold_kept(booking)

    def to_client() -> Email:
        values = {"name": expert.display_name, "when": _when(booking), "what": _what(booking)}
        if booking.status == "no_show_client":
            lines = [
                _("%(name)s recorded that you did not come to %(what)s on %(when)s.") % values,
                ngettext(
                    "As the charter says, %(num)d credit is debited.",
                    "As the charter says, %(num)d credits are debited.",
                    kept,
                )
                % {"num": kept},
                _(
                    "If you were there, say so from the booking's page within 48 hours: "
                    "%(name)s reads it and decides, and you are told."
                )
                % values,
            ]
            subject = _("No-show recorded: %(what)s, %(when)s") % values
        else:
            lines = [
                _("%(name)s could not attend %(what)s on %(when)s.") % values,
                _("Every credit of the booking is released."),
            ]
            subject = _("%(name)s could not attend: %(what)s, %(when)s") % values
        return Email(subject=subject, lines=lines, link=(_("See the booking"), page))

    def to_expert() -> Email:
        values = {"when": _when(booking), "what": _what(booking)}
        return Email(
            subject=_("The client reported you absent: %(what)s, %(when)s") % values,
            lines=[
                _(
                    "The client reported that you did not call or join %(what)s on %(when)s: "
                    "every credit of the booking is released to them."
                )
                % values
            ],
            link=(_("Your schedule"), _url("/expert/schedule")),
        )

    if booking.no_show_reported_by == "client":
        await notify(
            user=await _user(expert.user),
            kind="expert_no_show_reported",
            key=f"expert:{event_key}",
            compose=to_expert,
        )
        return
    await notify(user=client, kind="no_show", key=f"client:{event_key}", compose=to_client)


async def contest_told(booking: Booking, event_key: str, *, decided: bool) -> None:
    """A contest, told to the expert with what the client wrote; its answer (`decided`), to
    the client. Which email goes is the event's: a contest read after it was answered still
    tells the expert of the contest."""
    expert = await _expert(booking.expert)
    client = await _user(booking.client)
    values = {"when": _when(booking), "what": _what(booking), "name": expert.display_name}
    if not decided:

        def to_expert() -> Email:
            local = booking.starts_at.astimezone(ZoneInfo(i18n.current_timezone())).date()
            day = f"/expert/schedule?view=day&day={local.isoformat()}"
            return Email(
                subject=_("A client contests a no-show: %(what)s, %(when)s") % values,
                lines=[
                    _("%(who)s (%(email)s) says they were there:")
                    % {"who": client.name or client.email, "email": client.email},
                    booking.contest_text[:1000],
                    _(
                        "Accept (their credits are given back) or keep the no-show, "
                        "from your schedule."
                    ),
                ],
                link=(_("Answer from your schedule"), _url(day)),
            )

        await notify(
            user=await _user(expert.user), kind="contest", key=event_key, compose=to_expert
        )
        return

    def to_client() -> Email:
        if booking.contest_decision == "accepted":
            lines = [_("%(name)s accepted your contest: the credits are given back.") % values]
        else:
            lines = [_("%(name)s keeps the no-show: the credits stay debited.") % values]
            if booking.contest_reply:
                lines.append(_("Their reason: %(reason)s") % {"reason": booking.contest_reply})
        return Email(
            subject=_("Your contest of %(what)s, %(when)s: answered") % values,
            lines=lines,
            link=(_("See the booking"), _url(f"/me/bookings/{booking.id}")),
        )

    await notify(
        user=await _user(booking.client), kind="contest_decided", key=event_key, compose=to_client
    )
