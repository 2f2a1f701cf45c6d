"""Module classes by name: what the provisioning and the registrar registries share.

A module class has a `name`; built-ins are listed when the registry is made and a
plug-in adds its own with register()."""
from __future__ import annotations


def module_key(name: str | None) -> str:
    """How a module name is looked up: trimmed, lower case."""
    return (name or "").strip().lower()


class ModuleRegistry:
    def __init__(self, kind: str, built_in: tuple[type, ...], unknown_error: type[Exception]):
        self.kind = kind                    # "provisioning", "registrar": for the messages
        self.unknown_error = unknown_error
        self._classes: dict[str, type] = {cls.name: cls for cls in built_in}

    def register(self, module_class: type) -> type:
        """Make a module available under its `name` (usable as a class decorator)."""
        name = module_key(module_class.name)
        if not name:
            raise ValueError(f"{module_class.__name__} has no name")
        if name in self._classes and self._classes[name] is not module_class:
            raise ValueError(f"a {self.kind} module named {name!r} is registered already")
        self._classes[name] = module_class
        return module_class

    def names(self) -> list[str]:
        return sorted(self._classes)

    def class_of(self, name: str | None) -> type:
        """The module class called name; unknown_error when there is none."""
        module_class = self._classes.get(module_key(name))
        if module_class is None:
            raise self.unknown_error(
                f"unknown {self.kind} module {name!r}; available: {', '.join(self.names())}")
        return module_class
