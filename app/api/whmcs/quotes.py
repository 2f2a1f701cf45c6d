"""WHMCS API actions of quotes: create, list, accept (the quotes engine does the work)."""
from __future__ import annotations

from sqlalchemy import func, select

from app.activity import Actor
from app.api.whmcs.clients import find_client
from app.api.whmcs.registry import ApiError, Params, action
from app.api.whmcs.responses import amount, day, flag, listing, moment, rate
from app.billing import quotes
from app.billing.automation import business_today
from app.extensions import db
from app.models.billing import Quote


def _lines(params: Params) -> list[quotes.QuoteLine]:
    """lineitems[n][desc|qty|up|discount|taxable], as WHMCS sends them."""
    indexes = sorted({int(key.split("[")[1].rstrip("]")) for key in params.form
                      if key.startswith("lineitems[") and key.split("[")[1].rstrip("]").isdigit()})
    lines = []
    for index in indexes:
        prefix = f"lineitems[{index}]"
        quantity = params.int(f"{prefix}[qty]", minimum=1) or 1
        unit_price = params.money(f"{prefix}[up]", required=True, allow_negative=True)
        discount = params.money(f"{prefix}[discount]") or 0
        lines.append(quotes.QuoteLine(description=params.raw(f"{prefix}[desc]") or "",
                                      unit_price=unit_price, quantity=quantity,
                                      discount_percent=discount,
                                      taxed=bool(params.bool(f"{prefix}[taxable]", default=False))))
    return lines


@action("CreateQuote", "QuoteApi", "can_post")
def create_quote(params: Params, actor: Actor) -> dict:
    subject = params.text("subject", required=True)
    stage = params.text("stage", required=True)
    valid_until = params.date("validuntil", required=True)
    client = find_client(params, id_parameter="userid")
    if params.date("datecreated") is not None:
        raise ApiError("datecreated cannot be set: a quote is dated when it is created")
    quote = quotes.create_quote(
        client.id, subject, _lines(params), stage=stage, valid_until=valid_until,
        today=business_today(), proposal=params.text("proposal"),
        customer_notes=params.text("customernotes"), admin_notes=params.text("adminnotes"),
        actor=actor)
    return {"quoteid": quote.id}


def quote_row(quote: Quote) -> dict:
    client = quote.client
    return {
        "id": quote.id, "subject": quote.subject, "stage": quote.stage,
        "validuntil": day(quote.valid_until), "userid": quote.client_id,
        "firstname": client.first_name, "lastname": client.last_name,
        "companyname": client.company_name or "", "email": client.email,
        "address1": client.address1 or "", "address2": client.address2 or "",
        "city": client.city or "", "state": client.state or "",
        "postcode": client.postcode or "", "country": client.country,
        "phonenumber": client.phone or "", "currency": quote.currency_id,
        "currencycode": quote.currency.code,
        "subtotal": amount(quote.subtotal), "tax1": amount(quote.tax1), "tax2": amount(quote.tax2),
        "total": amount(quote.total), "proposal": quote.proposal or "",
        "customernotes": quote.customer_notes or "", "adminnotes": quote.admin_notes or "",
        "datecreated": day(quote.created_at.date() if quote.created_at else None),
        "lastmodified": moment(quote.updated_at),
        "datesent": "0000-00-00", "dateaccepted": day(quote.accepted_at.date() if quote.accepted_at else None),
        "invoiceid": quote.invoice_id or 0,
        "items": {"item": [
            {"id": item.id, "quoteid": quote.id, "description": item.description,
             "quantity": str(item.quantity), "unitprice": amount(item.unit_price),
             "discount": rate(item.discount_percent), "taxable": flag(item.taxed),
             "total": amount(quotes.line_amount(item))} for item in quote.items]},
    }


@action("GetQuotes", "QuoteApi", "can_get")
def get_quotes(params: Params, actor: Actor) -> dict:
    start, limit = params.paging()
    query = select(Quote)
    for parameter, column in (("quoteid", Quote.id), ("userid", Quote.client_id)):
        value = params.id(parameter)
        if value is not None:
            query = query.where(column == value)
    for parameter, column in (("subject", Quote.subject), ("stage", Quote.stage)):
        value = params.text(parameter)
        if value:
            query = query.where(column == value)
    for parameter, column in (("datecreated", func.date(Quote.created_at)),
                              ("validuntil", Quote.valid_until)):
        value = params.date(parameter)
        if value:
            query = query.where(column == value)
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    rows = db.session.scalars(query.order_by(Quote.id).offset(start).limit(limit)).all()
    return listing("quotes", "quote", [quote_row(row) for row in rows], total, start)


@action("AcceptQuote", "QuoteApi", "can_accept")
def accept_quote(params: Params, actor: Actor) -> dict:
    quote_id = params.id("quoteid", required=True)
    invoice = quotes.accept_quote(quote_id, today=business_today(), actor=actor)
    return {"invoiceid": invoice.id}
