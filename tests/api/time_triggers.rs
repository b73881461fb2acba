//! Time-based workflow triggers: moments relative to a record's date field and cron
//! schedules, read in the workspace's timezone. The minute tick is driven with a fake clock
//! (`time_triggers::evaluate(now)`); the runs it starts are executed by real job workers.

use chrono::{DateTime, Datelike, Duration, NaiveDate, SubsecRound, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use mycrm::workflows::time_triggers::{evaluate, Evaluation};
use serde_json::{json, Value};

use crate::harness::{error_code, error_field, TestApp};
use crate::workflows::{create_active, finished_runs, spawn, workers};

const CREATE: &str = "mutation($i: CreateWorkflowInput!) { createWorkflow(input: $i) { id } }";

/// One tick at `now`; the evaluation of `workflow` (None when it had nothing to look at).
async fn tick(app: &TestApp, workflow: &str, now: DateTime<Utc>) -> Option<Evaluation> {
    let done = evaluate(&app.app.db, &app.app.config.workflows, now)
        .await
        .unwrap();
    let id: i64 = workflow.parse().unwrap();
    done.into_iter().find(|e| e.workflow_id == id)
}

fn started(evaluation: Option<Evaluation>) -> usize {
    evaluation.map_or(0, |e| e.started)
}

async fn slots(app: &TestApp, workflow: &str) -> Value {
    app.rows(&format!(
        "SELECT record_id::text AS record, slot FROM workflow_runs \
         WHERE workflow_id = {workflow} ORDER BY id"
    ))
    .await
}

fn at(value: &Value) -> DateTime<Utc> {
    value.as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn reminders_fire_once_relative_to_a_date_field_and_again_when_it_moves() {
    let app = spawn(None).await;
    let admin = app.admin_token().await;
    let workflow = create_active(
        &app,
        &admin,
        json!({
            "name": "Escalate tasks due in two days",
            "entity": "TASK",
            "trigger": {"type": "time_based", "field": "due_at", "before": "2 days"},
            "conditions": {"all": [{"field": "status", "operator": "not_in",
                                    "value": ["completed", "cancelled"]}]},
            "actions": [{"type": "update_field", "field": "priority", "value": "urgent"},
                        {"type": "update_field", "field": "description",
                         "value": "escalated for {{trigger.slot}}"}]
        }),
    )
    .await;
    // A day out, so the real minute tick of the workers never reaches these moments.
    let due = Utc::now().trunc_subsecs(0) + Duration::days(3);
    let moment = due - Duration::days(2);
    let open = app
        .create_task(&admin, json!({"title": "Send the proposal", "dueAt": due}))
        .await;
    app.create_task(
        &admin,
        json!({"title": "Already done", "dueAt": due, "status": "COMPLETED"}),
    )
    .await;
    app.create_task(
        &admin,
        json!({"title": "Later", "dueAt": due + Duration::days(7)}),
    )
    .await;
    let stop = workers(&app);

    assert_eq!(
        started(tick(&app, &workflow, moment - Duration::minutes(1)).await),
        0
    );
    let fired = tick(&app, &workflow, moment + Duration::minutes(1))
        .await
        .unwrap();
    assert_eq!(
        fired.started, 1,
        "only the open task, not the completed one"
    );
    assert!(!fired.deferred);
    // The same minute again, and the next one: nothing more.
    assert_eq!(
        started(tick(&app, &workflow, moment + Duration::minutes(1)).await),
        0
    );
    assert_eq!(
        started(tick(&app, &workflow, moment + Duration::minutes(2)).await),
        0
    );
    let runs = slots(&app, &workflow).await;
    assert_eq!(runs.as_array().unwrap().len(), 1, "{runs}");
    assert_eq!(runs[0]["record"], json!(open));
    assert_eq!(at(&runs[0]["slot"]), moment);

    let runs = finished_runs(&app, &admin, &workflow, 1).await;
    assert_eq!(runs[0]["status"], "COMPLETED", "{runs:?}");
    let task = app
        .gql(
            Some(&admin),
            "query($id: ID!) { task(id: $id) { priority description } }",
            json!({ "id": open }),
        )
        .await;
    assert_eq!(task["data"]["task"]["priority"], "URGENT", "{task}");
    assert!(
        task["data"]["task"]["description"]
            .as_str()
            .unwrap()
            .starts_with("escalated for "),
        "{task}"
    );

    // The due date moves a day later: a new moment, a new run.
    app.gql(
        Some(&admin),
        "mutation($id: ID!, $i: TaskInput!) { updateTask(id: $id, input: $i) { task { id } } }",
        json!({ "id": open, "i": {"dueAt": due + Duration::days(1)} }),
    )
    .await;
    let later = moment + Duration::days(1);
    assert_eq!(
        started(tick(&app, &workflow, later + Duration::seconds(30)).await),
        1
    );
    let runs = slots(&app, &workflow).await;
    assert_eq!(at(&runs[1]["slot"]), later, "{runs}");
    finished_runs(&app, &admin, &workflow, 2).await;
    stop.cancel();
}

/// The next `weekday` at `hour`:00 in `tz` after `after`.
fn next_local(tz: Tz, after: DateTime<Utc>, weekday: Weekday, hour: u32) -> DateTime<Utc> {
    let mut day = after.with_timezone(&tz).date_naive() + Duration::days(1);
    while day.weekday() != weekday {
        day += Duration::days(1);
    }
    local(tz, day, hour)
}

fn local(tz: Tz, day: NaiveDate, hour: u32) -> DateTime<Utc> {
    tz.from_local_datetime(&day.and_hms_opt(hour, 0, 0).unwrap())
        .single()
        .unwrap()
        .with_timezone(&Utc)
}

#[tokio::test]
async fn dates_and_schedules_are_read_in_the_workspace_timezone() {
    let app = spawn(None).await;
    let admin = app.admin_token().await;
    let (_, member) = app.user_with_role("mo@example.com", "MEMBER").await;
    const UPDATE: &str =
        "mutation($i: UpdateWorkspaceInput!) { updateWorkspace(input: $i) { name timezone } }";

    // The timezone: admins only, IANA names only.
    let refused = app
        .gql(Some(&member), UPDATE, json!({"i": {"timezone": "UTC"}}))
        .await;
    assert_eq!(error_code(&refused), "FORBIDDEN", "{refused}");
    let bad = app
        .gql(
            Some(&admin),
            UPDATE,
            json!({"i": {"timezone": "Mars/Olympus"}}),
        )
        .await;
    assert_eq!(error_code(&bad), "BAD_USER_INPUT", "{bad}");
    assert_eq!(error_field(&bad), "timezone");
    let set = app
        .gql(
            Some(&admin),
            UPDATE,
            json!({"i": {"timezone": " America/New_York "}}),
        )
        .await;
    assert_eq!(
        set["data"]["updateWorkspace"]["timezone"], "America/New_York",
        "{set}"
    );
    let tz: Tz = "America/New_York".parse().unwrap();

    // "On expected_close_date": the date at 09:00 in New York.
    let closing = create_active(
        &app,
        &admin,
        json!({
            "name": "Closing today",
            "entity": "OPPORTUNITY",
            "trigger": {"type": "time_based", "field": "expected_close_date"},
            "actions": [{"type": "update_field", "field": "description", "value": "closing today"}]
        }),
    )
    .await;
    let day = Utc::now().with_timezone(&tz).date_naive() + Duration::days(3);
    let mut opportunities = Vec::new();
    for (name, date) in [("Today", day), ("Tomorrow", day + Duration::days(1))] {
        let answer = app
            .gql(
                Some(&admin),
                "mutation($i: OpportunityInput!) { createOpportunity(input: $i) { opportunity { id } } }",
                json!({"i": {"name": name, "expectedCloseDate": date.to_string()}}),
            )
            .await;
        opportunities.push(
            answer["data"]["createOpportunity"]["opportunity"]["id"]
                .as_str()
                .unwrap_or_else(|| panic!("{answer}"))
                .to_string(),
        );
    }
    let nine = local(tz, day, 9);
    assert_eq!(
        started(tick(&app, &closing, nine - Duration::seconds(30)).await),
        0
    );
    assert_eq!(
        started(tick(&app, &closing, nine + Duration::seconds(30)).await),
        1
    );
    let runs = slots(&app, &closing).await;
    assert_eq!(runs[0]["record"], json!(opportunities[0]), "{runs}");
    assert_eq!(at(&runs[0]["slot"]), nine);

    // A cron schedule: Mondays at 09:00 New York time, over the new leads.
    let weekly = create_active(
        &app,
        &admin,
        json!({
            "name": "Monday review of new leads",
            "entity": "LEAD",
            "trigger": {"type": "time_based", "schedule": "0 9 * * Mon"},
            "conditions": {"all": [{"field": "status", "operator": "equals", "value": "new"}]},
            "actions": [{"type": "update_field", "field": "priority", "value": "high"}]
        }),
    )
    .await;
    let fresh = app
        .create_lead(
            &admin,
            json!({"firstName": "New", "email": "new@example.com"}),
        )
        .await;
    app.create_lead(
        &admin,
        json!({"firstName": "Old", "email": "old@example.com", "status": "QUALIFIED"}),
    )
    .await;
    let monday = next_local(tz, Utc::now() + Duration::days(1), Weekday::Mon, 9);
    assert_eq!(
        started(tick(&app, &weekly, monday - Duration::minutes(1)).await),
        0
    );
    assert_eq!(
        started(tick(&app, &weekly, monday + Duration::seconds(20)).await),
        1
    );
    assert_eq!(
        started(tick(&app, &weekly, monday + Duration::minutes(5)).await),
        0
    );
    let next = monday + Duration::days(7);
    assert_eq!(
        started(tick(&app, &weekly, next + Duration::seconds(20)).await),
        1
    );
    let runs = slots(&app, &weekly).await;
    assert_eq!(runs.as_array().unwrap().len(), 2, "{runs}");
    assert!(runs
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["record"] == json!(fresh)));
    assert_eq!(at(&runs[0]["slot"]), monday);
    assert_eq!(at(&runs[1]["slot"]), next);

    let stop = workers(&app);
    finished_runs(&app, &admin, &weekly, 2).await;
    finished_runs(&app, &admin, &closing, 1).await;
    stop.cancel();
}

#[tokio::test]
async fn time_triggered_runs_over_the_rate_cap_wait_for_the_next_tick() {
    let app = TestApp::spawn_with(|c| c.workflows.runs_per_minute = 2).await;
    let admin = app.admin_token().await;
    let workflow = create_active(
        &app,
        &admin,
        json!({
            "name": "Every minute",
            "entity": "LEAD",
            "trigger": {"type": "time_based", "schedule": "* * * * *"},
            "actions": [{"type": "update_field", "field": "priority", "value": "high"}]
        }),
    )
    .await;
    for name in ["a", "b", "c"] {
        app.create_lead(&admin, json!({"firstName": name})).await;
    }
    let base = (Utc::now() + Duration::hours(1)).trunc_subsecs(0);
    let base = base - Duration::seconds(base.timestamp() % 60) + Duration::seconds(5);
    let first = tick(&app, &workflow, base).await.unwrap();
    assert_eq!((first.started, first.deferred), (2, true));
    // Still within the minute the cap counts: nothing more starts.
    let capped = tick(&app, &workflow, base + Duration::seconds(10))
        .await
        .unwrap();
    assert_eq!((capped.started, capped.deferred), (0, true));
    // A minute later (the runs' clock moved back instead of waiting), the third starts for
    // the same slot, and the slot is done.
    app.execute("UPDATE workflow_runs SET created_at = created_at - interval '2 minutes'")
        .await;
    let rest = tick(&app, &workflow, base + Duration::seconds(20))
        .await
        .unwrap();
    assert_eq!((rest.started, rest.deferred), (1, false));
    assert_eq!(
        started(tick(&app, &workflow, base + Duration::seconds(30)).await),
        0
    );
    let runs = slots(&app, &workflow).await;
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 3);
    assert!(runs
        .iter()
        .all(|r| at(&r["slot"]) == base - Duration::seconds(5)));
}

#[tokio::test]
async fn time_based_definitions_are_checked_on_save() {
    let app = spawn(None).await;
    let admin = app.admin_token().await;
    let action = json!([{"type": "update_field", "field": "priority", "value": "high"}]);
    let cases = [
        (
            "TASK",
            json!({"type": "time_based", "field": "title", "before": "1d"}),
            "trigger.field",
        ),
        (
            "TASK",
            json!({"type": "time_based", "field": "due_at", "at": "09:00"}),
            "trigger.at",
        ),
        (
            "OPPORTUNITY",
            json!({"type": "time_based", "field": "expected_close_date", "before": "3h"}),
            "trigger.before",
        ),
        (
            "LEAD",
            json!({"type": "time_based", "schedule": "every monday"}),
            "trigger.schedule",
        ),
        ("LEAD", json!({"type": "time_based"}), "trigger"),
    ];
    for (entity, trigger, path) in cases {
        let answer = app
            .gql(
                Some(&admin),
                CREATE,
                json!({"i": {"name": "t", "entity": entity, "trigger": trigger, "actions": action}}),
            )
            .await;
        assert_eq!(error_code(&answer), "BAD_USER_INPUT", "{trigger}: {answer}");
        assert_eq!(error_field(&answer), path, "{trigger}: {answer}");
    }
    // The slot is a template variable of these runs.
    let ok = app
        .gql(
            Some(&admin),
            CREATE,
            json!({"i": {"name": "ok", "entity": "TASK",
                "trigger": {"type": "time_based", "field": "created_at", "after": "7d"},
                "actions": [{"type": "update_field", "field": "description",
                             "value": "a week since {{trigger.slot | date:\"%Y-%m-%d\"}}"}]}}),
        )
        .await;
    assert!(ok["errors"].is_null(), "{ok}");
}

#[tokio::test]
async fn the_minute_schedule_starts_the_runs_that_are_due() {
    let app = spawn(None).await;
    let admin = app.admin_token().await;
    // "On created_at": due as soon as a record is created after the activation.
    let workflow = create_active(
        &app,
        &admin,
        json!({
            "name": "Welcome on creation",
            "entity": "TASK",
            "trigger": {"type": "time_based", "field": "created_at"},
            "actions": [{"type": "update_field", "field": "priority", "value": "high"}]
        }),
    )
    .await;
    let task = app.create_task(&admin, json!({"title": "Fresh"})).await;
    // The builtin schedule's job, run now through the API instead of waiting for the minute
    // (before the workers start: their own first tick then finds this run live and skips).
    let answer = app
        .gql(
            Some(&admin),
            "mutation { triggerSchedule(name: \"workflows.time_based\") { schedule { name } } }",
            json!({}),
        )
        .await;
    assert!(answer["errors"].is_null(), "{answer}");
    let stop = workers(&app);
    let runs = finished_runs(&app, &admin, &workflow, 1).await;
    assert_eq!(runs[0]["status"], "COMPLETED", "{runs:?}");
    assert_eq!(runs[0]["recordId"], json!(task));
    stop.cancel();
}
