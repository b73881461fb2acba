//! Bulk operations: by ids and by filter, one transaction, validated patch, scope.

use serde_json::{json, Value};

use crate::harness::*;

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
    let a = app
        .create_lead(&admin, json!({ "firstName": "a", "priority": "LOW" }))
        .await;
    let b = app
        .create_lead(&admin, json!({ "firstName": "b", "priority": "LOW" }))
        .await;
    app.create_lead(&admin, json!({ "firstName": "c", "priority": "HIGH" }))
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
    let mine = app.create_lead(&member, json!({ "firstName": "m" })).await;
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

/// Creates a record with `mutation` (e.g. `createTask`) and returns its ID.
async fn create(app: &TestApp, token: &str, kind: &str, input: Value) -> String {
    let mutation = format!(
        "mutation($i: {kind}Input!) {{ create{kind}(input: $i) {{ {field} {{ id }} }} }}",
        field = kind.to_lowercase()
    );
    let answer = app.gql(Some(token), &mutation, json!({ "i": input })).await;
    answer["data"][format!("create{kind}")][kind.to_lowercase()]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{answer}"))
        .to_string()
}

fn bulk_update(kind: &str, plural: &str) -> String {
    format!(
        "mutation($ids: [ID!], $f: {kind}Filter, $p: {kind}Input!) \
         {{ bulkUpdate{plural}(ids: $ids, filter: $f, patch: $p) {{ count }} }}"
    )
}

#[tokio::test]
async fn bulk_update_opportunities_applies_stage_rules_per_row() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let kind = "Opportunity";
    let open = create(
        &app,
        &admin,
        kind,
        json!({ "name": "open", "stage": "PROPOSAL" }),
    )
    .await;
    let won = create(
        &app,
        &admin,
        kind,
        json!({ "name": "won", "stage": "CLOSED_WON", "probability": 90 }),
    )
    .await;
    let update = bulk_update(kind, "Opportunities");

    // Every row moves to closed_won: the open one takes the stage's probability and a close
    // date; the one already won keeps its own probability.
    let answer = app
        .gql(
            Some(&admin),
            &update,
            json!({ "ids": [open, won], "p": { "stage": "CLOSED_WON" } }),
        )
        .await;
    assert_eq!(
        answer["data"]["bulkUpdateOpportunities"]["count"], 2,
        "{answer}"
    );
    let rows = app
        .gql(
            Some(&admin),
            "{ opportunities(orderBy: [{field: NAME}]) { nodes { name stage probability actualCloseDate } } }",
            json!({}),
        )
        .await;
    let nodes = &rows["data"]["opportunities"]["nodes"];
    assert_eq!(nodes[0]["name"], "open");
    assert_eq!(nodes[0]["probability"], 100);
    assert!(nodes[0]["actualCloseDate"].is_string(), "{rows}");
    assert_eq!(nodes[1]["probability"], 90);

    // A negative amount in the patch changes nothing, by filter too.
    let bad = app
        .gql(
            Some(&admin),
            &update,
            json!({ "f": { "stage": { "eq": "CLOSED_WON" } }, "p": { "stage": "PROSPECTING", "amount": "-1" } }),
        )
        .await;
    assert_eq!(error_code(&bad), "BAD_USER_INPUT", "{bad}");
    assert_eq!(error_field(&bad), "amount");
    let reopened = app
        .gql(
            Some(&admin),
            &update,
            json!({ "f": { "stage": { "eq": "CLOSED_WON" } }, "p": { "stage": "NEGOTIATION" } }),
        )
        .await;
    assert_eq!(
        reopened["data"]["bulkUpdateOpportunities"]["count"], 2,
        "{reopened}"
    );
    let rows = app
        .gql(
            Some(&admin),
            "{ opportunities { nodes { stage actualCloseDate } } }",
            json!({}),
        )
        .await;
    for node in rows["data"]["opportunities"]["nodes"].as_array().unwrap() {
        assert_eq!(node["stage"], "NEGOTIATION");
        assert!(node["actualCloseDate"].is_null(), "{rows}");
    }
}

#[tokio::test]
async fn bulk_update_tasks_checks_each_row_and_rolls_back() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let kind = "Task";
    let early = create(
        &app,
        &admin,
        kind,
        json!({ "title": "early", "dueAt": "2030-01-01T10:00:00Z" }),
    )
    .await;
    let late = create(
        &app,
        &admin,
        kind,
        json!({ "title": "late", "dueAt": "2030-06-01T10:00:00Z" }),
    )
    .await;
    let update = bulk_update(kind, "Tasks");

    // A reminder after one task's due time breaks that row: nothing changes anywhere.
    let bad = app
        .gql(
            Some(&admin),
            &update,
            json!({ "ids": [early, late], "p": { "status": "IN_PROGRESS", "reminderAt": "2030-03-01T10:00:00Z" } }),
        )
        .await;
    assert_eq!(error_code(&bad), "BAD_USER_INPUT", "{bad}");
    assert_eq!(error_field(&bad), "reminderAt");
    let rows = app
        .gql(
            Some(&admin),
            "{ tasks { nodes { status reminderAt completedAt } } }",
            json!({}),
        )
        .await;
    for node in rows["data"]["tasks"]["nodes"].as_array().unwrap() {
        assert_eq!(node["status"], "PENDING", "{rows}");
        assert!(node["reminderAt"].is_null());
    }

    let done = app
        .gql(
            Some(&admin),
            &update,
            json!({ "ids": [early, late], "p": { "status": "COMPLETED" } }),
        )
        .await;
    assert_eq!(done["data"]["bulkUpdateTasks"]["count"], 2, "{done}");
    let rows = app
        .gql(
            Some(&admin),
            "{ tasks { nodes { status completedAt } } }",
            json!({}),
        )
        .await;
    for node in rows["data"]["tasks"]["nodes"].as_array().unwrap() {
        assert_eq!(node["status"], "COMPLETED");
        assert!(node["completedAt"].is_string(), "{rows}");
    }
}

#[tokio::test]
async fn bulk_update_contacts_and_companies() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let acme = create(&app, &admin, "Company", json!({ "name": "Acme" })).await;
    let globex = create(&app, &admin, "Company", json!({ "name": "Globex" })).await;
    let companies = app
        .gql(
            Some(&admin),
            &bulk_update("Company", "Companies"),
            json!({ "f": { "name": { "startsWith": "a" } }, "p": { "industry": "Software" } }),
        )
        .await;
    assert_eq!(
        companies["data"]["bulkUpdateCompanies"]["count"], 1,
        "{companies}"
    );

    let ann = create(
        &app,
        &admin,
        "Contact",
        json!({ "firstName": "Ann", "email": "ann@acme.test" }),
    )
    .await;
    let bob = create(
        &app,
        &admin,
        "Contact",
        json!({ "firstName": "Bob", "email": "bob@acme.test" }),
    )
    .await;
    let update = bulk_update("Contact", "Contacts");
    let moved = app
        .gql(
            Some(&admin),
            &update,
            json!({ "ids": [ann, bob], "p": { "companyId": globex, "contactType": "CUSTOMER" } }),
        )
        .await;
    assert_eq!(moved["data"]["bulkUpdateContacts"]["count"], 2, "{moved}");
    // One email for two contacts breaks the unique rule: CONFLICT, nothing changes.
    let clash = app
        .gql(
            Some(&admin),
            &update,
            json!({ "ids": [ann, bob], "p": { "email": "same@acme.test", "companyId": acme } }),
        )
        .await;
    assert_eq!(error_code(&clash), "CONFLICT", "{clash}");
    assert_eq!(error_field(&clash), "email");
    // A company the caller cannot see is a bad `companyId`.
    let foreign = app
        .gql(
            Some(&admin),
            &update,
            json!({ "ids": [ann], "p": { "companyId": "999999" } }),
        )
        .await;
    assert_eq!(error_code(&foreign), "BAD_USER_INPUT", "{foreign}");
    assert_eq!(error_field(&foreign), "companyId");
    let rows = app
        .gql(
            Some(&admin),
            "{ companies(orderBy: [{field: NAME}]) { nodes { name industry contacts { email contactType } } } }",
            json!({}),
        )
        .await;
    let nodes = &rows["data"]["companies"]["nodes"];
    assert_eq!(nodes[0]["industry"], "Software", "{rows}");
    assert!(nodes[1]["industry"].is_null());
    assert_eq!(nodes[0]["contacts"].as_array().unwrap().len(), 0);
    let contacts = nodes[1]["contacts"].as_array().unwrap();
    assert_eq!(contacts.len(), 2, "{rows}");
    assert!(contacts.iter().all(|c| c["contactType"] == "CUSTOMER"
        && c["email"].as_str().unwrap().ends_with("@acme.test")
        && c["email"] != "same@acme.test"));
}
