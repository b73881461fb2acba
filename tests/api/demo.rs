//! `mycrm demo`: a consistent, realistic workspace the permission rules apply to like any other.

use serde_json::json;

use mycrm::demo::{DemoOptions, DemoSize};

use crate::harness::*;

fn options() -> DemoOptions {
    DemoOptions {
        workspace_name: "Demo Sales".into(),
        email_domain: "demo.test".into(),
        password: "demo-password-1".into(),
        size: DemoSize {
            companies: 30,
            contacts: 120,
            leads: 300,
            opportunities: 60,
            tasks: 80,
            activities: 400,
            conversions: 5,
        },
    }
}

#[tokio::test]
async fn demo_workspace_is_consistent_and_scoped() {
    let app = TestApp::spawn().await;
    let mut steps = Vec::new();
    let demo = mycrm::demo::load(&app.app, &options(), |step, done, total| {
        steps.push((step.to_string(), done, total))
    })
    .await
    .expect("loading the demo");
    assert_eq!(demo.users.len(), 3);
    assert_eq!(demo.converted, 5);
    assert!(
        steps.contains(&("leads".to_string(), 300, 300)),
        "{steps:?}"
    );

    let ada = token_of(&app.login("ada@demo.test", "demo-password-1").await);
    let mia = token_of(&app.login("mia@demo.test", "demo-password-1").await);
    let counts = "{ leads { totalCount } contacts { totalCount } companies { totalCount }
        opportunities { totalCount } tasks { totalCount }
        leadStats { total byStatus { value count } }
        opportunityPipeline { stages { stage count } } }";
    let all = app.gql(Some(&ada), counts, json!({})).await;
    assert!(all["errors"].is_null(), "{all}");
    let data = &all["data"];
    assert_eq!(data["leads"]["totalCount"], 300);
    // Conversion may reuse a contact with the same email, so at most 5 new ones.
    let contacts = data["contacts"]["totalCount"].as_i64().unwrap();
    assert!((121..=125).contains(&contacts), "{contacts}");
    assert!(data["opportunities"]["totalCount"].as_i64().unwrap() >= 60);
    assert_eq!(data["tasks"]["totalCount"], 80);
    let statuses = data["leadStats"]["byStatus"].as_array().unwrap();
    let converted = statuses.iter().find(|s| s["value"] == "CONVERTED").unwrap();
    assert_eq!(converted["count"], 5);
    assert!(statuses.len() >= 5, "leads in every status: {statuses:?}");
    let stages = data["opportunityPipeline"]["stages"].as_array().unwrap();
    assert!(
        stages
            .iter()
            .filter(|s| s["count"].as_i64().unwrap() > 0)
            .count()
            >= 5
    );

    // The member sees only what she owns or is assigned, and no other workspace's records.
    let mine = app.gql(Some(&mia), counts, json!({})).await;
    let visible = mine["data"]["leads"]["totalCount"].as_i64().unwrap();
    assert!(visible > 0 && visible < 300, "{visible}");
    let foreign = app
        .gql(
            Some(&app.admin_token().await),
            "{ leads { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(foreign["data"]["leads"]["totalCount"], 0);

    // Every contact's company, every opportunity's contact and every task's link is a record
    // of the same workspace.
    let linked = app
        .gql(
            Some(&ada),
            "{ opportunities(first: 500) { nodes { company { id } contact { company { id } } } }
               tasks(first: 500) { nodes { lead { id } opportunity { id } } } }",
            json!({}),
        )
        .await;
    for node in linked["data"]["opportunities"]["nodes"].as_array().unwrap() {
        assert_eq!(
            node["company"]["id"], node["contact"]["company"]["id"],
            "{node}"
        );
    }
    for node in linked["data"]["tasks"]["nodes"].as_array().unwrap() {
        assert!(
            !node["lead"].is_null() || !node["opportunity"].is_null(),
            "{node}"
        );
    }

    // Loading it twice is refused: the workspace name is taken; nothing else is created.
    let users_before = app.count("users").await;
    let again = mycrm::demo::load(&app.app, &options(), |_, _, _| {}).await;
    let err = again.expect_err("a second demo with the same name");
    assert_eq!(err.code().as_str(), "CONFLICT");
    assert_eq!(app.count("users").await, users_before);
}
