"""Registrar modules by name: the value of Registrar.module, Tld.registrar_module and
Domain.registrar.

A new registrar is one module class plus one line in _BUILT_IN (or a register() call
from a plug-in). Its settings (credentials encrypted at rest) are the Registrar row of
the same module name."""
from __future__ import annotations

from sqlalchemy import select

from app.extensions import db
from app.models.domains import Registrar, Tld
from app.registrars.base import RegistrarModule, RegistrarNotConfigured, UnknownRegistrarError
from app.registrars.local import LocalRegistrar
from app.registrars.namecheap import NamecheapRegistrar

_BUILT_IN: tuple[type[RegistrarModule], ...] = (LocalRegistrar, NamecheapRegistrar)
_MODULES: dict[str, type[RegistrarModule]] = {cls.name: cls for cls in _BUILT_IN}


def register(module_class: type[RegistrarModule]) -> type[RegistrarModule]:
    """Make a module available under its `name` (usable as a class decorator)."""
    name = (module_class.name or "").strip().lower()
    if not name:
        raise ValueError(f"{module_class.__name__} has no name")
    if name in _MODULES and _MODULES[name] is not module_class:
        raise ValueError(f"a registrar module named {name!r} is registered already")
    _MODULES[name] = module_class
    return module_class


def available_modules() -> list[str]:
    return sorted(_MODULES)


def settings_row(name: str) -> Registrar | None:
    return db.session.scalar(select(Registrar).where(Registrar.module == name))


def get_module(name: str | None) -> RegistrarModule:
    """The module called name, with its settings. UnknownRegistrarError when there is no
    such module; RegistrarNotConfigured when it needs an enabled Registrar row and has none."""
    key = (name or "").strip().lower()
    module_class = _MODULES.get(key)
    if module_class is None:
        raise UnknownRegistrarError(
            f"unknown registrar module {name!r}; available: {', '.join(available_modules())}")
    row = settings_row(key)
    if row is not None and not row.enabled:
        raise RegistrarNotConfigured(f"the {row.display_name} registrar is disabled")
    return module_class(row)


def module_for_tld(tld: Tld) -> RegistrarModule | None:
    """The module that sells a TLD, or None when the TLD names none."""
    if not tld.registrar_module:
        return None
    return get_module(tld.registrar_module)
