"""Staff screens for scheduled report emails (menu Reports): the schedules, edited
with checks that refuse a schedule that could never be sent, and the deliveries,
read-only (each run of a schedule for a period, with its error when it failed)."""
from __future__ import annotations

from flask_appbuilder.fieldwidgets import BS3TextAreaFieldWidget, BS3TextFieldWidget, Select2Widget
from flask_appbuilder.models.sqla.interface import SQLAInterface
from wtforms import IntegerField, SelectField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, NumberRange, ValidationError

from app.admin.clients import AuditedModelView, status_label, when, yes_no
from app.models.reports import (
    REPORT_FORMATS, REPORT_FREQUENCIES, ReportDelivery, ReportSchedule,
)
from reports.builder import ReportError
from reports.schedules import bad_addresses, check_schedule, split_addresses

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MENU = {"category": "Reports", "category_icon": "fa-bar-chart"}


def optional_int(value):
    """A select's value as a number, or None for the empty choice."""
    if value in (None, "", "None"):
        return None
    return int(value)


def valid_recipients(form, field) -> None:
    addresses = split_addresses(field.data)
    if not addresses:
        raise ValidationError("Give at least one recipient address.")
    bad = bad_addresses(addresses)
    if bad:
        raise ValidationError(f"Not an email address: {', '.join(bad)}.")
    field.data = ", ".join(addresses)  # stored tidy: one list, each address once


def weekday_for_weekly(form, field) -> None:
    weekly = form.frequency.data == "weekly"
    if weekly and field.data is None:
        raise ValidationError("A weekly report needs the weekday it goes out.")
    if not weekly and field.data is not None:
        raise ValidationError("Only a weekly report has a weekday: leave it empty.")


def day_for_monthly(form, field) -> None:
    monthly = form.frequency.data == "monthly"
    if monthly and field.data is None:
        raise ValidationError("A monthly report needs the day of the month it goes out.")
    if not monthly and field.data is not None:
        raise ValidationError("Only a monthly report has a day of the month: leave it empty.")


class ReportScheduleView(AuditedModelView):
    datamodel = SQLAInterface(ReportSchedule)
    list_title = "Report schedules"
    show_title = "Report schedule"
    add_title = "Schedule a report"
    edit_title = "Edit report schedule"
    client_path = None
    label_columns = {"report": "Report", "frequency": "Frequency", "hour": "Hour",
                     "weekday": "Weekday", "day_of_month": "Day of month",
                     "recipients": "Recipients", "format": "Format", "enabled": "Enabled",
                     "last_run_at": "Last sent"}
    list_columns = ["report", "frequency", "hour", "weekday", "day_of_month", "format",
                    "recipients", "enabled", "last_run_at"]
    show_columns = list_columns
    add_columns = edit_columns = ["report", "frequency", "hour", "weekday", "day_of_month",
                                  "recipients", "format", "enabled"]
    search_columns = ["report", "frequency", "format", "enabled"]
    base_order = ("id", "asc")
    formatters_columns = {"enabled": yes_no, "last_run_at": when,
                          "weekday": lambda day: WEEKDAYS[day] if day is not None else ""}
    validators_columns = {"report": [DataRequired(message="Pick the report to send.")]}
    description_columns = {
        "hour": "0-23, in the business's timezone; a missed hour is caught up later in "
                "the same period.",
        "recipients": "Email addresses, separated by commas.",
    }
    add_form_extra_fields = edit_form_extra_fields = {
        "frequency": SelectField(
            "Frequency", choices=list(REPORT_FREQUENCIES), widget=Select2Widget(),
            validators=[DataRequired(message="Pick how often the report goes out.")]),
        "hour": IntegerField(
            "Hour", widget=BS3TextFieldWidget(),
            validators=[InputRequired(message="Give the hour (0-23) the report goes out."),
                        NumberRange(0, 23, message="The hour must be between 0 and 23.")]),
        "weekday": SelectField(
            "Weekday", coerce=optional_int, widget=Select2Widget(),
            choices=[("", "")] + [(str(number), name) for number, name in enumerate(WEEKDAYS)],
            validators=[weekday_for_weekly]),
        "day_of_month": SelectField(
            "Day of month", coerce=optional_int, widget=Select2Widget(),
            choices=[("", "")] + [(str(day), str(day)) for day in range(1, 29)],
            validators=[day_for_monthly]),
        "recipients": TextAreaField(
            "Recipients", widget=BS3TextAreaFieldWidget(), validators=[valid_recipients]),
        "format": SelectField(
            "Format", choices=list(REPORT_FORMATS), widget=Select2Widget(),
            validators=[DataRequired(message="Pick the file format sent.")]),
    }

    def before_save(self, item, is_created: bool) -> None:
        # The engine's own check, so the screen never stores what it would refuse.
        try:
            check_schedule(item)
        except ReportError as error:
            raise ValueError("; ".join(error.errors)) from error


class ReportDeliveryView(AuditedModelView):
    """Each run of a schedule for one period: read-only."""

    datamodel = SQLAInterface(ReportDelivery)
    list_title = "Report deliveries"
    show_title = "Report delivery"
    client_path = None
    base_permissions = ["can_list", "can_show"]
    label_columns = {"schedule": "Schedule", "period_key": "Period", "run_at": "Run at",
                     "status": "Status", "attempts": "Attempts", "error": "Error"}
    list_columns = ["schedule", "period_key", "status", "attempts", "run_at", "error"]
    show_columns = list_columns
    search_columns = ["schedule", "period_key", "status"]
    base_order = ("id", "desc")
    formatters_columns = {"status": status_label, "run_at": when}


def register(appbuilder) -> None:
    # Menu names are single words so the Report\w* role rule grants their menu entries.
    appbuilder.add_view(ReportScheduleView, "ReportSchedules", label="Report schedules",
                        icon="fa-clock-o", **MENU)
    appbuilder.add_view(ReportDeliveryView, "ReportDeliveries", label="Report deliveries",
                        icon="fa-paper-plane", **MENU)
