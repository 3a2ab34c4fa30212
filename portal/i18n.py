"""French and English: message catalogs (Babel), the current locale and time zone,
and formatting of dates and money for the person looking.

Catalogs are the `.po` files under `portal/locale/`, compiled in memory at first use.
French is the default language; message ids are English.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from functools import cache, lru_cache
from io import BytesIO
from pathlib import Path
from zoneinfo import ZoneInfo, available_timezones

from babel import Locale, dates, numbers
from babel.dates import get_timezone, get_timezone_location
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

from portal.errors import N_

LOCALES = ("fr", "en")
DEFAULT_LOCALE = "fr"
DEFAULT_TIMEZONE = "Europe/Paris"
LOCALE_DIR = Path(__file__).parent / "locale"

_locale: contextvars.ContextVar[str] = contextvars.ContextVar("locale", default=DEFAULT_LOCALE)
_timezone: contextvars.ContextVar[str] = contextvars.ContextVar(
    "timezone", default=DEFAULT_TIMEZONE
)


@cache
def translations(locale: str) -> Translations:
    po = LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"
    if not po.is_file():
        return Translations()
    with po.open("rb") as f:
        catalog = read_po(f, locale=locale)
    buffer = BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(fp=buffer)


def activate(locale: str, timezone: str = DEFAULT_TIMEZONE) -> None:
    _locale.set(locale if locale in LOCALES else DEFAULT_LOCALE)
    _timezone.set(timezone)


@contextmanager
def speaking(locale: str, timezone: str = DEFAULT_TIMEZONE) -> Iterator[None]:
    """Everything inside is said in `locale` and shown in `timezone` (an email to someone
    else than the person the request is for), then the previous ones come back."""
    tokens = (
        _locale.set(locale if locale in LOCALES else DEFAULT_LOCALE),
        _timezone.set(timezone),
    )
    try:
        yield
    finally:
        _locale.reset(tokens[0])
        _timezone.reset(tokens[1])


def current_locale() -> str:
    return _locale.get()


def current_timezone() -> str:
    return _timezone.get()


def gettext(message: str) -> str:
    return translations(_locale.get()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(_locale.get()).ngettext(singular, plural, n)


def negotiate(accept_language: str | None) -> str | None:
    """The best of our locales for an Accept-Language header, or None."""
    if not accept_language:
        return None
    weighted: list[tuple[float, str]] = []
    for part in accept_language.split(","):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        if tag and quality > 0:
            weighted.append((quality, tag.strip()))
    weighted.sort(key=lambda pair: -pair[0])  # stable: equal weights keep header order
    best = Locale.negotiate([tag for _, tag in weighted], LOCALES, sep="-")
    return str(best) if best else None


def format_datetime(value: datetime, fmt: str = "medium") -> str:
    """A UTC (or any aware) datetime shown in the viewer's zone and language."""
    return dates.format_datetime(value, fmt, tzinfo=ZoneInfo(_timezone.get()), locale=_locale.get())


def format_date(value: date | datetime, fmt: str = "long", tz: str | None = None) -> str:
    """A date in the viewer's language; a moment is taken in `tz` (default: the viewer's)."""
    if isinstance(value, datetime):
        value = value.astimezone(ZoneInfo(tz or _timezone.get())).date()
    return dates.format_date(value, fmt, locale=_locale.get())


def format_datetime_in(value: datetime, tz: str) -> str:
    """A moment as people write an appointment, in a given zone: "mardi 1 décembre 2026
    à 09:00"."""
    local = value.astimezone(ZoneInfo(tz))
    day = dates.format_date(local.date(), "full", locale=_locale.get())
    clock = dates.format_time(local.time(), "short", locale=_locale.get())
    return gettext("%(date)s at %(time)s") % {"date": day, "time": clock}


def format_time_in(value: datetime, tz: str) -> str:
    return dates.format_time(value.astimezone(ZoneInfo(tz)).time(), "short", locale=_locale.get())


def format_month(year: int, month: int) -> str:
    """ "novembre 2026", "November 2026"."""
    return dates.format_skeleton("yMMMM", date(year, month, 1), locale=_locale.get())


def format_money(minor_units: int, currency: str = "EUR", short: bool = False) -> str:
    """Integer minor units (cents) to a localised amount, exactly (no floats). `short`
    leaves out zero cents ("76 €" rather than "76,00 €")."""
    digits = numbers.get_currency_precision(currency)
    amount = Decimal(minor_units).scaleb(-digits)
    locale = _locale.get()
    if short and minor_units % 10**digits == 0:
        pattern = Locale.parse(locale).currency_formats["standard"].pattern.replace(".00", "")
        return numbers.format_currency(
            amount, currency, format=pattern, currency_digits=False, locale=locale
        )
    return numbers.format_currency(amount, currency, locale=locale)


def format_minutes(minutes: int) -> str:
    """A duration the way people say it: "45 min", "1 h", "1 h 30"."""
    hours, rest = divmod(minutes, 60)
    if not hours:
        return f"{rest}\u00a0min"
    if not rest:
        return f"{hours}\u00a0h"
    return f"{hours}\u00a0h\u00a0{rest:02d}"


def weekday_name(index: int) -> str:
    """0 is Monday."""
    return dates.get_day_names("wide", locale=_locale.get())[index].capitalize()


def format_number(value: int) -> str:
    return numbers.format_decimal(value, locale=_locale.get())


_ZONE_TABLES = (Path("/usr/share/zoneinfo/zone1970.tab"), Path("/usr/share/zoneinfo/zone.tab"))


@cache
def timezone_choices() -> list[str]:
    """The zones offered in forms: every zone of a country (the system's zone.tab and
    zone1970.tab: Europe/Luxembourg, Indian/Reunion, America/Guadeloupe...), without the
    old aliases (Asia/Calcutta, US/Eastern), sorted; and UTC."""
    known = available_timezones()
    zones: set[str] = set()
    for table in _ZONE_TABLES:
        if table.is_file():
            lines = table.read_text(encoding="utf-8").splitlines()
            zones |= {line.split("\t")[2] for line in lines if line and not line.startswith("#")}
    zones &= known
    if not zones:
        zones = {tz for tz in known if "/" in tz and not tz.startswith(("Etc/", "SystemV/", "US/"))}
    return sorted(zones | {"UTC"})


ZONE_REGIONS = {
    "Africa": N_("Africa"),
    "America": N_("Americas"),
    "Antarctica": N_("Antarctica"),
    "Arctic": N_("Arctic"),
    "Asia": N_("Asia"),
    "Atlantic": N_("Atlantic"),
    "Australia": N_("Australia"),
    "Europe": N_("Europe"),
    "Indian": N_("Indian Ocean"),
    "Pacific": N_("Pacific"),
    "UTC": N_("Universal time"),
}


@cache
def _zone_countries() -> dict[str, tuple[str, ...]]:
    """Each zone's country (ISO codes): zone.tab's, which names a zone for each country
    (zone1970.tab groups countries under one zone: Iceland under Africa/Abidjan, which a
    search for Iceland must not pick); zone1970.tab's only for a zone zone.tab lacks."""
    countries: dict[str, tuple[str, ...]] = {}
    for table in reversed(_ZONE_TABLES):  # zone.tab first
        if table.is_file():
            for line in table.read_text(encoding="utf-8").splitlines():
                if line and not line.startswith("#"):
                    codes, _where, zone = line.split("\t")[:3]
                    countries.setdefault(zone, tuple(sorted(codes.split(","))))
    return countries


@lru_cache(maxsize=4096)
def _zone_names(zone: str, locale: str) -> str:
    if zone not in timezones():
        return ""
    city = get_timezone_location(get_timezone(zone), locale=locale, return_city=True)
    territories = Locale.parse(locale).territories
    names = [city, *(territories.get(code, "") for code in _zone_countries().get(zone, ()))]
    return " ".join(name for name in names if name)


def zone_names(zone: str) -> str:
    """What a zone is called in the reader's language, for the pickers' search: its city
    and its countries ("Londres Royaume-Uni" for Europe/London in French)."""
    return _zone_names(zone, _locale.get())


@cache
def timezone_groups() -> list[tuple[str, list[str]]]:
    """The zones offered, by region (Europe, Americas...), for pickers: (region, zones)."""
    groups: dict[str, list[str]] = {}
    for zone in timezone_choices():
        groups.setdefault(zone.split("/", 1)[0], []).append(zone)
    order = list(ZONE_REGIONS)
    return sorted(groups.items(), key=lambda item: order.index(item[0]) if item[0] in order else 99)


@cache
def timezones() -> frozenset[str]:
    """The zones accepted in forms: those offered."""
    return frozenset(timezone_choices())


_ZONEINFO = Path("/usr/share/zoneinfo")


@lru_cache(maxsize=1024)  # bounded: the name comes from a cookie anyone can set
def canonical_zone(name: str) -> str | None:
    """The offered zone a browser's name stands for (Asia/Calcutta is Asia/Kolkata: the
    system's alias links to it), or None."""
    if name in timezones():
        return name
    if not name or ".." in name or name.startswith("/"):
        return None
    try:
        target = (_ZONEINFO / name).resolve(strict=True).relative_to(_ZONEINFO.resolve())
    except (OSError, ValueError):
        return None
    return str(target) if str(target) in timezones() else None
