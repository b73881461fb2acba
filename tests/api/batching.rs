//! DataLoaders: a nested list costs the same number of SQL statements whatever its length.

use serde_json::json;

use crate::harness::*;

const NESTED: &str =
    "{ leads(first: 100) { totalCount nodes { firstName owner { email } assignedTo { email }
    activities { kind actor { email } } convertedCompany { name } } } }";

#[tokio::test]
async fn nested_lists_do_not_multiply_queries() {
    let (app, counter) = TestApp::spawn_counting().await;
    let admin = app.admin_token().await;
    let (mia_id, _) = app.user_with_role("mia@example.com", "MEMBER").await;
    let mut statements = Vec::new();
    for round in 0..2 {
        // 5 leads, then 25.
        let wanted = if round == 0 { 5 } else { 25 };
        let have = app.count("leads").await;
        for i in have..wanted {
            let lead = app
                .gql(
                    Some(&admin),
                    "mutation($i: LeadInput!) { createLead(input: $i) { lead { id } } }",
                    json!({ "i": { "firstName": format!("l{i}"), "assignedToId": mia_id } }),
                )
                .await;
            let id = lead["data"]["createLead"]["lead"]["id"].clone();
            app.gql(Some(&admin), "mutation($id: ID!) { logActivity(input: {kind: NOTE, subject: \"hi\", leadId: $id}) { activity { id } } }", json!({ "id": id }))
                .await;
        }
        let before = counter.get();
        let answer = app.gql(Some(&admin), NESTED, json!({})).await;
        assert!(answer["errors"].is_null(), "{answer}");
        assert_eq!(answer["data"]["leads"]["totalCount"], wanted);
        statements.push(counter.get() - before);
    }
    // Authentication, count, page, then one query per relation (users, activities, companies);
    // a DataLoader batch can split in two when the rows resolve across its 1 ms window, so the
    // bound allows for that. An N+1 would cost at least 25 here.
    assert!(
        statements.iter().all(|n| *n <= 14),
        "statements for 5 and 25 leads: {statements:?}"
    );
    assert!(statements[1] <= statements[0] + 4, "{statements:?}");
}

const COMPANIES: &str = "{ companies(first: 100) { nodes { name owner { email }
    contacts { email owner { email } } opportunities { name contact { email } } } } }";

#[tokio::test]
async fn company_relations_are_batched() {
    let (app, counter) = TestApp::spawn_counting().await;
    let admin = app.admin_token().await;
    let mut statements = Vec::new();
    for wanted in [5_i64, 25] {
        let have = app.count("companies").await;
        for i in have..wanted {
            let company = app
                .gql(
                    Some(&admin),
                    "mutation($n: String!) { createCompany(input: {name: $n}) { company { id } } }",
                    json!({ "n": format!("c{i}") }),
                )
                .await;
            let company = company["data"]["createCompany"]["company"]["id"].clone();
            let contact = app
                .gql(
                    Some(&admin),
                    "mutation($c: ID!, $e: String!) { createContact(input: {firstName: \"x\", email: $e, companyId: $c}) { contact { id } } }",
                    json!({ "c": company, "e": format!("p{i}@example.com") }),
                )
                .await;
            let contact = contact["data"]["createContact"]["contact"]["id"].clone();
            let opportunity = app
                .gql(
                    Some(&admin),
                    "mutation($c: ID!, $p: ID!) { createOpportunity(input: {name: \"deal\", companyId: $c, contactId: $p}) { opportunity { id } } }",
                    json!({ "c": company, "p": contact }),
                )
                .await;
            assert!(opportunity["errors"].is_null(), "{opportunity}");
        }
        let before = counter.get();
        let answer = app.gql(Some(&admin), COMPANIES, json!({})).await;
        assert!(answer["errors"].is_null(), "{answer}");
        let nodes = answer["data"]["companies"]["nodes"].as_array().unwrap();
        assert_eq!(nodes.len() as i64, wanted);
        assert!(nodes
            .iter()
            .all(|c| c["contacts"].as_array().unwrap().len() == 1
                && c["opportunities"][0]["contact"]["email"] == c["contacts"][0]["email"]));
        statements.push(counter.get() - before);
    }
    // Authentication, page, then users, contacts, opportunities and the opportunities'
    // contacts: one query each (a batch may split in two across the DataLoader window).
    assert!(
        statements.iter().all(|n| *n <= 14),
        "statements for 5 and 25 companies: {statements:?}"
    );
    assert!(statements[1] <= statements[0] + 4, "{statements:?}");
}
