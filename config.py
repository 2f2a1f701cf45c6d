"""Settings, all read from environment variables.

With nothing set the app runs on the embedded default: a SQLite file under
instance/ and Celery tasks executed in-process. Setting DATABASE_URL and REDIS_URL
switches to PostgreSQL and Redis without any code change.
"""
import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
INSTANCE_DIR = Path(os.environ.get("INSTANCE_DIR", BASE_DIR / "instance"))


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def database_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if not url:
        return f"sqlite:///{INSTANCE_DIR / 'tallyhost.db'}"
    # Heroku-style URLs name the dialect "postgres"; SQLAlchemy wants "postgresql".
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    return url


def celery_settings(redis_url: str | None) -> dict:
    broker = os.environ.get("CELERY_BROKER_URL") or redis_url
    return {
        "broker_url": broker or "memory://",
        "result_backend": os.environ.get("CELERY_RESULT_BACKEND") or redis_url or None,
        # Embedded default: no broker server, tasks run in the calling process.
        "task_always_eager": broker is None,
        "task_eager_propagates": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_acks_late": True,
        "worker_prefetch_multiplier": 1,
        "worker_max_tasks_per_child": int(os.environ.get("CELERY_MAX_TASKS_PER_CHILD", "200")),
        "timezone": os.environ.get("BUSINESS_TIMEZONE", "UTC"),
    }


class Config:
    APP_NAME = os.environ.get("APP_NAME", "Tallyhost")
    SECRET_KEY = os.environ.get("SECRET_KEY", "dev-only-secret-change-me")
    # Key for secrets stored in the database (module passwords, gateway keys, TOTP
    # seeds). Derived from SECRET_KEY when not given separately.
    ENCRYPTION_KEY = os.environ.get("ENCRYPTION_KEY")

    SQLALCHEMY_DATABASE_URI = database_url()
    SQLALCHEMY_TRACK_MODIFICATIONS = False
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
    REDIS_URL = os.environ.get("REDIS_URL")
    CELERY = celery_settings(REDIS_URL)
    CRON_HOUR = int(os.environ.get("CRON_HOUR", "9"))
    BUSINESS_TIMEZONE = os.environ.get("BUSINESS_TIMEZONE", "UTC")

    # Flask-AppBuilder: the schema comes from migrations only, and permissions are
    # synchronised by `flask setup`, never as a side effect of starting the app.
    FAB_CREATE_DB = False
    FAB_UPDATE_PERMS = False
    FAB_SECURITY_MANAGER_CLASS = "app.auth.security.TallySecurityManager"
    FAB_INDEX_VIEW = "app.admin.dashboard.DashboardIndexView"
    FAB_BASE_TEMPLATE = "admin/base.html"
    FAB_ADD_SECURITY_API = True
    FAB_API_KEY_ENABLED = True
    FAB_API_SWAGGER_UI = True
    AUTH_TYPE = 1  # AUTH_DB
    AUTH_ROLE_ADMIN = "Admin"
    AUTH_ROLE_PUBLIC = "Public"
    AUTH_RATE_LIMITED = env_bool("AUTH_RATE_LIMITED", True)
    AUTH_RATE_LIMIT = os.environ.get("AUTH_RATE_LIMIT", "10 per 20 second")
    RATELIMIT_ENABLED = env_bool("RATELIMIT_ENABLED", True)
    # The REST API's limit per API key or JWT user (Flask-Limiter notation).
    API_RATE_LIMIT = os.environ.get("API_RATE_LIMIT", "300 per minute")
    # On/off for that limit alone; unset, it follows RATELIMIT_ENABLED.
    API_RATE_LIMIT_ENABLED = (env_bool("API_RATE_LIMIT_ENABLED")
                              if "API_RATE_LIMIT_ENABLED" in os.environ else None)
    RATELIMIT_STORAGE_URI = os.environ.get("RATELIMIT_STORAGE_URI") or (
        REDIS_URL or "memory://"
    )
    PERMANENT_SESSION_LIFETIME = int(os.environ.get("SESSION_LIFETIME_SECONDS", "28800"))
    # A portal session also ends after this long without a request.
    PORTAL_IDLE_TIMEOUT_SECONDS = int(os.environ.get("SESSION_IDLE_TIMEOUT_SECONDS", "3600"))
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", False)
    WTF_CSRF_ENABLED = True
    WTF_CSRF_TIME_LIMIT = None

    # External services (override to point at a mirror or a test double; an empty
    # EXCHANGE_RATES_URL switches the daily exchange-rate update off).
    VIES_API_BASE = os.environ.get(
        "VIES_API_BASE", "https://ec.europa.eu/taxation_customs/vies/rest-api")
    EXCHANGE_RATES_URL = os.environ.get(
        "EXCHANGE_RATES_URL", "https://www.ecb.europa.eu/stats/eurofxref/eurofxref-daily.xml")
    # Domain availability by RDAP: the TLD -> service map (IANA bootstrap format; empty
    # = the small file shipped in app/registrars), or one base URL for every TLD.
    RDAP_BOOTSTRAP_FILE = os.environ.get("RDAP_BOOTSTRAP_FILE", "")
    RDAP_BASE_URL = os.environ.get("RDAP_BASE_URL", "")
    RDAP_TIMEOUT_SECONDS = int(os.environ.get("RDAP_TIMEOUT_SECONDS", "5"))
    # The public address of this installation that Namecheap has whitelisted (ClientIp).
    NAMECHEAP_CLIENT_IP = os.environ.get("NAMECHEAP_CLIENT_IP", "")

    UPLOAD_FOLDER = os.environ.get("UPLOAD_FOLDER", str(INSTANCE_DIR / "uploads"))
    MAX_CONTENT_LENGTH = 16 * 1024 * 1024

    MAIL_SERVER = os.environ.get("MAIL_SERVER", "")
    MAIL_PORT = int(os.environ.get("MAIL_PORT", "25"))
    MAIL_FROM = os.environ.get("MAIL_FROM", "billing@example.com")
    MAIL_USERNAME = os.environ.get("MAIL_USERNAME")
    MAIL_PASSWORD = os.environ.get("MAIL_PASSWORD")
    MAIL_USE_TLS = env_bool("MAIL_USE_TLS")
    MAIL_USE_SSL = env_bool("MAIL_USE_SSL")
    # Without MAIL_SERVER, email is written to this folder as .eml files.
    MAIL_OUTBOX_DIR = os.environ.get("MAIL_OUTBOX_DIR")
    # Background report exports are kept here (default instance/report_exports).
    REPORT_EXPORT_FOLDER = os.environ.get("REPORT_EXPORT_FOLDER")
    # Invoice, quote and credit-note PDFs, named by a digest of their HTML
    # (default instance/documents; app/billing/pdf.py).
    DOCUMENT_FOLDER = os.environ.get("DOCUMENT_FOLDER")


class TestConfig(Config):
    TESTING = True
    WTF_CSRF_ENABLED = False
    AUTH_RATE_LIMITED = False
    RATELIMIT_ENABLED = False
    SECRET_KEY = "test-secret"
    VIES_API_BASE = "http://127.0.0.1:9"  # never the real service; VIES tests use a fake
    EXCHANGE_RATES_URL = ""  # no internet in tests: the rate tests use a local fake feed
    RDAP_BASE_URL = "http://127.0.0.1:9"  # never the real registries; tests use a fake RDAP
    # Tests run tasks in-process unless a test starts real workers itself.
    CELERY = {**celery_settings(Config.REDIS_URL), "task_always_eager": True}
