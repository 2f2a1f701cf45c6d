"""The provisioning interface and the manual module (engine functions, real database)."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.models.support import SupportDepartment, Ticket, TicketStatus
from app.models.system import ActivityLog
from app.provisioning import (
    ModuleResult, UnknownModuleError, available_modules, get_module, module_for,
)
from tests import factories


def _service(db, **product_fields):
    client = factories.client(company_name="Acme Widgets Ltd")
    product = factories.product(**product_fields)
    service = factories.service(client, product, domain="acme-widgets.example")
    db.session.commit()
    return service


def _todos(db):
    return db.session.scalars(
        select(Ticket).join(SupportDepartment, Ticket.department_id == SupportDepartment.id)
        .where(SupportDepartment.name == "Provisioning To-Do").order_by(Ticket.id)).all()


def _log_entries(db, action):
    return db.session.scalars(select(ActivityLog).where(ActivityLog.action == action)).all()


def test_suspend_with_manual_module_succeeds_logs_and_opens_a_todo(db):
    service = _service(db)

    result = module_for(service).suspend_account(service, "Overdue invoice INV-2026-00007")
    db.session.commit()

    assert isinstance(result, ModuleResult)
    assert result.success is True
    assert result.data["todo_created"] is True

    [entry] = _log_entries(db, "module_suspend")
    assert (entry.object_type, entry.object_id) == ("Service", service.id)
    assert entry.client_id == service.client_id
    assert entry.actor_type == "system"
    assert "Overdue invoice INV-2026-00007" in entry.description

    [todo] = _todos(db)
    assert todo.subject == f"Suspend hosting account: acme-widgets.example (service #{service.id})"
    assert todo.tid == result.data["todo_tid"]
    assert todo.status == TicketStatus.OPEN.value
    assert todo.service_id == service.id
    assert todo.client_id is None  # internal: never listed in the client's portal
    assert "Reason: Overdue invoice INV-2026-00007" in todo.replies[0].message
    assert "acme-widgets.example" in todo.replies[0].message

    department = todo.department
    assert department.email == "provisioning-todo@localhost"
    assert department.hidden is True
    assert department.clients_only is False
    # The module acts on the remote side only; the lifecycle engine changes the row.
    assert service.status == "Active"


def test_asking_twice_keeps_one_open_todo_per_service_and_action(db):
    service = _service(db)
    module = module_for(service)

    first = module.suspend_account(service, "Overdue")
    db.session.commit()
    second = module.suspend_account(service, "Overdue, second run")
    db.session.commit()

    assert second.success is True
    assert second.data["todo_created"] is False
    assert second.data["todo_tid"] == first.data["todo_tid"]
    assert len(_todos(db)) == 1
    assert db.session.scalar(select(func.count()).select_from(SupportDepartment)) == 1
    assert len(_log_entries(db, "module_suspend")) == 2

    # Another action is another to-do; a closed to-do does not block a new one.
    module.unsuspend_account(service)
    db.session.commit()
    assert [t.subject.split(":")[0] for t in _todos(db)] == [
        "Suspend hosting account", "Unsuspend hosting account"]

    _todos(db)[0].status = TicketStatus.CLOSED.value
    db.session.commit()
    third = module.suspend_account(service, "Overdue again")
    db.session.commit()
    assert third.data["todo_created"] is True
    assert third.data["todo_tid"] != first.data["todo_tid"]
    assert len(_todos(db)) == 3


def test_every_action_of_the_manual_module(db):
    service = _service(db)
    bigger = factories.product(name="Business Plus", module_package="biz_plus")
    db.session.commit()
    module = get_module("manual")

    results = {
        "module_create": module.create_account(service),
        "module_terminate": module.terminate_account(service),
        "module_change_package": module.change_package(service, bigger),
        "module_change_password": module.change_password(service, "N3w-Secret-Pass!"),
    }
    db.session.commit()

    assert all(result.success for result in results.values())
    for action in results:
        assert len(_log_entries(db, action)) == 1, action
    subjects = [todo.subject for todo in _todos(db)]
    assert subjects == [
        f"Create hosting account: acme-widgets.example (service #{service.id})",
        f"Terminate hosting account: acme-widgets.example (service #{service.id})",
        f"Change package of hosting account: acme-widgets.example (service #{service.id})",
        f"Change password of hosting account: acme-widgets.example (service #{service.id})",
    ]
    assert "'biz_plus'" in _todos(db)[2].replies[0].message
    # A password is never written into a ticket or the log.
    everything = " ".join(
        [r.message for t in _todos(db) for r in t.replies]
        + [e.description + str(e.after) for e in db.session.scalars(select(ActivityLog))])
    assert "N3w-Secret-Pass!" not in everything


def test_unknown_module_name_gives_a_clear_error_and_changes_nothing(db):
    service = _service(db, module="nosuchpanel")

    with pytest.raises(UnknownModuleError) as raised:
        module_for(service)
    message = str(raised.value)
    assert "nosuchpanel" in message and "manual" in message
    assert f"service #{service.id}" in message

    with pytest.raises(UnknownModuleError, match="unknown provisioning module 'cpanel'"):
        get_module("cpanel")
    with pytest.raises(LookupError):
        get_module("")
    assert _todos(db) == []
    assert db.session.scalar(select(func.count()).select_from(ActivityLog)) == 0


def test_registry_lists_manual_and_ignores_case():
    assert "manual" in available_modules()
    assert get_module(" Manual ").name == "manual"
