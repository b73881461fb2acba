//! Statistics against hand-counted fixtures, honouring filters and scope.

use chrono::{Datelike, Duration, Utc};
use serde_json::{json, Value};

use crate::harness::*;

async fn run(app: &TestApp, token: &str, query: &str) -> Value {
    let answer = app.gql(Some(token), query, json!({})).await;
    assert!(answer["errors"].is_null(), "{answer}");
    answer["data"].clone()
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
