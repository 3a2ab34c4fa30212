"""HTTP glue, one module per area. Handlers parse input, call a service, render."""

from portal.routes import accounts, api, client, expert, ops, public

ROUTES = [*public.ROUTES, *ops.ROUTES, *accounts.ROUTES, *client.ROUTES, *expert.ROUTES, api.router]
