"""The roles the app defines, as Flask-AppBuilder built-in roles.

Each role is a list of (view name regex, permission regex) pairs that FAB matches
(re.match) against every permission check, so a role's rights live in code and need
no migration. Admin screens are named <Model>View / <Model>Api (see app/admin/ and
app/api/), menus by their label; these patterns rely on both."""

READ = r"(can_list|can_show|can_get|can_info|can_download|can_export|menu_access)$"
ANY = r".*"


def views(*names: str) -> str:
    """A regex matching the admin views and REST APIs of these models exactly."""
    return r"(%s)(View|Api)$" % "|".join(names)


def menus(*labels: str) -> str:
    return r"(%s)$" % "|".join(labels)


CLIENTS = ("Client", "Contact", "ClientGroup", "ClientNote", "ClientUser")
SALES = ("Order", "OrderItem", "Service", "ServiceAddon", "CancellationRequest", "Upgrade",
         "Promotion", "Domain")
MONEY = ("Invoice", "InvoiceItem", "Transaction", "CreditEntry", "CreditNote", "BillableItem",
         "Quote", "QuoteItem", "PayMethod", "GatewayEvent", "PaymentAttempt")
CATALOG = ("ProductGroup", "Product", "ProductPricing", "ConfigOptionGroup", "ConfigOption",
           "ConfigOptionValue", "ConfigOptionPricing", "Addon", "AddonPricing", "Currency",
           "ExchangeRate", "Tld", "TldPricing", "Server", "ServerGroup", "Registrar",
           "DomainAddonPricing")
BILLING_SETUP = ("TaxRule", "PaymentGateway")
SUPPORT = ("Ticket", "TicketReply", "TicketNote", "TicketAttachment", "SupportDepartment",
           "KbCategory", "KbArticle", "Announcement")
LOGS = ("ActivityLog", "EmailLog", "AutomationRun")
REPORTS = r"(Report\w*|Dashboard\w*)$"

# Every staff member may edit their own profile and manage their own two-factor login.
SELF_SERVICE = [
    (r"(UserInfoEditView|UserDBModelView|ResetMyPasswordView)$",
     r"(can_userinfo|userinfoedit|can_this_form_get|can_this_form_post|resetmypassword)$"),
    (r"TwoFactorView$", ANY),
    (r"(Security|Two-Factor Login)$", r"menu_access$"),
    # The REST API's OpenAPI spec and Swagger UI.
    (r"(OpenApi|SwaggerView)$", r"can_(get|show)$"),
]

# Security screens (users, roles, permissions, API keys) are the Admin's alone.
NOT_SECURITY = (r"(?!User|Role|Permission|ViewMenu|RegisterUser|Group|ApiKey|ApiCredential"
                r"|ResetPassword)\w*(View|Api)$")

ROLES: dict[str, list[tuple[str, str]]] = {
    "Admin": [(ANY, ANY)],
    # Billing and clients; catalog read-only; no staff or system settings.
    "Finance": [
        (views(*CLIENTS, *SALES, *MONEY), ANY),
        (views(*CATALOG, *BILLING_SETUP, *LOGS), READ),
        (REPORTS, ANY),
        (menus("Clients", "Orders", "Billing", "Catalog", "Domains", "Reports"), r"menu_access$"),
        *SELF_SERVICE,
    ],
    # Reads clients and what they have; works tickets and the knowledge base;
    # never changes money.
    "Support": [
        (views(*CLIENTS, *SALES, "Invoice", "InvoiceItem", "Product", "ProductGroup"), READ),
        (views("ClientNote", *SUPPORT), ANY),
        (r"Dashboard\w*$", READ),
        # The support dashboard (its view and menu item); Managers reach it as a View.
        (r"SupportDashboardView$", READ),
        (menus("Clients", "Orders", "Domains", "Support", "Reports"), r"menu_access$"),
        *SELF_SERVICE,
    ],
    # Reads everything but security; owns reports and dashboards.
    "Manager": [
        (NOT_SECURITY, READ),
        (REPORTS, ANY),
        (menus("Clients", "Orders", "Billing", "Catalog", "Domains", "Support", "Reports",
               "System"), r"menu_access$"),
        *SELF_SERVICE,
    ],
    # Client users reach the portal only: not one admin screen.
    "Client": [],
}

STAFF_ROLES = ("Admin", "Finance", "Support", "Manager")
