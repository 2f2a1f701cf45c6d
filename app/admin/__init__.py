"""Registers every admin screen with Flask-AppBuilder, grouped in menus."""


def register_admin(appbuilder) -> None:
    from app.admin import views  # noqa: F401

    views.register(appbuilder)
