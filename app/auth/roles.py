"""The roles the app defines, as Flask-AppBuilder built-in roles.

Each role is a list of (view name regex, permission regex) pairs matched against
FAB's permission checks, so a role's rights live in code and need no migration.
View classes are named after their menu (see app/admin/), which is what these
patterns rely on."""

READ = r"can_list|can_show|can_get|can_info|menu_access|can_download|can_export"

ROLES = {
    "Admin": [(r".*", r".*")],
    "Finance": [
        (r"(Client|Contact|ClientGroup|ClientNote|ClientUser)(View|Api)$", r".*"),
        (r"(Invoice|InvoiceItem|Transaction|Credit|CreditNote|BillableItem|Quote|QuoteItem|TaxRule|PayMethod|Order|OrderItem|Promotion|Service|ServiceAddon|Domain|CancellationRequest|Upgrade|Dashboard|Report.*)(View|Api)$", r".*"),
        (r"(Product|ProductGroup|ProductPricing|Addon|Currency|ExchangeRate|Tld|TldPricing|PaymentGateway|ActivityLog|EmailLog|AutomationRun)(View|Api)$", READ),
        (r"Clients|Orders|Billing|Catalog|Domains|Reports", r"menu_access"),
        (r"UserInfoEditView|UserDBModelView|TwoFactorView", r"can_userinfo|userinfoedit|can_this_form_get|can_this_form_post|can_manage|can_enrol"),
    ],
    "Support": [
        (r"(Client|Contact|ClientGroup|Service|ServiceAddon|Domain|Order|OrderItem|Invoice|Product|ProductGroup)(View|Api)$", READ),
        (r"(ClientNote|Ticket|TicketReply|TicketNote|SupportDepartment|KbCategory|KbArticle|Announcement|CancellationRequest|Dashboard)(View|Api)$", r".*"),
        (r"Clients|Orders|Support|Domains", r"menu_access"),
        (r"UserInfoEditView|UserDBModelView|TwoFactorView", r"can_userinfo|userinfoedit|can_this_form_get|can_this_form_post|can_manage|can_enrol"),
    ],
    "Manager": [
        (r".*(View|Api)$", READ),
        (r"Report.*|Dashboard.*", r".*"),
        (r"Clients|Orders|Billing|Catalog|Domains|Support|Reports|System", r"menu_access"),
        (r"UserInfoEditView|UserDBModelView|TwoFactorView", r"can_userinfo|userinfoedit|can_this_form_get|can_this_form_post|can_manage|can_enrol"),
    ],
    # Client users reach the portal only: not one admin screen.
    "Client": [],
}

STAFF_ROLES = ("Admin", "Finance", "Support", "Manager")
