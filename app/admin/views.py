def register(appbuilder) -> None:
    from app.admin import billing, catalog, clients, domains, orders, support, system

    clients.register(appbuilder)
    orders.register(appbuilder)
    catalog.register(appbuilder)
    domains.register(appbuilder)
    billing.register(appbuilder)
    support.register(appbuilder)
    system.register(appbuilder)

    from reports import views as report_views

    report_views.register(appbuilder)

    from app import api

    api.register(appbuilder)
