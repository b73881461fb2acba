//! Contacts: CRUD, the unique email rule, the company relation both ways, scoping.

use serde_json::{json, Value};

use crate::harness::*;

const CREATE: &str = "mutation($i: ContactInput!) { createContact(input: $i) { contact { id firstName email contactType status company { name } owner { email } } } }";
const UPDATE: &str = "mutation($id: ID!, $i: ContactInput!) { updateContact(id: $id, input: $i) { contact { id email company { name } } } }";

async fn company(app: &TestApp, token: &str, name: &str) -> String {
    let answer = app
        .gql(
            Some(token),
            "mutation($n: String!) { createCompany(input: {name: $n}) { company { id } } }",
            json!({ "n": name }),
        )
        .await;
    answer["data"]["createCompany"]["company"]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn contact(app: &TestApp, token: &str, input: Value) -> Value {
    app.gql(Some(token), CREATE, json!({ "i": input })).await
}

#[tokio::test]
async fn contacts_with_companies() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let acme = company(&app, &admin, "Acme").await;
    let globex = company(&app, &admin, "Globex").await;

    let created = contact(
        &app,
        &admin,
        json!({ "firstName": "Ann", "email": "Ann@Acme.test", "companyId": acme }),
    )
    .await;
    let ann = &created["data"]["createContact"]["contact"];
    assert_eq!(ann["email"], "ann@acme.test", "{created}");
    assert_eq!(ann["contactType"], "PROSPECT");
    assert_eq!(ann["status"], "ACTIVE");
    assert_eq!(ann["company"]["name"], "Acme");
    let ann_id = ann["id"].as_str().unwrap().to_string();
    contact(
        &app,
        &admin,
        json!({ "firstName": "Bob", "companyId": acme, "contactType": "CUSTOMER" }),
    )
    .await;
    contact(
        &app,
        &admin,
        json!({ "firstName": "Cy", "companyId": globex }),
    )
    .await;

    // Company.contacts, batched for every company of the page.
    let companies = app
        .gql(
            Some(&admin),
            "{ companies(orderBy: [{field: NAME}]) { nodes { name contacts { firstName } } } }",
            json!({}),
        )
        .await;
    let nodes = &companies["data"]["companies"]["nodes"];
    assert_eq!(
        nodes[0]["contacts"].as_array().unwrap().len(),
        2,
        "{companies}"
    );
    assert_eq!(nodes[1]["contacts"][0]["firstName"], "Cy");

    // One live contact per email.
    let live = app.count("contacts").await;
    let duplicate = contact(
        &app,
        &admin,
        json!({ "firstName": "Ann 2", "email": "ANN@acme.test" }),
    )
    .await;
    assert_eq!(error_code(&duplicate), "CONFLICT");
    assert_eq!(error_field(&duplicate), "email");
    assert_eq!(app.count("contacts").await, live, "nothing written");
    // A deleted contact frees its email; restoring it then conflicts.
    app.gql(
        Some(&admin),
        "mutation($id: ID!) { deleteContact(id: $id) { contact { id } } }",
        json!({ "id": ann_id }),
    )
    .await;
    let again = contact(
        &app,
        &admin,
        json!({ "firstName": "Ann 2", "email": "ann@acme.test" }),
    )
    .await;
    assert!(again["errors"].is_null(), "{again}");
    let restore = app
        .gql(
            Some(&admin),
            "mutation($id: ID!) { restoreContact(id: $id) { contact { id } } }",
            json!({ "id": ann_id }),
        )
        .await;
    assert_eq!(error_code(&restore), "CONFLICT");
    assert_eq!(error_field(&restore), "email");

    // Bad input names the field and writes nothing.
    let before = app.count("contacts").await;
    for (input, code, field) in [
        (
            json!({ "email": "x@y.test" }),
            "BAD_USER_INPUT",
            "firstName",
        ),
        (
            json!({ "firstName": "X", "email": "nope" }),
            "BAD_USER_INPUT",
            "email",
        ),
        (
            json!({ "firstName": "X", "companyId": "999999" }),
            "BAD_USER_INPUT",
            "companyId",
        ),
        (
            json!({ "firstName": "X", "companyId": "abc" }),
            "BAD_USER_INPUT",
            "companyId",
        ),
    ] {
        let answer = contact(&app, &admin, input).await;
        assert_eq!(error_code(&answer), code, "{answer}");
        assert_eq!(error_field(&answer), field);
    }
    assert_eq!(app.count("contacts").await, before);

    // Moving a contact to another company, and search.
    let bob = app
        .gql(
            Some(&admin),
            "{ contacts(search: \"bob\") { nodes { id } } }",
            json!({}),
        )
        .await["data"]["contacts"]["nodes"][0]["id"]
        .clone();
    let moved = app
        .gql(
            Some(&admin),
            UPDATE,
            json!({ "id": bob, "i": { "companyId": globex } }),
        )
        .await;
    assert_eq!(
        moved["data"]["updateContact"]["contact"]["company"]["name"], "Globex",
        "{moved}"
    );
    let customers = app
        .gql(
            Some(&admin),
            "{ contacts(filter: {contactType: {eq: CUSTOMER}}) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(customers["data"]["contacts"]["totalCount"], 1);

    // Search matches a contact's company by name (Bob moved to Globex, Cy was there), and
    // its phone.
    let search = |text: &'static str| {
        app.node_strings(
            &admin,
            "query($s: String) { contacts(search: $s, orderBy: [{field: FIRST_NAME}]) { nodes { firstName } } }",
            json!({ "s": text }),
            "contacts",
            "firstName",
        )
    };
    assert_eq!(search("GLOB").await, ["Bob", "Cy"]);
    assert_eq!(search("acme").await, ["Ann 2"], "by email");
    app.gql(
        Some(&admin),
        UPDATE,
        json!({ "id": bob, "i": { "phone": "+1 555 0142" } }),
    )
    .await;
    assert_eq!(search("555 014").await, ["Bob"]);
    assert!(search("initech").await.is_empty());
}

#[tokio::test]
async fn members_cannot_attach_or_see_what_they_do_not_own() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let acme = company(&app, &admin, "Acme").await;
    let (_, member) = app.user_with_role("mia@example.com", "MEMBER").await;
    // The admin's company is invisible to the member: not attachable.
    let answer = contact(
        &app,
        &member,
        json!({ "firstName": "X", "companyId": acme }),
    )
    .await;
    assert_eq!(error_field(&answer), "companyId");
    // The member's contact at an admin company shows the company as null for the member.
    let admin_contact = contact(
        &app,
        &admin,
        json!({ "firstName": "Shared", "companyId": acme, "assignedToId": "2" }),
    )
    .await;
    assert!(admin_contact["errors"].is_null(), "{admin_contact}");
    let mine = app
        .gql(
            Some(&member),
            "{ contacts { nodes { firstName company { name } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        mine["data"]["contacts"]["nodes"][0]["firstName"], "Shared",
        "{mine}"
    );
    assert!(mine["data"]["contacts"]["nodes"][0]["company"].is_null());
    // Nor does a search by its name reveal it.
    let by_company = app
        .gql(
            Some(&member),
            "{ contacts(search: \"acme\") { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(
        by_company["data"]["contacts"]["totalCount"], 0,
        "{by_company}"
    );
    let by_company = app
        .gql(
            Some(&admin),
            "{ contacts(search: \"acme\") { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(
        by_company["data"]["contacts"]["totalCount"], 1,
        "{by_company}"
    );

    // A member may hand a record they are assigned to back: the change is theirs to make and
    // they get its result, though the record then leaves their scope.
    let shared = admin_contact["data"]["createContact"]["contact"]["id"].clone();
    let handed = app
        .gql(
            Some(&member),
            UPDATE,
            json!({ "id": shared, "i": { "assignedToId": null } }),
        )
        .await;
    assert!(handed["errors"].is_null(), "{handed}");
    assert_eq!(handed["data"]["updateContact"]["contact"]["id"], shared);
    let assignee = app
        .rows(&format!(
            "SELECT assigned_to_id FROM contacts WHERE id = {}",
            shared.as_str().unwrap()
        ))
        .await;
    assert!(assignee[0]["assigned_to_id"].is_null(), "{assignee}");
    let gone = app
        .gql(
            Some(&member),
            "query($id: ID!) { contact(id: $id) { id } }",
            json!({ "id": shared }),
        )
        .await;
    assert_eq!(error_code(&gone), "NOT_FOUND", "{gone}");
}
