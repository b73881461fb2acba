//! Statistics against hand-counted fixtures, honouring filters and scope.

use chrono::{Datelike, Duration, Utc};
use serde_json::{json, Value};

use crate::harness::*;

async fn run(app: &TestApp, token: &str, query: &str) -> Value {
    let answer = app.gql(Some(token), query, json!({})).await;
    assert!(answer["errors"].is_null(), "{answer}");
    answer["data"].clone()
}

const CONTACT_COUNTS: &str = "total byType { value count } byStatus { value count }";
const TASK_COUNTS: &str = "total byStatus { value count } overdue dueToday assignedToMe";

/// One statistic (`contactStats`), narrowed by `filter` (`(filter: {...})`, or nothing).
async fn statistic(
    app: &TestApp,
    token: &str,
    field: &str,
    filter: &str,
    selection: &str,
) -> Value {
    let query = format!("{{ {field}{filter} {{ {selection} }} }}");
    run(app, token, &query).await[field].clone()
}

#[tokio::test]
async fn statistics() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (mia_id, mia) = app.user_with_role("mia@example.com", "MEMBER").await;
    for (name, status, priority, source) in [
        ("a", "NEW", "HIGH", "REFERRAL"),
        ("b", "NEW", "LOW", "REFERRAL"),
        ("c", "QUALIFIED", "HIGH", "WEBSITE"),
        ("d", "LOST", "MEDIUM", "EVENT"),
    ] {
        let input = json!({ "firstName": name, "status": status, "priority": priority, "leadSource": source, "assignedToId": if name == "a" { Value::from(mia_id.clone()) } else { Value::Null } });
        app.gql(
            Some(&admin),
            "mutation($i: LeadInput!) { createLead(input: $i) { lead { id } } }",
            json!({ "i": input }),
        )
        .await;
    }
    {
        use diesel_async::RunQueryDsl;
        let mut conn = app.app.db.get().await.unwrap();
        diesel::sql_query("UPDATE leads SET score = CASE first_name WHEN 'a' THEN 80 WHEN 'b' THEN 60 ELSE NULL END")
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let stats = run(&app, &admin, "{ leadStats { total byStatus { value count } byPriority { value count } bySource { value count } averageScore hot } }").await;
    let s = &stats["leadStats"];
    assert_eq!(s["total"], 4);
    assert_eq!(s["byStatus"][0], json!({ "value": "NEW", "count": 2 }));
    assert_eq!(s["byPriority"][0], json!({ "value": "HIGH", "count": 2 }));
    assert_eq!(s["bySource"][0], json!({ "value": "REFERRAL", "count": 2 }));
    assert_eq!(s["averageScore"], "70.0");
    assert_eq!(s["hot"], 1);
    let filtered = run(
        &app,
        &admin,
        "{ leadStats(filter: {status: {eq: NEW}}) { total hot } }",
    )
    .await;
    assert_eq!(filtered["leadStats"], json!({ "total": 2, "hot": 1 }));
    // A member counts only their own.
    let mine = run(&app, &mia, "{ leadStats { total assignedToMe } }").await;
    assert_eq!(mine["leadStats"], json!({ "total": 1, "assignedToMe": 1 }));

    let this_month = Utc::now().date_naive().with_day(1).unwrap();
    let next_month = (this_month + Duration::days(40)).with_day(15).unwrap();
    for (name, stage, amount, close) in [
        ("x", "PROSPECTING", "1000", next_month),
        ("y", "NEGOTIATION", "2000", next_month),
        ("z", "CLOSED_WON", "5000", this_month),
    ] {
        let input = json!({ "name": name, "stage": stage, "amount": amount, "expectedCloseDate": close.format("%Y-%m-%d").to_string() });
        let answer = app.gql(Some(&admin), "mutation($i: OpportunityInput!) { createOpportunity(input: $i) { opportunity { id } } }", json!({ "i": input })).await;
        assert!(answer["errors"].is_null(), "{answer}");
    }
    let pipeline = run(&app, &admin, "{ opportunityPipeline { count totalAmount weightedAmount stages { stage count totalAmount weightedAmount } } }").await;
    let p = &pipeline["opportunityPipeline"];
    assert_eq!(p["count"], 3);
    assert_eq!(p["totalAmount"], "8000.00");
    // 1000 × 10% + 2000 × 75% + 5000 × 100%
    assert_eq!(p["weightedAmount"], "6600.00");
    assert_eq!(p["stages"].as_array().unwrap().len(), 6);
    assert_eq!(
        p["stages"][3],
        json!({ "stage": "NEGOTIATION", "count": 1, "totalAmount": "2000.00", "weightedAmount": "1500.00" })
    );
    let forecast = run(
        &app,
        &admin,
        "{ opportunityForecast(months: 3) { month count weightedAmount } }",
    )
    .await;
    let months = forecast["opportunityForecast"].as_array().unwrap();
    assert_eq!(months.len(), 3);
    assert_eq!(
        months[0]["count"], 0,
        "closed deals are not forecast: {forecast}"
    );
    assert_eq!(months[1]["weightedAmount"], "1600.00");
    let bad = app
        .gql(
            Some(&admin),
            "{ opportunityForecast(months: 0) { month } }",
            json!({}),
        )
        .await;
    assert_eq!(error_field(&bad), "months");

    let due = (Utc::now() - Duration::hours(30)).to_rfc3339();
    app.gql(Some(&admin), "mutation($d: DateTime!) { createTask(input: {title: \"late\", dueAt: $d}) { task { id } } }", json!({ "d": due })).await;
    app.gql(
        Some(&admin),
        "mutation { createTask(input: {title: \"done\", status: COMPLETED}) { task { id } } }",
        json!({}),
    )
    .await;
    let tasks = run(
        &app,
        &admin,
        "{ taskStats { total overdue dueToday byStatus { value count } } }",
    )
    .await;
    assert_eq!(tasks["taskStats"]["total"], 2);
    assert_eq!(tasks["taskStats"]["overdue"], 1);
    let contacts = run(
        &app,
        &admin,
        "{ contactStats { total byType { value count } } }",
    )
    .await;
    assert_eq!(contacts["contactStats"]["total"], 0);
}

/// Contact and task statistics field by field, against fixtures counted by hand, for the
/// whole workspace, a filter, a member's scope and `includeDeleted`.
#[tokio::test]
async fn contact_and_task_statistics_and_deleted_records() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (mia_id, mia) = app.user_with_role("mia@example.com", "MEMBER").await;
    let create = |kind: &'static str, input: Value| {
        let (app, admin) = (&app, &admin);
        async move {
            let query = format!(
                "mutation($i: {kind}Input!) {{ create{kind}(input: $i) {{ {one} {{ id }} }} }}",
                one = kind.to_lowercase()
            );
            let answer = app.gql(Some(admin), &query, json!({ "i": input })).await;
            answer["data"][format!("create{kind}")][kind.to_lowercase()]["id"]
                .as_str()
                .unwrap_or_else(|| panic!("{answer}"))
                .to_string()
        }
    };
    let delete = |kind: &'static str, id: String| {
        let (app, admin) = (&app, &admin);
        async move {
            let query = format!(
                "mutation($id: ID!) {{ delete{kind}(id: $id) {{ {one} {{ id }} }} }}",
                one = kind.to_lowercase()
            );
            let answer = app.gql(Some(admin), &query, json!({ "id": id })).await;
            assert!(answer["errors"].is_null(), "{answer}");
        }
    };

    for (name, kind, status) in [
        ("c1", "CUSTOMER", "ACTIVE"),
        ("c2", "CUSTOMER", "INACTIVE"),
        ("c3", "PROSPECT", "ACTIVE"),
    ] {
        create(
            "Contact",
            json!({ "firstName": name, "contactType": kind, "status": status }),
        )
        .await;
    }
    create(
        "Contact",
        json!({ "firstName": "c4", "contactType": "VENDOR", "assignedToId": mia_id }),
    )
    .await;
    let gone = create(
        "Contact",
        json!({ "firstName": "c5", "contactType": "PARTNER" }),
    )
    .await;
    delete("Contact", gone).await;

    assert_eq!(
        statistic(&app, &admin, "contactStats", "", CONTACT_COUNTS).await,
        json!({
            "total": 4,
            "byType": [
                { "value": "CUSTOMER", "count": 2 },
                { "value": "PROSPECT", "count": 1 },
                { "value": "VENDOR", "count": 1 },
            ],
            "byStatus": [{ "value": "ACTIVE", "count": 3 }, { "value": "INACTIVE", "count": 1 }],
        })
    );
    assert_eq!(
        statistic(
            &app,
            &admin,
            "contactStats",
            "(filter: {contactType: {eq: CUSTOMER}})",
            CONTACT_COUNTS
        )
        .await,
        json!({
            "total": 2,
            "byType": [{ "value": "CUSTOMER", "count": 2 }],
            "byStatus": [{ "value": "ACTIVE", "count": 1 }, { "value": "INACTIVE", "count": 1 }],
        })
    );
    let with_deleted = statistic(
        &app,
        &admin,
        "contactStats",
        "(filter: {includeDeleted: true})",
        CONTACT_COUNTS,
    )
    .await;
    assert_eq!(with_deleted["total"], 5, "{with_deleted}");
    // Ties in count go by value: partner before prospect and vendor.
    assert_eq!(
        with_deleted["byType"][1],
        json!({ "value": "PARTNER", "count": 1 })
    );
    assert_eq!(
        statistic(&app, &mia, "contactStats", "", CONTACT_COUNTS).await,
        json!({
            "total": 1,
            "byType": [{ "value": "VENDOR", "count": 1 }],
            "byStatus": [{ "value": "ACTIVE", "count": 1 }],
        })
    );

    // Tasks: the day is today's UTC day; each due time sits strictly inside its window. Too
    // close to midnight the window could close before the counts are read: start the day over.
    let until_midnight = (Utc::now() + Duration::days(1))
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc()
        - Utc::now();
    if until_midnight < Duration::minutes(2) {
        tokio::time::sleep((until_midnight + Duration::seconds(1)).to_std().unwrap()).await;
    }
    let now = Utc::now();
    let start = now.date_naive().and_hms_opt(0, 0, 0).unwrap().and_utc();
    let end = start + Duration::days(1);
    let earlier_today = start + (now - start) / 2;
    let later_today = now + (end - now) / 2;
    let long_ago = now - Duration::hours(30);
    for (title, status, due, assignee) in [
        ("t1", "PENDING", Some(long_ago), Some(&mia_id)),
        ("t2", "IN_PROGRESS", Some(earlier_today), None),
        ("t3", "PENDING", Some(later_today), None),
        ("t4", "COMPLETED", Some(long_ago), Some(&mia_id)),
        ("t5", "CANCELLED", None, None),
    ] {
        create(
            "Task",
            json!({ "title": title, "status": status, "dueAt": due.map(|d| d.to_rfc3339()), "assignedToId": assignee }),
        )
        .await;
    }
    let gone = create(
        "Task",
        json!({ "title": "t6", "dueAt": long_ago.to_rfc3339() }),
    )
    .await;
    delete("Task", gone).await;

    assert_eq!(
        statistic(&app, &admin, "taskStats", "", TASK_COUNTS).await,
        json!({
            "total": 5,
            "byStatus": [
                { "value": "PENDING", "count": 2 },
                { "value": "CANCELLED", "count": 1 },
                { "value": "COMPLETED", "count": 1 },
                { "value": "IN_PROGRESS", "count": 1 },
            ],
            "overdue": 2,
            "dueToday": 2,
            "assignedToMe": 0,
        })
    );
    assert_eq!(
        statistic(&app, &mia, "taskStats", "", TASK_COUNTS).await,
        json!({
            "total": 2,
            "byStatus": [{ "value": "COMPLETED", "count": 1 }, { "value": "PENDING", "count": 1 }],
            "overdue": 1,
            "dueToday": 0,
            "assignedToMe": 2,
        })
    );
    let with_deleted = statistic(
        &app,
        &admin,
        "taskStats",
        "(filter: {includeDeleted: true})",
        TASK_COUNTS,
    )
    .await;
    assert_eq!(
        (
            &with_deleted["total"],
            &with_deleted["overdue"],
            &with_deleted["byStatus"][0]
        ),
        (
            &json!(6),
            &json!(3),
            &json!({ "value": "PENDING", "count": 3 })
        ),
        "{with_deleted}"
    );
    let open = statistic(
        &app,
        &admin,
        "taskStats",
        "(filter: {status: {in: [PENDING, IN_PROGRESS]}})",
        TASK_COUNTS,
    )
    .await;
    assert_eq!(
        (&open["total"], &open["dueToday"]),
        (&json!(3), &json!(2)),
        "{open}"
    );
}
