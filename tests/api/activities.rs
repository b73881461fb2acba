//! Activities: logging on records, lastContactedAt, batched `activities` fields, validation.

use chrono::{Duration, Utc};
use serde_json::json;

use crate::harness::*;

const LOG: &str = "mutation($i: LogActivityInput!) { logActivity(input: $i) { activity { id kind subject actor { email } lead { firstName } } } }";

#[tokio::test]
async fn logging_activities() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let mut leads = Vec::new();
    for name in ["Ann", "Bob"] {
        let answer = app
            .gql(
                Some(&admin),
                "mutation($n: String!) { createLead(input: {firstName: $n}) { lead { id } } }",
                json!({ "n": name }),
            )
            .await;
        leads.push(
            answer["data"]["createLead"]["lead"]["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let earlier = (Utc::now() - Duration::days(2)).to_rfc3339();
    let note = app
        .gql(
            Some(&admin),
            LOG,
            json!({ "i": { "kind": "NOTE", "subject": "Likes blue", "leadId": leads[0] } }),
        )
        .await;
    assert_eq!(
        note["data"]["logActivity"]["activity"]["actor"]["email"], ADMIN_EMAIL,
        "{note}"
    );
    assert_eq!(
        note["data"]["logActivity"]["activity"]["lead"]["firstName"],
        "Ann"
    );
    let contacted =
        "query($id: ID!) { lead(id: $id) { lastContactedAt activities { kind subject } } }";
    let after_note = app
        .gql(Some(&admin), contacted, json!({ "id": leads[0] }))
        .await;
    assert!(
        after_note["data"]["lead"]["lastContactedAt"].is_null(),
        "a note is not contact: {after_note}"
    );

    app.gql(
        Some(&admin),
        LOG,
        json!({ "i": { "kind": "CALL", "subject": "Intro call", "leadId": leads[0] } }),
    )
    .await;
    let after_call = app
        .gql(Some(&admin), contacted, json!({ "id": leads[0] }))
        .await;
    let last = after_call["data"]["lead"]["lastContactedAt"]
        .as_str()
        .unwrap()
        .to_string();
    // An older call logged late does not move it back.
    app.gql(Some(&admin), LOG, json!({ "i": { "kind": "EMAIL", "body": "Sent pricing", "occurredAt": earlier, "leadId": leads[0] } })).await;
    let after_old = app
        .gql(Some(&admin), contacted, json!({ "id": leads[0] }))
        .await;
    assert_eq!(after_old["data"]["lead"]["lastContactedAt"], last.as_str());
    let activities = after_old["data"]["lead"]["activities"].as_array().unwrap();
    assert_eq!(activities.len(), 3);
    assert_eq!(
        activities[0]["subject"], "Intro call",
        "newest first: {after_old}"
    );

    // The activities of a whole page come in one batch.
    app.gql(
        Some(&admin),
        LOG,
        json!({ "i": { "kind": "MEETING", "subject": "Demo", "leadId": leads[1] } }),
    )
    .await;
    let page = app
        .gql(
            Some(&admin),
            "{ leads(orderBy: [{field: FIRST_NAME}]) { nodes { firstName activities { kind } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        page["data"]["leads"]["nodes"][0]["activities"]
            .as_array()
            .unwrap()
            .len(),
        3,
        "{page}"
    );
    assert_eq!(
        page["data"]["leads"]["nodes"][1]["activities"][0]["kind"],
        "MEETING"
    );

    let before = app.count("activities").await;
    let (_, member) = app.user_with_role("mia@example.com", "MEMBER").await;
    let future = (Utc::now() + Duration::days(1)).to_rfc3339();
    for (token, input, field) in [
        (&admin, json!({ "kind": "NOTE", "subject": "x" }), "leadId"),
        (
            &admin,
            json!({ "kind": "NOTE", "subject": "x", "leadId": leads[0], "contactId": "1" }),
            "leadId",
        ),
        (
            &admin,
            json!({ "kind": "NOTE", "leadId": leads[0] }),
            "subject",
        ),
        (
            &admin,
            json!({ "kind": "CALL", "subject": "x", "leadId": leads[0], "occurredAt": future }),
            "occurredAt",
        ),
        (
            &member,
            json!({ "kind": "NOTE", "subject": "x", "leadId": leads[0] }),
            "leadId",
        ),
    ] {
        let answer = app.gql(Some(token), LOG, json!({ "i": input })).await;
        assert_eq!(error_code(&answer), "BAD_USER_INPUT", "{answer}");
        assert_eq!(error_field(&answer), field);
    }
    assert_eq!(app.count("activities").await, before);
}

/// Activities carry tags and custom fields like every record; bad ones name the field and
/// log nothing.
#[tokio::test]
async fn activities_carry_tags_and_custom_fields() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let lead = app.create_lead(&admin, json!({ "firstName": "Ann" })).await;
    let logged = app
        .gql(
            Some(&admin),
            "mutation($i: LogActivityInput!) { logActivity(input: $i) { activity { tags customFields } } }",
            json!({ "i": { "kind": "CALL", "subject": "Pricing", "leadId": lead,
                "tags": [" pricing ", "Pricing", "q3"], "customFields": { "durationMinutes": 25 } } }),
        )
        .await;
    assert_eq!(
        logged["data"]["logActivity"]["activity"],
        json!({ "tags": ["pricing", "q3"], "customFields": { "durationMinutes": 25 } }),
        "{logged}"
    );
    let listed = app
        .gql(
            Some(&admin),
            "query($id: ID!) { lead(id: $id) { activities { tags customFields } } }",
            json!({ "id": lead }),
        )
        .await;
    assert_eq!(
        listed["data"]["lead"]["activities"][0]["tags"],
        json!(["pricing", "q3"])
    );

    let too_many: Vec<String> = (0..51).map(|i| format!("t{i}")).collect();
    for (extra, field) in [
        (json!({ "tags": too_many }), "tags"),
        (json!({ "tags": ["x".repeat(51)] }), "tags"),
        (
            json!({ "customFields": ["not", "an", "object"] }),
            "customFields",
        ),
    ] {
        let mut input = json!({ "kind": "NOTE", "subject": "x", "leadId": lead });
        input
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let answer = app.gql(Some(&admin), LOG, json!({ "i": input })).await;
        assert_eq!(error_code(&answer), "BAD_USER_INPUT", "{answer}");
        assert_eq!(error_field(&answer), field, "{answer}");
    }
    assert_eq!(app.count("activities").await, 1);
}
