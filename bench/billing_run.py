"""Benchmark of the invoice-generation step of the daily run.

    python bench/billing_run.py                       # 100,000 services, 30,000 clients
    python bench/billing_run.py --services 20000 --clients 6000
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/bench python bench/billing_run.py

It builds a synthetic hosting business with bulk inserts (on PostgreSQL when
DATABASE_URL is set, else in a SQLite file under /tmp), every service due within the
invoicing window, then times generate_due_invoices() over all of it in a fresh
process (so the peak memory is the run's own). It then measures the floor: how long
the same database takes to bulk-insert the same invoice and item rows into an empty
copy of those tables, chunk by chunk, one transaction per chunk, and prints the ratio.

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

AS_OF = date(2026, 3, 1)
SQLITE_FILE = "/tmp/tallyhost-bench.db"
SEED_BATCH = 10_000


def make_app(database_url: str, chunk_size: int):
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    from config import Config

    class BenchConfig(Config):
        SQLALCHEMY_DATABASE_URI = database_url
        AUTOMATION_CHUNK_SIZE = chunk_size
        CELERY = {**Config.CELERY, "task_always_eager": True}

    from app import create_app

    return create_app(BenchConfig)


# The synthetic business

def seed(services: int, clients: int, with_email: bool) -> dict:
    """Clients in four tax situations, ten products, services on three cycles with
    next due dates spread over the next 14 days (all inside the invoicing window)."""
    from sqlalchemy import insert

    from app.extensions import db
    from app.models.billing import TaxRule
    from app.models.catalog import Currency, Product, ProductGroup
    from app.models.clients import Client
    from app.models.orders import Service
    from app.models.system import EmailTemplate

    rng = random.Random(20260301)
    now = datetime(2026, 2, 1, 12, 0)
    _drop_floor_tables()
    db.drop_all()
    db.create_all()
    session = db.session
    session.add(Currency(id=1, code="USD", prefix="$", suffix="", rate=Decimal("1"), is_default=True))
    session.add(ProductGroup(id=1, name="Hosting", slug="hosting"))
    session.add_all([TaxRule(level=1, name="Sales Tax", country="US", state="TX", rate=Decimal("8.25")),
                     TaxRule(level=1, name="VAT", country="GB", rate=Decimal("20"))])
    if with_email:
        session.add(EmailTemplate(name="Invoice Created", type="invoice",
                                  subject="Customer Invoice {{ invoice_num }}",
                                  body_html="<p>Dear {{ client_name }},</p><p>Invoice {{ invoice_num }} "
                                            "of {{ invoice_total }} is due on {{ invoice_date_due }}.</p>",
                                  body_text="Dear {{ client_name }},\nInvoice {{ invoice_num }} of "
                                            "{{ invoice_total }} is due on {{ invoice_date_due }}."))
    session.flush()
    session.execute(insert(Product.__table__), [
        {"id": n, "group_id": 1, "type": "hosting", "name": f"Hosting Plan {n}", "slug": f"plan-{n}",
         "payment_type": "recurring", "stock_control": False, "stock_quantity": 0, "hidden": False,
         "retired": False, "taxed": True, "require_domain": True, "prorata_billing": False,
         "module": "manual", "auto_setup": "payment", "sort_order": n, "created_at": now, "updated_at": now}
        for n in range(1, 11)])
    session.commit()

    situations = [("US", "NY", False), ("US", "TX", False), ("GB", None, False), ("DE", None, True)]
    for start in range(1, clients + 1, SEED_BATCH):
        rows = []
        for n in range(start, min(start + SEED_BATCH, clients + 1)):
            country, state, exempt = situations[n % 4]
            rows.append({
                "id": n, "first_name": "Client", "last_name": f"Number {n}", "company_name": None,
                "email": f"client{n}@bench.test", "country": country, "state": state,
                "currency_id": 1, "status": "Active", "language": "en",
                "credit_balance": Decimal("5.00") if n % 100 == 0 else Decimal("0.00"),
                "late_fee_exempt": False, "tax_exempt": exempt, "overdue_notices_disabled": False,
                "auto_suspend_exempt": False, "separate_invoices": False, "auto_charge_disabled": False,
                "marketing_opt_in": False, "email_verified": True, "created_at": now, "updated_at": now})
        session.execute(insert(Client.__table__), rows)
        session.commit()

    cycles = ["Monthly"] * 8 + ["Quarterly", "Annually"]
    prices = {"Monthly": "9.99", "Quarterly": "27.00", "Annually": "99.00"}
    for start in range(1, services + 1, SEED_BATCH):
        rows = []
        for n in range(start, min(start + SEED_BATCH, services + 1)):
            cycle = cycles[n % 10]
            due = AS_OF + timedelta(days=rng.randrange(15))
            rows.append({
                "id": n, "client_id": (n - 1) % clients + 1, "product_id": n % 10 + 1,
                "status": "Active", "domain": f"site{n}.bench.test", "billing_cycle": cycle,
                "quantity": 1, "first_payment_amount": Decimal(prices[cycle]),
                "recurring_amount": Decimal(prices[cycle]), "registration_date": due - timedelta(days=365),
                "next_due_date": due, "next_invoice_date": due, "override_auto_suspend": False,
                "override_auto_terminate": False, "created_at": now, "updated_at": now})
        session.execute(insert(Service.__table__), rows)
        session.commit()
    if db.engine.dialect.name == "postgresql":
        # Explicit ids were inserted: move the sequences past them, then fresh statistics.
        from sqlalchemy import text
        for table in ("clients", "services", "products", "currencies", "product_groups"):
            session.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                 f"(SELECT max(id) FROM {table}))"))
        session.commit()
    _analyze()
    return {"services": services, "clients": clients}


def _analyze() -> None:
    from sqlalchemy import text

    from app.extensions import db

    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("ANALYZE"))


# The measured run (in a fresh process)

def generation_phase(args) -> None:
    app = make_app(args.database_url, args.chunk_size)
    with app.app_context():
        from app.billing.generation import generate_due_invoices

        profiler = None
        if args.profile:
            import cProfile
            profiler = cProfile.Profile()
            profiler.enable()
        started, cpu_started = time.perf_counter(), time.process_time()
        counts = generate_due_invoices(AS_OF)
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
        if profiler:
            import pstats
            profiler.disable()
            pstats.Stats(profiler, stream=sys.stderr).sort_stats(os.environ.get("BENCH_PROFILE_SORT", "cumulative")).print_stats(35)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu_seconds, "peak_mib": peak_kib / 1024,
                      "invoices": counts["invoices"], "items": counts["items"],
                      "emails": counts["emails"], "credit_applied": counts["credit_applied"],
                      "errors": len(counts["errors"]),
                      "amounts": {code: str(amount) for code, amount in counts["amounts"].items()}}))


# The floor: the same rows bulk-inserted into empty copies of the tables

def _drop_floor_tables() -> None:
    from sqlalchemy import text

    from app.extensions import db

    for name in ("floor_invoice_items", "floor_invoices"):
        db.session.execute(text(f"DROP TABLE IF EXISTS {name}"))
    db.session.commit()


def _copy_tables() -> tuple:
    from sqlalchemy import MetaData, Table, text

    from app.extensions import db

    session = db.session
    dialect = db.engine.dialect.name
    _drop_floor_tables()
    if dialect == "postgresql":
        # Indexes, unique and check constraints as the originals; no defaults (the ids
        # are given), so the copies do not hang on the originals' sequences.
        session.execute(text("CREATE TABLE floor_invoices (LIKE invoices INCLUDING ALL EXCLUDING DEFAULTS)"))
        session.execute(text("CREATE TABLE floor_invoice_items "
                             "(LIKE invoice_items INCLUDING ALL EXCLUDING DEFAULTS)"))
        for statement in (
            # Item ids come from a sequence of the copy's own, as the original's do.
            "ALTER TABLE floor_invoice_items ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY",
            "ALTER TABLE floor_invoices ADD FOREIGN KEY (client_id) REFERENCES clients (id)",
            "ALTER TABLE floor_invoices ADD FOREIGN KEY (currency_id) REFERENCES currencies (id)",
            "ALTER TABLE floor_invoice_items ADD FOREIGN KEY (invoice_id) REFERENCES floor_invoices (id)",
            "ALTER TABLE floor_invoice_items ADD FOREIGN KEY (client_id) REFERENCES clients (id)",
        ):
            session.execute(text(statement))
    else:
        for source in ("invoices", "invoice_items"):
            rows = session.execute(text("SELECT type, name, sql FROM sqlite_master WHERE tbl_name = :t "
                                        "AND sql IS NOT NULL ORDER BY type DESC"), {"t": source}).all()
            for kind, name, sql in rows:
                sql = (sql.replace(f"TABLE {source} (", f"TABLE floor_{source} (", 1)
                       .replace(f" ON {source} ", f" ON floor_{source} ")
                       .replace("REFERENCES invoices ", "REFERENCES floor_invoices "))
                if kind == "index":
                    sql = sql.replace(f"INDEX {name} ", f"INDEX floor_{name} ", 1)
                session.execute(text(sql))
    session.commit()
    metadata = MetaData()
    return (Table("floor_invoices", metadata, autoload_with=db.engine),
            Table("floor_invoice_items", metadata, autoload_with=db.engine))


def floor_phase(chunk_size: int) -> dict:
    """Seconds to bulk-insert the generated invoices and items again, into empty copies
    of the tables, one transaction per chunk of clients (as the generation did)."""
    from collections import defaultdict

    from sqlalchemy import insert, select

    from app.extensions import db
    from app.models.billing import Invoice, InvoiceItem

    invoices_table, items_table = _copy_tables()
    invoice_columns = [c for c in Invoice.__table__.c if c.name != "id"]
    item_columns = [c for c in InvoiceItem.__table__.c if c.name != "id"]
    by_chunk: dict[int, list] = defaultdict(list)
    for row in db.session.execute(select(Invoice.__table__).order_by(Invoice.id)).mappings():
        by_chunk[(row["client_id"] - 1) // chunk_size].append(row)
    items_of: dict[int, list] = defaultdict(list)
    for row in db.session.execute(select(InvoiceItem.__table__)).mappings():
        items_of[row["invoice_id"]].append({c.name: row[c.name] for c in item_columns})
    db.session.commit()
    prepared = [([{c.name: row[c.name] for c in invoice_columns} for row in rows],
                 [items_of[row["id"]] for row in rows]) for _, rows in sorted(by_chunk.items())]
    invoices = sum(len(rows) for rows, _ in prepared)
    items = sum(len(lines) for _, groups in prepared for lines in groups)

    # The fastest plain bulk insert: ids known beforehand, no RETURNING, executemany.
    started, cpu_started = time.perf_counter(), time.process_time()
    next_id = 1
    for invoice_rows, item_groups in prepared:
        with db.engine.begin() as connection:
            ids = list(range(next_id, next_id + len(invoice_rows)))
            next_id += len(invoice_rows)
            connection.execute(insert(invoices_table),
                               [{**row, "id": row_id} for row, row_id in zip(invoice_rows, ids)])
            item_rows = [{**line, "invoice_id": invoice_id}
                         for invoice_id, lines in zip(ids, item_groups) for line in lines]
            connection.execute(insert(items_table), item_rows)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    return {"seconds": seconds, "cpu_seconds": cpu_seconds, "invoices": invoices, "items": items}


# Driver

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--services", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=30_000)
    parser.add_argument("--chunk-size", type=int, default=1000, help="clients per chunk transaction")
    parser.add_argument("--no-email", action="store_true", help="no 'Invoice Created' template")
    parser.add_argument("--profile", action="store_true", help="cProfile the generation (stderr)")
    parser.add_argument("--force", action="store_true", help="allow a PostgreSQL database without 'bench' in its name")
    parser.add_argument("--phase", choices=["all", "generate"], default="all", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase == "generate":
        generation_phase(args)
        return

    url = os.environ.get("DATABASE_URL") or f"sqlite:///{SQLITE_FILE}"
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql") and "bench" not in url.rsplit("/", 1)[-1] and not args.force:
        sys.exit(f"refusing to drop the tables of {url}: use a database named *bench* or --force")
    if url.startswith("sqlite") and os.path.exists(SQLITE_FILE):
        os.remove(SQLITE_FILE)
    if args.services < 1 or args.clients < 1:
        sys.exit("--services and --clients must be at least 1")

    app = make_app(url, args.chunk_size)
    with app.app_context():
        from app.extensions import db

        print(f"database: {db.engine.dialect.name} ({url.split('@')[-1]})")
        started = time.perf_counter()
        seed(args.services, args.clients, not args.no_email)
        print(f"seeded {args.services:,} services of {args.clients:,} clients "
              f"in {time.perf_counter() - started:.1f} s")
        db.session.remove()
        db.engine.dispose()

    command = [sys.executable, __file__, "--phase", "generate", "--database-url", url,
               "--chunk-size", str(args.chunk_size)] + (["--profile"] if args.profile else [])
    finished = subprocess.run(command, check=True, capture_output=True, text=True)
    if args.profile:
        print(finished.stderr, file=sys.stderr)
    run = json.loads(finished.stdout.strip().splitlines()[-1])

    with app.app_context():
        floor = floor_phase(args.chunk_size)

    print(f"generation: {run['invoices']:,} invoices, {run['items']:,} items, {run['emails']:,} emails, "
          f"{run['credit_applied']} paid with credit, {run['errors']} errors, totals {run['amounts']}")
    print(f"  time                {run['seconds']:.2f} s (CPU time of this process {run['cpu_seconds']:.2f} s; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    print(f"  services per second {run['items'] / run['seconds']:,.0f}")
    print(f"  peak memory         {run['peak_mib']:.0f} MiB (whole process: interpreter, app and run)")
    print(f"floor (bulk insert of the same {floor['invoices']:,} invoices and {floor['items']:,} items "
          f"into empty copies): {floor['seconds']:.2f} s (CPU time {floor['cpu_seconds']:.2f} s; "
          f"load average {os.getloadavg()[0]:.1f})")
    print(f"  ratio generation / floor: {run['seconds'] / floor['seconds']:.2f}x elapsed, "
          f"{run['cpu_seconds'] / floor['cpu_seconds']:.2f}x CPU time of this process"
          + (" (SQLite: all the work)" if url.startswith("sqlite") else " (the server's work not included)"))


if __name__ == "__main__":
    main()
