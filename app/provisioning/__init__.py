"""Provisioning: server modules behind one interface (base.ProvisioningModule).

Engine entry point: module_for(service) gives the module its product names, e.g.
    result = module_for(service).suspend_account(service, "Overdue on invoice INV-2026-7")
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from app.provisioning.base import (
    ModuleResult, ProvisioningError, ProvisioningModule, UnknownModuleError,
)
from app.provisioning.registry import available_modules, get_module, register

if TYPE_CHECKING:
    from app.models.orders import Service

__all__ = [
    "ModuleResult", "ProvisioningError", "ProvisioningModule", "UnknownModuleError",
    "available_modules", "get_module", "module_for", "register",
]


def module_for(service: "Service") -> ProvisioningModule:
    """The module of the service's product (Product.module)."""
    if service.product is None:
        raise ProvisioningError(f"service #{service.id} has no product")
    try:
        return get_module(service.product.module)
    except UnknownModuleError as error:
        raise UnknownModuleError(
            f"service #{service.id} (product {service.product.name!r}): {error}") from None
