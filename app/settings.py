"""System settings: stored as text rows under WHMCS's setting names where WHMCS has
one, read with a type and a default. The defaults here are the documented ones."""
from __future__ import annotations

from decimal import Decimal, InvalidOperation

from sqlalchemy import select

from app.extensions import db
from app.models.system import Setting

DEFAULTS: dict[str, str] = {
    # Company
    "CompanyName": "Tallyhost Hosting",
    "Email": "billing@example.com",
    "Domain": "https://example.com",
    "InvoicePayTo": "Tallyhost Hosting\n1 Example Street\nSpringfield, 12345\nUnited States",
    "LogoURL": "",
    "BusinessCountry": "US",
    "BusinessTaxId": "",
    "DefaultCurrency": "USD",
    # Invoicing
    "CreateInvoiceDaysBefore": "14",
    "CreateInvoiceDaysBeforeMonthly": "",       # per-cycle overrides; empty = use the above
    "CreateInvoiceDaysBeforeQuarterly": "",
    "CreateInvoiceDaysBeforeSemiAnnually": "",
    "CreateInvoiceDaysBeforeAnnually": "",
    "CreateInvoiceDaysBeforeBiennially": "",
    "CreateInvoiceDaysBeforeTriennially": "",
    "CreateDomainInvoiceDaysBefore": "30",
    "InvoiceNumberFormat": "INV-{YEAR}-{NUMBER:5}",
    "InvoiceNumberReset": "never",                # never | yearly | monthly
    "CreditNoteNumberFormat": "CN-{YEAR}-{NUMBER:5}",
    "SequentialInvoiceNumbering": "on",
    "NumberOnPayment": "off",                     # proforma mode: number when paid
    "ContinuousInvoiceGeneration": "off",
    "NoAutoApplyCredit": "off",                   # off = credit applies to new invoices
    "CreditOnDowngrade": "on",
    "AddFundsMinimum": "10.00",
    "AddFundsMaximum": "1000.00",
    "AddFundsMaximumBalance": "2000.00",
    "InvoiceDueDays": "0",                        # manual invoices due N days after issue
    # Taxes
    "TaxEnabled": "on",
    "TaxType": "Exclusive",                       # Exclusive | Inclusive
    "TaxL2Compound": "off",
    "TaxDomains": "on",
    "TaxLateFee": "on",
    "TaxEUTaxValidation": "off",
    "TaxEUReverseCharge": "on",
    # Late fees
    "LateFeeType": "Percentage",                  # Percentage | Fixed
    "InvoiceLateFeeAmount": "0",
    "LateFeeMinimum": "0.00",
    "AddLateFeeDays": "0",
    # Reminders (0 disables a notice)
    "SendReminder": "on",
    "SendInvoiceReminderDays": "7",
    "SendFirstOverdueInvoiceReminder": "1",
    "SendSecondOverdueInvoiceReminder": "7",
    "SendThirdOverdueInvoiceReminder": "14",
    # Suspension and termination
    "AutoSuspension": "on",
    "AutoSuspensionDays": "5",
    "AutoTermination": "off",
    "AutoTerminationDays": "30",
    "AutoUnsuspend": "on",
    "AutoCancellationRequests": "on",
    # Charging stored cards: after a declined charge, wait this many days before the
    # next try (1 = every daily run), at most this many retries (empty = until paid,
    # 0 = try only once, as WHMCS's CCAttemptOnlyOnce).
    # Stored cards are charged this many days before the invoice's due date (WHMCS's
    # "Process Days Before Due"; 0 = on the due date).
    "CCProcessDaysBefore": "0",
    "CCRetryEveryDays": "1",
    "CCRetryMaxAttempts": "",
    # Automation
    "CronHour": "9",
    "CloseInactiveTickets": "0",                  # hours; 0 disables
    "AutoAcceptPaidOrders": "on",
    "ReportExportRetentionDays": "7",             # days report export files are kept; 0 keeps them
    "DocumentPdfRetentionDays": "30",             # days invoice/quote PDF files are kept; 0 keeps them
    # Store
    "TermsOfService": "https://example.com/terms",  # the TOS page a checkout must accept
    # Orders: the built-in fraud check (app/orders/fraud.py)
    "FraudCheckEnabled": "on",
    "FraudScoreThreshold": "50",                  # at or above: the order is held as Fraud
    "FraudMaxOrdersPerIp": "3",                   # orders from one IP in 24 hours; 0 = no limit
    "FraudHighRiskCountries": "",                 # comma-separated ISO codes
    "FraudDisposableEmailDomains": "",            # added to the built-in list
}


def get(key: str) -> str:
    row = db.session.scalar(select(Setting.value).where(Setting.key == key))
    if row is not None:
        return row
    if key in DEFAULTS:
        return DEFAULTS[key]
    raise KeyError(f"unknown setting {key!r}")


def get_bool(key: str) -> bool:
    return get(key).strip().lower() in {"on", "1", "true", "yes"}


def get_int(key: str) -> int:
    value = get(key).strip()
    return int(value) if value else 0


def get_decimal(key: str) -> Decimal:
    try:
        return Decimal(get(key).strip() or "0")
    except InvalidOperation:
        raise ValueError(f"setting {key} is not a number: {get(key)!r}")


def set_value(key: str, value: str) -> None:
    """Store a setting (the caller commits); unknown names are refused."""
    if key not in DEFAULTS:
        raise KeyError(f"unknown setting {key!r}")
    row = db.session.scalar(select(Setting).where(Setting.key == key))
    if row is None:
        db.session.add(Setting(key=key, value=str(value)))
    else:
        row.value = str(value)


def snapshot() -> dict[str, str]:
    """Every setting at once (one query), for a run that reads many of them."""
    values = dict(DEFAULTS)
    values.update(dict(db.session.execute(select(Setting.key, Setting.value)).all()))
    return values
