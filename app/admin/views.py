"""Every screen of the staff admin, registered menu by menu."""
from app import api
from app.admin import billing, catalog, clients, domains, orders, support, system, webhooks
from reports import schedule_views
from reports import views as report_views


def register(appbuilder) -> None:
    for module in (clients, orders, catalog, domains, billing, support, system, webhooks,
                   report_views, schedule_views, api):
        module.register(appbuilder)
