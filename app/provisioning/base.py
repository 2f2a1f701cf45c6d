"""The contract every provisioning module (manual, cPanel/WHM, Plesk, DirectAdmin...)
fulfils: one method per action on a hosting account, each returning a ModuleResult.

A module acts on the remote system only (and logs what it did). The caller, the
service lifecycle engine, changes the service row itself (status, package, stored
password) after a successful result, in the same transaction as the activity log."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.models.catalog import Product
    from app.models.orders import Service


class ProvisioningError(Exception):
    """A provisioning problem that no module result can describe (bad configuration)."""


class UnknownModuleError(ProvisioningError, LookupError):
    """No provisioning module is registered under the requested name."""


@dataclass(frozen=True)
class ModuleResult:
    """What a module call did: success, a message fit for staff, and extra details
    (remote ids, the to-do ticket opened...)."""

    success: bool
    message: str
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def ok(cls, message: str, **data: Any) -> "ModuleResult":
        return cls(True, message, data)

    @classmethod
    def failed(cls, message: str, **data: Any) -> "ModuleResult":
        return cls(False, message, data)


class ProvisioningModule(ABC):
    """One control panel or way of provisioning. Subclasses set `name` (what
    Product.module holds) and implement every action; a failure the remote side
    reports comes back as ModuleResult(success=False), not as an exception."""

    name: str = ""
    display_name: str = ""

    @abstractmethod
    def create_account(self, service: "Service") -> ModuleResult: ...

    @abstractmethod
    def suspend_account(self, service: "Service", reason: str) -> ModuleResult: ...

    @abstractmethod
    def unsuspend_account(self, service: "Service") -> ModuleResult: ...

    @abstractmethod
    def terminate_account(self, service: "Service") -> ModuleResult: ...

    @abstractmethod
    def change_package(self, service: "Service", product: "Product") -> ModuleResult: ...

    @abstractmethod
    def change_password(self, service: "Service", new_password: str) -> ModuleResult: ...
