//! Tasks: links to records, completion, overdue and due-today filters, validation.

use chrono::{Duration, Utc};
use serde_json::json;

use crate::harness::*;

const CREATE: &str = "mutation($i: TaskInput!) { createTask(input: $i) { task { id title status completedAt isOverdue lead { firstName } createdBy { email } assignedTo { email } } } }";

#[tokio::test]
async fn tasks_end_to_end() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (mia_id, mia) = app.user_with_role("mia@example.com", "MEMBER").await;
    let lead = app
        .gql(
            Some(&admin),
            "mutation { createLead(input: {firstName: \"Lea\"}) { lead { id } } }",
            json!({}),
        )
        .await["data"]["createLead"]["lead"]["id"]
        .clone();
    let now = Utc::now();
    let yesterday = (now - Duration::days(1)).to_rfc3339();
    let later_today = now
        .date_naive()
        .and_hms_opt(23, 59, 0)
        .unwrap()
        .and_utc()
        .to_rfc3339();
    let next_week = (now + Duration::days(7)).to_rfc3339();

    let created = app
        .gql(Some(&admin), CREATE, json!({ "i": { "title": "Call Lea", "taskType": "CALL", "dueAt": yesterday, "leadId": lead, "assignedToId": mia_id } }))
        .await;
    let task = &created["data"]["createTask"]["task"];
    assert_eq!(task["status"], "PENDING", "{created}");
    assert_eq!(task["isOverdue"], true);
    assert_eq!(task["lead"]["firstName"], "Lea");
    assert_eq!(task["createdBy"]["email"], ADMIN_EMAIL);
    assert_eq!(task["assignedTo"]["email"], "mia@example.com");
    let overdue_id = task["id"].clone();
    app.gql(
        Some(&admin),
        CREATE,
        json!({ "i": { "title": "Send deck", "dueAt": later_today } }),
    )
    .await;
    app.gql(
        Some(&admin),
        CREATE,
        json!({ "i": { "title": "Demo", "dueAt": next_week, "priority": "URGENT" } }),
    )
    .await;

    let count = |filter: serde_json::Value, token: String| {
        let app = &app;
        async move {
            let answer = app
                .gql(
                    Some(&token),
                    "query($f: TaskFilter) { tasks(filter: $f) { totalCount } }",
                    json!({ "f": filter }),
                )
                .await;
            answer["data"]["tasks"]["totalCount"]
                .as_i64()
                .unwrap_or_else(|| panic!("{answer}"))
        }
    };
    assert_eq!(count(json!({ "overdue": true }), admin.clone()).await, 1);
    assert_eq!(count(json!({ "dueToday": true }), admin.clone()).await, 1);
    assert_eq!(
        count(json!({ "priority": { "eq": "URGENT" } }), admin.clone()).await,
        1
    );
    // Mia sees the task assigned to her, not the others.
    assert_eq!(count(json!({}), mia.clone()).await, 1);
    assert_eq!(count(json!({ "assignedToMe": true }), mia.clone()).await, 1);

    let done = app
        .gql(Some(&mia), "mutation($id: ID!) { completeTask(id: $id) { task { status completedAt isOverdue } } }", json!({ "id": overdue_id }))
        .await;
    let done = &done["data"]["completeTask"]["task"];
    assert_eq!(done["status"], "COMPLETED", "{done}");
    assert!(done["completedAt"].is_string());
    assert_eq!(done["isOverdue"], false);
    assert_eq!(count(json!({ "overdue": true }), admin.clone()).await, 0);
    // Reopening clears the completion time.
    let reopened = app
        .gql(Some(&admin), "mutation($id: ID!) { updateTask(id: $id, input: {status: IN_PROGRESS}) { task { completedAt } } }", json!({ "id": overdue_id }))
        .await;
    assert!(
        reopened["data"]["updateTask"]["task"]["completedAt"].is_null(),
        "{reopened}"
    );

    let ordered = app
        .gql(Some(&admin), "{ tasks(orderBy: [{field: PRIORITY, direction: DESC}], first: 1) { nodes { title } } }", json!({}))
        .await;
    assert_eq!(ordered["data"]["tasks"]["nodes"][0]["title"], "Demo");

    let before = app.count("tasks").await;
    for (input, field) in [
        (json!({ "dueAt": next_week }), "title"),
        (
            json!({ "title": "X", "dueAt": yesterday, "reminderAt": next_week }),
            "reminderAt",
        ),
        (json!({ "title": "X", "leadId": "987654" }), "leadId"),
        (
            json!({ "title": "X", "opportunityId": "oops" }),
            "opportunityId",
        ),
    ] {
        let answer = app.gql(Some(&admin), CREATE, json!({ "i": input })).await;
        assert_eq!(error_code(&answer), "BAD_USER_INPUT", "{answer}");
        assert_eq!(error_field(&answer), field);
    }
    // Mia cannot link a task to a lead she cannot see.
    let hidden = app
        .gql(
            Some(&mia),
            CREATE,
            json!({ "i": { "title": "X", "leadId": lead } }),
        )
        .await;
    assert_eq!(error_field(&hidden), "leadId");
    assert_eq!(app.count("tasks").await, before);
}
