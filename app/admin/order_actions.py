"""The order page's buttons: Accept, Set to Pending, Cancel, Mark as Fraud, Delete.

Thin, as app.admin.actions: a POST with its CSRF token, one engine call
(app.orders.lifecycle) inside unit_of_work, the engine's refusal (OrderError) shown
to staff with nothing changed. Each action has its own permission on OrderView
(can_accept, ...): Admin and Finance have them, Support and Manager only read.
"""
from __future__ import annotations

from flask import flash, redirect, url_for
from flask_appbuilder import expose
from flask_appbuilder.security.decorators import has_access, permission_name
from flask_wtf import FlaskForm
from wtforms import BooleanField

from app.activity import current_actor
from app.admin.actions import ButtonForm, EngineActions, sentence, text_box
from app.billing.errors import BillingError
from app.models.orders import OrderStatus
from app.orders import lifecycle
from app.orders.cart import OrderError
from app.provisioning.service_commands import ServiceCommandError


class AcceptOrderForm(FlaskForm):
    run_module = BooleanField("Set up the services through their provisioning module", default=True)
    send_to_registrar = BooleanField("Send the domains to the registrar", default=True)
    send_email = BooleanField("Email the client the welcome messages", default=True)


class OrderReasonForm(FlaskForm):
    reason = text_box("Reason", "Give the reason: it goes to the activity log.")


def order_facts(order) -> list[tuple[str, str]]:
    return [("Client", order.client.full_name), ("Status", order.status),
            ("Total", order.currency.format(order.amount)),
            ("Fraud score", "not checked" if order.fraud_score is None else str(order.fraud_score))]


class OrderActions(EngineActions):
    action_permissions = ("accept", "set_pending", "cancel_order", "mark_fraud", "delete_order")
    refusals = (OrderError, BillingError, ServiceCommandError)

    def record_title(self, order) -> str:
        return f"Order {order.order_number}"

    def buttons(self, order):
        status = order.status
        held = status in (OrderStatus.PENDING, OrderStatus.FRAUD)
        return [
            self.button("accept", "Accept", order, icon="fa-check", style="success") if held else None,
            self.button("set_pending", "Set to Pending", order, icon="fa-undo", post=True)
            if status in (OrderStatus.FRAUD, OrderStatus.CANCELLED) else None,
            self.button("cancel_order", "Cancel", order, icon="fa-ban", style="warning") if held else None,
            self.button("mark_fraud", "Mark as Fraud", order, icon="fa-exclamation-triangle", style="danger")
            if status == OrderStatus.PENDING else None,
            self.button("delete_order", "Delete", order, icon="fa-trash", style="danger", post=True,
                        confirm="Delete this order with the services and domains it made?")
            if status in (OrderStatus.CANCELLED, OrderStatus.FRAUD) else None,
        ]

    def _reason_page(self, pk: int, verb: str, work, submit: str, intro: str):
        order = self.record_or_404(pk)
        form = OrderReasonForm()
        if self.form_done(order, form,
                          lambda: work(order.id, actor=current_actor(), reason=form.reason.data),
                          lambda done: f"Order {done.order_number} {verb}."):
            return self.back_to(order)
        return self.form_page(order, form, f"{submit}: order {order.order_number}", submit,
                              facts=order_facts(order), danger=True, intro=intro)

    @expose("/accept/<int:pk>", methods=["GET", "POST"])
    @has_access
    @permission_name("accept")
    def accept(self, pk):
        order = self.record_or_404(pk)
        form = AcceptOrderForm()
        if self.form_done(order, form, lambda: lifecycle.accept_order(
                order.id, actor=current_actor(), run_module=form.run_module.data,
                send_email=form.send_email.data, register_domains=form.send_to_registrar.data),
                lambda done: f"Order {done.order_number} accepted."):
            return self.back_to(order)
        return self.form_page(order, form, f"Accept order {order.order_number}", "Accept order",
                              facts=order_facts(order),
                              intro="Pending services are set up and become Active; a module "
                                    "that refuses stops the whole acceptance.")

    @expose("/set_pending/<int:pk>", methods=["POST"])
    @has_access
    @permission_name("set_pending")
    def set_pending(self, pk):
        return self.one_click(pk, lambda order: lifecycle.set_pending(order.id, actor=current_actor(),
                                                                      reason="set by staff"),
                              lambda order: f"Order {order.order_number} is Pending again.")

    @expose("/cancel_order/<int:pk>", methods=["GET", "POST"])
    @has_access
    @permission_name("cancel_order")
    def cancel_order(self, pk):
        return self._reason_page(pk, "cancelled", lifecycle.cancel_order, "Cancel order",
                                 "Services and domains not set up yet are cancelled, and the "
                                 "unpaid invoice is cancelled with them.")

    @expose("/mark_fraud/<int:pk>", methods=["GET", "POST"])
    @has_access
    @permission_name("mark_fraud")
    def mark_fraud(self, pk):
        return self._reason_page(pk, "marked as fraud", lifecycle.mark_fraud, "Mark as fraud",
                                 "The order is held: its services and domains become Fraud and "
                                 "its unpaid invoice is cancelled. Set it to Pending to release it.")

    @expose("/delete_order/<int:pk>", methods=["POST"])
    @has_access
    @permission_name("delete_order")
    def delete_order(self, pk):
        order = self.record_or_404(pk)
        if not ButtonForm().validate_on_submit():
            flash("The page had expired: nothing was changed. Please try again.", "danger")
            return self.back_to(order)
        number = order.order_number
        if self.run(lambda: lifecycle.delete_order(order.id, actor=current_actor()),
                    lambda _: f"Order {number} deleted."):
            return redirect(url_for(f"{self.endpoint}.list"))
        return self.back_to(order)
