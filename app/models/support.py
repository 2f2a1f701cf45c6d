"""Support: departments, tickets with replies, notes and attachments, the
knowledge base and announcements."""
from __future__ import annotations

import secrets
from datetime import datetime
from enum import StrEnum

from flask_appbuilder import Model
from sqlalchemy import Boolean, CheckConstraint, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import TimestampMixin, status_column, utcnow


class TicketStatus(StrEnum):
    OPEN = "Open"
    ANSWERED = "Answered"
    CUSTOMER_REPLY = "Customer-Reply"
    ON_HOLD = "On Hold"
    IN_PROGRESS = "In Progress"
    CLOSED = "Closed"


class TicketPriority(StrEnum):
    LOW = "Low"
    MEDIUM = "Medium"
    HIGH = "High"


class SupportDepartment(Model):
    __tablename__ = "support_departments"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str | None] = mapped_column(String(255))
    email: Mapped[str] = mapped_column(String(255), unique=True)  # piped address
    clients_only: Mapped[bool] = mapped_column(Boolean, default=False)
    hidden: Mapped[bool] = mapped_column(Boolean, default=False)
    auto_respond: Mapped[bool] = mapped_column(Boolean, default=True)
    sort_order: Mapped[int] = mapped_column(Integer, default=0)

    def __repr__(self) -> str:
        return self.name


ACCESS_CODE_LENGTH = 16


def new_access_code() -> str:
    """A ticket's guest access code (WHMCS's "c"): 96 random bits, URL-safe."""
    return secrets.token_urlsafe(12)


class Ticket(TimestampMixin, Model):
    __tablename__ = "tickets"
    id: Mapped[int] = mapped_column(primary_key=True)
    tid: Mapped[str] = mapped_column(String(20), unique=True)  # the number clients see
    department_id: Mapped[int] = mapped_column(ForeignKey("support_departments.id"), index=True)
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id"), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    service_id: Mapped[int | None] = mapped_column(ForeignKey("services.id"))
    name: Mapped[str] = mapped_column(String(200))  # of a guest, or the client's
    email: Mapped[str] = mapped_column(String(255))
    subject: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = status_column(TicketStatus, TicketStatus.OPEN)
    priority: Mapped[str] = mapped_column(String(10), default=TicketPriority.MEDIUM.value)
    assigned_to_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))
    last_reply_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    first_response_at: Mapped[datetime | None] = mapped_column(DateTime)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime)
    # Opens the ticket's guest page together with tid (WHMCS's viewticket.php?tid=&c=).
    access_code: Mapped[str] = mapped_column(String(ACCESS_CODE_LENGTH), default=new_access_code)

    department = relationship("SupportDepartment")
    client = relationship("Client", back_populates="tickets")
    service = relationship("Service")
    assigned_to = relationship("User")
    replies = relationship("TicketReply", back_populates="ticket", cascade="all, delete-orphan",
                           order_by="TicketReply.created_at")
    notes = relationship("TicketNote", back_populates="ticket", cascade="all, delete-orphan")
    attachments = relationship("TicketAttachment", back_populates="ticket",
                               cascade="all, delete-orphan")

    def __repr__(self) -> str:
        return f"#{self.tid} {self.subject}"


class TicketReply(Model):
    __tablename__ = "ticket_replies"
    __table_args__ = (CheckConstraint("rating IS NULL OR rating BETWEEN 1 AND 5",
                                      name="ck_ticket_replies_rating"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    # Exactly one author: a staff member (admin_id) or the client side (user or email).
    admin_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(255))
    message: Mapped[str] = mapped_column(Text)
    rating: Mapped[int | None] = mapped_column(Integer)  # the client's rating of a staff reply
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    ticket = relationship("Ticket", back_populates="replies")

    @property
    def is_staff(self) -> bool:
        return self.admin_id is not None


class TicketNote(Model):
    __tablename__ = "ticket_notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    admin_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    ticket = relationship("Ticket", back_populates="notes")
    admin = relationship("User")


class TicketAttachment(Model):
    """An uploaded file, stored outside the web root under a random name."""

    __tablename__ = "ticket_attachments"
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    reply_id: Mapped[int | None] = mapped_column(ForeignKey("ticket_replies.id"))
    original_name: Mapped[str] = mapped_column(String(255))
    stored_name: Mapped[str] = mapped_column(String(64), unique=True)
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    ticket = relationship("Ticket", back_populates="attachments")


class KbCategory(Model):
    __tablename__ = "kb_categories"
    id: Mapped[int] = mapped_column(primary_key=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("kb_categories.id"))
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(String(255))
    hidden: Mapped[bool] = mapped_column(Boolean, default=False)
    sort_order: Mapped[int] = mapped_column(Integer, default=0)

    parent = relationship("KbCategory", remote_side=[id])
    articles = relationship("KbArticle", back_populates="category")

    def __repr__(self) -> str:
        return self.name


class KbArticle(TimestampMixin, Model):
    __tablename__ = "kb_articles"
    id: Mapped[int] = mapped_column(primary_key=True)
    category_id: Mapped[int] = mapped_column(ForeignKey("kb_categories.id"), index=True)
    title: Mapped[str] = mapped_column(String(255))
    slug: Mapped[str] = mapped_column(String(255), unique=True)
    body: Mapped[str] = mapped_column(Text)
    tags: Mapped[str] = mapped_column(String(255), default="")
    views: Mapped[int] = mapped_column(Integer, default=0)
    votes_useful: Mapped[int] = mapped_column(Integer, default=0)
    votes_total: Mapped[int] = mapped_column(Integer, default=0)
    private: Mapped[bool] = mapped_column(Boolean, default=False)
    published: Mapped[bool] = mapped_column(Boolean, default=True)

    category = relationship("KbCategory", back_populates="articles")

    def __repr__(self) -> str:
        return self.title


class Announcement(TimestampMixin, Model):
    __tablename__ = "announcements"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(255))
    body: Mapped[str] = mapped_column(Text)
    published: Mapped[bool] = mapped_column(Boolean, default=True)
    published_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)

    def __repr__(self) -> str:
        return self.title
