"""Credentials of the WHMCS-compatible API: the engine and `flask api-credentials`."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from app.api.credentials import (
    ApiAuthError, CredentialError, authenticate, create_credential, revoke_credential, role_allows,
)
from app.models.api import ApiCredential
from app.models.system import ActivityLog


def test_a_credential_keeps_only_a_hash_of_its_secret_and_logs_its_creation(db):
    created = create_credential("Billing sync", "Finance", ["10.0.0.0/24", "127.0.0.1"])
    db.session.commit()
    row = db.session.scalar(select(ApiCredential).where(ApiCredential.name == "Billing sync"))
    assert re.fullmatch(r"[A-Za-z0-9]{32}", row.identifier)
    assert re.fullmatch(r"[A-Za-z0-9]{32}", created.secret)
    assert created.secret not in row.secret_hash
    assert row.allowed_ips == "10.0.0.0/24\n127.0.0.1"
    entry = db.session.scalar(select(ActivityLog).where(ActivityLog.action == "api_credential_created"))
    assert "Billing sync" in entry.description and created.secret not in str(entry.after)


def test_authentication_checks_secret_ip_and_access_key(db):
    created = create_credential("Sync", "Finance", ["192.0.2.0/28"], access_key="Long-Access-Key-1")
    db.session.commit()
    identifier = created.credential.identifier
    assert authenticate(identifier, created.secret, "192.0.2.9").id == created.credential.id
    with pytest.raises(ApiAuthError, match="Authentication Failed"):
        authenticate(identifier, created.secret + "x", "192.0.2.9")
    with pytest.raises(ApiAuthError, match="Authentication Failed"):
        authenticate("nope", created.secret, "192.0.2.9")
    with pytest.raises(ApiAuthError, match=r"Invalid IP 198\.51\.100\.7"):
        authenticate(identifier, created.secret, "198.51.100.7")
    with pytest.raises(ApiAuthError, match="Invalid IP"):
        authenticate(identifier, created.secret, "198.51.100.7", access_key="wrong-key-123")
    # The access key opens every IP, as WHMCS's does.
    assert authenticate(identifier, created.secret, "198.51.100.7", "Long-Access-Key-1")
    revoke_credential(identifier)
    db.session.commit()
    with pytest.raises(ApiAuthError, match="Authentication Failed"):
        authenticate(identifier, created.secret, "192.0.2.9")


@pytest.mark.parametrize("name, role, ips, key, message", [
    ("", "Finance", ["127.0.0.1"], None, "needs a name"),
    ("X", "Nobody", ["127.0.0.1"], None, "unknown role"),
    ("X", "Client", ["127.0.0.1"], None, "no API access"),
    ("X", "Finance", ["300.1.1.1"], None, "not an IP address"),
    ("X", "Finance", [], None, "at least one allowed IP"),
    ("X", "Finance", [], "short", "access key is 12 to 128"),
])
def test_bad_credential_input_is_refused_and_nothing_is_stored(db, name, role, ips, key, message):
    with pytest.raises(CredentialError, match=message):
        create_credential(name, role, ips, key)
    db.session.rollback()
    assert db.session.scalar(select(ApiCredential.id)) is None


def test_the_same_name_twice_is_refused(db):
    create_credential("Sync", "Finance", ["127.0.0.1"])
    db.session.commit()
    with pytest.raises(CredentialError, match="exists already"):
        create_credential("Sync", "Support", ["127.0.0.1"])


def test_roles_decide_with_the_same_rules_as_the_admin(ctx):
    assert role_allows("Finance", "InvoiceApi", "can_payment")
    assert role_allows("Finance", "ClientApi", "can_get")
    assert not role_allows("Finance", "ProductApi", "can_post")
    assert role_allows("Support", "TicketApi", "can_post")
    assert not role_allows("Support", "InvoiceApi", "can_payment")
    assert not role_allows("Support", "TransactionApi", "can_get")
    assert not role_allows("Client", "ClientApi", "can_get")
    assert not role_allows("Nobody", "ClientApi", "can_get")


def test_cli_prints_identifier_and_secret_once_and_they_work(app, db):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["api-credentials", "create", "Reseller panel", "--role", "Finance",
                                 "--allow-ip", "203.0.113.5"])
    assert result.exit_code == 0, result.output
    identifier = re.search(r"identifier: (\S+)", result.output).group(1)
    secret = re.search(r"secret: (\S+)", result.output).group(1)
    assert "203.0.113.5" in result.output
    assert authenticate(identifier, secret, "203.0.113.5").name == "Reseller panel"

    listed = runner.invoke(args=["api-credentials", "list"])
    assert "Reseller panel" in listed.output and secret not in listed.output

    refused = runner.invoke(args=["api-credentials", "create", "Other", "--role", "Client"])
    assert refused.exit_code != 0 and "no API access" in refused.output
    assert db.session.scalar(select(ApiCredential.id).where(ApiCredential.name == "Other")) is None

    revoked = runner.invoke(args=["api-credentials", "revoke", identifier])
    assert revoked.exit_code == 0
    db.session.expire_all()
    with pytest.raises(ApiAuthError):
        authenticate(identifier, secret, "203.0.113.5")


def test_cli_defaults_to_localhost_only(app, db):
    result = app.test_cli_runner().invoke(args=["api-credentials", "create", "Local", "--role", "Admin"])
    assert result.exit_code == 0, result.output
    assert db.session.scalar(select(ApiCredential.allowed_ips).where(ApiCredential.name == "Local")) == "127.0.0.1"
