"""Shared fixtures.

Tests run on a SQLite file by default and on PostgreSQL (and Redis) when
DATABASE_URL (and REDIS_URL) are set, as CI does."""
from __future__ import annotations

import os
import tempfile

import pytest
from sqlalchemy import text

from config import TestConfig

# SQLite on a memory-backed folder when there is one: much faster commits.
_tmp = tempfile.mkdtemp(prefix="tallyhost-tests-",
                        dir="/dev/shm" if os.path.isdir("/dev/shm") else None)


def database_url_for_tests() -> str:
    """SQLite in a temporary folder, or DATABASE_URL; under pytest-xdist each worker
    gets its own PostgreSQL database (test_gw0, test_gw1 ...), made when missing."""
    url = os.environ.get("DATABASE_URL")
    if not url:
        return f"sqlite:///{_tmp}/test.db"
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return url
    from sqlalchemy import create_engine

    base, name = url.rsplit("/", 1)
    worker_name = f"{name}_{worker}"
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"),
                              {"n": worker_name}).scalar()
        if not exists:
            conn.execute(text(f'CREATE DATABASE "{worker_name}"'))
    engine.dispose()
    return f"{base}/{worker_name}"


class PytestConfig(TestConfig):
    SQLALCHEMY_DATABASE_URI = database_url_for_tests()
    UPLOAD_FOLDER = os.path.join(_tmp, "uploads")
    DOCUMENT_FOLDER = os.path.join(_tmp, "documents")


def on_postgres() -> bool:
    return PytestConfig.SQLALCHEMY_DATABASE_URI.startswith("postgresql")


@pytest.fixture(scope="session")
def app():
    from app import create_app
    from app.auth.bootstrap import sync_roles_and_permissions
    from app.extensions import db

    app = create_app(PytestConfig)
    with app.app_context():
        db.drop_all()
        if on_postgres():
            db.session.execute(text("DROP TABLE IF EXISTS alembic_version"))
            db.session.commit()
        db.create_all()
        sync_roles_and_permissions(register_permissions=False)
        db.session.commit()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


# Tables that hold the security set-up made once per session: kept between tests.
KEEP = {"ab_permission", "ab_view_menu", "ab_permission_view", "ab_role",
        "ab_permission_view_role"}


@pytest.fixture(autouse=True)
def clean_db(request):
    """Each test starts from empty business tables (security set-up kept)."""
    if "app" not in request.fixturenames and "db" not in request.fixturenames:
        yield
        return
    app = request.getfixturevalue("app")
    yield
    from app.extensions import db

    with app.app_context():
        db.session.rollback()
        db.session.remove()
        with db.engine.begin() as conn:
            tables = [t for t in reversed(db.metadata.sorted_tables) if t.name not in KEEP]
            if conn.dialect.name == "postgresql":
                names = ", ".join(f'"{t.name}"' for t in tables)
                conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            else:
                for table in tables:
                    conn.execute(table.delete())


@pytest.fixture
def ctx(app):
    """An application context for tests that call the engine directly."""
    with app.app_context():
        yield app


@pytest.fixture
def db(ctx):
    from app.extensions import db as _db

    return _db


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def key(db):
    """WHMCS API credentials of the Admin role (a module may override it with another role)."""
    from tests.integration.test_api_whmcs import make_credential

    return make_credential(db, "Admin")


@pytest.fixture
def staff(app):
    """Factory: staff(role) -> (username, password) of a new staff user."""
    from app.auth.bootstrap import create_staff_user
    from app.extensions import db

    counter = {"n": 0}

    def make(role: str = "Admin") -> tuple[str, str]:
        counter["n"] += 1
        username = f"{role.lower()}{counter['n']}"
        password = "Correct-Horse-9"
        with app.app_context():
            create_staff_user(username, f"{username}@staff.test", password, role)
            db.session.commit()
        return username, password

    return make


def login(client, username: str, password: str):
    return client.post("/login/", data={"username": username, "password": password},
                       follow_redirects=False)


@pytest.fixture
def admin_client(app, staff):
    """A test client logged in as a staff Admin."""
    c = app.test_client()
    username, password = staff("Admin")
    response = login(c, username, password)
    assert response.status_code == 302, response.data[:500]
    return c


@pytest.fixture
def logged_in(app, staff):
    """Factory: logged_in(role) -> a test client signed in as a new staff user of that role."""
    def make(role: str):
        c = app.test_client()
        username, password = staff(role)
        assert login(c, username, password).status_code == 302
        return c
    return make
