"""`flask api-credentials`: credentials of the WHMCS-compatible API."""
from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

api_credentials_cli = AppGroup("api-credentials", help="Credentials of the WHMCS-compatible API.")


@api_credentials_cli.command("create")
@click.argument("name")
@click.option("--role", required=True, help="The staff role whose permissions the calls get.")
@click.option("--allow-ip", "allowed_ips", multiple=True,
              help="An IP address or CIDR network calls may come from (repeatable). "
                   "Default: 127.0.0.1 unless an access key is given.")
@click.option("--access-key", default=None,
              help="A passphrase that lets calls in from any IP (WHMCS's accesskey).")
def create_command(name: str, role: str, allowed_ips: tuple[str, ...], access_key: str | None) -> None:
    """Create a credential; its identifier and secret are printed once."""
    from app.activity import Actor
    from app.api.credentials import CredentialError, create_credential
    from app.billing.numbering_counter import unit_of_work

    if not allowed_ips and not access_key:
        allowed_ips = ("127.0.0.1",)
    try:
        with unit_of_work():
            created = create_credential(name, role, allowed_ips, access_key,
                                        actor=Actor.system("cli"))
            identifier = created.credential.identifier
            allowed = created.credential.allowed_ips.replace("\n", ", ") or "none (access key only)"
    except CredentialError as error:
        raise click.ClickException(str(error))
    click.echo(f"API credential {name!r} created for role {role}.")
    click.echo(f"identifier: {identifier}")
    click.echo(f"secret: {created.secret}")
    click.echo(f"allowed IPs: {allowed}")
    click.echo("The secret is shown only now: store it safely.")


@api_credentials_cli.command("revoke")
@click.argument("identifier")
def revoke_command(identifier: str) -> None:
    """Revoke a credential: its calls are refused from now on."""
    from app.activity import Actor
    from app.api.credentials import CredentialError, revoke_credential
    from app.billing.numbering_counter import unit_of_work

    try:
        with unit_of_work():
            credential = revoke_credential(identifier, actor=Actor.system("cli"))
            name = credential.name
    except CredentialError as error:
        raise click.ClickException(str(error))
    click.echo(f"API credential {name!r} revoked.")


@api_credentials_cli.command("list")
def list_command() -> None:
    """The credentials: name, identifier, role, allowed IPs, last use (never a secret)."""
    from sqlalchemy import select

    from app.extensions import db
    from app.models.api import ApiCredential

    for credential in db.session.scalars(select(ApiCredential).order_by(ApiCredential.id)):
        state = "active" if credential.active else "revoked"
        last = credential.last_used_at.strftime("%Y-%m-%d %H:%M") if credential.last_used_at else "never"
        ips = credential.allowed_ips.replace("\n", ",") or "-"
        click.echo(f"{credential.name}\t{credential.identifier}\t{credential.role}\t{state}\t"
                   f"ips={ips}\tlast used {last}")


def register_api_cli(app: Flask) -> None:
    app.cli.add_command(api_credentials_cli)
