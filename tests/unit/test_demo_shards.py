"""Sharded demo generation (company scale): shards never collide, references stay in their shard,
shared reference tables appear once, daily channel tables are totals."""

from datetime import date

from crm_kpis.tools.demo.bulk import ID_BLOCK, shard_specs, sharded, shards_for
from crm_kpis.tools.demo.generator import DemoSpec, generate

SPEC = DemoSpec(date(2026, 7, 1), date(2026, 10, 1), seed=3, scale=0.3)


def _collect(spec, shards):
    out: dict[str, dict] = {"crm": {}, "helpdesk": {}}
    for _k, data in sharded(spec, shards):
        for database, tables in data.items():
            for table, frame in tables.items():
                out[database].setdefault(table, []).append(frame)
    return out


def test_shard_count_and_specs():
    assert (shards_for(1), shards_for(10), shards_for(10.5), shards_for(210)) == (1, 1, 2, 21)
    specs = shard_specs(SPEC, 3)
    assert [s.scale for s in specs] == [0.3 / 3] * 3 and len({s.seed for s in specs}) == 3
    assert shard_specs(SPEC, 1) == [SPEC]


def test_one_shard_is_the_plain_generator():
    plain = generate(SPEC)
    (_k, data), = list(sharded(SPEC, 1))
    assert all(data["crm"][t].equals(plain["crm"][t]) for t in plain["crm"])


def test_shards_have_disjoint_ids_and_internal_references():
    tables = _collect(SPEC, 3)
    crm = tables["crm"]
    assert len(crm["products"]) == 1 and len(crm["marketing_spend"]) == 1  # once; totals in the last shard
    for table, key in (("customers", "customer_id"), ("orders", "order_id"), ("leads", "lead_id")):
        ids = [i for frame in crm[table] for i in frame[key]]
        assert len(ids) == len(set(ids)), table
        assert {i // ID_BLOCK for i in ids} == {0, 1, 2}, table  # every shard contributed
    for k, (orders, customers) in enumerate(zip(crm["orders"], crm["customers"], strict=True)):
        assert set(orders["customer_id"]) <= set(customers["customer_id"]), f"shard {k}"
    helpdesk = tables["helpdesk"]
    for tickets, messages in zip(helpdesk["tickets"], helpdesk["ticket_messages"], strict=True):
        assert set(messages["ticket_id"]) <= set(tickets["ticket_id"])


def test_daily_channel_tables_are_summed_over_shards():
    spend = _collect(SPEC, 3)["crm"]["marketing_spend"][0]
    assert not spend.duplicated(["spend_date", "channel"]).any()
    assert len(spend) == 92 * 6  # July..September, six channels
