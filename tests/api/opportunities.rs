//! Opportunities: stage rules (default probability, close dates), money, links, validation.

use serde_json::json;

use crate::harness::*;

const CREATE: &str = "mutation($i: OpportunityInput!) { createOpportunity(input: $i) { opportunity { id name stage probability amount currency expectedCloseDate actualCloseDate company { name } contact { firstName } } } }";
const UPDATE: &str = "mutation($id: ID!, $i: OpportunityInput!) { updateOpportunity(id: $id, input: $i) { opportunity { stage probability actualCloseDate } } }";

#[tokio::test]
async fn stages_money_and_links() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let company = app
        .gql(
            Some(&admin),
            "mutation { createCompany(input: {name: \"Acme\"}) { company { id } } }",
            json!({}),
        )
        .await["data"]["createCompany"]["company"]["id"]
        .clone();
    let contact = app
        .gql(
            Some(&admin),
            "mutation { createContact(input: {firstName: \"Ann\"}) { contact { id } } }",
            json!({}),
        )
        .await["data"]["createContact"]["contact"]["id"]
        .clone();
    let created = app
        .gql(
            Some(&admin),
            CREATE,
            json!({ "i": { "name": "Big deal", "amount": "25000.00", "currency": "eur", "expectedCloseDate": "2027-03-31", "companyId": company, "contactId": contact } }),
        )
        .await;
    let deal = &created["data"]["createOpportunity"]["opportunity"];
    assert_eq!(deal["stage"], "PROSPECTING", "{created}");
    assert_eq!(deal["probability"], 10);
    assert_eq!(deal["currency"], "EUR");
    assert_eq!(deal["amount"], "25000.00");
    assert_eq!(deal["expectedCloseDate"], "2027-03-31");
    assert_eq!(deal["company"]["name"], "Acme");
    assert_eq!(deal["contact"]["firstName"], "Ann");
    assert!(deal["actualCloseDate"].is_null());
    let id = deal["id"].clone();

    let moved = app
        .gql(
            Some(&admin),
            UPDATE,
            json!({ "id": id, "i": { "stage": "NEGOTIATION" } }),
        )
        .await;
    assert_eq!(
        moved["data"]["updateOpportunity"]["opportunity"]["probability"], 75,
        "{moved}"
    );
    let overridden = app
        .gql(
            Some(&admin),
            UPDATE,
            json!({ "id": id, "i": { "probability": 60 } }),
        )
        .await;
    assert_eq!(
        overridden["data"]["updateOpportunity"]["opportunity"]["probability"],
        60
    );
    let won = app
        .gql(
            Some(&admin),
            UPDATE,
            json!({ "id": id, "i": { "stage": "CLOSED_WON" } }),
        )
        .await;
    let won = &won["data"]["updateOpportunity"]["opportunity"];
    assert_eq!(won["probability"], 100);
    assert!(won["actualCloseDate"].is_string());
    let reopened = app
        .gql(
            Some(&admin),
            UPDATE,
            json!({ "id": id, "i": { "stage": "PROPOSAL", "probability": 40 } }),
        )
        .await;
    let reopened = &reopened["data"]["updateOpportunity"]["opportunity"];
    assert_eq!(reopened["probability"], 40);
    assert!(reopened["actualCloseDate"].is_null());

    let filtered = app
        .gql(Some(&admin), "{ opportunities(filter: {stage: {in: [PROPOSAL]}, expectedCloseDate: {lt: \"2027-04-01\"}, amount: {gte: \"1000\"}}) { totalCount } }", json!({}))
        .await;
    assert_eq!(
        filtered["data"]["opportunities"]["totalCount"], 1,
        "{filtered}"
    );

    for (input, field) in [
        (json!({ "name": "X", "amount": "-1" }), "amount"),
        (json!({ "name": "X", "probability": 150 }), "probability"),
        (json!({ "name": "X", "currency": "EURO" }), "currency"),
        (json!({ "name": "X", "contactId": "424242" }), "contactId"),
        (json!({ "amount": "5" }), "name"),
    ] {
        let answer = app.gql(Some(&admin), CREATE, json!({ "i": input })).await;
        assert_eq!(error_code(&answer), "BAD_USER_INPUT", "{answer}");
        assert_eq!(error_field(&answer), field);
    }
    // A date in the wrong format is refused by the schema with a coded error.
    let bad_date = app
        .gql(
            Some(&admin),
            CREATE,
            json!({ "i": { "name": "X", "expectedCloseDate": "31/03/2027" } }),
        )
        .await;
    assert!(
        bad_date["errors"][0]["extensions"]["code"].is_string(),
        "{bad_date}"
    );
    assert!(
        bad_date["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("YYYY-MM-DD"),
        "{bad_date}"
    );
    assert_eq!(app.count("opportunities").await, 1);
}

/// Values the schema itself refuses (an unknown enumeration value, a date or time in the wrong
/// form) are BAD_USER_INPUT naming the field, whether sent as literals or variables, and
/// nothing is written.
#[tokio::test]
async fn schema_refusals_name_the_field() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let literal = |input: &str| {
        format!("mutation {{ createOpportunity(input: {{name: \"X\", {input}}}) {{ opportunity {{ id }} }} }}")
    };
    let cases = [
        (CREATE.to_string(), json!({ "i": { "name": "X", "expectedCloseDate": "31/03/2027" } }), "expectedCloseDate"),
        (literal("expectedCloseDate: \"2027/03/31\""), json!({}), "expectedCloseDate"),
        (CREATE.to_string(), json!({ "i": { "name": "X", "stage": "WON" } }), "stage"),
        (literal("stage: WON"), json!({}), "stage"),
        (CREATE.to_string(), json!({ "i": { "name": "X", "amount": "lots" } }), "amount"),
        (
            "mutation($d: DateTime) { createTask(input: {title: \"Call\", dueAt: $d}) { task { id } } }".to_string(),
            json!({ "d": "tomorrow" }),
            "dueAt",
        ),
        (
            "{ opportunities(filter: {expectedCloseDate: {lt: \"next week\"}}) { totalCount } }".to_string(),
            json!({}),
            "expectedCloseDate",
        ),
    ];
    for (query, variables, field) in cases {
        let answer = app.gql(Some(&admin), &query, variables).await;
        assert_eq!(error_code(&answer), "BAD_USER_INPUT", "{query}: {answer}");
        assert_eq!(error_field(&answer), field, "{query}: {answer}");
    }
    assert_eq!(app.count("opportunities").await, 0);
    assert_eq!(app.count("tasks").await, 0);
}
