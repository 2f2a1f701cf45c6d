"""Registrar modules by name: the value of Registrar.module, Tld.registrar_module and
Domain.registrar.

A new registrar is one module class plus its place in the _REGISTRY built-ins (or a
register() call from a plug-in). Its settings (credentials encrypted at rest) are the Registrar row of
the same module name."""
from __future__ import annotations

from sqlalchemy import select

from app.extensions import db
from app.models.domains import Registrar, Tld
from app.module_registry import ModuleRegistry, module_key
from app.registrars.base import RegistrarModule, RegistrarNotConfigured, UnknownRegistrarError
from app.registrars.local import LocalRegistrar
from app.registrars.namecheap import NamecheapRegistrar

_REGISTRY = ModuleRegistry("registrar", (LocalRegistrar, NamecheapRegistrar), UnknownRegistrarError)
register = _REGISTRY.register


def available_modules() -> list[str]:
    return _REGISTRY.names()


def settings_row(name: str) -> Registrar | None:
    return db.session.scalar(select(Registrar).where(Registrar.module == name))


def get_module(name: str | None) -> RegistrarModule:
    """The module called name, with its settings. UnknownRegistrarError when there is no
    such module; RegistrarNotConfigured when it needs an enabled Registrar row and has none."""
    module_class = _REGISTRY.class_of(name)
    row = settings_row(module_key(name))
    if row is not None and not row.enabled:
        raise RegistrarNotConfigured(f"the {row.display_name} registrar is disabled")
    return module_class(row)


def module_for_tld(tld: Tld) -> RegistrarModule | None:
    """The module that sells a TLD, or None when the TLD names none."""
    if not tld.registrar_module:
        return None
    return get_module(tld.registrar_module)
