"""Credentials of the WHMCS-compatible API: create, verify, revoke, and the role check.

A credential is an identifier + secret pair (WHMCS's "API Authentication
Credentials") bound to a FAB role: a call may do what that role may do in the admin
and the REST API (the same role regexes, on the same <Model>Api names), from the IPs
in its allow-list, or from anywhere when it brings the credential's access key.

Transactions: these functions flush and never commit; the caller commits.
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import secrets
import string
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from app.activity import Actor, log
from app.extensions import db
from app.models.api import ApiCredential
from app.models.base import utcnow

# Roles whose users never work in the staff side: a credential for them is refused.
NO_API_ROLES = ("Client", "Public")
_ALPHABET = string.ascii_letters + string.digits
TOKEN_LENGTH = 32
# WHMCS's rule for access keys: letters, digits and ! @ # $ % . ( ) * [ ] - _
_ACCESS_KEY = re.compile(r"^[A-Za-z0-9!@#$%.()*\[\]_-]{12,128}$")


class CredentialError(ValueError):
    """Bad input when creating or changing a credential."""


class ApiAuthError(Exception):
    """A call refused before its action runs; message is WHMCS's wording."""

    def __init__(self, message: str, credential: ApiCredential | None = None):
        super().__init__(message)
        self.message = message
        self.credential = credential


@dataclass(frozen=True)
class NewCredential:
    credential: ApiCredential
    secret: str  # shown once: only its hash is stored


def _token() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(TOKEN_LENGTH))


def hash_secret(secret: str) -> str:
    # The secret is 32 random characters (190 bits): a fast hash is enough, and
    # every API call checks it, so a slow password hash would cost each call dearly.
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_allowed_ips(values) -> list[str]:
    """Normalised IP addresses / CIDR networks; CredentialError naming a bad one."""
    if isinstance(values, str):
        values = re.split(r"[\s,]+", values)
    networks = []
    for value in values or ():
        value = (value or "").strip()
        if not value:
            continue
        try:
            network = ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise CredentialError(f"{value!r} is not an IP address or network") from None
        text = str(network.network_address) if network.num_addresses == 1 else str(network)
        if text not in networks:
            networks.append(text)
    return networks


def ip_allowed(credential: ApiCredential, ip: str | None) -> bool:
    if not ip:
        return False
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    for entry in (credential.allowed_ips or "").split():
        try:
            if address in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


def role_exists(role_name: str) -> bool:
    return current_app.appbuilder.sm.find_role(role_name) is not None


def role_allows(role_name: str, view_name: str, permission_name: str) -> bool:
    """Whether the role grants permission_name on view_name, as FAB decides it for a
    user holding that role: built-in roles by their regexes, others by their rows."""
    sm = current_app.appbuilder.sm
    role = sm.find_role(role_name)
    if role is None or role.name in NO_API_ROLES:
        return False
    rules = sm.builtin_roles.get(role.name)
    if rules is not None:
        return any(re.match(view_rule, view_name) and re.match(permission_rule, permission_name)
                   for view_rule, permission_rule in rules)
    return bool(sm.exist_permission_on_roles(view_name, permission_name, [role.id]))


def _check_name(name) -> str:
    name = name.strip() if isinstance(name, str) else ""
    if not name:
        raise CredentialError("a credential needs a name")
    if len(name) > 100:
        raise CredentialError("a credential name is at most 100 characters")
    if db.session.scalar(select(ApiCredential.id).where(ApiCredential.name == name)) is not None:
        raise CredentialError(f"a credential named {name!r} exists already")
    return name


def _check_role(role) -> str:
    role = role.strip() if isinstance(role, str) else ""
    if not role or not role_exists(role):
        raise CredentialError(f"unknown role {role!r}")
    if role in NO_API_ROLES:
        raise CredentialError(f"the {role} role has no API access: choose a staff role")
    return role


def _check_access_key(access_key) -> str | None:
    if access_key is None or access_key == "":
        return None
    if not isinstance(access_key, str) or not _ACCESS_KEY.match(access_key):
        raise CredentialError("an access key is 12 to 128 letters, digits or ! @ # $ % . ( ) * [ ] - _")
    return access_key


def create_credential(name: str, role: str, allowed_ips=(), access_key: str | None = None,
                      actor: Actor | None = None) -> NewCredential:
    """A new credential; its secret is returned once and stored only as a hash."""
    actor = actor or Actor.system("cli")
    name = _check_name(name)
    role = _check_role(role)
    networks = parse_allowed_ips(allowed_ips)
    access_key = _check_access_key(access_key)
    if not networks and access_key is None:
        raise CredentialError("give at least one allowed IP, or an access key: "
                              "otherwise no call could ever be accepted")
    secret = _token()
    credential = ApiCredential(
        name=name, identifier=_token(), secret_hash=hash_secret(secret), role=role,
        allowed_ips="\n".join(networks),
        access_key_hash=generate_password_hash(access_key) if access_key else None,
        active=True, created_by_id=actor.user_id if actor.type == "staff" else None,
    )
    db.session.add(credential)
    db.session.flush()
    log("api_credential_created", f"API credential {name!r} created for role {role} "
        f"(allowed IPs: {', '.join(networks) or 'none'}; access key: {'yes' if access_key else 'no'})",
        credential, after={"name": name, "role": role, "identifier": credential.identifier,
                           "allowed_ips": credential.allowed_ips}, actor=actor)
    return NewCredential(credential, secret)


def revoke_credential(identifier: str, actor: Actor | None = None) -> ApiCredential:
    actor = actor or Actor.system("cli")
    credential = db.session.scalar(select(ApiCredential).where(ApiCredential.identifier == identifier))
    if credential is None:
        raise CredentialError(f"no credential with identifier {identifier!r}")
    if credential.active:
        credential.active = False
        db.session.flush()
        log("api_credential_revoked", f"API credential {credential.name!r} revoked", credential,
            before={"active": True}, after={"active": False}, actor=actor)
    return credential


def authenticate(identifier, secret, ip: str | None, access_key=None) -> ApiCredential:
    """The active credential these parameters name, if the call may come from ip;
    ApiAuthError with WHMCS's message otherwise."""
    if not isinstance(identifier, str) or not isinstance(secret, str) or not identifier or not secret:
        raise ApiAuthError("Authentication Failed")
    credential = db.session.scalar(select(ApiCredential).where(ApiCredential.identifier == identifier))
    # Compare even when there is no such identifier, so timing tells nothing.
    expected = credential.secret_hash if credential is not None else hash_secret(_token())
    if not hmac.compare_digest(expected, hash_secret(secret)) or credential is None or not credential.active:
        raise ApiAuthError("Authentication Failed")
    if ip_allowed(credential, ip):
        return credential
    if (isinstance(access_key, str) and access_key and credential.access_key_hash
            and check_password_hash(credential.access_key_hash, access_key)):
        return credential
    raise ApiAuthError(f"Invalid IP {ip or 'unknown'}", credential)


def mark_used(credential: ApiCredential, ip: str | None) -> None:
    credential.last_used_at = utcnow()
    credential.last_used_ip = (ip or "")[:45] or None
