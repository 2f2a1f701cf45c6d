"""The merge fields of service (product) and domain emails, named as WHMCS names them,
so templates written for WHMCS read the same here. One builder per kind of email,
used by every path that sends one: the welcome email on order acceptance, the
suspension notices of the daily run, the domain engine's notices and the WHMCS API's
SendEmail. (The client's own fields are added to every email by queue.client_context.)

service_password is left out on purpose: a mailbox is no place for a secret, so the
welcome email sends the client to the portal to set the password (portal_url)."""
from __future__ import annotations

from app import settings
from app.models.domains import Domain
from app.models.orders import Service

MAX_NAMESERVERS = 5  # registrars take up to five (WHMCS's GetNameservers)


def portal_url() -> str:
    return f"{settings.get('Domain').rstrip('/')}/portal/"


def _date(value) -> str:
    return value.isoformat() if value else ""


def service_email_context(service: Service) -> dict:
    """Merge fields of a product template for one service."""
    server, product, currency = service.server, service.product, service.client.currency
    return {
        "service_id": service.id,
        "service_order_id": service.order_id or "",
        "service_reg_date": _date(service.registration_date),
        "service_product_name": product.name,
        "service_product_description": product.description or "",
        "service_domain": service.domain or "",
        "service_username": service.username or "",
        "service_dedicated_ip": service.dedicated_ip or "",
        "service_server_name": server.name if server else "",
        "service_server_hostname": server.hostname if server else "",
        "service_server_ip": (server.ip_address or "") if server else "",
        "service_ns1": (server.nameserver1 or "") if server else "",
        "service_ns2": (server.nameserver2 or "") if server else "",
        "service_first_payment_amount": currency.format(service.first_payment_amount),
        "service_recurring_amount": currency.format(service.recurring_amount),
        "service_billing_cycle": service.billing_cycle,
        "service_next_due_date": _date(service.next_due_date),
        "service_payment_method": service.payment_method or "",
        "service_status": service.status,
        "service_suspension_reason": service.suspension_reason or "",
        "portal_url": portal_url(),
    }


def domain_email_context(domain: Domain) -> dict:
    """Merge fields of a domain template for one domain. WHMCS has no field for the
    nameservers; domain_ns1 to domain_ns5 follow the pattern of service_ns1."""
    sld, _, tld = domain.name.partition(".")
    nameservers = domain.nameserver_list + [""] * MAX_NAMESERVERS
    currency = domain.client.currency
    return {
        "domain_id": domain.id,
        "domain_order_id": domain.order_id or "",
        "domain_name": domain.name,
        "domain_sld": sld,
        "domain_tld": tld,
        "domain_reg_date": _date(domain.registration_date),
        "domain_reg_period": f"{domain.registration_period} Year(s)",
        "domain_first_payment_amount": currency.format(domain.first_payment_amount),
        "domain_recurring_amount": currency.format(domain.recurring_amount),
        "domain_registrar": domain.registrar or "",
        "domain_expiry_date": _date(domain.expiry_date),
        "domain_next_due_date": _date(domain.next_due_date),
        "domain_status": domain.status,
        "domain_dns_management": bool(domain.dns_management),
        "domain_email_forwarding": bool(domain.email_forwarding),
        "domain_id_protection": bool(domain.id_protection),
        "domain_do_not_renew": bool(domain.do_not_renew),
        **{f"domain_ns{number}": name
           for number, name in enumerate(nameservers[:MAX_NAMESERVERS], start=1)},
        "portal_url": portal_url(),
    }
