//! Leads: create/read/update/delete/restore, validation, scoping, filters, search and paging.

use serde_json::{json, Value};

use crate::harness::*;

const CREATE: &str = "mutation($i: LeadInput!) { createLead(input: $i) { lead { id firstName lastName email companyName status priority score estimatedValue probability tags customFields owner { email } assignedTo { email } } } }";
const UPDATE: &str = "mutation($id: ID!, $i: LeadInput!) { updateLead(id: $id, input: $i) { lead { id firstName lastName email phone status estimatedValue } } }";
const GET: &str = "query($id: ID!) { lead(id: $id) { id firstName deletedAt } }";
const LIST: &str = "query($f: LeadFilter, $s: String, $o: [LeadOrderBy!], $first: Int, $after: String, $last: Int, $before: String) {
    leads(filter: $f, search: $s, orderBy: $o, first: $first, after: $after, last: $last, before: $before) {
      totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
      edges { cursor node { id firstName companyName score } } } }";

async fn create(app: &TestApp, token: &str, input: Value) -> String {
    let answer = app.gql(Some(token), CREATE, json!({ "i": input })).await;
    assert!(answer["errors"].is_null(), "createLead failed: {answer}");
    answer["data"]["createLead"]["lead"]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn list(app: &TestApp, token: &str, variables: Value) -> Value {
    let answer = app.gql(Some(token), LIST, variables).await;
    assert!(answer["errors"].is_null(), "leads failed: {answer}");
    answer["data"]["leads"].clone()
}

fn names(page: &Value) -> Vec<String> {
    page["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["firstName"].as_str().unwrap_or("").to_string())
        .collect()
}

#[tokio::test]
async fn create_read_update_delete_restore() {
    let app = TestApp::spawn().await;
    let (_, member) = app.user_with_role("mia@example.com", "MEMBER").await;
    let answer = app
        .gql(
            Some(&member),
            CREATE,
            json!({ "i": { "firstName": " Ada ", "lastName": "Lovelace", "email": "ADA@Example.com", "companyName": "Analytical Engines",
                            "estimatedValue": "12500.50", "probability": 40, "tags": ["vip", "VIP", " math "],
                            "customFields": { "region": "west", "seats": 12 } } }),
        )
        .await;
    let lead = &answer["data"]["createLead"]["lead"];
    assert_eq!(lead["firstName"], "Ada", "{answer}");
    assert_eq!(lead["email"], "ada@example.com");
    assert_eq!(lead["status"], "NEW");
    assert_eq!(lead["priority"], "MEDIUM");
    assert_eq!(lead["estimatedValue"], "12500.50");
    assert_eq!(lead["tags"], json!(["vip", "math"]));
    assert_eq!(lead["customFields"]["seats"], 12);
    assert_eq!(lead["owner"]["email"], "mia@example.com");
    assert!(lead["score"].is_null());
    let id = lead["id"].as_str().unwrap().to_string();

    // Partial update: omitted fields stay, null clears.
    let updated = app
        .gql(Some(&member), UPDATE, json!({ "id": id, "i": { "phone": "+1 555 0100", "lastName": null, "status": "CONTACTED" } }))
        .await;
    let lead = &updated["data"]["updateLead"]["lead"];
    assert_eq!(lead["phone"], "+1 555 0100", "{updated}");
    assert!(lead["lastName"].is_null());
    assert_eq!(lead["firstName"], "Ada");
    assert_eq!(lead["status"], "CONTACTED");

    let deleted = app
        .gql(
            Some(&member),
            "mutation($id: ID!) { deleteLead(id: $id) { lead { deletedAt } } }",
            json!({ "id": id }),
        )
        .await;
    assert!(
        deleted["data"]["deleteLead"]["lead"]["deletedAt"].is_string(),
        "{deleted}"
    );
    assert_eq!(list(&app, &member, json!({})).await["totalCount"], 0);
    let with_deleted = list(&app, &member, json!({ "f": { "includeDeleted": true } })).await;
    assert_eq!(with_deleted["totalCount"], 1);
    // A deleted lead cannot be edited until restored.
    let edit = app
        .gql(
            Some(&member),
            UPDATE,
            json!({ "id": id, "i": { "phone": "1" } }),
        )
        .await;
    assert_eq!(error_code(&edit), "NOT_FOUND");
    app.gql(
        Some(&member),
        "mutation($id: ID!) { restoreLead(id: $id) { lead { id } } }",
        json!({ "id": id }),
    )
    .await;
    assert_eq!(list(&app, &member, json!({})).await["totalCount"], 1);
    let read = app.gql(Some(&member), GET, json!({ "id": id })).await;
    assert!(read["data"]["lead"]["deletedAt"].is_null());
}

#[tokio::test]
async fn bad_input_names_the_field_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let other = app
        .other_workspace("Other", "o@other.test", "other-password")
        .await;
    let foreign_user = other["user"]["id"].as_str().unwrap().to_string();
    let cases = [
        (
            json!({ "firstName": "A", "email": "not-an-email" }),
            "email",
        ),
        (
            json!({ "firstName": "A", "estimatedValue": "-5" }),
            "estimatedValue",
        ),
        (
            json!({ "firstName": "A", "probability": 101 }),
            "probability",
        ),
        // 1 MB in a name field (the request itself stays under the 1 MiB body limit).
        (json!({ "firstName": "x".repeat(1_000_000) }), "firstName"),
        (json!({ "lastName": "  " }), "firstName"),
        (
            json!({ "firstName": "A", "assignedToId": foreign_user }),
            "assignedToId",
        ),
        (
            json!({ "firstName": "A", "customFields": ["not", "an", "object"] }),
            "customFields",
        ),
        (
            json!({ "firstName": "A", "companySize": -1 }),
            "companySize",
        ),
    ];
    for (input, field) in cases {
        let answer = app.gql(Some(&admin), CREATE, json!({ "i": input })).await;
        assert_eq!(error_code(&answer), "BAD_USER_INPUT", "{answer}");
        assert_eq!(error_field(&answer), field, "{answer}");
    }
    // Values the schema refuses itself are named the same way.
    for (input, field) in [
        (json!({ "firstName": "A", "status": "WON" }), "status"),
        (
            json!({ "firstName": "A", "estimatedValue": "lots" }),
            "estimatedValue",
        ),
        (
            json!({ "firstName": "A", "nextFollowUpAt": "Monday" }),
            "nextFollowUpAt",
        ),
    ] {
        let answer = app.gql(Some(&admin), CREATE, json!({ "i": input })).await;
        assert_eq!(error_code(&answer), "BAD_USER_INPUT", "{answer}");
        assert_eq!(error_field(&answer), field, "{answer}");
    }
    assert_eq!(app.count("leads").await, 0);

    // Clearing the only name, email or company a lead has is refused.
    let only_name = create(&app, &admin, json!({ "firstName": "Solo" })).await;
    let cleared = app
        .gql(
            Some(&admin),
            UPDATE,
            json!({ "id": only_name, "i": { "firstName": null } }),
        )
        .await;
    assert_eq!(error_code(&cleared), "BAD_USER_INPUT", "{cleared}");
    assert_eq!(error_field(&cleared), "firstName");

    // An update with one bad field changes nothing.
    let id = create(&app, &admin, json!({ "firstName": "Keep" })).await;
    let answer = app
        .gql(
            Some(&admin),
            UPDATE,
            json!({ "id": id, "i": { "firstName": "Changed", "probability": -1 } }),
        )
        .await;
    assert_eq!(error_field(&answer), "probability");
    let read = app.gql(Some(&admin), GET, json!({ "id": id })).await;
    assert_eq!(read["data"]["lead"]["firstName"], "Keep");

    for (variables, field) in [
        (json!({ "first": 0 }), "first"),
        (json!({ "first": 10_000 }), "first"),
        (json!({ "after": "bm9wZQ" }), "after"),
    ] {
        let answer = app.gql(Some(&admin), LIST, variables).await;
        assert_eq!(error_code(&answer), "BAD_USER_INPUT", "{answer}");
        assert_eq!(error_field(&answer), field);
    }
    // A cursor made for another ordering is refused.
    let page = list(&app, &admin, json!({ "first": 1 })).await;
    let cursor = page["pageInfo"]["endCursor"].clone();
    let answer = app
        .gql(
            Some(&admin),
            LIST,
            json!({ "after": cursor, "o": [{ "field": "SCORE" }] }),
        )
        .await;
    assert_eq!(error_field(&answer), "after");

    let missing = app.gql(Some(&admin), GET, json!({ "id": "999999" })).await;
    assert_eq!(error_code(&missing), "NOT_FOUND");
}

#[tokio::test]
async fn members_see_their_own_managers_see_all_other_workspaces_nothing() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (mia_id, mia) = app.user_with_role("mia@example.com", "MEMBER").await;
    let (_, max) = app.user_with_role("max@example.com", "MEMBER").await;
    let (_, manager) = app.user_with_role("mona@example.com", "MANAGER").await;
    let mias = create(&app, &mia, json!({ "firstName": "Mine" })).await;
    let assigned = create(
        &app,
        &admin,
        json!({ "firstName": "Assigned", "assignedToId": mia_id }),
    )
    .await;
    create(&app, &admin, json!({ "firstName": "Admin's" })).await;

    assert_eq!(list(&app, &mia, json!({})).await["totalCount"], 2);
    assert_eq!(list(&app, &max, json!({})).await["totalCount"], 0);
    assert_eq!(list(&app, &manager, json!({})).await["totalCount"], 3);
    assert_eq!(
        list(&app, &mia, json!({ "f": { "assignedToMe": true } })).await["totalCount"],
        1
    );
    assert_eq!(
        list(&app, &mia, json!({ "f": { "ownedByMe": true } })).await["totalCount"],
        1
    );

    for (query, variables) in [
        (GET, json!({ "id": mias })),
        (
            UPDATE,
            json!({ "id": mias, "i": { "firstName": "Hijacked" } }),
        ),
        (
            "mutation($id: ID!) { deleteLead(id: $id) { lead { id } } }",
            json!({ "id": mias }),
        ),
    ] {
        assert_eq!(
            error_code(&app.gql(Some(&max), query, variables).await),
            "NOT_FOUND"
        );
    }
    // Mia works on the lead assigned to her, but may not give records to others.
    let edit = app
        .gql(
            Some(&mia),
            UPDATE,
            json!({ "id": assigned, "i": { "firstName": "Worked" } }),
        )
        .await;
    assert!(edit["errors"].is_null(), "{edit}");
    let give = app
        .gql(
            Some(&mia),
            UPDATE,
            json!({ "id": mias, "i": { "ownerId": "1" } }),
        )
        .await;
    assert_eq!(error_code(&give), "FORBIDDEN");

    let other = app
        .other_workspace("Other", "o@other.test", "other-password")
        .await;
    let outsider = token_of(&other);
    assert_eq!(list(&app, &outsider, json!({})).await["totalCount"], 0);
    assert_eq!(
        error_code(&app.gql(Some(&outsider), GET, json!({ "id": mias })).await),
        "NOT_FOUND"
    );
    assert_eq!(
        error_code(
            &app.gql(
                Some(&outsider),
                UPDATE,
                json!({ "id": mias, "i": { "firstName": "X" } })
            )
            .await
        ),
        "NOT_FOUND"
    );
}

#[tokio::test]
async fn filters_and_search() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    create(&app, &admin, json!({ "firstName": "Ann", "companyName": "Acme Corporation", "status": "QUALIFIED", "tags": ["vip"], "customFields": { "region": "west", "seats": 50 } })).await;
    create(&app, &admin, json!({ "firstName": "Bob", "companyName": "Globex", "status": "NEW", "email": "bob@globex.test", "customFields": { "region": "east", "seats": 5 } })).await;
    create(&app, &admin, json!({ "firstName": "Cid", "companyName": "Initech", "status": "LOST", "priority": "HIGH" })).await;

    let count = |f: Value| {
        let app = &app;
        let admin = admin.clone();
        async move {
            list(app, &admin, json!({ "f": f })).await["totalCount"]
                .as_i64()
                .unwrap()
        }
    };
    assert_eq!(
        count(json!({ "status": { "in": ["NEW", "QUALIFIED"] } })).await,
        2
    );
    assert_eq!(count(json!({ "status": { "ne": "LOST" } })).await, 2);
    assert_eq!(
        count(json!({ "companyName": { "contains": "ACME" } })).await,
        1
    );
    assert_eq!(
        count(json!({ "firstName": { "startsWith": "b" } })).await,
        1
    );
    assert_eq!(count(json!({ "email": { "isNull": true } })).await, 2);
    assert_eq!(
        count(json!({ "or": [{ "priority": { "eq": "HIGH" } }, { "tags": ["vip"] }] })).await,
        2
    );
    assert_eq!(
        count(json!({ "not": { "status": { "eq": "NEW" } } })).await,
        2
    );
    assert_eq!(
        count(json!({ "custom": [{ "key": "region", "eq": "west" }] })).await,
        1
    );
    assert_eq!(
        count(json!({ "custom": [{ "key": "seats", "gt": "10" }] })).await,
        1
    );
    assert_eq!(count(json!({ "and": [{ "status": { "notIn": ["LOST"] } }, { "custom": [{ "key": "region", "isNull": true }] }] })).await, 0);

    let found = list(&app, &admin, json!({ "s": "acme" })).await;
    assert_eq!(names(&found), vec!["Ann"]);
    let by_email = list(&app, &admin, json!({ "s": "GLOBEX.TEST" })).await;
    assert_eq!(names(&by_email), vec!["Bob"]);
    assert_eq!(
        list(&app, &admin, json!({ "s": "100%" })).await["totalCount"],
        0
    );
}

#[tokio::test]
async fn ordering_and_paging_in_both_directions() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    // Ties and missing values on purpose.
    for (name, score) in [
        ("a", None),
        ("b", Some(50)),
        ("c", Some(50)),
        ("d", Some(90)),
        ("e", None),
        ("f", Some(10)),
    ] {
        let id = create(&app, &admin, json!({ "firstName": name })).await;
        if let Some(score) = score {
            use diesel_async::RunQueryDsl;
            let mut conn = app.app.db.get().await.unwrap();
            diesel::sql_query(format!("UPDATE leads SET score = {score} WHERE id = {id}"))
                .execute(&mut conn)
                .await
                .unwrap();
        }
    }
    let order = json!([{ "field": "SCORE", "direction": "DESC" }]);
    let full = list(&app, &admin, json!({ "o": order, "first": 10 })).await;
    let expected = names(&full);
    // NULLs first when descending, then by score, ties by ID (in the key's direction).
    assert_eq!(expected, vec!["e", "a", "d", "c", "b", "f"]);

    let mut forward = Vec::new();
    let mut after = Value::Null;
    loop {
        let page = list(
            &app,
            &admin,
            json!({ "o": order, "first": 2, "after": after }),
        )
        .await;
        forward.extend(names(&page));
        if page["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(forward, expected);

    let mut backward: Vec<String> = Vec::new();
    let mut before = Value::Null;
    loop {
        let page = list(
            &app,
            &admin,
            json!({ "o": order, "last": 2, "before": before }),
        )
        .await;
        let mut chunk = names(&page);
        chunk.extend(backward);
        backward = chunk;
        if page["pageInfo"]["hasPreviousPage"] != true {
            break;
        }
        before = page["pageInfo"]["startCursor"].clone();
    }
    assert_eq!(backward, expected);

    let by_name = list(
        &app,
        &admin,
        json!({ "o": [{ "field": "FIRST_NAME" }], "first": 3 }),
    )
    .await;
    assert_eq!(names(&by_name), vec!["a", "b", "c"]);
    let empty = list(
        &app,
        &admin,
        json!({ "f": { "firstName": { "eq": "zzz" } } }),
    )
    .await;
    assert_eq!(empty["totalCount"], 0);
    assert_eq!(empty["pageInfo"]["hasNextPage"], false);
    assert!(empty["pageInfo"]["endCursor"].is_null());
}

/// Every searchable table keeps fine statistics on `search_text`, so the planner can tell a
/// common word (walk the newest-first index) from a rare one (trigram index): see the
/// migration `search_statistics`. A new searchable table without it fails here.
#[tokio::test]
async fn searchable_columns_keep_fine_statistics() {
    let app = TestApp::spawn().await;
    let columns = app
        .rows(
            "SELECT c.relname AS table, a.attstattarget AS target FROM pg_attribute a \
             JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE a.attname = 'search_text' AND c.relkind = 'r' AND n.nspname = current_schema() \
             ORDER BY 1",
        )
        .await;
    let tables: Vec<&str> = columns
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["table"].as_str().unwrap())
        .collect();
    assert_eq!(
        tables,
        ["companies", "contacts", "leads", "opportunities", "tasks"]
    );
    for column in columns.as_array().unwrap() {
        assert_eq!(column["target"], 400, "{column}");
    }
}
