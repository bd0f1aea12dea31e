"""Tracking signals that the rows an area has already read prove, so that no query asks them again.

Why: a tracking signal ("the helpdesk records first responses") is a query for one row proving it
before the period's end. On a reference table it is an index probe; through an adapter whose table
is derived (Zendesk's tickets from the status history and the comments) each such query derives the
period's tickets again, about a second each at company scale. The period's extracts have usually
read such a row already: a ticket created in the period proves that tickets are recorded, one
answered in it that first responses are. A signal that the frames prove holds; one they do not is
still asked of the source (a quiet period proves nothing), so the answer is the same either way.

Which frame columns can prove a signal: only those an extract takes unchanged from the table its
rows stand for (`t.first_response_at` from `FROM tickets t`), never a column of a joined table that
happens to share the name. The SQL file's outermost select list says which (`columns_from_main`).
"""

from __future__ import annotations

import re
from functools import lru_cache

import pandas as pd

from crm_kpis.periods import ReportPeriod
from crm_kpis.sources.contract import Signal, _sql_text, load_contract, main_table, outer_select_list, select_items
from crm_kpis.sources.extracts import EXTRACTS, source_table

_BOUND = re.compile(r"\b(?:FROM|JOIN)\s+([A-Za-z_]\w*)(?:\s+(?:AS\s+)?([A-Za-z_]\w*))?", re.IGNORECASE)
_ITEM = re.compile(r"^\s*(?:([A-Za-z_]\w*)\.)?([A-Za-z_]\w*)(?:\s+AS\s+([A-Za-z_]\w*))?\s*$", re.IGNORECASE)
_KEYWORDS = {"on", "where", "left", "right", "inner", "outer", "join", "group", "order", "limit", "union", "cross"}


@lru_cache(maxsize=128)
def columns_from_main(sql_name: str) -> frozenset[str]:
    """The output columns of a SQL file taken unchanged from its main table (the outermost FROM's):
    `alias.column` (or a bare `column` when the outermost query reads one table) whose output name is
    the column's own. Empty when the main table is not a reference table (a CTE of the file)."""
    sql = _sql_text(sql_name)
    main = main_table(sql_name)
    if main not in load_contract().tables:
        return frozenset()
    select_list = outer_select_list(sql)
    outer = sql[sql.rfind(select_list):] if select_list else ""  # the outermost query, from its select list on
    depth0 = [m for m in _BOUND.finditer(outer) if outer[:m.start()].count("(") == outer[:m.start()].count(")")]
    aliases = {(m.group(2) or m.group(1)).lower() for m in depth0
               if m.group(1) == main and (m.group(2) or "").lower() not in _KEYWORDS}
    aliases |= {main.lower()}
    one_table = len(depth0) == 1
    columns = load_contract().tables[main].columns
    out = set()
    for item in select_items(select_list):
        match = _ITEM.match(item)
        if not match:
            continue
        alias, column, name = match.groups()
        if column in columns and (name is None or name == column) and \
                ((alias is not None and alias.lower() in aliases) or (alias is None and one_table)):
            out.add(column)
    return frozenset(out)


def shown_by_frames(signal: Signal, frames: dict[str, pd.DataFrame], period: ReportPeriod) -> bool:
    """Whether a row already read proves `signal`: a row of an extract of the signal's table whose
    column is set (to the signal's value) and whose `before` column lies before the period's end."""
    needed = {c for c in (signal.column, signal.before) if c}
    spec = load_contract().tables[signal.table]
    for name, frame in frames.items():
        extract = EXTRACTS.get(name)
        if extract is None or frame.empty or source_table(extract) != signal.table:
            continue
        if not needed <= columns_from_main(extract.sql) or not needed <= set(frame.columns):
            continue
        proof = pd.Series(True, index=frame.index)
        if signal.column:
            proof &= frame[signal.column].notna()
            if signal.value is not None:
                proof &= frame[signal.column].astype(object) == signal.value
        if signal.before:
            bound = pd.Timestamp(period.end_date if spec.columns[signal.before].type == "date" else period.utc_end)
            proof &= pd.to_datetime(frame[signal.before], errors="coerce") < bound
        if bool(proof.any()):
            return True
    return False
