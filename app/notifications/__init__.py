"""Email: templates rendered in a sandbox, a queue in the database, and a log."""
from app.notifications.queue import queue_email  # noqa: F401
