"""Reports: saved report definitions, their email schedules and each delivery."""
from __future__ import annotations

from datetime import datetime

from flask_appbuilder import Model
from sqlalchemy import (
    JSON, Boolean, CheckConstraint, DateTime, ForeignKey, Integer, String, Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import TimestampMixin, utcnow

REPORT_FREQUENCIES = ("daily", "weekly", "monthly")
REPORT_FORMATS = ("csv", "xlsx", "pdf")


class SavedReport(TimestampMixin, Model):
    """A report definition (reports.builder.ReportDefinition as JSON), built in or
    saved by a staff member and shared with the roles listed in shared_roles."""

    __tablename__ = "saved_reports"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(150), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    dataset: Mapped[str] = mapped_column(String(50))
    definition: Mapped[dict] = mapped_column(JSON, default=dict)
    shared_roles: Mapped[str] = mapped_column(String(255), default="")  # comma separated
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"), index=True)
    builtin: Mapped[bool] = mapped_column(Boolean, default=False)

    owner = relationship("User")
    schedules = relationship("ReportSchedule", back_populates="report",
                             cascade="all, delete-orphan")

    @property
    def role_names(self) -> list[str]:
        return [name.strip() for name in (self.shared_roles or "").split(",") if name.strip()]

    def __repr__(self) -> str:
        return self.name


class ReportSchedule(TimestampMixin, Model):
    """Email a report's export to some addresses every day, week or month."""

    __tablename__ = "report_schedules"
    __table_args__ = (
        CheckConstraint("frequency IN ('daily', 'weekly', 'monthly')",
                        name="ck_report_schedules_frequency"),
        CheckConstraint("format IN ('csv', 'xlsx', 'pdf')", name="ck_report_schedules_format"),
        CheckConstraint("hour >= 0 AND hour <= 23", name="ck_report_schedules_hour"),
        CheckConstraint("weekday IS NULL OR (weekday >= 0 AND weekday <= 6)",
                        name="ck_report_schedules_weekday"),
        CheckConstraint("day_of_month IS NULL OR (day_of_month >= 1 AND day_of_month <= 28)",
                        name="ck_report_schedules_day_of_month"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("saved_reports.id"), index=True)
    frequency: Mapped[str] = mapped_column(String(10), default="monthly")
    hour: Mapped[int] = mapped_column(Integer, default=7)
    weekday: Mapped[int | None] = mapped_column(Integer)       # 0 = Monday, weekly only
    day_of_month: Mapped[int | None] = mapped_column(Integer)  # 1-28, monthly only
    recipients: Mapped[str] = mapped_column(Text)  # comma separated addresses
    format: Mapped[str] = mapped_column(String(5), default="pdf")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    last_run_at: Mapped[datetime | None] = mapped_column(DateTime)

    report = relationship("SavedReport", back_populates="schedules")
    deliveries = relationship("ReportDelivery", back_populates="schedule",
                              cascade="all, delete-orphan")

    def __repr__(self) -> str:
        return f"{self.report.name if self.report else 'Report'} ({self.frequency})"


class ReportDelivery(Model):
    """One run of one schedule for one period: the key sends each period once."""

    __tablename__ = "report_deliveries"
    __table_args__ = (UniqueConstraint("schedule_id", "period_key",
                                       name="uq_report_deliveries_period"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    schedule_id: Mapped[int] = mapped_column(ForeignKey("report_schedules.id"), index=True)
    period_key: Mapped[str] = mapped_column(String(20))  # 2026-01-31 | 2026-W05 | 2026-01
    run_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    status: Mapped[str] = mapped_column(String(10), default="running")  # running|sent|failed
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=1)

    schedule = relationship("ReportSchedule", back_populates="deliveries")


class ReportExport(Model):
    """One export made in the background for one staff member: the request key
    (a hash of the definition, format and day) makes asking twice give the same
    job; the file lives outside the web root under stored_name."""

    __tablename__ = "report_exports"
    __table_args__ = (
        UniqueConstraint("user_id", "request_key", name="uq_report_exports_request"),
        CheckConstraint("format IN ('csv', 'xlsx', 'pdf')", name="ck_report_exports_format"),
        CheckConstraint("progress >= 0 AND progress <= 100", name="ck_report_exports_progress"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("ab_user.id"), index=True)
    report_id: Mapped[int | None] = mapped_column(
        ForeignKey("saved_reports.id", ondelete="SET NULL"), index=True)
    request_key: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(150))
    definition: Mapped[dict] = mapped_column(JSON, default=dict)
    format: Mapped[str] = mapped_column(String(5))
    status: Mapped[str] = mapped_column(String(10), default="pending")  # pending|running|done|failed
    progress: Mapped[int] = mapped_column(Integer, default=0)
    message: Mapped[str] = mapped_column(String(255), default="")
    error: Mapped[str | None] = mapped_column(Text)
    task_id: Mapped[str | None] = mapped_column(String(155), unique=True)
    stored_name: Mapped[str | None] = mapped_column(String(100))
    filename: Mapped[str | None] = mapped_column(String(255))
    rows: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)

    def __repr__(self) -> str:
        return f"{self.title} ({self.format})"
