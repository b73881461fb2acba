//! Ordering by every kind of sort key (decimal, date, time, enum rank, text) with ties and
//! missing values, paged forwards and backwards: the pages add up to the whole ordered list,
//! with nothing skipped or repeated. And the list operators of decimal, date and time filters.

use serde_json::{json, Value};

use crate::harness::*;

/// Every row of `field` (`opportunities`) in the given order, read in one page.
async fn whole(app: &TestApp, token: &str, field: &str, order: &str, keys: &str) -> Vec<Value> {
    let query =
        format!("{{ {field}(first: 500, orderBy: [{order}]) {{ nodes {{ id {keys} }} }} }}");
    let answer = app.gql(Some(token), &query, json!({})).await;
    answer["data"][field]["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("{query}: {answer}"))
        .clone()
}

/// The same rows read two at a time, forwards with `first`/`after` and backwards with
/// `last`/`before` (reversed back into order).
async fn paged(
    app: &TestApp,
    token: &str,
    field: &str,
    order: &str,
    keys: &str,
) -> [Vec<Value>; 2] {
    let mut directions = [Vec::new(), Vec::new()];
    for (forwards, rows) in [true, false].into_iter().zip(directions.iter_mut()) {
        let mut cursor = Value::Null;
        loop {
            let (size, position) = if forwards {
                ("first", "after")
            } else {
                ("last", "before")
            };
            let query = format!(
                "query($c: String) {{ {field}({size}: 2, {position}: $c, orderBy: [{order}]) {{ \
                 nodes {{ id {keys} }} pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }} }} }}"
            );
            let answer = app.gql(Some(token), &query, json!({ "c": cursor })).await;
            let page = &answer["data"][field];
            let nodes = page["nodes"]
                .as_array()
                .unwrap_or_else(|| panic!("{query}: {answer}"));
            if forwards {
                rows.extend(nodes.iter().cloned());
            } else {
                rows.splice(0..0, nodes.iter().cloned());
            }
            let (more, next) = if forwards {
                ("hasNextPage", "endCursor")
            } else {
                ("hasPreviousPage", "startCursor")
            };
            if page["pageInfo"][more] != true {
                break;
            }
            cursor = page["pageInfo"][next].clone();
            assert!(rows.len() <= 100, "{field} {order}: paging does not end");
        }
    }
    directions
}

/// Checks one ordering: paged both ways equals the whole list, and `key` runs in order with
/// missing values last ascending and first descending (`compare` orders two present values).
async fn check(
    app: &TestApp,
    token: &str,
    field: &str,
    key: &str,
    sort: &str,
    compare: fn(&Value, &Value) -> std::cmp::Ordering,
) {
    for direction in ["ASC", "DESC"] {
        let order = format!("{{field: {sort}, direction: {direction}}}");
        let all = whole(app, token, field, &order, key).await;
        assert!(all.len() >= 5, "{field}: {all:?}");
        let [forwards, backwards] = paged(app, token, field, &order, key).await;
        assert_eq!(forwards, all, "{field} {order} forwards");
        assert_eq!(backwards, all, "{field} {order} backwards");
        for pair in all.windows(2) {
            let (a, b) = (&pair[0][key], &pair[1][key]);
            let ordering = match (a.is_null(), b.is_null()) {
                (true, true) => std::cmp::Ordering::Equal,
                (true, false) => std::cmp::Ordering::Greater,
                (false, true) => std::cmp::Ordering::Less,
                (false, false) => compare(a, b),
            };
            let ordering = if direction == "DESC" {
                ordering.reverse()
            } else {
                ordering
            };
            assert_ne!(
                ordering,
                std::cmp::Ordering::Greater,
                "{field} {order}: {a} before {b} in {all:?}"
            );
        }
    }
}

fn number(a: &Value, b: &Value) -> std::cmp::Ordering {
    let n = |v: &Value| v.as_str().unwrap().parse::<f64>().unwrap();
    n(a).total_cmp(&n(b))
}

fn text(a: &Value, b: &Value) -> std::cmp::Ordering {
    a.as_str().cmp(&b.as_str())
}

fn instant(a: &Value, b: &Value) -> std::cmp::Ordering {
    let t = |v: &Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
    t(a).cmp(&t(b))
}

fn rank(a: &Value, b: &Value) -> std::cmp::Ordering {
    let r = |v: &Value| {
        ["LOW", "MEDIUM", "HIGH", "URGENT"]
            .iter()
            .position(|p| v == p)
    };
    r(a).cmp(&r(b))
}

#[tokio::test]
async fn every_sort_key_pages_without_gaps_or_repeats() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    // Ties and missing values in every key.
    let amounts = [
        Some("300"),
        Some("100"),
        None,
        Some("200"),
        Some("100"),
        None,
        Some("300"),
    ];
    let dates = [
        Some("2027-01-05"),
        None,
        Some("2027-01-05"),
        Some("2026-12-31"),
        None,
        Some("2027-02-01"),
        Some("2027-01-05"),
    ];
    for (i, (amount, date)) in amounts.iter().zip(dates).enumerate() {
        let answer = app
            .gql(
                Some(&admin),
                "mutation($i: OpportunityInput!) { createOpportunity(input: $i) { opportunity { id } } }",
                json!({ "i": { "name": format!("Deal {i}"), "amount": amount, "expectedCloseDate": date } }),
            )
            .await;
        assert!(answer["errors"].is_null(), "{answer}");
    }
    check(&app, &admin, "opportunities", "amount", "AMOUNT", number).await;
    check(
        &app,
        &admin,
        "opportunities",
        "expectedCloseDate",
        "EXPECTED_CLOSE_DATE",
        text,
    )
    .await;

    let dues = [
        Some("2027-03-01T10:00:00Z"),
        None,
        Some("2027-03-01T10:00:00Z"),
        Some("2027-02-28T23:59:59.5Z"),
        None,
        Some("2027-03-02T00:00:00Z"),
    ];
    let priorities = ["HIGH", "LOW", "HIGH", "URGENT", "MEDIUM", "LOW"];
    for (i, (due, priority)) in dues.iter().zip(priorities).enumerate() {
        app.create_task(
            &admin,
            json!({ "title": format!("Task {i}"), "dueAt": due, "priority": priority }),
        )
        .await;
    }
    check(&app, &admin, "tasks", "dueAt", "DUE_AT", instant).await;
    check(&app, &admin, "tasks", "priority", "PRIORITY", rank).await;

    let values = [
        Some("5000"),
        None,
        Some("5000"),
        Some("12.50"),
        None,
        Some("700"),
    ];
    for (i, value) in values.iter().enumerate() {
        app.create_lead(
            &admin,
            json!({ "firstName": format!("Lead {i}"), "estimatedValue": value }),
        )
        .await;
    }
    check(
        &app,
        &admin,
        "leads",
        "estimatedValue",
        "ESTIMATED_VALUE",
        number,
    )
    .await;
    // Rows written in one statement share their update time: ties throughout.
    app.execute("UPDATE leads SET updated_at = date_trunc('day', updated_at)")
        .await;
    check(&app, &admin, "leads", "updatedAt", "UPDATED_AT", instant).await;
}

#[tokio::test]
async fn decimal_date_and_time_filters_take_lists() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    for (name, amount, date) in [
        ("a", Some("100"), Some("2027-01-01")),
        ("b", Some("250.50"), Some("2027-02-01")),
        ("c", None, None),
        ("d", Some("100.00"), Some("2027-03-01")),
    ] {
        app.gql(
            Some(&admin),
            "mutation($i: OpportunityInput!) { createOpportunity(input: $i) { opportunity { id } } }",
            json!({ "i": { "name": name, "amount": amount, "expectedCloseDate": date } }),
        )
        .await;
    }
    let names = |filter: Value| {
        app.node_strings(
            &admin,
            "query($f: OpportunityFilter) { opportunities(filter: $f, orderBy: [{field: NAME}]) { nodes { name } } }",
            json!({ "f": filter }),
            "opportunities",
            "name",
        )
    };
    // 100 and 100.00 are the same number; a missing amount is in no list (so `notIn` any).
    assert_eq!(
        names(json!({ "amount": { "in": ["100", "250.5"] } })).await,
        ["a", "b", "d"]
    );
    assert_eq!(
        names(json!({ "amount": { "notIn": ["100"] } })).await,
        ["b", "c"]
    );
    assert_eq!(
        names(json!({ "expectedCloseDate": { "in": ["2027-01-01", "2027-03-01"] } })).await,
        ["a", "d"]
    );
    assert_eq!(
        names(json!({ "expectedCloseDate": { "ne": "2027-01-01" } })).await,
        ["b", "c", "d"]
    );
    assert_eq!(
        names(json!({ "expectedCloseDate": { "notIn": ["2027-01-01", "2027-02-01"] } })).await,
        ["c", "d"]
    );

    let due = [
        "2027-05-01T09:00:00Z",
        "2027-05-01T10:00:00+01:00",
        "2027-05-02T09:00:00Z",
    ];
    for (i, due) in due.iter().enumerate() {
        app.create_task(&admin, json!({ "title": format!("t{i}"), "dueAt": due }))
            .await;
    }
    let titles = |filter: Value| {
        app.node_strings(
            &admin,
            "query($f: TaskFilter) { tasks(filter: $f, orderBy: [{field: TITLE}]) { nodes { title } } }",
            json!({ "f": filter }),
            "tasks",
            "title",
        )
    };
    // 10:00+01:00 is 09:00Z: the same moment whatever the offset it was written with.
    assert_eq!(
        titles(json!({ "dueAt": { "in": ["2027-05-01T09:00:00Z"] } })).await,
        ["t0", "t1"]
    );
    assert_eq!(
        titles(json!({ "dueAt": { "ne": "2027-05-01T09:00:00Z" } })).await,
        ["t2"]
    );
    assert_eq!(
        titles(json!({ "dueAt": { "notIn": ["2027-05-02T09:00:00Z"] } })).await,
        ["t0", "t1"]
    );

    // A list longer than the limit names its field and runs nothing.
    let long: Vec<String> = (0..1001).map(|i| format!("{i}")).collect();
    let answer = app
        .gql(
            Some(&admin),
            "query($f: OpportunityFilter) { opportunities(filter: $f) { totalCount } }",
            json!({ "f": { "amount": { "in": long } } }),
        )
        .await;
    assert_eq!(error_code(&answer), "BAD_USER_INPUT", "{answer}");
    assert_eq!(error_field(&answer), "amount");
    // The same bound for enumeration lists.
    let stages = vec!["PROSPECTING"; 1001];
    let answer = app
        .gql(
            Some(&admin),
            "query($f: OpportunityFilter) { opportunities(filter: $f) { totalCount } }",
            json!({ "f": { "stage": { "notIn": stages } } }),
        )
        .await;
    assert_eq!(error_code(&answer), "BAD_USER_INPUT", "{answer}");
    assert_eq!(error_field(&answer), "stage");
}
