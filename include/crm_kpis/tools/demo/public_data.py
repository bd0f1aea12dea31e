"""Load two public data sets into the reference CRM schema, to check the sales KPIs on real data.

    python -m crm_kpis.tools.demo.public_data cdnow   ../shared/data/cdnow/CDNOW_master.txt --crm-url URL
    python -m crm_kpis.tools.demo.public_data chinook ../shared/data/chinook/Chinook_Sqlite.sqlite --crm-url URL

Only the tables the sales KPIs read are filled; the others are created empty. The mappings:

CDNOW (real CD purchases, 1997-01 .. 1998-06; Fader, Hardie & Lee):
- each line `customer_id date number_of_cds dollar_value` is one completed order at 00:00 UTC of
  its date, `total_amount` = dollar_value, with one order line of product 1 ("CD", category
  music, tier 1), quantity = number_of_cds, unit_price = dollar_value / number_of_cds;
- a customer is created at its first purchase; segment `smb`, country `US`, no churn date.

Chinook (a sample music store, invoices 2021-01 .. 2025-12):
- Employee → sales_reps (team = the rep's name: every rep has the same title);
- Customer → customers, created at their first invoice; segment `mid_market` when a Company is
  given, else `smb`;
- Track → products (category = genre name, tier = 1 for MPEG/AAC audio, 2 for protected audio,
  3 for video), Invoice → orders (completed; sales_rep_id = the customer's support rep),
  InvoiceLine → order_lines.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from crm_kpis.sources.connections import engine_for
from crm_kpis.tools.demo.loader import load_database


def cdnow_tables(path: Path) -> dict[str, pd.DataFrame]:
    raw = pd.read_csv(path, sep=r"\s+", dtype={"customer_id": int, "date": str, "number_of_cds": int,
                                               "dollar_value": float})
    raw["ordered_at"] = pd.to_datetime(raw["date"], format="%Y%m%d")
    raw.insert(0, "order_id", np.arange(1, len(raw) + 1))
    first = raw.groupby("customer_id")["ordered_at"].min()
    customers = pd.DataFrame({
        "customer_id": first.index, "created_at": first.to_numpy(), "segment": "smb", "country": "US",
        "acquisition_channel": "unknown", "campaign_id": None, "referred_by_customer_id": None, "churned_at": pd.NaT,
    })
    orders = pd.DataFrame({
        "order_id": raw["order_id"], "customer_id": raw["customer_id"], "ordered_at": raw["ordered_at"],
        "status": "completed", "total_amount": raw["dollar_value"], "campaign_id": None, "sales_rep_id": None,
    })
    cds = raw["number_of_cds"].where(raw["number_of_cds"] > 0, 1)
    lines = pd.DataFrame({"order_id": raw["order_id"], "line_no": 1, "product_id": 1, "quantity": raw["number_of_cds"],
                          "unit_price": raw["dollar_value"] / cds})
    products = pd.DataFrame({"product_id": [1], "name": ["CD"], "category": ["music"], "tier": [1], "list_price": [0.0]})
    return {"customers": customers, "orders": orders, "order_lines": lines, "products": products}


MEDIA_TIER = {1: 1, 4: 1, 5: 1, 2: 2, 3: 3}  # MPEG/AAC audio 1, protected AAC 2, video 3


def chinook_tables(path: Path) -> dict[str, pd.DataFrame]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        q = lambda sql: pd.read_sql_query(sql, conn)  # noqa: E731 - tiny local reader
        reps = q("SELECT EmployeeId AS rep_id, FirstName || ' ' || LastName AS name FROM Employee")
        customers = q("""SELECT c.CustomerId AS customer_id, MIN(i.InvoiceDate) AS created_at,
                                CASE WHEN c.Company IS NULL THEN 'smb' ELSE 'mid_market' END AS segment,
                                c.Country AS country, c.SupportRepId AS rep
                         FROM Customer c JOIN Invoice i ON i.CustomerId = c.CustomerId GROUP BY c.CustomerId""")
        tracks = q("""SELECT t.TrackId AS product_id, t.Name AS name, g.Name AS category, t.MediaTypeId AS media,
                             t.UnitPrice AS list_price FROM Track t LEFT JOIN Genre g ON g.GenreId = t.GenreId""")
        invoices = q("SELECT InvoiceId AS order_id, CustomerId AS customer_id, InvoiceDate AS ordered_at, "
                     "Total AS total_amount FROM Invoice")
        lines = q("""SELECT InvoiceId AS order_id,
                            ROW_NUMBER() OVER (PARTITION BY InvoiceId ORDER BY InvoiceLineId) AS line_no,
                            TrackId AS product_id, Quantity AS quantity, UnitPrice AS unit_price FROM InvoiceLine""")
    reps["team"] = reps["name"]
    customers["created_at"] = pd.to_datetime(customers["created_at"])
    customers = customers.assign(acquisition_channel="unknown", campaign_id=None, referred_by_customer_id=None,
                                 churned_at=pd.NaT)
    rep_of = customers.set_index("customer_id")["rep"]
    orders = invoices.assign(ordered_at=pd.to_datetime(invoices["ordered_at"]), status="completed", campaign_id=None,
                             sales_rep_id=invoices["customer_id"].map(rep_of))
    products = tracks.assign(tier=tracks["media"].map(MEDIA_TIER).fillna(1).astype(int),
                             category=tracks["category"].fillna("unknown"))
    return {
        "sales_reps": reps[["rep_id", "name", "team"]],
        "customers": customers[["customer_id", "created_at", "segment", "country", "acquisition_channel",
                                "campaign_id", "referred_by_customer_id", "churned_at"]],
        "products": products[["product_id", "name", "category", "tier", "list_price"]],
        "orders": orders[["order_id", "customer_id", "ordered_at", "status", "total_amount", "campaign_id",
                          "sales_rep_id"]],
        "order_lines": lines,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m crm_kpis.tools.demo.public_data", description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", choices=["cdnow", "chinook"])
    parser.add_argument("path", type=Path, help="CDNOW_master.txt or Chinook_Sqlite.sqlite")
    parser.add_argument("--crm-url", required=True, help="SQLAlchemy URL of the CRM database to (re)create")
    args = parser.parse_args(argv)
    if not args.path.exists():
        print(f"not found: {args.path}", file=sys.stderr)
        return 2
    tables = cdnow_tables(args.path) if args.dataset == "cdnow" else chinook_tables(args.path)
    counts = load_database(engine_for(args.crm_url), "crm", tables)
    print(f"{args.dataset}: " + ", ".join(f"{t} {n:,}" for t, n in counts.items() if n))
    return 0


if __name__ == "__main__":
    sys.exit(main())
