"""The Celery entry point for workers and beat:

    celery -A celery_app:celery worker
    celery -A celery_app:celery beat

It builds the Flask app (tasks run inside its app context) and sets the beat
schedule. On the embedded default (no REDIS_URL) tasks run in-process instead and
`flask cron run` does the daily automation."""
from celery.schedules import crontab

from app import create_app
from app.extensions import celery

flask_app = create_app()

celery.conf.beat_schedule = {
    "daily-automation": {
        "task": "app.tasks.daily_run",
        "schedule": crontab(hour=flask_app.config["CRON_HOUR"], minute=0),
    },
    "send-queued-email": {
        "task": "app.tasks.send_queued_email",
        "schedule": 60.0,
    },
    "retry-webhooks": {
        "task": "app.webhook_tasks.send_due_webhooks",
        "schedule": 60.0,
    },
    "sweep-pending-payments": {
        "task": "app.tasks.sweep_pending_payments",
        "schedule": crontab(minute=20),
    },
    "send-due-report-schedules": {
        "task": "app.report_tasks.send_due_report_schedules",
        "schedule": crontab(minute=5),
    },
}

# Importing the task modules registers the tasks with the worker.
import app.document_tasks  # noqa: E402,F401
import app.quote_tasks  # noqa: E402,F401
import app.report_tasks  # noqa: E402,F401
import app.tasks  # noqa: E402,F401
import app.webhook_tasks  # noqa: E402,F401
