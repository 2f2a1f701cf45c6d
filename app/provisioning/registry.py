"""Provisioning modules by name (the value of Product.module).

A new control panel is one new module class plus its place in the _REGISTRY
built-ins (or a register() call from a plug-in)."""
from __future__ import annotations

from app.module_registry import ModuleRegistry
from app.provisioning.base import ProvisioningModule, UnknownModuleError
from app.provisioning.manual import ManualModule

_REGISTRY = ModuleRegistry("provisioning", (ManualModule,), UnknownModuleError)
register = _REGISTRY.register


def available_modules() -> list[str]:
    return _REGISTRY.names()


def get_module(name: str | None) -> ProvisioningModule:
    """A fresh instance of the module called name; UnknownModuleError when there is none."""
    return _REGISTRY.class_of(name)()
