"""Registers every admin screen with Flask-AppBuilder, grouped in menus."""

MENU_ORDER = ("Clients", "Orders", "Billing", "Catalog", "Domains", "Support", "Reports",
              "System", "Security")


def register_admin(appbuilder) -> None:
    from app.admin import views

    views.register(appbuilder)
    order_menu(appbuilder.menu)


def order_menu(menu) -> None:
    """Business menus first, in the order staff use them; FAB's Security last."""
    rank = {name: index for index, name in enumerate(MENU_ORDER)}
    menu.menu.sort(key=lambda item: rank.get(item.name, len(MENU_ORDER)))
