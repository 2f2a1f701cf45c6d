"""Security set-up that needs the database: roles and FAB permissions.

Run by `flask setup` after migrations (never as a side effect of app start-up)."""
from flask import current_app

from app.auth.roles import ROLES


def sync_roles_and_permissions(register_permissions: bool = True) -> None:
    """Make sure each built-in role exists and (optionally) register every view's
    permissions, which only custom roles made in the admin need: the built-in roles
    are matched by pattern and hold no permission rows."""
    appbuilder = current_app.appbuilder
    sm = appbuilder.sm
    if register_permissions:
        appbuilder.add_permissions(update_perms=True)
    for name in ROLES:
        sm.add_role(name)
    sm.add_role(sm.auth_role_public)


def create_staff_user(username: str, email: str, password: str, role: str = "Admin",
                      first_name: str = "Staff", last_name: str = "User"):
    sm = current_app.appbuilder.sm
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    if sm.find_user(username=username) or sm.find_user(email=email):
        raise ValueError(f"a user {username!r} or {email!r} exists already")
    user = sm.add_user(username, first_name, last_name, email, sm.find_role(role), password)
    if not user:
        raise ValueError("the user could not be created")
    return user
