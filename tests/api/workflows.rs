//! Workflow automation end to end: definitions through GraphQL, runs started by the change
//! stream and executed by the job workers, mail received by a real SMTP server, webhooks by
//! a real HTTP server checking the signature.

use std::time::Duration;

use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::harness::{error_code, error_field, TestApp};
use crate::sinks::{SmtpSink, WebhookSink};

const CREATE: &str = "mutation($i: CreateWorkflowInput!) { createWorkflow(input: $i) { id version status webhookSecret } }";
const RUNS: &str = "query($id: ID!) { workflowRuns(workflowId: $id, first: 50) { totalCount nodes { id status recordId error depth steps { path action status params result error attempt } } } }";

pub(crate) async fn spawn(smtp: Option<&SmtpSink>) -> TestApp {
    let url = smtp.map(SmtpSink::url);
    TestApp::spawn_with(move |c| {
        c.mail.smtp_url = url;
        c.workflows.allow_private_webhooks = true;
        c.jobs.poll = Duration::from_millis(100);
        c.jobs.backoff.base = Duration::from_millis(50);
        c.jobs.backoff.max = Duration::from_millis(200);
    })
    .await
}

pub(crate) fn workers(app: &TestApp) -> CancellationToken {
    let shutdown = CancellationToken::new();
    mycrm::workers::spawn(app.app.clone(), app.database_url.clone(), shutdown.clone());
    shutdown
}

async fn create(app: &TestApp, token: &str, input: Value) -> Value {
    app.gql(Some(token), CREATE, json!({ "i": input })).await
}

pub(crate) async fn create_active(app: &TestApp, token: &str, input: Value) -> String {
    let answer = create(app, token, input).await;
    assert!(answer["errors"].is_null(), "{answer}");
    let id = answer["data"]["createWorkflow"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let active = app
        .gql(
            Some(token),
            "mutation($id: ID!) { activateWorkflow(id: $id) { status } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        active["data"]["activateWorkflow"]["status"], "ACTIVE",
        "{active}"
    );
    id
}

/// Waits until the workflow has `count` runs and all have ended; returns them.
pub(crate) async fn finished_runs(
    app: &TestApp,
    token: &str,
    workflow: &str,
    count: usize,
) -> Vec<Value> {
    for _ in 0..200 {
        let answer = app.gql(Some(token), RUNS, json!({ "id": workflow })).await;
        let runs = answer["data"]["workflowRuns"]["nodes"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let ended = runs.iter().all(|r| {
            ["COMPLETED", "FAILED", "CANCELLED"].contains(&r["status"].as_str().unwrap_or(""))
        });
        if runs.len() >= count && ended {
            return runs;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the runs of workflow {workflow} did not finish");
}

#[tokio::test]
async fn auto_assign_ca_leads_assigns_welcomes_and_plans_a_follow_up() {
    let smtp = SmtpSink::start().await;
    let app = spawn(Some(&smtp)).await;
    let admin = app.admin_token().await;
    app.user_with_role("dana@example.com", "MEMBER").await;
    let workflow = create_active(
        &app,
        &admin,
        json!({
            "name": "Auto-assign CA leads",
            "entity": "LEAD",
            "trigger": {"type": "record_created"},
            "conditions": {"all": [{"field": "state", "operator": "equals", "value": "CA"}]},
            "actions": [
                {"type": "assign_record", "user": "dana@example.com"},
                {"type": "send_email", "to": "{{record.email}}",
                 "subject": "Welcome, {{record.first_name | upper}}",
                 "body": "Hello {{record.first_name}}, {{record.assigned_to.name | default:\"our team\"}} will call you."},
                {"type": "create_task", "title": "Follow up with {{record.first_name}}", "due_in": "2d", "priority": "high"}
            ]
        }),
    )
    .await;
    let stop = workers(&app);
    let ca = app
        .create_lead(
            &admin,
            json!({"firstName": "Ada", "email": "ada@example.com", "state": "CA"}),
        )
        .await;
    app.create_lead(
        &admin,
        json!({"firstName": "Bob", "email": "bob@example.com", "state": "NY"}),
    )
    .await;

    let runs = finished_runs(&app, &admin, &workflow, 1).await;
    assert_eq!(runs.len(), 1, "only the CA lead matches: {runs:?}");
    let run = &runs[0];
    assert_eq!(run["status"], "COMPLETED", "{run}");
    assert_eq!(run["recordId"], ca);
    let steps = run["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 3, "{run}");
    assert!(steps.iter().all(|s| s["status"] == "completed"), "{run}");
    assert_eq!(steps[1]["params"]["subject"], "Welcome, ADA");

    let lead = app
        .gql(
            Some(&admin),
            "query($id: ID!) { lead(id: $id) { assignedTo { email } } }",
            json!({ "id": ca }),
        )
        .await;
    assert_eq!(
        lead["data"]["lead"]["assignedTo"]["email"],
        "dana@example.com"
    );

    // The workflow's welcome (Dana's assignment notice is mailed to her too).
    let mail: Vec<_> = smtp
        .received()
        .into_iter()
        .filter(|m| m.to != ["dana@example.com"])
        .collect();
    assert_eq!(mail.len(), 1, "{mail:?}");
    assert_eq!(mail[0].to, ["ada@example.com"]);
    assert!(
        mail[0].data.contains("Subject: Welcome, ADA"),
        "{}",
        mail[0].data
    );
    assert!(
        mail[0].data.contains("Test User will call you."),
        "{}",
        mail[0].data
    );

    let tasks = app
        .rows(&format!(
            "SELECT title, priority::text, lead_id, assigned_to_id IS NOT NULL AS assigned, \
               round(extract(epoch FROM due_at - now()) / 3600) AS hours \
             FROM tasks WHERE lead_id = {ca}"
        ))
        .await;
    assert_eq!(tasks.as_array().unwrap().len(), 1, "{tasks}");
    assert_eq!(tasks[0]["title"], "Follow up with Ada");
    assert_eq!(tasks[0]["priority"], "high");
    assert_eq!(tasks[0]["assigned"], true);
    assert_eq!(tasks[0]["hours"], 48.0);
    // The workflow's changes are in the change stream, marked with its run.
    let marked = app
        .rows(&format!(
            "SELECT action FROM record_events WHERE record_id = {ca} AND entity = 'lead' \
               AND caused_by_run IS NOT NULL"
        ))
        .await;
    assert_eq!(marked, json!([{ "action": "updated" }]));
    stop.cancel();
}

#[tokio::test]
async fn definitions_are_checked_on_save_naming_the_path() {
    let app = spawn(None).await;
    let admin = app.admin_token().await;
    let (_, member) = app.user_with_role("mia@example.com", "MEMBER").await;
    let base = json!({
        "name": "Check",
        "entity": "LEAD",
        "trigger": {"type": "record_updated", "fields": ["status"]},
        "actions": [{"type": "update_field", "field": "priority", "value": "high"}]
    });
    let with = |key: &str, value: Value| {
        let mut input = base.clone();
        input[key] = value;
        input
    };
    let cases = [
        (with("trigger", json!({"type": "record_made"})), "trigger"),
        (
            with(
                "trigger",
                json!({"type": "record_updated", "fields": ["colour"]}),
            ),
            "trigger.fields[0]",
        ),
        (
            with("trigger", json!({"type": "score_changed", "above": 101})),
            "trigger.above",
        ),
        (
            with(
                "conditions",
                json!({"all": [{"field": "state", "operator": "equal", "value": "CA"}]}),
            ),
            "conditions.all[0].operator",
        ),
        (
            with(
                "conditions",
                json!({"any": [{"field": "company.colour", "operator": "equals", "value": 1}]}),
            ),
            "conditions.any[0].field",
        ),
        (
            with(
                "conditions",
                json!({"field": "score", "operator": "between", "value": 5}),
            ),
            "conditions.value",
        ),
        (with("actions", json!([{"type": "send_fax"}])), "actions[0]"),
        (
            with(
                "actions",
                json!([{"type": "update_field", "field": "colour", "value": "x"}]),
            ),
            "actions[0].field",
        ),
        (
            with(
                "actions",
                json!([{"type": "send_email", "to": "{{record.mail}}", "subject": "s", "body": "b"}]),
            ),
            "actions[0].to",
        ),
        (
            with(
                "actions",
                json!([{"type": "send_email", "to": "x@example.com", "subject": "{{record.email | shout}}", "body": "b"}]),
            ),
            "actions[0].subject",
        ),
        (
            with(
                "actions",
                json!([{"type": "assign_record", "user": "nobody@example.com"}]),
            ),
            "actions[0].user",
        ),
        (
            with("actions", json!([{"type": "wait", "duration": "soon"}])),
            "actions[0].duration",
        ),
        (
            with("actions", json!([{"type": "wait", "until": "email"}])),
            "actions[0].until",
        ),
        (
            with(
                "actions",
                json!([{"type": "call_webhook", "url": "ftp://example.com"}]),
            ),
            "actions[0].url",
        ),
        (
            with(
                "actions",
                json!([{"type": "branch", "conditions": {"field": "state", "operator": "is_empty"},
                                  "then": [{"type": "create_task", "title": "t", "priority": "whenever"}]}]),
            ),
            "actions[0].then[0].priority",
        ),
        (with("actions", json!([])), "actions"),
    ];
    for (input, field) in cases {
        let answer = create(&app, &admin, input.clone()).await;
        assert_eq!(error_code(&answer), "BAD_USER_INPUT", "{input}: {answer}");
        assert_eq!(error_field(&answer), field, "{input}: {answer}");
    }
    assert_eq!(app.count("workflows").await, 0);

    let answer = create(&app, &member, base.clone()).await;
    assert_eq!(error_code(&answer), "FORBIDDEN", "{answer}");
    let answer = app
        .gql(Some(&member), "{ workflows { totalCount } }", json!({}))
        .await;
    assert_eq!(error_code(&answer), "FORBIDDEN", "{answer}");
    assert_eq!(app.count("workflows").await, 0);

    // Definitions written inline as GraphQL object literals are JSON too.
    let inline = app
        .gql(
            Some(&admin),
            "mutation { createWorkflow(input: {name: \"Inline\", entity: TASK, trigger: {type: \"record_created\"}, \
             actions: [{type: \"update_field\", field: \"priority\", value: \"high\"}]}) { status version } }",
            json!({}),
        )
        .await;
    assert_eq!(
        inline["data"]["createWorkflow"]["status"], "DRAFT",
        "{inline}"
    );

    // Another workspace sees nothing of this one's workflows.
    let created = create(&app, &admin, base).await;
    let id = created["data"]["createWorkflow"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let other = app
        .other_workspace("Other", "olga@other.example", "other-password-1")
        .await;
    let other = other["accessToken"].as_str().unwrap().to_string();
    let answer = app
        .gql(
            Some(&other),
            "query($id: ID!) { workflow(id: $id) { id } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(error_code(&answer), "NOT_FOUND", "{answer}");
}

#[tokio::test]
async fn edits_make_versions_and_runs_keep_theirs() {
    let app = spawn(None).await;
    let admin = app.admin_token().await;
    let id = create_active(
        &app,
        &admin,
        json!({"name": "V", "entity": "LEAD", "trigger": {"type": "manual"},
               "actions": [{"type": "update_field", "field": "priority", "value": "high"}]}),
    )
    .await;
    let lead = app.create_lead(&admin, json!({"firstName": "Ada"})).await;
    let run = app
        .gql(
            Some(&admin),
            "mutation($id: ID!, $r: ID!) { executeWorkflow(id: $id, recordId: $r) { id version status } }",
            json!({ "id": id, "r": lead }),
        )
        .await;
    assert_eq!(run["data"]["executeWorkflow"]["version"], 1, "{run}");
    let renamed = app
        .gql(
            Some(&admin),
            "mutation($id: ID!) { updateWorkflow(id: $id, input: {name: \"Renamed\"}) { name version } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        renamed["data"]["updateWorkflow"]["version"], 1,
        "a rename is no new version: {renamed}"
    );
    let edited = app
        .gql(
            Some(&admin),
            "mutation($id: ID!, $a: JSON!) { updateWorkflow(id: $id, input: {actions: $a}) { version actions } }",
            json!({ "id": id, "a": [{"type": "update_field", "field": "priority", "value": "low"}] }),
        )
        .await;
    assert_eq!(edited["data"]["updateWorkflow"]["version"], 2, "{edited}");

    // The run started on version 1 does what version 1 says.
    let stop = workers(&app);
    let runs = finished_runs(&app, &admin, &id, 1).await;
    assert_eq!(runs[0]["status"], "COMPLETED", "{runs:?}");
    assert_eq!(runs[0]["steps"][0]["params"]["value"], "high");
    let priority = app
        .rows(&format!(
            "SELECT priority::text FROM leads WHERE id = {lead}"
        ))
        .await;
    assert_eq!(priority, json!([{ "priority": "high" }]));
    stop.cancel();
}

#[tokio::test]
async fn webhooks_are_signed_and_a_failing_target_fails_the_run_after_retries() {
    let hook = WebhookSink::start().await;
    let app = spawn(None).await;
    let admin = app.admin_token().await;
    let answer = create(
        &app,
        &admin,
        json!({"name": "Hook", "entity": "LEAD", "trigger": {"type": "field_changed", "field": "status", "to": "qualified"},
               "actions": [{"type": "call_webhook", "url": hook.url("/crm?source=mycrm"),
                            "headers": {"Authorization": "Bearer target-token"},
                            "body": {"lead": "{{record.email}}", "was": "{{trigger.changes.status.old}}"}}]}),
    )
    .await;
    let id = answer["data"]["createWorkflow"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let secret = answer["data"]["createWorkflow"]["webhookSecret"]
        .as_str()
        .unwrap()
        .to_string();
    app.gql(
        Some(&admin),
        "mutation($id: ID!) { activateWorkflow(id: $id) { id } }",
        json!({ "id": id }),
    )
    .await;
    let stop = workers(&app);
    let lead = app
        .create_lead(
            &admin,
            json!({"firstName": "Ada", "email": "ada@example.com"}),
        )
        .await;
    let qualify =
        "mutation($id: ID!) { updateLead(id: $id, input: {status: QUALIFIED}) { lead { id } } }";
    app.gql(Some(&admin), qualify, json!({ "id": lead })).await;

    let runs = finished_runs(&app, &admin, &id, 1).await;
    assert_eq!(runs[0]["status"], "COMPLETED", "{runs:?}");
    let calls = hook.received();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(call.method, "POST");
    assert_eq!(call.headers["authorization"], "Bearer target-token");
    let body: Value = serde_json::from_str(&call.body).unwrap();
    assert_eq!(body, json!({"lead": "ada@example.com", "was": "new"}));
    let timestamp: i64 = call.headers["x-mycrm-timestamp"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        call.headers["x-mycrm-signature"].to_str().unwrap(),
        mycrm::workflows::webhook::signature(&secret, timestamp, &call.body)
    );

    // A target that keeps failing: retried with backoff, then the run fails with the error.
    hook.answer(500);
    let other = app
        .create_lead(
            &admin,
            json!({"firstName": "Bo", "email": "bo@example.com"}),
        )
        .await;
    app.gql(Some(&admin), qualify, json!({ "id": other })).await;
    let runs = finished_runs(&app, &admin, &id, 2).await;
    let failed = runs.iter().find(|r| r["recordId"] == other).unwrap();
    assert_eq!(failed["status"], "FAILED", "{failed}");
    assert!(
        failed["error"].as_str().unwrap().contains("HTTP 500"),
        "{failed}"
    );
    assert_eq!(failed["steps"][0]["attempt"], 4, "{failed}");
    assert_eq!(hook.received().len(), 1 + 4);
    stop.cancel();
}

#[tokio::test]
async fn webhooks_to_private_addresses_are_refused_by_default() {
    let hook = WebhookSink::start().await;
    let app = TestApp::spawn_with(|c| {
        c.jobs.backoff.base = Duration::from_millis(20);
        c.jobs.backoff.max = Duration::from_millis(50);
    })
    .await;
    let admin = app.admin_token().await;
    let id = create_active(
        &app,
        &admin,
        json!({"name": "Internal", "entity": "LEAD", "trigger": {"type": "record_created"},
               "actions": [{"type": "call_webhook", "url": hook.url("/")}]}),
    )
    .await;
    let stop = workers(&app);
    app.create_lead(&admin, json!({"firstName": "Ada"})).await;
    let runs = finished_runs(&app, &admin, &id, 1).await;
    assert_eq!(runs[0]["status"], "FAILED");
    assert!(
        runs[0]["error"]
            .as_str()
            .unwrap()
            .contains("public addresses only"),
        "{runs:?}"
    );
    assert!(hook.received().is_empty());
    stop.cancel();
}

#[tokio::test]
async fn branches_templates_and_the_loop_guard() {
    let app = spawn(None).await;
    let admin = app.admin_token().await;
    // Every update bumps a counter in a custom field: its own change triggers it again,
    // until the loop guard stops the chain.
    let looping = create_active(
        &app,
        &admin,
        json!({"name": "Loop", "entity": "LEAD", "trigger": {"type": "record_updated", "fields": ["custom.hops"]},
               "actions": [{"type": "branch",
                            "conditions": {"field": "custom.hops", "operator": "less_than", "value": 1000000000},
                            "then": [{"type": "update_field", "field": "custom.hops", "value": "{{record.custom.hops}}1"}],
                            "else": [{"type": "update_field", "field": "priority", "value": "low"}]}]}),
    )
    .await;
    let stop = workers(&app);
    let lead = app
        .create_lead(
            &admin,
            json!({"firstName": "Ada", "customFields": {"hops": 1}}),
        )
        .await;
    app.gql(
        Some(&admin),
        "mutation($id: ID!) { updateLead(id: $id, input: {customFields: {hops: 2}}) { lead { id } } }",
        json!({ "id": lead }),
    )
    .await;
    // Depths 0..=3 run; the fifth is stopped by the guard (default depth 3).
    let runs = finished_runs(&app, &admin, &looping, 5).await;
    let mut depths: Vec<(i64, String)> = runs
        .iter()
        .map(|r| {
            (
                r["depth"].as_i64().unwrap(),
                r["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    depths.sort();
    assert_eq!(
        depths,
        [
            (0, "COMPLETED".into()),
            (1, "COMPLETED".into()),
            (2, "COMPLETED".into()),
            (3, "COMPLETED".into()),
            (4, "CANCELLED".into())
        ],
        "{runs:?}"
    );
    let stopped = runs.iter().find(|r| r["depth"] == 4).unwrap();
    assert!(
        stopped["error"].as_str().unwrap().starts_with("loop guard"),
        "{stopped}"
    );
    // Each ran its branch test then its `then` arm.
    let first = runs.iter().find(|r| r["depth"] == 0).unwrap();
    assert_eq!(first["steps"][0]["action"], "branch");
    assert_eq!(first["steps"][0]["result"]["passed"], true);
    assert_eq!(first["steps"][1]["path"], "actions[0].then[0]");
    let hops = app
        .rows(&format!(
            "SELECT custom_fields->>'hops' AS hops FROM leads WHERE id = {lead}"
        ))
        .await;
    assert_eq!(hops, json!([{ "hops": "21111" }]));
    stop.cancel();
}

#[tokio::test]
async fn dry_runs_show_what_would_happen_and_change_nothing() {
    let smtp = SmtpSink::start().await;
    let app = spawn(Some(&smtp)).await;
    let admin = app.admin_token().await;
    let id = create_active(
        &app,
        &admin,
        json!({"name": "Dry", "entity": "LEAD", "trigger": {"type": "manual"},
               "conditions": {"any": [{"field": "state", "operator": "in", "value": ["CA", "OR"]}]},
               "actions": [
                   {"type": "send_email", "to": "{{record.email}}", "subject": "Hi {{record.first_name}}", "body": "{{record.phone}}"},
                   {"type": "create_task", "title": "Call {{record.first_name}}"}]}),
    )
    .await;
    let lead = app
        .create_lead(
            &admin,
            json!({"firstName": "Ada", "email": "ada@example.com", "state": "OR"}),
        )
        .await;
    let before = (app.count("tasks").await, app.count("record_events").await);
    let dry = app
        .gql(
            Some(&admin),
            "mutation($id: ID!, $r: ID!) { testWorkflow(id: $id, recordId: $r) { conditionsPassed rules { path field operator actual passed } steps { path action params error } } }",
            json!({ "id": id, "r": lead }),
        )
        .await;
    let dry = &dry["data"]["testWorkflow"];
    assert_eq!(dry["conditionsPassed"], true, "{dry}");
    assert_eq!(dry["rules"][0]["path"], "conditions.any[0]");
    assert_eq!(dry["rules"][0]["actual"], "OR");
    assert_eq!(dry["steps"][0]["params"]["subject"], "Hi Ada");
    assert_eq!(
        dry["steps"][0]["error"], "missing variable record.phone",
        "{dry}"
    );
    assert_eq!(dry["steps"][1]["params"]["title"], "Call Ada");
    assert_eq!(
        (app.count("tasks").await, app.count("record_events").await),
        before
    );
    assert_eq!(app.count("workflow_runs").await, 0);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(smtp.received().is_empty());

    // A real run of the same record fails at the missing variable, before sending anything.
    let stop = workers(&app);
    app.gql(
        Some(&admin),
        "mutation($id: ID!, $r: ID!) { executeWorkflow(id: $id, recordId: $r) { id } }",
        json!({ "id": id, "r": lead }),
    )
    .await;
    let runs = finished_runs(&app, &admin, &id, 1).await;
    assert_eq!(runs[0]["status"], "FAILED");
    assert_eq!(
        runs[0]["error"],
        "actions[0]: missing variable record.phone"
    );
    assert!(smtp.received().is_empty());
    stop.cancel();
}

#[tokio::test]
async fn waits_survive_a_restart_runs_can_be_watched_and_cancelled() {
    use crate::subscriptions::{connect, next, send};
    let app = spawn(None).await;
    let admin = app.admin_token().await;
    let id = create_active(
        &app,
        &admin,
        json!({"name": "Later", "entity": "LEAD", "trigger": {"type": "manual"},
               "actions": [{"type": "wait", "duration": "2s"},
                           {"type": "update_field", "field": "priority", "value": "urgent"}]}),
    )
    .await;
    let lead = app.create_lead(&admin, json!({"firstName": "Ada"})).await;
    let execute =
        "mutation($id: ID!, $r: ID!) { executeWorkflow(id: $id, recordId: $r) { id status } }";
    let run = app
        .gql(Some(&admin), execute, json!({ "id": id, "r": lead }))
        .await;
    let run_id = run["data"]["executeWorkflow"]["id"]
        .as_str()
        .unwrap()
        .to_string();

    let mut socket = connect(&app, "graphql-transport-ws").await;
    send(&mut socket, json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {admin}") } })).await;
    assert_eq!(next(&mut socket).await.unwrap()["type"], "connection_ack");
    send(
        &mut socket,
        json!({ "id": "1", "type": "subscribe", "payload": { "query":
            "subscription($id: ID!) { workflowRunUpdated(id: $id) { status wakeAt } }",
            "variables": { "id": run_id } } }),
    )
    .await;
    let first = next(&mut socket).await.unwrap();
    assert_eq!(
        first["payload"]["data"]["workflowRunUpdated"]["status"], "RUNNING",
        "{first}"
    );

    // The first process reaches the wait and stops; the wake-up is a row, not a thread.
    let first_process = workers(&app);
    let waiting = next(&mut socket).await.unwrap();
    assert_eq!(
        waiting["payload"]["data"]["workflowRunUpdated"]["status"], "WAITING",
        "{waiting}"
    );
    first_process.cancel();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let priority = format!("SELECT priority::text FROM leads WHERE id = {lead}");
    assert_eq!(app.rows(&priority).await, json!([{ "priority": "medium" }]));

    // A new process picks the run up after its wake-up time and finishes it.
    let second_process = workers(&app);
    let mut last = Value::Null;
    while let Some(message) = next(&mut socket).await {
        if message["type"] == "complete" {
            break;
        }
        last = message;
    }
    assert_eq!(
        last["payload"]["data"]["workflowRunUpdated"]["status"], "COMPLETED",
        "{last}"
    );
    assert_eq!(app.rows(&priority).await, json!([{ "priority": "urgent" }]));

    // A waiting run can be cancelled (once); it never takes its next step.
    let id_long = create_active(
        &app,
        &admin,
        json!({"name": "Much later", "entity": "LEAD", "trigger": {"type": "manual"},
               "actions": [{"type": "wait", "duration": "1h"},
                           {"type": "update_field", "field": "priority", "value": "low"}]}),
    )
    .await;
    let run = app
        .gql(Some(&admin), execute, json!({ "id": id_long, "r": lead }))
        .await;
    let long_run = run["data"]["executeWorkflow"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let runs = "query($id: ID!) { workflowRun(id: $id) { status wakeAt } }";
    for _ in 0..100 {
        let state = app.gql(Some(&admin), runs, json!({ "id": long_run })).await;
        if state["data"]["workflowRun"]["status"] == "WAITING" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let cancel = "mutation($id: ID!) { cancelWorkflowRun(id: $id) { status error } }";
    let cancelled = app
        .gql(Some(&admin), cancel, json!({ "id": long_run }))
        .await;
    assert_eq!(
        cancelled["data"]["cancelWorkflowRun"]["status"], "CANCELLED",
        "{cancelled}"
    );
    let again = app
        .gql(Some(&admin), cancel, json!({ "id": long_run }))
        .await;
    assert_eq!(error_code(&again), "CONFLICT", "{again}");
    second_process.cancel();
}

#[tokio::test]
async fn the_other_actions_and_triggers() {
    let app = spawn(None).await;
    let admin = app.admin_token().await;
    // Managers: notifications reach only people who may see the record.
    let (u1, _) = app.user_with_role("una@example.com", "MANAGER").await;
    let (u2, _) = app.user_with_role("udo@example.com", "MANAGER").await;
    create_active(
        &app,
        &admin,
        json!({"name": "Share out", "entity": "LEAD", "trigger": {"type": "record_created"},
               "actions": [
                   {"type": "assign_record", "round_robin": ["una@example.com", "udo@example.com"]},
                   {"type": "send_notification", "users": ["una@example.com"], "title": "New lead {{record.first_name}}",
                    "message": "From {{actor.email}}"},
                   {"type": "create_record", "entity": "contact",
                    "fields": {"first_name": "{{record.first_name}}", "email": "{{record.email}}", "custom.source": "workflow"}}]}),
    )
    .await;
    create_active(
        &app,
        &admin,
        json!({"name": "Rebalance", "entity": "LEAD", "trigger": {"type": "field_changed", "field": "status", "to": "contacted"},
               "actions": [{"type": "assign_record", "least_open_records": ["una@example.com", "udo@example.com"]}]}),
    )
    .await;
    create_active(
        &app,
        &admin,
        json!({"name": "Gone", "entity": "LEAD", "trigger": {"type": "record_deleted"},
               "actions": [{"type": "send_notification", "users": ["udo@example.com"], "title": "Deleted {{record.first_name}}", "message": "by {{actor.email}}"}]}),
    )
    .await;
    create_active(
        &app,
        &admin,
        json!({"name": "Hot", "entity": "LEAD", "trigger": {"type": "score_changed", "above": 60},
               "actions": [{"type": "update_field", "field": "priority", "value": "urgent"}]}),
    )
    .await;
    let stop = workers(&app);
    let a = app
        .create_lead(&admin, json!({"firstName": "A", "email": "a@example.com"}))
        .await;
    let b = app
        .create_lead(&admin, json!({"firstName": "B", "email": "b@example.com"}))
        .await;
    let hot = app.create_lead(&admin,
        json!({"firstName": "C", "email": "c@example.com", "phone": "+1 555 0100", "companyName": "Acme",
               "jobTitle": "CEO", "leadSource": "REFERRAL", "companySize": 5000}),
    )
    .await;

    // Round robin: two of the three to one user, one to the other; every lead notified and
    // copied to a contact.
    let wait_for = |sql: String, want: Value| {
        let app = &app;
        async move {
            for _ in 0..200 {
                if app.rows(&sql).await == want {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!("{sql} never gave {want}: {}", app.rows(&sql).await);
        }
    };
    wait_for(
        "SELECT count(*) AS n FROM leads WHERE assigned_to_id IS NOT NULL".into(),
        json!([{ "n": 3 }]),
    )
    .await;
    let shares = app
        .rows("SELECT count(*) AS n FROM leads GROUP BY assigned_to_id ORDER BY n")
        .await;
    assert_eq!(shares, json!([{ "n": 1 }, { "n": 2 }]));
    wait_for(
        format!(
            "SELECT title, message FROM notifications WHERE user_id = {u1} AND kind = 'workflow' \
             ORDER BY title"
        ),
        json!([
            { "title": "New lead A", "message": "From admin@example.com" },
            { "title": "New lead B", "message": "From admin@example.com" },
            { "title": "New lead C", "message": "From admin@example.com" }
        ]),
    )
    .await;
    wait_for(
        "SELECT first_name, email, custom_fields->>'source' AS source FROM contacts ORDER BY first_name".into(),
        json!([
            { "first_name": "A", "email": "a@example.com", "source": "workflow" },
            { "first_name": "B", "email": "b@example.com", "source": "workflow" },
            { "first_name": "C", "email": "c@example.com", "source": "workflow" }
        ]),
    )
    .await;
    // The rule-based score of the complete referral lead crosses 60: it becomes urgent.
    wait_for(
        format!("SELECT priority::text FROM leads WHERE id IN ({a}, {hot}) ORDER BY id"),
        json!([{ "priority": "medium" }, { "priority": "urgent" }]),
    )
    .await;

    // Least open records: whoever holds fewer open leads gets the contacted one.
    let lighter = app
        .rows("SELECT assigned_to_id AS id FROM leads GROUP BY assigned_to_id HAVING count(*) = 1")
        .await[0]["id"]
        .clone();
    let heavier_lead = app
        .rows(&format!(
            "SELECT id FROM leads WHERE assigned_to_id <> {lighter} ORDER BY id LIMIT 1"
        ))
        .await[0]["id"]
        .clone();
    app.gql(
        Some(&admin),
        "mutation($id: ID!) { updateLead(id: $id, input: {status: CONTACTED}) { lead { id } } }",
        json!({ "id": heavier_lead.to_string() }),
    )
    .await;
    wait_for(
        format!("SELECT assigned_to_id AS id FROM leads WHERE id = {heavier_lead}"),
        json!([{ "id": lighter }]),
    )
    .await;

    app.gql(
        Some(&admin),
        "mutation($id: ID!) { deleteLead(id: $id) { lead { id } } }",
        json!({ "id": b }),
    )
    .await;
    wait_for(
        format!(
            "SELECT title, message FROM notifications WHERE user_id = {u2} AND kind = 'workflow'"
        ),
        json!([{ "title": "Deleted B", "message": "by admin@example.com" }]),
    )
    .await;
    stop.cancel();
}
