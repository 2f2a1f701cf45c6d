"""The demo business: `flask demo seed` and app.demo.seed_demo."""
from __future__ import annotations

import re
from collections import Counter, defaultdict
from datetime import date
from decimal import Decimal

import pytest
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import func, select, text

from app.billing.automation import STEPS
from app.billing.numbering import format_invoice_number
from app.demo import seed_demo
from app.models.billing import (
    CreditEntry, Invoice, InvoiceCounter, InvoiceItem, Quote, TaxRule, Transaction,
)
from app.models.catalog import (
    Addon, ConfigOptionGroup, Currency, ExchangeRate, Product, ProductPricing, Server,
)
from app.models.clients import Client, ClientUser
from app.models.domains import Domain, DomainAddonPricing, Tld, TldPricing
from app.models.orders import Order, OrderItem, Service, ServiceAddon, ServiceConfigOption
from app.models.support import KbArticle, Ticket
from app.models.system import ActivityLog, AutomationRun, EmailTemplate, Setting
from tests.conftest import login

CYCLES = ("Monthly", "Quarterly", "Semi-Annually", "Annually", "Biennially", "Triennially")


@pytest.fixture
def seeded(app, db):
    """The demo seeded through the real CLI command, as `make demo` does."""
    result = app.test_cli_runner().invoke(args=["demo", "seed", "--if-empty"])
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    return result.output


def count(db, model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_cli_seeds_clients_services_domains_and_orders(seeded, db):
    assert count(db, Client) == 50
    assert "50 clients" in seeded
    assert f"{count(db, Invoice)} invoices" in seeded
    assert "admin/admin123" in seeded and "demo@example.com/demo123" in seeded
    countries = {country for (country,) in db.session.execute(select(Client.country).distinct())}
    assert countries == {"US", "GB", "DE", "FR", "NL", "CA", "AU"}
    expected = {"DE": "EUR", "FR": "EUR", "NL": "EUR", "GB": "GBP"}
    for client in db.session.scalars(select(Client)):
        assert client.currency.code == expected.get(client.country, "USD"), client.email
    assert db.session.scalar(select(func.count()).select_from(Client).where(Client.contacts.any())) > 0

    statuses = set(db.session.scalars(select(Service.status)))
    assert {"Active", "Pending", "Suspended", "Terminated", "Cancelled"} <= statuses
    suspended = db.session.scalars(select(Service).filter_by(status="Suspended")).all()
    assert suspended and all(s.suspension_reason == "Overdue on Payment" for s in suspended)
    today = date.today()
    assert all(s.next_due_date < today for s in suspended)
    due_dates = [s.next_due_date for s in db.session.scalars(select(Service))]
    assert min(due_dates) < today < max(due_dates)
    cycles = set(db.session.scalars(select(Service.billing_cycle)))
    assert cycles == set(CYCLES)
    products_sold = set(db.session.scalars(select(Service.product_id)))
    assert products_sold == set(db.session.scalars(select(Product.id)))
    assert count(db, ServiceAddon) > 0
    vps = db.session.scalars(select(Service).join(Product).where(Product.slug.like("vps-%"))).all()
    assert vps and all(len(service.config_options) == 2 for service in vps)
    assert count(db, ServiceConfigOption) == 2 * len(vps)

    domain_statuses = set(db.session.scalars(select(Domain.status)))
    assert {"Active", "Pending", "Expired", "Grace", "Cancelled", "Pending Transfer"} <= domain_statuses
    for domain in db.session.scalars(select(Domain)):
        assert len(domain.nameserver_list) == 2
        if domain.status != "Pending":
            assert domain.expiry_date is not None, domain.name
        if domain.status == "Expired" or domain.status == "Grace":
            assert domain.expiry_date < today
        if domain.status == "Active":
            assert domain.expiry_date > today

    orders = db.session.scalars(select(Order)).all()
    assert len({order.order_number for order in orders}) == len(orders)
    assert {"Pending", "Active", "Cancelled", "Fraud"} <= {order.status for order in orders}
    assert all(order.items for order in orders)
    # Every service and domain came from an order of its own client.
    for service in db.session.scalars(select(Service)):
        assert service.order.client_id == service.client_id
    for domain in db.session.scalars(select(Domain)):
        assert domain.order.client_id == domain.client_id
    # An order's amount is what its first invoice charged.
    for order in orders:
        assert order.invoice is not None and order.amount == order.invoice.total


def test_invoices_totals_taxes_lines_and_numbers(seeded, db):
    today = date.today()
    invoices = db.session.scalars(select(Invoice)).all()
    paid = [i for i in invoices if i.status == "Paid"]
    unpaid = [i for i in invoices if i.status == "Unpaid" and i.due_date >= today]
    overdue = [i for i in invoices if i.status == "Unpaid" and i.due_date < today]
    assert paid and unpaid and overdue
    for invoice in invoices:
        lines = sum((item.amount for item in invoice.items), Decimal("0.00"))
        assert invoice.items, invoice.number
        assert lines == invoice.subtotal, invoice.number
        assert invoice.total == invoice.subtotal + invoice.tax1 + invoice.tax2, invoice.number
        assert invoice.total > 0
    for invoice in paid:
        assert invoice.amount_paid == invoice.total and invoice.paid_at is not None
    for invoice in unpaid + overdue:
        assert invoice.amount_paid == Decimal("0.00") and invoice.paid_at is None

    # Taxes follow the client's country and state.
    texas = db.session.scalars(select(Client).filter_by(email="demo@example.com")).one()
    assert (texas.country, texas.state) == ("US", "TX")
    invoice = next(i for i in texas.invoices if any(item.taxed for item in i.items))
    assert (invoice.tax1_name, invoice.tax1_rate) == ("Sales Tax", Decimal("8.25"))
    taxed_base = sum((item.amount for item in invoice.items if item.taxed), Decimal("0.00"))
    expected = (taxed_base * Decimal("0.0825")).quantize(Decimal("0.01"), rounding="ROUND_HALF_UP")
    assert invoice.tax1 == expected
    german = db.session.scalars(select(Client).filter_by(country="DE", tax_exempt=False)).first()
    rates = {i.tax1_rate for i in german.invoices if any(item.taxed for item in i.items)}
    assert rates == {Decimal("19")}
    assert all(i.currency.code == "EUR" for i in german.invoices)
    rules = {(r.country, r.state, r.level): r.rate for r in db.session.scalars(select(TaxRule))}
    assert rules[("US", "TX", 1)] == Decimal("8.25") and rules[("GB", None, 1)] == Decimal("20")

    # Each line references what it bills, of the same client.
    services = {s.id: s for s in db.session.scalars(select(Service))}
    domains = {d.id: d for d in db.session.scalars(select(Domain))}
    addons = {a.id: a for a in db.session.scalars(select(ServiceAddon))}
    kinds = Counter()
    for item in db.session.scalars(select(InvoiceItem)):
        kinds[item.type] += 1
        if item.type in ("Hosting", "Setup"):
            assert services[item.rel_id].client_id == item.client_id
        elif item.type in ("Domain", "DomainRegister", "DomainTransfer"):
            assert domains[item.rel_id].client_id == item.client_id
            assert domains[item.rel_id].name in item.description
        elif item.type == "Addon":
            assert addons[item.rel_id].client_id == item.client_id
        if item.rel_id is not None:
            assert item.period_start <= item.period_end
        assert item.client_id == item.invoice.client_id
    assert kinds["Hosting"] and kinds["Domain"] and kinds["DomainRegister"] and kinds["Addon"]
    # A suspended service's unpaid invoice is the one for its current due date.
    suspended = db.session.scalars(select(Service).filter_by(status="Suspended")).first()
    line = db.session.scalars(select(InvoiceItem).filter_by(
        type="Hosting", rel_id=suspended.id, period_start=suspended.next_due_date)).one()
    assert line.invoice.status == "Unpaid" and line.invoice.due_date == suspended.next_due_date

    # Numbers run without gaps in date order, and the counter continues after them.
    invoices = db.session.scalars(select(Invoice).order_by(Invoice.date, Invoice.id)).all()
    template = db.session.scalars(select(Setting.value).filter_by(key="InvoiceNumberFormat")).one()
    assert template == "INV-{YEAR}-{NUMBER:5}"
    numbers = [int(re.fullmatch(r"INV-\d{4}-(\d{5})", i.number).group(1)) for i in invoices]
    assert numbers == list(range(1, len(invoices) + 1))
    for position, invoice in enumerate(invoices, start=1):
        assert invoice.number == format_invoice_number(template, position, invoice.date)
    counter = db.session.scalars(select(InvoiceCounter).filter_by(name="invoice")).one()
    assert counter.next_value == len(invoices) + 1


def test_payments_and_credit_ledger_are_consistent(seeded, db):
    transactions = db.session.scalars(select(Transaction)).all()
    paid_ids = set(db.session.scalars(select(Invoice.id).filter_by(status="Paid")))
    assert {t.invoice_id for t in transactions} == paid_ids
    assert len({(t.gateway, t.gateway_transaction_id) for t in transactions}) == len(transactions)
    assert {t.gateway for t in transactions} == {"banktransfer", "stripe", "paypal"}
    assert any(t.fees > 0 for t in transactions)
    for t in transactions:
        assert t.amount_in >= t.invoice.total
    entries = defaultdict(list)
    for entry in db.session.scalars(select(CreditEntry).order_by(CreditEntry.date, CreditEntry.id)):
        entries[entry.client_id].append(entry)
    assert len(entries) >= 3
    for client_id, ledger in entries.items():
        running = Decimal("0.00")
        for entry in ledger:
            running += entry.amount
            assert entry.balance_after == running >= 0
        assert db.session.get(Client, client_id).credit_balance == running
    without_ledger = db.session.scalars(select(Client).where(Client.id.not_in(list(entries)))).all()
    assert all(client.credit_balance == Decimal("0.00") for client in without_ledger)


def test_catalog_servers_settings_and_email_templates(seeded, db):
    currencies = {c.code: c for c in db.session.scalars(select(Currency))}
    assert currencies["USD"].is_default and currencies["USD"].prefix == "$"
    assert (currencies["EUR"].prefix, currencies["EUR"].rate) == ("€", Decimal("0.92"))
    assert (currencies["GBP"].prefix, currencies["GBP"].rate) == ("£", Decimal("0.79"))
    today = date.today()
    for currency in currencies.values():
        days = set(db.session.scalars(select(ExchangeRate.day).filter_by(currency_id=currency.id)))
        assert len(days) == 30 and today in days
        todays = db.session.scalars(select(ExchangeRate.rate).filter_by(currency_id=currency.id, day=today)).one()
        assert todays == currency.rate
    products = db.session.scalars(select(Product)).all()
    assert {p.name for p in products} == {"Starter", "Pro", "Business", "Reseller Bronze", "Reseller Silver",
                                          "VPS 2GB", "VPS 4GB", "VPS 8GB"}
    months = dict(zip(CYCLES, (1, 3, 6, 12, 24, 36)))
    for product in products:
        assert len(product.pricing) == 18
        for code in currencies:
            rows = {p.cycle: p for p in product.pricing if p.currency.code == code}
            per_month = [rows[cycle].price / months[cycle] for cycle in CYCLES]
            assert per_month == sorted(per_month, reverse=True) and per_month[0] > per_month[-1]
            has_setup = rows["Monthly"].setup_fee > 0
            assert has_setup == product.slug.startswith("vps-")
    vps_group = db.session.scalars(select(ConfigOptionGroup)).one()
    assert {p.slug for p in vps_group.products} == {"vps-2gb", "vps-4gb", "vps-8gb"}
    assert {o.name for o in vps_group.options} == {"Extra RAM", "Operating System"}
    assert {a.name for a in db.session.scalars(select(Addon))} == {"Dedicated IP", "SSL Certificate", "Daily Backups"}
    assert all(a.products and len(a.pricing) == 18 for a in db.session.scalars(select(Addon)))
    tlds = db.session.scalars(select(Tld)).all()
    assert {t.extension for t in tlds} == {".com", ".net", ".org", ".io", ".eu"}
    assert count(db, TldPricing) == 15
    usd_addons = dict(db.session.execute(select(DomainAddonPricing.addon, DomainAddonPricing.price)
                                         .join(Currency).where(Currency.code == "USD")).all())
    assert usd_addons == {"dns_management": Decimal("2.00"), "email_forwarding": Decimal("1.50"),
                          "id_protection": Decimal("4.99")}
    assert count(db, DomainAddonPricing) == 9

    servers = db.session.scalars(select(Server)).all()
    assert {s.module for s in servers} == {"cpanel", "plesk", "directadmin"}
    stored = dict(db.session.execute(text("SELECT name, password FROM servers")).all())
    for server in servers:
        assert server.password and server.password not in stored[server.name]
        assert all(server.groups)

    settings = dict(db.session.execute(select(Setting.key, Setting.value)).all())
    assert settings["CompanyName"] == "Tallyhost Demo Hosting"
    assert settings["CreateInvoiceDaysBefore"] == "14"
    assert (settings["AutoSuspension"], settings["AutoSuspensionDays"]) == ("on", "5")
    assert (settings["AutoTermination"], settings["AutoTerminationDays"]) == ("on", "30")
    assert (settings["LateFeeType"], settings["InvoiceLateFeeAmount"], settings["LateFeeMinimum"]) == \
        ("Percentage", "10", "5.00")
    assert (settings["TaxType"], settings["TaxL2Compound"]) == ("Exclusive", "off")
    templates = {t.name: t for t in db.session.scalars(select(EmailTemplate))}
    for name in ("Invoice Created", "Invoice Payment Reminder", "First Invoice Overdue Notice",
                 "Second Invoice Overdue Notice", "Third Invoice Overdue Notice",
                 "Invoice Payment Confirmation", "Hosting Account Welcome Email",
                 "Service Suspension Notification", "Support Ticket Opened", "Support Ticket Reply",
                 "Password Reset"):
        assert name in templates
    sandbox = SandboxedEnvironment(autoescape=True)
    rendered = sandbox.from_string(templates["Invoice Created"].body_text).render(
        client_name="Alex Morgan", invoice_num="INV-2026-00042", invoice_total="$12.34",
        invoice_due_date="2026-12-01", invoice_link="http://x/inv/42", company_name="Tallyhost Demo Hosting")
    assert "Dear Alex Morgan" in rendered and "INV-2026-00042" in rendered and "$12.34" in rendered
    for template in templates.values():
        sandbox.from_string(template.subject)
        sandbox.from_string(template.body_html)


def test_demo_client_and_staff_users_can_log_in(seeded, app, db):
    sm = app.appbuilder.sm
    user = sm.find_user(username="demo@example.com")
    assert [role.name for role in user.roles] == ["Client"]
    assert sm.auth_user_db("demo@example.com", "demo123") is not None
    assert sm.auth_user_db("demo@example.com", "wrong-password") is None
    membership = db.session.scalars(select(ClientUser).filter_by(user_id=user.id)).one()
    assert membership.is_owner and membership.client.email == "demo@example.com"
    first_client = db.session.scalars(select(Client).order_by(Client.id)).first()
    assert membership.client_id == first_client.id
    # The demo account has something to show in every part of the portal.
    assert {s.status for s in first_client.services} == {"Active"}
    assert {i.status for i in first_client.invoices} >= {"Paid", "Unpaid"}
    assert first_client.domains and first_client.tickets
    for username, role in (("admin", "Admin"), ("finance", "Finance"), ("support", "Support"),
                           ("manager", "Manager")):
        user = sm.find_user(username=username)
        assert [r.name for r in user.roles] == [role]
        assert sm.auth_user_db(username, f"{username}123") is not None
    response = login(app.test_client(), "admin", "admin123")
    assert response.status_code == 302


def test_support_knowledge_base_and_history(seeded, db):
    tickets = db.session.scalars(select(Ticket)).all()
    assert len(tickets) == 30
    assert {t.status for t in tickets} == {"Open", "Answered", "Customer-Reply", "On Hold", "In Progress", "Closed"}
    assert {t.priority for t in tickets} == {"Low", "Medium", "High"}
    assert {t.department.name for t in tickets} == {"Sales", "Technical Support", "Billing"}
    for ticket in tickets:
        staff_replies = [r for r in ticket.replies if r.is_staff]
        assert ticket.replies[0].is_staff is False
        assert (ticket.first_response_at is not None) == bool(staff_replies)
        if staff_replies:
            assert ticket.first_response_at == staff_replies[0].created_at
        assert ticket.last_reply_at == ticket.replies[-1].created_at
        assert (ticket.closed_at is not None) == (ticket.status == "Closed")
    assert any(t.notes for t in tickets)
    articles = db.session.scalars(select(KbArticle)).all()
    assert len(articles) >= 10
    assert any("ns1.example.net" in a.body for a in articles)
    assert any("port <strong>22</strong>" in a.body for a in articles)
    assert count(db, Quote) >= 2 and all(q.items for q in db.session.scalars(select(Quote)))
    system_entries = db.session.scalars(select(ActivityLog).filter_by(actor_type="system")).all()
    assert {"service_suspended", "invoice_paid"} <= {e.action for e in system_entries}
    runs = db.session.scalars(select(AutomationRun)).all()
    assert runs and {run.step for run in runs} == set(STEPS)
    assert all(run.status == "done" and run.run_date < date.today() for run in runs)


def test_second_seed_adds_nothing(seeded, db):
    models = (Client, Service, Domain, Order, Invoice, Transaction, Ticket, Setting, ExchangeRate,
              ProductPricing, EmailTemplate, ActivityLog, OrderItem)
    before = {model.__name__: count(db, model) for model in models}
    users_before = db.session.scalar(text("SELECT count(*) FROM ab_user"))
    summary = seed_demo(only_if_empty=True)
    assert "not seeded" in summary and "50 client" in summary
    summary = seed_demo(only_if_empty=False)
    assert "already present" in summary
    db.session.expire_all()
    assert {model.__name__: count(db, model) for model in models} == before
    assert db.session.scalar(text("SELECT count(*) FROM ab_user")) == users_before


def test_a_failed_seed_leaves_no_half_business_and_a_retry_reuses_reference_data(app, db, monkeypatch):
    import app.demo as demo

    def broken_tickets(builder):
        raise RuntimeError("disk full")

    monkeypatch.setattr(demo._BusinessBuilder, "make_tickets", broken_tickets)
    with pytest.raises(RuntimeError, match="disk full"):
        seed_demo(only_if_empty=True)
    db.session.expire_all()
    assert (count(db, Client), count(db, Invoice), count(db, Service)) == (0, 0, 0)
    # Reference data and logins were committed before the business transaction.
    reference = {model.__name__: count(db, model)
                 for model in (Currency, ExchangeRate, Product, ProductPricing, Tld, TldPricing, Setting,
                               EmailTemplate, KbArticle)}
    assert reference["ProductPricing"] == 8 * 3 * 6 and reference["ExchangeRate"] == 3 * 30

    monkeypatch.undo()
    summary = seed_demo(only_if_empty=True)
    assert "50 clients" in summary
    db.session.expire_all()
    after = {name: count(db, model) for name, model in
             (("Currency", Currency), ("ExchangeRate", ExchangeRate), ("Product", Product),
              ("ProductPricing", ProductPricing), ("Tld", Tld), ("TldPricing", TldPricing),
              ("Setting", Setting), ("EmailTemplate", EmailTemplate), ("KbArticle", KbArticle))}
    # The reference data was found again, not duplicated.
    assert after == reference
    assert count(db, Ticket) == 30
