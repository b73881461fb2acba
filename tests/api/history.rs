//! The change stream's write side and `recordHistory`: every change writes an event in its
//! own transaction, with old and new values, and history is scoped like the record.

use serde_json::{json, Value};

use crate::harness::*;

const HISTORY: &str = "query($k: RecordKind!, $id: ID!) { recordHistory(entity: $k, id: $id) { action actor { email } changes } }";

async fn history(app: &TestApp, token: &str, kind: &str, id: &str) -> Value {
    app.gql(Some(token), HISTORY, json!({ "k": kind, "id": id }))
        .await
}

fn actions(answer: &Value) -> Vec<String> {
    answer["data"]["recordHistory"]
        .as_array()
        .unwrap_or_else(|| panic!("{answer}"))
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn every_change_is_an_event_with_old_and_new_values() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let created = app
        .gql(
            Some(&admin),
            "mutation { createLead(input: {firstName: \"Ada\", email: \"ada@acme.test\", companyName: \"Acme\"}) { lead { id } } }",
            json!({}),
        )
        .await;
    let id = created["data"]["createLead"]["lead"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let update =
        "mutation($id: ID!, $i: LeadInput!) { updateLead(id: $id, input: $i) { lead { id } } }";
    app.gql(
        Some(&admin),
        update,
        json!({ "id": id, "i": { "status": "CONTACTED" } }),
    )
    .await;
    // A patch that changes nothing writes no event; an invalid one rolls back with its event.
    app.gql(
        Some(&admin),
        update,
        json!({ "id": id, "i": { "status": "CONTACTED" } }),
    )
    .await;
    let bad = app
        .gql(
            Some(&admin),
            update,
            json!({ "id": id, "i": { "probability": 300 } }),
        )
        .await;
    assert_eq!(error_code(&bad), "BAD_USER_INPUT");
    app.gql(
        Some(&admin),
        "mutation($ids: [ID!]) { bulkUpdateLeads(ids: $ids, patch: {priority: HIGH}) { count } }",
        json!({ "ids": [id] }),
    )
    .await;
    app.gql(
        Some(&admin),
        "mutation($id: ID!) { deleteLead(id: $id) { lead { id } } }",
        json!({ "id": id }),
    )
    .await;
    app.gql(
        Some(&admin),
        "mutation($id: ID!) { restoreLead(id: $id) { lead { id } } }",
        json!({ "id": id }),
    )
    .await;
    app.gql(
        Some(&admin),
        "mutation($id: ID!) { convertLead(id: $id) { lead { id } } }",
        json!({ "id": id }),
    )
    .await;

    let answer = history(&app, &admin, "LEAD", &id).await;
    assert_eq!(
        actions(&answer),
        vec![
            "converted",
            "restored",
            "deleted",
            "updated",
            "updated",
            "created"
        ]
    );
    let events = answer["data"]["recordHistory"].as_array().unwrap();
    assert_eq!(events[0]["actor"]["email"], "admin@example.com");
    assert_eq!(
        events[0]["changes"]["status"],
        json!({ "old": "contacted", "new": "converted" })
    );
    assert_eq!(
        events[3]["changes"],
        json!({ "priority": { "old": "medium", "new": "high" } })
    );
    assert_eq!(
        events[4]["changes"],
        json!({ "status": { "old": "new", "new": "contacted" } })
    );
    assert_eq!(
        events[5]["changes"]["first_name"],
        json!({ "old": null, "new": "Ada" })
    );
    assert!(events[5]["changes"].get("updated_at").is_none());

    // The conversion's new contact has its own created event.
    let contact = app
        .gql(Some(&admin), "{ contacts { nodes { id } } }", json!({}))
        .await;
    let contact = contact["data"]["contacts"]["nodes"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        actions(&history(&app, &admin, "CONTACT", &contact).await),
        vec!["created"]
    );
}

#[tokio::test]
async fn history_is_scoped_like_its_record() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (_, mia) = app.user_with_role("mia@example.com", "MEMBER").await;
    let created = app
        .gql(
            Some(&admin),
            "mutation { createTask(input: {title: \"Call\"}) { task { id } } }",
            json!({}),
        )
        .await;
    let id = created["data"]["createTask"]["task"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        error_code(&history(&app, &mia, "TASK", &id).await),
        "NOT_FOUND"
    );
    assert_eq!(
        error_code(&history(&app, &admin, "LEAD", &id).await),
        "NOT_FOUND"
    );
    let bad = app
        .gql(
            Some(&admin),
            "query($id: ID!) { recordHistory(entity: TASK, id: $id, first: 0) { action } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(error_code(&bad), "BAD_USER_INPUT");
    assert_eq!(error_field(&bad), "first");
    assert_eq!(
        actions(&history(&app, &admin, "TASK", &id).await),
        vec!["created"]
    );
}
