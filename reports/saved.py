"""Saved reports: who sees which (built-ins, their own, those shared with one of
their roles), and saving, cloning and deleting with an activity-log entry each.

These functions add to the session and leave the commit to the caller, so a
change and its log entry are committed together."""
from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.activity import log
from app.auth.roles import STAFF_ROLES
from app.extensions import db
from app.models.reports import SavedReport
from reports.builder import ReportDefinition, ReportError, validate

ADMIN_ROLE = "Admin"
NAME_MAX = 150


class ReportNotFound(LookupError):
    """No such report, or one the user may not see (the same answer for both)."""


def role_names(user) -> set[str]:
    return {role.name for role in getattr(user, "roles", [])}


def can_view(user, report: SavedReport) -> bool:
    roles = role_names(user)
    if ADMIN_ROLE in roles or report.owner_id == getattr(user, "id", None):
        return True
    return bool(roles & set(report.role_names))


def can_edit(user, report: SavedReport) -> bool:
    """Built-ins are cloned, never changed; a saved report by its owner or an Admin."""
    if report.builtin:
        return False
    return ADMIN_ROLE in role_names(user) or report.owner_id == getattr(user, "id", None)


def visible_reports(user) -> list[SavedReport]:
    reports = db.session.scalars(
        select(SavedReport).order_by(SavedReport.builtin.desc(), SavedReport.name))
    return [report for report in reports if can_view(user, report)]


def get_visible(user, report_id: int) -> SavedReport:
    report = db.session.get(SavedReport, report_id)
    if report is None or not can_view(user, report):
        raise ReportNotFound(f"no report {report_id}")
    return report


def check_roles(shared_roles: list[str]) -> str:
    unknown = [name for name in shared_roles if name not in STAFF_ROLES]
    if unknown:
        raise ReportError(f"unknown role(s) {', '.join(unknown)} (one of "
                          f"{', '.join(STAFF_ROLES)})")
    return ",".join(dict.fromkeys(shared_roles))


def _check_name(name: str, report_id: int | None) -> str:
    name = (name or "").strip()
    if not name:
        raise ReportError("give the report a name")
    if len(name) > NAME_MAX:
        raise ReportError(f"a report name has at most {NAME_MAX} characters")
    from reports.builtin import BUILTINS_BY_KEY

    if any(builtin.name == name for builtin in BUILTINS_BY_KEY.values()):
        raise ReportError(f"{name!r} is the name of a built-in report")
    taken = db.session.scalar(select(SavedReport.id).where(SavedReport.name == name))
    if taken is not None and taken != report_id:
        raise ReportError(f"a report named {name!r} exists already")
    return name


def save_report(user, name: str, definition: ReportDefinition, *, description: str = "",
                shared_roles: list[str] | None = None, report: SavedReport | None = None,
                today: date | None = None) -> SavedReport:
    """Create a report, or change one the user may edit. The definition is checked
    before anything is written."""
    if report is not None and not can_edit(user, report):
        raise ReportError("this report cannot be changed: clone it and change the copy")
    validate(definition, today or date.today())
    name = _check_name(name, report.id if report else None)
    roles = check_roles(shared_roles or [])
    values = {"name": name, "description": (description or "").strip(),
              "dataset": definition.dataset, "definition": definition.to_dict(),
              "shared_roles": roles}
    if report is None:
        report = SavedReport(owner_id=getattr(user, "id", None), builtin=False, **values)
        try:
            with db.session.begin_nested():
                db.session.add(report)
        except IntegrityError:
            raise ReportError(f"a report named {name!r} exists already") from None
        log("report.created", f"Report {name} saved", report)
        return report
    before = {key: getattr(report, key) for key in values}
    for key, value in values.items():
        setattr(report, key, value)
    try:
        with db.session.begin_nested():
            db.session.flush()
    except IntegrityError:
        raise ReportError(f"a report named {name!r} exists already") from None
    log("report.updated", f"Report {name} changed", report, before=before, after=values)
    return report


def clone_report(user, report: SavedReport, name: str | None = None) -> SavedReport:
    """A copy owned by the user (not shared until they share it)."""
    if name is None:
        name = _free_name(f"Copy of {report.name}"[:NAME_MAX])
    definition = ReportDefinition.from_dict(report.definition)
    return save_report(user, name, definition, description=report.description)


def _free_name(wanted: str) -> str:
    names = set(db.session.scalars(select(SavedReport.name).where(
        SavedReport.name.like(f"{wanted[:NAME_MAX - 6]}%"))))
    if wanted not in names:
        return wanted
    number = 2
    while f"{wanted[:NAME_MAX - 6]} ({number})" in names:
        number += 1
    return f"{wanted[:NAME_MAX - 6]} ({number})"


def delete_report(user, report: SavedReport) -> None:
    if not can_edit(user, report):
        raise ReportError("built-in reports cannot be deleted, and saved ones only by "
                          "their owner or an Admin")
    log("report.deleted", f"Report {report.name} deleted", report,
        before={"name": report.name, "definition": report.definition})
    db.session.delete(report)
