"""The Jinja environment pages and emails share: templates, translations and the filters
that show dates, money and durations in the reader's language and time zone."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from portal import i18n
from portal.web import TEMPLATES_DIR


def environment(*, auto_reload: bool = False) -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        # Plain-text emails (.txt) are not HTML: nothing to escape there.
        autoescape=select_autoescape(disabled_extensions=("txt",), default=True),
        extensions=["jinja2.ext.i18n"],
        undefined=StrictUndefined,
        auto_reload=auto_reload,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.filters.update(
        datetime=i18n.format_datetime,
        date=i18n.format_date,
        money=i18n.format_money,
        number=i18n.format_number,
        minutes=i18n.format_minutes,
        month=lambda m: i18n.format_month(m.year, m.month),
        datetime_in=i18n.format_datetime_in,
        time_in=i18n.format_time_in,
        date_in=lambda value, tz: value.astimezone(ZoneInfo(tz)).date().isoformat(),
    )
    env.globals.update(
        current_locale=i18n.current_locale,
        current_timezone=i18n.current_timezone,
        timezone_choices=i18n.timezone_choices,
        timezone_groups=i18n.timezone_groups,
        zone_names=i18n.zone_names,
        zone_regions=i18n.ZONE_REGIONS,
        weekday_name=i18n.weekday_name,
    )
    return env
