"""Provisioning modules by name (the value of Product.module).

A new control panel is one new module class plus one line in _BUILT_IN (or a
register() call from a plug-in)."""
from __future__ import annotations

from app.provisioning.base import ProvisioningModule, UnknownModuleError
from app.provisioning.manual import ManualModule

_BUILT_IN: tuple[type[ProvisioningModule], ...] = (ManualModule,)
_MODULES: dict[str, type[ProvisioningModule]] = {cls.name: cls for cls in _BUILT_IN}


def register(module_class: type[ProvisioningModule]) -> type[ProvisioningModule]:
    """Make a module available under its `name` (usable as a class decorator)."""
    name = (module_class.name or "").strip().lower()
    if not name:
        raise ValueError(f"{module_class.__name__} has no name")
    if name in _MODULES and _MODULES[name] is not module_class:
        raise ValueError(f"a provisioning module named {name!r} is registered already")
    _MODULES[name] = module_class
    return module_class


def available_modules() -> list[str]:
    return sorted(_MODULES)


def get_module(name: str | None) -> ProvisioningModule:
    """A fresh instance of the module called name; UnknownModuleError when there is none."""
    key = (name or "").strip().lower()
    module_class = _MODULES.get(key)
    if module_class is None:
        raise UnknownModuleError(
            f"unknown provisioning module {name!r}; available: {', '.join(available_modules())}")
    return module_class()
