//! Bulk operations: by ids and by filter, one transaction, validated patch, scope.

use serde_json::{json, Value};

use crate::harness::*;

async fn lead(app: &TestApp, token: &str, input: Value) -> String {
    let answer = app
        .gql(
            Some(token),
            "mutation($i: LeadInput!) { createLead(input: $i) { lead { id } } }",
            json!({ "i": input }),
        )
        .await;
    answer["data"]["createLead"]["lead"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{answer}"))
        .to_string()
}

async fn statuses(app: &TestApp, token: &str) -> Vec<String> {
    let answer = app
        .gql(
            Some(token),
            "{ leads(orderBy: [{field: FIRST_NAME}]) { nodes { status } } }",
            json!({}),
        )
        .await;
    answer["data"]["leads"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["status"].as_str().unwrap().to_string())
        .collect()
}

const UPDATE: &str = "mutation($ids: [ID!], $f: LeadFilter, $p: LeadInput!) { bulkUpdateLeads(ids: $ids, filter: $f, patch: $p) { count } }";
const DELETE: &str =
    "mutation($ids: [ID!], $f: LeadFilter) { bulkDeleteLeads(ids: $ids, filter: $f) { count } }";

#[tokio::test]
async fn bulk_update_and_delete() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let a = lead(&app, &admin, json!({ "firstName": "a", "priority": "LOW" })).await;
    let b = lead(&app, &admin, json!({ "firstName": "b", "priority": "LOW" })).await;
    lead(
        &app,
        &admin,
        json!({ "firstName": "c", "priority": "HIGH" }),
    )
    .await;

    let by_ids = app
        .gql(
            Some(&admin),
            UPDATE,
            json!({ "ids": [a, b], "p": { "status": "CONTACTED" } }),
        )
        .await;
    assert_eq!(by_ids["data"]["bulkUpdateLeads"]["count"], 2, "{by_ids}");
    assert_eq!(
        statuses(&app, &admin).await,
        vec!["CONTACTED", "CONTACTED", "NEW"]
    );
    let by_filter = app
        .gql(
            Some(&admin),
            UPDATE,
            json!({ "f": { "priority": { "eq": "HIGH" } }, "p": { "status": "QUALIFIED" } }),
        )
        .await;
    assert_eq!(by_filter["data"]["bulkUpdateLeads"]["count"], 1);

    // Bad input changes nothing.
    for (variables, code, field) in [
        (
            json!({ "ids": [], "p": { "status": "LOST" } }),
            "BAD_USER_INPUT",
            "ids",
        ),
        (
            json!({ "p": { "status": "LOST" } }),
            "BAD_USER_INPUT",
            "ids",
        ),
        (
            json!({ "ids": [a], "p": { "status": "LOST", "probability": 400 } }),
            "BAD_USER_INPUT",
            "probability",
        ),
        (
            json!({ "ids": [a, b], "p": { "firstName": null } }),
            "BAD_USER_INPUT",
            "patch",
        ),
    ] {
        let answer = app.gql(Some(&admin), UPDATE, variables).await;
        assert_eq!(error_code(&answer), code, "{answer}");
        assert_eq!(error_field(&answer), field);
    }
    assert_eq!(
        statuses(&app, &admin).await,
        vec!["CONTACTED", "CONTACTED", "QUALIFIED"]
    );

    // An ID outside the caller's scope makes the whole operation NOT_FOUND.
    let (_, member) = app.user_with_role("mia@example.com", "MEMBER").await;
    let mine = lead(&app, &member, json!({ "firstName": "m" })).await;
    let mixed = app
        .gql(
            Some(&member),
            UPDATE,
            json!({ "ids": [mine, a], "p": { "status": "LOST" } }),
        )
        .await;
    assert_eq!(error_code(&mixed), "NOT_FOUND");
    let mixed_delete = app
        .gql(Some(&member), DELETE, json!({ "ids": [mine, a] }))
        .await;
    assert_eq!(error_code(&mixed_delete), "NOT_FOUND");
    // By filter, a member only reaches their own.
    let own = app
        .gql(
            Some(&member),
            DELETE,
            json!({ "f": { "firstName": { "in": ["a", "b", "m"] } } }),
        )
        .await;
    assert_eq!(own["data"]["bulkDeleteLeads"]["count"], 1, "{own}");
    assert_eq!(statuses(&app, &admin).await.len(), 3);

    let deleted = app
        .gql(Some(&admin), DELETE, json!({ "ids": [a, b] }))
        .await;
    assert_eq!(deleted["data"]["bulkDeleteLeads"]["count"], 2);
    assert_eq!(statuses(&app, &admin).await, vec!["QUALIFIED"]);
    let tasks = app
        .gql(
            Some(&admin),
            "mutation { bulkDeleteTasks(ids: [\"424242\"]) { count } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&tasks), "NOT_FOUND");
}
