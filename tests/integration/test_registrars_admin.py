"""Staff admin registrar actions on a domain's page: Register, Transfer, Renew, Sync,
Get EPP code; refused to Support."""
from __future__ import annotations


import pytest
from sqlalchemy import select

from app.billing.automation import business_today
from app.billing.cycles import add_months
from app.models.domains import Domain
from app.models.system import ActivityLog
from app.registrars.local import LocalRegistrar
from tests import factories
from tests.fakes.namecheap_server import fake_namecheap  # noqa: F401  (fixture)
from tests.integration.test_registrars_availability import sell_tld


def text(response) -> str:
    return response.get_data(as_text=True)


def local_domain(db, name="demo.com", **fields) -> int:
    sell_tld(db, ".com", registrar_module="local")
    domain = factories.domain(factories.client(), name, registrar="local", **fields)
    db.session.commit()
    return domain.id


def test_show_page_offers_the_actions_the_status_allows(db, admin_client):
    pending = local_domain(db, status="Pending")
    page = text(admin_client.get(f"/domainview/show/{pending}"))
    assert f"/domainview/register_domain/{pending}" in page
    assert f"/domainview/transfer_domain/{pending}" in page
    assert f"/domainview/renew_domain/{pending}" not in page
    active = factories.domain(factories.client(), "live.com", registrar="local")
    db.session.commit()
    page = text(admin_client.get(f"/domainview/show/{active.id}"))
    for action in ("renew_domain", "sync_domain", "epp_code"):
        assert f"/domainview/{action}/{active.id}" in page
    assert f"/domainview/register_domain/{active.id}" not in page


def test_register_renew_and_sync_through_the_engine(db, admin_client):
    domain_id = local_domain(db, status="Pending")
    response = admin_client.post(f"/domainview/register_domain/{domain_id}",
                                 follow_redirects=True)
    assert "demo.com registered (Active)" in text(response)
    db.session.expire_all()
    domain = db.session.get(Domain, domain_id)
    today = business_today()
    assert (domain.status, domain.expiry_date) == ("Active", add_months(today, 12))
    response = admin_client.post(f"/domainview/renew_domain/{domain_id}", data={"years": "2"},
                                 follow_redirects=True)
    assert "renewed until" in text(response)
    db.session.expire_all()
    assert db.session.get(Domain, domain_id).expiry_date == add_months(today, 36)
    response = admin_client.post(f"/domainview/renew_domain/{domain_id}", data={"years": "11"})
    assert "1 to 10 years" in text(response)
    response = admin_client.post(f"/domainview/sync_domain/{domain_id}", follow_redirects=True)
    assert "in sync" in text(response)
    logged = db.session.scalars(select(ActivityLog.action).where(
        ActivityLog.object_type == "Domain", ActivityLog.object_id == domain_id)
        .order_by(ActivityLog.id)).all()
    assert logged == ["domain_registered", "domain_renewed"]
    entry = db.session.scalar(select(ActivityLog).where(ActivityLog.action == "domain_renewed"))
    assert entry.actor_type == "staff"


def test_registrar_refusal_is_shown_and_logged(db, admin_client, fake_namecheap):  # noqa: F811
    sell_tld(db, ".com", registrar_module="namecheap")
    fake_namecheap.taken.add("taken.com")
    client = factories.client(phone="+1.5551234567", address1="1 Main St", city="Springfield",
                              state="IL", postcode="62701")
    domain = factories.domain(client, "taken.com", status="Pending", registrar="namecheap")
    db.session.commit()
    response = admin_client.post(f"/domainview/register_domain/{domain.id}",
                                 follow_redirects=True)
    assert "failed at the registrar" in text(response)
    db.session.expire_all()
    assert db.session.get(Domain, domain.id).status == "Pending"
    assert db.session.scalar(select(ActivityLog.action).where(
        ActivityLog.object_id == domain.id)) == "domain_registration_failed"


def test_transfer_form_and_epp_code_page(db, admin_client):
    domain_id = local_domain(db, "incoming.com", status="Pending", type="Transfer")
    response = admin_client.post(f"/domainview/transfer_domain/{domain_id}",
                                 data={"epp_code": ""})
    assert "needs its EPP" in text(response)
    response = admin_client.post(f"/domainview/transfer_domain/{domain_id}",
                                 data={"epp_code": "Secret-77"}, follow_redirects=True)
    assert "transfer of incoming.com: Active" in text(response)
    page = text(admin_client.post(f"/domainview/epp_code/{domain_id}", data={}))
    expected = LocalRegistrar().get_epp_code("incoming.com").epp_code
    assert expected in page
    logged = " ".join(db.session.scalars(select(ActivityLog.description)))
    assert expected not in logged and "Secret-77" not in logged


def test_support_may_not_use_the_registrar_actions(db, logged_in):
    domain_id = local_domain(db, status="Pending")
    support = logged_in("Support")
    for url, data in ((f"/domainview/register_domain/{domain_id}", {}),
                      (f"/domainview/transfer_domain/{domain_id}", {"epp_code": "x"}),
                      (f"/domainview/renew_domain/{domain_id}", {"years": "1"}),
                      (f"/domainview/sync_domain/{domain_id}", {}),
                      (f"/domainview/epp_code/{domain_id}", {})):
        assert support.post(url, data=data).status_code == 403, url
    db.session.expire_all()
    assert db.session.get(Domain, domain_id).status == "Pending"
    assert support.get(f"/domainview/show/{domain_id}").status_code == 200
