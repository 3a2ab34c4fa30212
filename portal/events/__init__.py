"""The domain event log: domains record what happened, in the transaction of the change;
consumers in the worker (emails, and later invoices, agreements, webhooks out) read the
log in order, each from its own cursor, and act once per event."""
