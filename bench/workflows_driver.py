"""The workflow engine benchmark's driver (run by bench/workflows.sh).

Sets up 1,000 leads and 100 active workflows, then measures the engine's matching rate on
100,000 changes and the commit-to-first-effect latency at 500 changes per second.
Changes are written as the CRM writes them: a `record_events` row per change (the leads'
rows are left as they are; conditions read them).
"""
import argparse
import json
import time
import urllib.request

import psycopg

WORKFLOWS = 100
LEADS = 1000
REGIONS = 40


def gql(url, token, query, variables=None):
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(url, body, {
        "content-type": "application/json", "authorization": f"Bearer {token}"})
    answer = json.load(urllib.request.urlopen(request))
    if answer.get("errors"):
        raise SystemExit(f"GraphQL error: {answer['errors']}")
    return answer["data"]


def definitions():
    """100 workflows: 40 on a custom field by region (5% of the throughput changes start a
    run), 1 on qualified CA leads (the latency changes), 29 on status changes whose
    conditions never hold, 20 on any update whose conditions read a related user and never
    hold, 10 on creations (never fired by updates)."""
    high = [{"type": "update_field", "field": "priority", "value": "high"}]
    for region in range(REGIONS):
        yield {"name": f"Region {region}", "entity": "LEAD",
               "trigger": {"type": "record_updated", "fields": ["custom.n"]},
               "conditions": {"all": [
                   {"field": "custom.region", "operator": "equals", "value": f"r{region}"},
                   {"field": "state", "operator": "equals", "value": "CA"}]},
               "actions": high}
    yield {"name": "Qualified in CA", "entity": "LEAD",
           "trigger": {"type": "field_changed", "field": "status", "to": "qualified"},
           "conditions": {"field": "state", "operator": "equals", "value": "CA"},
           "actions": high}
    for i in range(29):
        yield {"name": f"Lost big {i}", "entity": "LEAD",
               "trigger": {"type": "field_changed", "field": "status", "to": "lost"},
               "conditions": {"field": "estimated_value", "operator": "greater_than", "value": 1e12},
               "actions": high}
    for i in range(20):
        yield {"name": f"Owner check {i}", "entity": "LEAD",
               "trigger": {"type": "record_updated"},
               "conditions": {"any": [
                   {"field": "owner.email", "operator": "equals", "value": f"nobody{i}@bench.example"},
                   {"field": "score", "operator": "greater_than", "value": 1000}]},
               "actions": high}
    for i in range(10):
        yield {"name": f"New {i}", "entity": "LEAD", "trigger": {"type": "record_created"},
               "conditions": {"field": "country", "operator": "in", "value": ["XX"]},
               "actions": high}


def wait_consumed(db, first, last):
    """Until the workflows consumer's cursor is past every event of [first, last]."""
    while True:
        pending = db.execute(
            "SELECT count(*) FROM record_events WHERE id BETWEEN %s AND %s AND (seq IS NULL "
            "OR seq > (SELECT position FROM event_consumers WHERE name = 'workflows'))",
            (first, last)).fetchone()[0]
        if pending == 0:
            return
        time.sleep(0.02)


def wait_idle(db):
    while db.execute("SELECT count(*) FROM jobs").fetchone()[0] > 0:
        time.sleep(0.1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--graphql", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--changes", type=int, default=100_000)
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--seconds", type=int, default=20)
    args = parser.parse_args()
    db = psycopg.connect(args.db, autocommit=True)
    user, workspace = db.execute(
        "SELECT id, workspace_id FROM users WHERE email = 'ada@bench.example'").fetchone()
    db.execute(
        "INSERT INTO leads (workspace_id, owner_id, first_name, state, custom_fields) "
        "SELECT %s, %s, 'Lead ' || i, CASE WHEN i %% 2 = 0 THEN 'CA' ELSE 'NY' END, "
        "jsonb_build_object('region', 'r' || (i %% %s), 'n', 0) FROM generate_series(1, %s) i",
        (workspace, user, REGIONS, LEADS))
    db.execute("ANALYZE leads")
    lead_ids = [r[0] for r in db.execute("SELECT id FROM leads ORDER BY id")]
    ca_ids = [r[0] for r in db.execute("SELECT id FROM leads WHERE state = 'CA' ORDER BY id")]
    latency_workflow = None
    for definition in definitions():
        created = gql(args.graphql, args.token,
                      "mutation($i: CreateWorkflowInput!) { createWorkflow(input: $i) { id name } }",
                      {"i": definition})["createWorkflow"]
        gql(args.graphql, args.token, "mutation($id: ID!) { activateWorkflow(id: $id) { id } }",
            {"id": created["id"]})
        if created["name"] == "Qualified in CA":
            latency_workflow = int(created["id"])
    wait_idle(db)

    # 1. Throughput: every change committed at once; 10% change custom.n (half of those on
    # CA leads: 5% start a run), the rest move a status to contacted.
    first = db.execute("SELECT coalesce(max(id), 0) + 1 FROM record_events").fetchone()[0]
    db.execute(
        "INSERT INTO record_events (workspace_id, entity, record_id, action, actor_id, changes) "
        "SELECT %s, 'lead', (%s::bigint[])[1 + ((i / 10) * 7919 + i) %% %s], 'updated', %s, "
        "CASE WHEN i %% 10 = 0 THEN jsonb_build_object('custom_fields', jsonb_build_object("
        "  'old', jsonb_build_object('n', i - 1), 'new', jsonb_build_object('n', i))) "
        "ELSE '{\"status\": {\"old\": \"new\", \"new\": \"contacted\"}}'::jsonb END "
        "FROM generate_series(1, %s) i",
        (workspace, lead_ids, len(lead_ids), user, args.changes))
    started = time.perf_counter()
    last = db.execute("SELECT max(id) FROM record_events").fetchone()[0]
    wait_consumed(db, first, last)
    elapsed = time.perf_counter() - started
    runs = db.execute(
        "SELECT count(*) FROM workflow_runs WHERE (trigger->>'event_id')::bigint BETWEEN %s AND %s",
        (first, last)).fetchone()[0]
    print(f"throughput: {args.changes:,} changes matched against {WORKFLOWS} workflows in "
          f"{elapsed:.2f} s = {args.changes / elapsed:,.0f} events/s; {runs:,} runs started; "
          f"target 5,000 events/s: {'met' if args.changes / elapsed >= 5000 else 'NOT met'}")
    wait_idle(db)

    # 2. Latency at a steady rate: each change its own transaction; every tenth qualifies a
    # CA lead (a run of "Qualified in CA"), the rest move a status to contacted.
    qualify = '{"status": {"old": "new", "new": "qualified"}}'
    contact = '{"status": {"old": "new", "new": "contacted"}}'
    total = args.rate * args.seconds
    first = db.execute("SELECT coalesce(max(id), 0) + 1 FROM record_events").fetchone()[0]
    begin = time.perf_counter()
    behind = 0
    for i in range(total):
        due = begin + i / args.rate
        now = time.perf_counter()
        if due > now:
            time.sleep(due - now)
        elif now - due > 0.05:
            behind += 1
        lead = ca_ids[i % len(ca_ids)]
        db.execute(
            "INSERT INTO record_events (workspace_id, entity, record_id, action, actor_id, changes) "
            "VALUES (%s, 'lead', %s, 'updated', %s, %s::jsonb)",
            (workspace, lead, user, qualify if i % 10 == 0 else contact))
    sent = time.perf_counter() - begin
    last = db.execute("SELECT max(id) FROM record_events").fetchone()[0]
    wait_consumed(db, first, last)
    wait_idle(db)
    row = db.execute(
        "SELECT count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY ms), "
        "percentile_cont(0.99) WITHIN GROUP (ORDER BY ms), max(ms) FROM ("
        "  SELECT extract(epoch FROM s.finished_at - e.occurred_at) * 1000 AS ms "
        "  FROM workflow_runs r JOIN record_events e ON e.id = (r.trigger->>'event_id')::bigint "
        "  JOIN workflow_run_steps s ON s.run_id = r.id AND s.pc = 0 "
        "  WHERE r.workflow_id = %s AND e.id BETWEEN %s AND %s AND s.status = 'completed') t",
        (latency_workflow, first, last)).fetchone()
    count, p50, p99, worst = row
    print(f"latency at {total / sent:,.0f} changes/s ({total:,} changes in {sent:.1f} s, "
          f"{behind} sent over 50 ms late): {count:,} runs, commit to first action's effect "
          f"p50 {p50:.0f} ms, p99 {p99:.0f} ms, max {worst:.0f} ms; target p99 250 ms: "
          f"{'met' if p99 <= 250 else 'NOT met'}")


if __name__ == "__main__":
    main()
