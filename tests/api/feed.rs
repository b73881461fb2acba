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

const RECORD_TIMELINE: &str = "query($id: ID!, $first: Int!, $after: String) { recordTimeline(recordType: LEAD, recordId: $id, first: $first, after: $after) { pageInfo { hasNextPage endCursor } edges { cursor node { __typename ... on Activity { id } ... on Comment { id } ... on RecordEvent { id action } } } } }";

/// Pages of one entry each, through entries that all share one moment, give the whole
/// timeline once, in the order of one big page: none skipped, none repeated.
#[tokio::test]
async fn the_record_timeline_pages_through_entries_of_the_same_moment() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let lead = app.create_lead(&admin, json!({ "firstName": "Tie" })).await;
    for subject in ["One", "Two"] {
        let logged = app
            .gql(
                Some(&admin),
                "mutation($id: ID!, $s: String!) { logActivity(input: {kind: CALL, subject: $s, leadId: $id}) { activity { id } } }",
                json!({ "id": lead, "s": subject }),
            )
            .await;
        assert!(logged["errors"].is_null(), "{logged}");
    }
    for body in ["First", "Second"] {
        let commented = app
            .gql(
                Some(&admin),
                "mutation($id: ID!, $b: String!) { addComment(input: {recordType: LEAD, recordId: $id, body: $b}) { id } }",
                json!({ "id": lead, "b": body }),
            )
            .await;
        assert!(commented["errors"].is_null(), "{commented}");
    }
    // Everything about the lead at one moment.
    let moment = "'2026-01-01T00:00:00Z'";
    app.execute(&format!(
        "UPDATE activities SET occurred_at = {moment} WHERE lead_id = {lead}"
    ))
    .await;
    app.execute(&format!(
        "UPDATE comments SET created_at = {moment} WHERE entity = 'lead' AND record_id = {lead}"
    ))
    .await;
    app.execute(&format!(
        "UPDATE record_events SET occurred_at = {moment} WHERE entity = 'lead' AND record_id = {lead}"
    ))
    .await;

    let key = |edge: &Value| {
        format!(
            "{}:{}",
            edge["node"]["__typename"].as_str().unwrap(),
            edge["node"]["id"].as_str().unwrap()
        )
    };
    let whole = app
        .gql(
            Some(&admin),
            RECORD_TIMELINE,
            json!({ "id": lead, "first": 50 }),
        )
        .await;
    assert!(whole["errors"].is_null(), "{whole}");
    let whole = &whole["data"]["recordTimeline"];
    assert_eq!(whole["pageInfo"]["hasNextPage"], false);
    let all: Vec<String> = whole["edges"].as_array().unwrap().iter().map(key).collect();
    // created + two last_contacted_at changes, two comments, two calls.
    assert_eq!(all.len(), 7, "{all:?}");
    let kinds: Vec<&str> = all.iter().map(|k| k.split(':').next().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "RecordEvent",
            "RecordEvent",
            "RecordEvent",
            "Comment",
            "Comment",
            "Activity",
            "Activity"
        ],
        "at one moment: changes, comments, activities"
    );

    let mut paged = Vec::new();
    let mut after = Value::Null;
    loop {
        let page = app
            .gql(
                Some(&admin),
                RECORD_TIMELINE,
                json!({ "id": lead, "first": 1, "after": after }),
            )
            .await;
        assert!(page["errors"].is_null(), "{page}");
        let page = &page["data"]["recordTimeline"];
        let edges = page["edges"].as_array().unwrap();
        assert_eq!(edges.len(), 1, "{page}");
        assert_eq!(edges[0]["cursor"], page["pageInfo"]["endCursor"]);
        paged.push(key(&edges[0]));
        if page["pageInfo"]["hasNextPage"] == false {
            break;
        }
        assert!(paged.len() < 10, "paging does not end: {paged:?}");
        after = page["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(paged, all);

    let bad = app
        .gql(
            Some(&admin),
            RECORD_TIMELINE,
            json!({ "id": lead, "first": 1, "after": "garbage" }),
        )
        .await;
    assert_eq!(error_code(&bad), "BAD_USER_INPUT");
    assert_eq!(error_field(&bad), "after");
}
