//! convertLead: new records, reuse of contact and company, double conversion, scope.

use serde_json::json;

use crate::harness::*;

const CONVERT: &str = "mutation($id: ID!, $i: ConvertLeadInput) { convertLead(id: $id, input: $i) {
    lead { status convertedAt convertedContact { id } convertedCompany { name } convertedOpportunity { name amount } }
    contact { id firstName lastName email phone company { name } }
    company { id name }
    opportunity { name amount stage contact { email } } } }";

#[tokio::test]
async fn convert_new_then_reuse_then_refuse_twice() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let first = app.create_lead(&admin, json!({ "firstName": "Ann", "lastName": "Lee", "email": "ann@acme.test", "companyName": "Acme", "estimatedValue": "5000" })).await;
    let done = app.gql(Some(&admin), CONVERT, json!({ "id": first })).await;
    let out = &done["data"]["convertLead"];
    assert_eq!(out["lead"]["status"], "CONVERTED", "{done}");
    assert!(out["lead"]["convertedAt"].is_string());
    assert_eq!(out["contact"]["email"], "ann@acme.test");
    assert_eq!(out["contact"]["company"]["name"], "Acme");
    assert_eq!(out["company"]["name"], "Acme");
    assert_eq!(out["opportunity"]["amount"], "5000.00");
    assert_eq!(out["opportunity"]["stage"], "PROSPECTING");
    assert_eq!(out["opportunity"]["contact"]["email"], "ann@acme.test");
    assert_eq!(out["lead"]["convertedCompany"]["name"], "Acme");
    assert_eq!(out["lead"]["convertedContact"]["id"], out["contact"]["id"]);
    let contact_id = out["contact"]["id"].clone();
    let company_id = out["company"]["id"].clone();

    // Twice: CONFLICT, nothing new.
    let again = app.gql(Some(&admin), CONVERT, json!({ "id": first })).await;
    assert_eq!(error_code(&again), "CONFLICT");

    // Same email and company name: both reused; only the contact's empty fields are filled.
    let second = app.create_lead(&admin, json!({ "firstName": "Annie", "email": "ann@acme.test", "phone": "+1 555", "companyName": "ACME" })).await;
    let reused = app
        .gql(Some(&admin), CONVERT, json!({ "id": second }))
        .await;
    let out = &reused["data"]["convertLead"];
    assert_eq!(out["contact"]["id"], contact_id, "{reused}");
    assert_eq!(out["contact"]["firstName"], "Ann");
    assert_eq!(out["contact"]["phone"], "+1 555");
    assert_eq!(out["company"]["id"], company_id);
    assert!(
        out["opportunity"].is_null(),
        "no estimated value, no opportunity"
    );
    assert_eq!(app.count("contacts").await, 1);
    assert_eq!(app.count("companies").await, 1);

    // Asked explicitly, with a given company.
    let third = app.create_lead(&admin, json!({ "firstName": "Cy" })).await;
    let asked = app
        .gql(Some(&admin), CONVERT, json!({ "id": third, "i": { "createOpportunity": true, "opportunityName": "Pilot", "amount": "99.50", "companyId": company_id } }))
        .await;
    let out = &asked["data"]["convertLead"];
    assert_eq!(out["opportunity"]["name"], "Pilot", "{asked}");
    assert_eq!(out["company"]["name"], "Acme");
    assert_eq!(out["contact"]["firstName"], "Cy");

    // Out of scope: NOT_FOUND, and nothing is written.
    let (_, member) = app.user_with_role("mia@example.com", "MEMBER").await;
    let fourth = app
        .create_lead(&admin, json!({ "firstName": "Dee", "email": "dee@x.test" }))
        .await;
    let hidden = app
        .gql(Some(&member), CONVERT, json!({ "id": fourth }))
        .await;
    assert_eq!(error_code(&hidden), "NOT_FOUND");
    let bad = app
        .gql(
            Some(&admin),
            CONVERT,
            json!({ "id": fourth, "i": { "companyId": "777777" } }),
        )
        .await;
    assert_eq!(error_field(&bad), "companyId");
    assert_eq!(app.count("contacts").await, 2);
    let status = app
        .gql(
            Some(&admin),
            "query($id: ID!) { lead(id: $id) { status } }",
            json!({ "id": fourth }),
        )
        .await;
    assert_eq!(status["data"]["lead"]["status"], "NEW");
}
