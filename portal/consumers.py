"""Every consumer of the event log, in the order the worker runs them. A new one (invoices,
agreements, webhooks out) is added here, and to nothing a domain service imports."""

from __future__ import annotations

from portal.events.consume import Consumer
from portal.notify.consumer import NOTIFY

CONSUMERS: tuple[Consumer, ...] = (NOTIFY,)


def consumer_named(name: str) -> Consumer:
    for consumer in CONSUMERS:
        if consumer.name == name:
            return consumer
    raise KeyError(name)
