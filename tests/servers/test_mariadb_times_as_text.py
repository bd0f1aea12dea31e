"""MariaDB's times are read as the text the server sends and parsed by the contract's typing.

Why this test: PyMySQL built a Python datetime per value, a third of the helpdesk reads' time at
company scale; the pipeline now takes DATE, DATETIME and TIMESTAMP values as text for its own reads
(crm_kpis.sources.reading.MYSQL_TIMES_AS_TEXT) and parses each column in C. What must not change:
the instants (fractions of a second included), a zero date still counted as unreadable rather than
read as some time, a connection's time zone still applied to naive values, and the pooled
connection handed back with PyMySQL's own conversions for everyone else.
"""

from __future__ import annotations

from datetime import date, datetime

import pandas as pd
from sqlalchemy import create_engine, text

from crm_kpis.sources.reading import read_rows
from crm_kpis.sources.typed_read import read_timestamps


def test_times_arrive_as_text_and_parse_to_the_same_instants(mariadb):
    engine = create_engine(mariadb.create("times_as_text"))
    with engine.begin() as conn:
        conn.execute(text("SET SESSION sql_mode = ''"))  # lets the zero date in, as an old MySQL holds it
        conn.execute(text("CREATE TABLE t (id INT PRIMARY KEY, at DATETIME(6), day DATE, stamped TIMESTAMP NULL)"))
        conn.execute(text("INSERT INTO t VALUES (1, '2026-10-15 12:34:56.123456', '2026-10-15', '2026-10-15 23:00:00'),"
                          " (2, '0000-00-00 00:00:00', '2026-10-31', NULL), (3, NULL, NULL, NULL)"))
    frame = read_rows(engine, "SELECT id, at, day, stamped FROM t ORDER BY id", {}, "t")
    assert frame["at"].tolist()[:2] == ["2026-10-15 12:34:56.123456", "0000-00-00 00:00:00.000000"]  # the server's text
    assert frame["day"].tolist()[:2] == ["2026-10-15", "2026-10-31"]

    at, unreadable = read_timestamps(frame["at"], "UTC", is_date=False)
    assert at[0] == pd.Timestamp("2026-10-15 12:34:56.123456")
    assert unreadable.tolist() == [False, True, False]  # the zero date counted, the NULL only missing
    assert pd.isna(at[1]) and pd.isna(at[2])
    day, unreadable = read_timestamps(frame["day"], "Europe/Berlin", is_date=True)  # dates are never shifted
    assert day.tolist()[:2] == [pd.Timestamp("2026-10-15"), pd.Timestamp("2026-10-31")] and not unreadable.any()
    # a connection whose naive times are Berlin's: 23:00 on 15 October (CEST, UTC+2) is 21:00 UTC
    stamped, _ = read_timestamps(frame["stamped"], "Europe/Berlin", is_date=False)
    assert stamped[0] == pd.Timestamp("2026-10-15 21:00:00")

    # the pooled connection is handed back with PyMySQL's conversions: other reads get datetimes
    with engine.connect() as conn:
        row = conn.execute(text("SELECT at, day FROM t WHERE id = 1")).one()
    assert row == (datetime(2026, 10, 15, 12, 34, 56, 123456), date(2026, 10, 15))
    engine.dispose()
