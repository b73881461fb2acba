//! `activityFeed` and `timeline`: what happened on the records you may see, and everything
//! about one record, newest first, paged, scoped like every list.

use serde_json::{json, Value};

use crate::harness::{error_code, error_field, TestApp};

const FEED: &str = "query($f: ActivityFeedFilter, $first: Int, $after: String) { activityFeed(filter: $f, first: $first, after: $after) { totalCount pageInfo { hasNextPage endCursor } nodes { entity recordId action changes actor { email } } } }";
const TIMELINE: &str = "query($id: ID!, $first: Int!, $before: DateTime) { timeline(recordType: LEAD, recordId: $id, first: $first, before: $before) { __typename ... on Activity { kind subject occurredAt } ... on Comment { body createdAt } ... on RecordEvent { action occurredAt changes } } }";

async fn feed(app: &TestApp, token: &str, variables: Value) -> Value {
    let answer = app.gql(Some(token), FEED, variables).await;
    assert!(answer["errors"].is_null(), "{answer}");
    answer["data"]["activityFeed"].clone()
}

#[tokio::test]
async fn the_feed_lists_what_happened_on_visible_records_newest_first() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (ann_id, ann) = app.user_with_role("ann@example.com", "MEMBER").await;
    let mine = app
        .create_lead(
            &admin,
            json!({ "firstName": "Mine", "assignedToId": ann_id }),
        )
        .await;
    let other = app
        .create_lead(&admin, json!({ "firstName": "Other" }))
        .await;
    let updated = app
        .gql(
            Some(&admin),
            "mutation($id: ID!) { updateLead(id: $id, input: {status: CONTACTED}) { lead { id } } }",
            json!({ "id": mine }),
        )
        .await;
    assert!(updated["errors"].is_null(), "{updated}");

    // The admin sees all three, newest first, two per page.
    let page = feed(&app, &admin, json!({ "first": 2 })).await;
    assert_eq!(page["totalCount"], 3);
    let nodes = page["nodes"].as_array().unwrap();
    assert_eq!(nodes[0]["action"], "updated");
    assert_eq!(nodes[0]["recordId"], mine.as_str());
    assert_eq!(nodes[0]["changes"]["status"]["new"], "contacted");
    assert_eq!(nodes[0]["actor"]["email"], "admin@example.com");
    assert_eq!(nodes[1]["recordId"], other.as_str());
    assert_eq!(page["pageInfo"]["hasNextPage"], true);
    let next = feed(
        &app,
        &admin,
        json!({ "first": 2, "after": page["pageInfo"]["endCursor"] }),
    )
    .await;
    assert_eq!(next["nodes"].as_array().unwrap().len(), 1);
    assert_eq!(next["nodes"][0]["recordId"], mine.as_str());
    assert_eq!(next["nodes"][0]["action"], "created");
    assert_eq!(next["pageInfo"]["hasNextPage"], false);

    // Ann, a member, sees her lead's events only.
    let hers = feed(&app, &ann, json!({})).await;
    assert_eq!(hers["totalCount"], 2);
    assert!(hers["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .all(|n| n["recordId"] == mine.as_str()));

    // Filters: kind, actions, actor.
    let updates = feed(
        &app,
        &admin,
        json!({ "f": { "entity": "LEAD", "actions": ["updated"] } }),
    )
    .await;
    assert_eq!(updates["totalCount"], 1);
    let by_ann = feed(&app, &admin, json!({ "f": { "actorId": ann_id } })).await;
    assert_eq!(by_ann["totalCount"], 0);
    let bad = app
        .gql(Some(&admin), FEED, json!({ "f": { "actorId": "nope" } }))
        .await;
    assert_eq!(error_code(&bad), "BAD_USER_INPUT");
    assert_eq!(error_field(&bad), "filter.actorId");
}

#[tokio::test]
async fn the_timeline_merges_activities_comments_and_changes() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (ann_id, ann) = app.user_with_role("ann@example.com", "MEMBER").await;
    let lead = app
        .create_lead(
            &admin,
            json!({ "firstName": "Tim", "assignedToId": ann_id }),
        )
        .await;
    let other = app
        .create_lead(&admin, json!({ "firstName": "Hidden" }))
        .await;
    let logged = app
        .gql(
            Some(&ann),
            "mutation($id: ID!) { logActivity(input: {kind: CALL, subject: \"First call\", leadId: $id}) { activity { id } } }",
            json!({ "id": lead }),
        )
        .await;
    assert!(logged["errors"].is_null(), "{logged}");
    let commented = app
        .gql(
            Some(&admin),
            "mutation($id: ID!) { addComment(input: {recordType: LEAD, recordId: $id, body: \"Looks promising\"}) { id } }",
            json!({ "id": lead }),
        )
        .await;
    assert!(commented["errors"].is_null(), "{commented}");

    let answer = app
        .gql(Some(&ann), TIMELINE, json!({ "id": lead, "first": 50 }))
        .await;
    assert!(answer["errors"].is_null(), "{answer}");
    let entries = answer["data"]["timeline"].as_array().unwrap().clone();
    let kinds: Vec<&str> = entries
        .iter()
        .map(|e| e["__typename"].as_str().unwrap())
        .collect();
    // Created, then the call (which also moved last_contacted_at), then the comment.
    assert_eq!(
        kinds,
        ["Comment", "RecordEvent", "Activity", "RecordEvent"],
        "{entries:?}"
    );
    assert_eq!(entries[0]["body"], "Looks promising");
    assert_eq!(entries[2]["subject"], "First call");
    assert_eq!(entries[3]["action"], "created");
    let times: Vec<&str> = entries
        .iter()
        .map(|e| {
            e["createdAt"]
                .as_str()
                .or(e["occurredAt"].as_str())
                .unwrap()
        })
        .collect();
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, sorted, "newest first");

    // Paging back from the second entry's time.
    let older = app
        .gql(
            Some(&ann),
            TIMELINE,
            json!({ "id": lead, "first": 50, "before": times[1] }),
        )
        .await;
    let older = older["data"]["timeline"].as_array().unwrap();
    assert!(
        older.len() < entries.len() && !older.is_empty(),
        "{older:?}"
    );

    // Someone else's record, and a bad page size.
    let hidden = app
        .gql(Some(&ann), TIMELINE, json!({ "id": other, "first": 10 }))
        .await;
    assert_eq!(error_code(&hidden), "NOT_FOUND", "{hidden}");
    let bad = app
        .gql(Some(&ann), TIMELINE, json!({ "id": lead, "first": 0 }))
        .await;
    assert_eq!(error_code(&bad), "BAD_USER_INPUT");
    assert_eq!(error_field(&bad), "first");
}
