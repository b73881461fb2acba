//! Companies: CRUD, validation, scoping, filters and search on the shared engine.

use serde_json::{json, Value};

use crate::harness::*;

const CREATE: &str = "mutation($i: CompanyInput!) { createCompany(input: $i) { company { id name domain employeeCount annualRevenue tags owner { email } } } }";
const UPDATE: &str = "mutation($id: ID!, $i: CompanyInput!) { updateCompany(id: $id, input: $i) { company { id name domain city } } }";
const LIST: &str = "query($f: CompanyFilter, $s: String, $o: [CompanyOrderBy!]) { companies(filter: $f, search: $s, orderBy: $o) { totalCount nodes { name } } }";

async fn names(app: &TestApp, token: &str, variables: Value) -> Vec<String> {
    let answer = app.gql(Some(token), LIST, variables).await;
    assert!(answer["errors"].is_null(), "{answer}");
    answer["data"]["companies"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn companies_end_to_end() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let created = app
        .gql(Some(&admin), CREATE, json!({ "i": { "name": " Acme Corporation ", "domain": "https://www.ACME.com/about", "employeeCount": 250, "annualRevenue": 1000000 } }))
        .await;
    let company = &created["data"]["createCompany"]["company"];
    assert_eq!(company["name"], "Acme Corporation", "{created}");
    assert_eq!(company["domain"], "acme.com");
    assert_eq!(company["annualRevenue"], "1000000.00");
    assert_eq!(company["owner"]["email"], ADMIN_EMAIL);
    let id = company["id"].as_str().unwrap().to_string();
    for (name, size) in [("Globex", 40), ("Initech", 12)] {
        app.gql(
            Some(&admin),
            CREATE,
            json!({ "i": { "name": name, "employeeCount": size } }),
        )
        .await;
    }

    let updated = app
        .gql(
            Some(&admin),
            UPDATE,
            json!({ "id": id, "i": { "city": "Springfield", "domain": null } }),
        )
        .await;
    assert_eq!(
        updated["data"]["updateCompany"]["company"]["city"], "Springfield",
        "{updated}"
    );
    assert!(updated["data"]["updateCompany"]["company"]["domain"].is_null());

    assert_eq!(
        names(&app, &admin, json!({ "s": "acme" })).await,
        vec!["Acme Corporation"]
    );
    assert_eq!(
        names(
            &app,
            &admin,
            json!({ "f": { "employeeCount": { "lt": 100 } }, "o": [{ "field": "NAME" }] })
        )
        .await,
        vec!["Globex", "Initech"]
    );
    assert_eq!(
        names(
            &app,
            &admin,
            json!({ "o": [{ "field": "EMPLOYEE_COUNT", "direction": "DESC" }] })
        )
        .await,
        vec!["Acme Corporation", "Globex", "Initech"]
    );

    // Bad input: the field is named and nothing is written.
    for (input, field) in [
        (json!({ "domain": "x.com" }), "name"),
        (json!({ "name": "  " }), "name"),
        (json!({ "name": "X", "employeeCount": -3 }), "employeeCount"),
        (
            json!({ "name": "X", "annualRevenue": "-1" }),
            "annualRevenue",
        ),
        (
            json!({ "name": "X", "annualRevenue": "1.234" }),
            "annualRevenue",
        ),
        (json!({ "name": "y".repeat(300) }), "name"),
    ] {
        let answer = app.gql(Some(&admin), CREATE, json!({ "i": input })).await;
        assert_eq!(error_code(&answer), "BAD_USER_INPUT", "{answer}");
        assert_eq!(error_field(&answer), field);
    }
    assert_eq!(app.count("companies").await, 3);

    // Members see only what they own.
    let (_, member) = app.user_with_role("mia@example.com", "MEMBER").await;
    assert!(names(&app, &member, json!({})).await.is_empty());
    let read = app
        .gql(
            Some(&member),
            "query($id: ID!) { company(id: $id) { name } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(error_code(&read), "NOT_FOUND");
    app.gql(
        Some(&member),
        CREATE,
        json!({ "i": { "name": "Mia's Shop" } }),
    )
    .await;
    assert_eq!(names(&app, &member, json!({})).await, vec!["Mia's Shop"]);

    let deleted = app
        .gql(
            Some(&admin),
            "mutation($id: ID!) { deleteCompany(id: $id) { company { deletedAt } } }",
            json!({ "id": id }),
        )
        .await;
    assert!(
        deleted["data"]["deleteCompany"]["company"]["deletedAt"].is_string(),
        "{deleted}"
    );
    assert_eq!(names(&app, &admin, json!({ "s": "acme" })).await.len(), 0);
    app.gql(
        Some(&admin),
        "mutation($id: ID!) { restoreCompany(id: $id) { company { id } } }",
        json!({ "id": id }),
    )
    .await;
    assert_eq!(names(&app, &admin, json!({ "s": "acme" })).await.len(), 1);
}
