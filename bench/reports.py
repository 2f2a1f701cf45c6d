"""Benchmark of the report builder on a large synthetic business.

    python bench/reports.py                  # 1,000,000 invoice items and transactions
    python bench/reports.py --rows 100000
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/bench_reports python bench/reports.py

It fills a database (PostgreSQL when DATABASE_URL is set, else a SQLite file under
/tmp) with bulk inserts: `rows` invoice items on rows/4 invoices, `rows` transactions,
rows/20 services and rows/50 clients in USD, EUR and GBP over three years, with daily
exchange rates. Then, in a fresh process (so the peak memory is the reports' own), it
times income by month (per currency and converted at each day's rate), invoice aging,
MRR and MRR movements over 24 months, revenue by product group, and the Excel and CSV exports of
100,000 invoice lines.

The tables of the database used are dropped and created again: the script refuses a
PostgreSQL database whose name does not contain "bench" unless --force is given.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TODAY = date(2026, 3, 31)
START = date(2023, 4, 1)
SQLITE_FILE = "/tmp/tallyhost-bench-reports.db"
BATCH = 10_000
EXPORT_ROWS = 100_000


def make_app(database_url: str):
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    from config import Config

    class BenchConfig(Config):
        SQLALCHEMY_DATABASE_URI = database_url

    from app import create_app

    return create_app(BenchConfig)


def _cents(rng: random.Random, low: int, high: int) -> Decimal:
    return Decimal(rng.randint(low * 100, high * 100)) / 100


def _insert(table, rows: list[dict]) -> None:
    from sqlalchemy import insert

    from app.extensions import db

    for start in range(0, len(rows), BATCH):
        db.session.execute(insert(table), rows[start:start + BATCH])
        db.session.commit()


def seed(rows: int) -> dict:
    from app.extensions import db
    from app.models.billing import Invoice, InvoiceItem, Transaction
    from app.models.catalog import Currency, ExchangeRate, Product, ProductGroup
    from app.models.clients import Client
    from app.models.orders import Service

    rng = random.Random(7)
    days = (TODAY - START).days
    currencies = [Currency(code="USD", prefix="$", rate=Decimal("1"), is_default=True),
                  Currency(code="EUR", suffix=" EUR", rate=Decimal("0.92")),
                  Currency(code="GBP", prefix="£", rate=Decimal("0.79"))]
    db.session.add_all(currencies)
    db.session.flush()
    currency_ids = [c.id for c in currencies]
    rates = []
    for currency, base in ((currencies[1], 920), (currencies[2], 790)):
        for offset in range(days + 1):
            rates.append({"currency_id": currency.id, "day": START + timedelta(days=offset),
                          "rate": Decimal(base + rng.randint(-30, 30)) / 1000})
    groups = [ProductGroup(name=name, slug=name.lower().replace(" ", "-"))
              for name in ("Shared Hosting", "Reseller", "VPS", "Dedicated")]
    db.session.add_all(groups)
    db.session.flush()
    products = [Product(name=f"Plan {n}", slug=f"plan-{n}", group_id=groups[n % 4].id)
                for n in range(12)]
    db.session.add_all(products)
    db.session.commit()
    _insert(ExchangeRate.__table__, rates)

    client_count = max(rows // 50, 10)
    client_currency = [currency_ids[0] if n % 10 < 7 else currency_ids[1 if n % 10 < 9 else 2]
                       for n in range(client_count)]
    countries = ("US", "GB", "DE", "FR", "NL", "CA", "AU")
    _insert(Client.__table__, [
        {"first_name": "Client", "last_name": str(n), "email": f"c{n}@bench.test",
         "country": countries[n % len(countries)], "currency_id": client_currency[n],
         "status": "Active", "created_at": datetime.combine(START, datetime.min.time())
         + timedelta(days=rng.randint(0, days)), "updated_at": datetime(2026, 3, 1),
         "credit_balance": Decimal("0.00")}
        for n in range(client_count)])
    first_client = db.session.query(Client.id).order_by(Client.id).first()[0]

    cycles = (("Monthly", 1), ("Quarterly", 3), ("Semi-Annually", 6), ("Annually", 12),
              ("Biennially", 24), ("Triennially", 36))
    service_count = max(rows // 20, 10)
    services = []
    for n in range(service_count):
        registered = START + timedelta(days=rng.randint(0, days))
        ended = rng.random() < 0.15
        cycle, months = cycles[rng.randrange(len(cycles))]
        services.append({
            "client_id": first_client + n % client_count, "product_id": products[n % 12].id,
            "status": "Terminated" if ended else "Active", "billing_cycle": cycle,
            "recurring_amount": _cents(rng, 3, 30) * months,
            "first_payment_amount": Decimal("0.00"), "registration_date": registered,
            "termination_date":
                registered + timedelta(days=rng.randint(30, 400)) if ended else None,
            "quantity": 1, "created_at": datetime(2026, 3, 1), "updated_at": datetime(2026, 3, 1)})
    _insert(Service.__table__, services)
    first_service = db.session.query(Service.id).order_by(Service.id).first()[0]

    invoice_count = max(rows // 4, 1)
    invoices, statuses = [], ("Paid",) * 18 + ("Unpaid",) * 1 + ("Cancelled",)
    for n in range(invoice_count):
        client = n % client_count
        issued = START + timedelta(days=rng.randint(0, days))
        status = statuses[rng.randrange(len(statuses))]
        total = _cents(rng, 10, 400)
        invoices.append({
            "client_id": first_client + client, "currency_id": client_currency[client],
            "status": status, "date": issued, "due_date": issued + timedelta(days=14),
            "subtotal": total, "total": total, "tax1": Decimal("0.00"),
            "amount_paid": total if status == "Paid" else Decimal("0.00"),
            "created_at": datetime(2026, 3, 1), "updated_at": datetime(2026, 3, 1)})
    _insert(Invoice.__table__, invoices)
    first_invoice = db.session.query(Invoice.id).order_by(Invoice.id).first()[0]
    types = ("Hosting", "Hosting", "Domain", "Addon")
    _insert(InvoiceItem.__table__, [
        {"invoice_id": first_invoice + n // 4, "client_id": invoices[n // 4]["client_id"],
         "type": types[n % 4], "rel_id": first_service + n % service_count if n % 4 < 2 else None,
         "description": "Line", "amount": _cents(rng, 2, 100), "taxed": False,
         "period_start": None}
        for n in range(invoice_count * 4)])
    del invoices

    gateways = ("stripe", "paypal", "banktransfer", "gocardless")
    _insert(Transaction.__table__, [
        {"client_id": first_client + n % client_count,
         "currency_id": client_currency[n % client_count],
         "date": datetime.combine(START, datetime.min.time())
         + timedelta(seconds=rng.randint(0, days * 86400)),
         "gateway": gateways[n % 4], "gateway_transaction_id": f"bench-{n}",
         "description": "Payment", "amount_in": _cents(rng, 5, 300) if n % 25 else Decimal("0.00"),
         "amount_out": Decimal("0.00") if n % 25 else _cents(rng, 5, 50),
         "fees": _cents(rng, 0, 5), "exchange_rate": Decimal("1")}
        for n in range(rows)])
    return {"clients": client_count, "services": service_count, "invoices": invoice_count,
            "invoice_items": invoice_count * 4, "transactions": rows,
            "exchange_rates": len(rates)}


def peak_mib() -> int:
    """This process's peak resident memory. VmHWM starts afresh at exec, whereas
    ru_maxrss would carry over the seeding parent's peak."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def measure() -> dict:
    """Run in a fresh process: time each report, then report the peak memory."""
    from reports.builder import ReportDefinition, run_report
    from reports.builtin import BUILTINS_BY_KEY
    from reports.exports import to_csv, to_xlsx

    def builtin(key: str, **overrides) -> ReportDefinition:
        return ReportDefinition.from_dict({**BUILTINS_BY_KEY[key].definition, **overrides})

    timings: dict[str, dict] = {}

    def timed(name: str, work):
        started = time.perf_counter()
        result = work()
        timings[name] = {"seconds": round(time.perf_counter() - started, 3),
                         "peak MiB": peak_mib()}
        return result

    income = timed("income by month (per currency)",
                   lambda: run_report(builtin("income_by_month"), "Income", TODAY))
    timings["income by month (per currency)"]["rows"] = len(income.frame)
    timed("income by month (converted at day rate)",
          lambda: run_report(builtin("income_by_month", currency_mode="convert"), "Income", TODAY))
    timed("invoice aging", lambda: run_report(builtin("invoice_aging"), "Aging", TODAY))
    timed("MRR over 24 months", lambda: run_report(
        builtin("mrr_by_month", params={"months": 24}), "MRR", TODAY))
    timed("MRR movements over 24 months", lambda: run_report(
        builtin("mrr_movements", params={"months": 24}), "MRR movements", TODAY))
    timed("MRR movements over 24 months (converted)", lambda: run_report(
        builtin("mrr_movements", params={"months": 24}, currency_mode="convert"),
        "MRR movements", TODAY))
    timed("revenue by product group", lambda: run_report(
        builtin("revenue_by_product_group"), "Revenue", TODAY))
    lines = timed(f"query {EXPORT_ROWS:,} invoice lines", lambda: run_report(
        ReportDefinition.from_dict({"dataset": "invoice_items", "limit": EXPORT_ROWS,
                                    "columns": ["item_id", "invoice_date", "client", "currency",
                                                "type", "product_group", "amount"]}),
        "Invoice lines", TODAY))
    workbook = timed(f"Excel export of {EXPORT_ROWS:,} rows", lambda: to_xlsx(lines, TODAY))
    timings[f"Excel export of {EXPORT_ROWS:,} rows"]["bytes"] = len(workbook)
    csv = timed(f"CSV export of {EXPORT_ROWS:,} rows", lambda: to_csv(lines, TODAY))
    timings[f"CSV export of {EXPORT_ROWS:,} rows"]["bytes"] = len(csv)
    return {"timings": timings, "peak_memory_mib": peak_mib()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000,
                        help="invoice items and transactions (default 1,000,000)")
    parser.add_argument("--force", action="store_true",
                        help="allow a PostgreSQL database whose name lacks 'bench'")
    parser.add_argument("--measure-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    database_url = os.environ.get("DATABASE_URL") or f"sqlite:///{SQLITE_FILE}"
    if database_url.startswith("postgres") and "bench" not in database_url.rsplit("/", 1)[-1] \
            and not args.force and not args.measure_only:
        sys.exit("refusing to drop the tables of a database whose name lacks 'bench' "
                 "(use --force)")
    app = make_app(database_url)
    with app.app_context():
        if args.measure_only:
            print(json.dumps(measure()))
            return
        from app.extensions import db

        if database_url.startswith("sqlite") and os.path.exists(SQLITE_FILE):
            os.remove(SQLITE_FILE)
        db.drop_all()
        db.create_all()
        started = time.perf_counter()
        counts = seed(args.rows)
        if database_url.startswith("postgres"):
            # Fresh statistics, as autovacuum would have them after such a load.
            from sqlalchemy import text

            db.session.commit()
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("ANALYZE"))
        seeded = time.perf_counter() - started
    print(f"Seeded in {seeded:.1f} s on {database_url.split(':')[0]}: "
          + ", ".join(f"{count:,} {name}" for name, count in counts.items()))
    done = subprocess.run([sys.executable, __file__, "--measure-only"], capture_output=True,
                          text=True, env={**os.environ, "DATABASE_URL": database_url},
                          check=True)
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    for name, timing in measured["timings"].items():
        extra = ", ".join(f"{key} {value:,}" for key, value in timing.items() if key != "seconds")
        print(f"  {name:<45} {timing['seconds']:>8.3f} s" + (f"  ({extra})" if extra else ""))
    print(f"  peak memory of the report process: {measured['peak_memory_mib']:,} MiB")


if __name__ == "__main__":
    main()
