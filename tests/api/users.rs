//! Admin-only user management, scoping to the workspace, validation and pagination.

use serde_json::json;

use crate::harness::*;

const CREATE: &str = "mutation($i: CreateUserInput!) { createUser(input: $i) { user { id email name role isActive } } }";
const UPDATE: &str =
    "mutation($i: UpdateUserInput!) { updateUser(input: $i) { user { id email name role } } }";

#[tokio::test]
async fn admins_manage_users_and_others_may_not() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (member_id, member) = app.user_with_role("mia@example.com", "MEMBER").await;

    for (query, variables) in [
        ("{ users { totalCount } }", json!({})),
        (
            CREATE,
            json!({ "i": { "email": "x@example.com", "name": "X", "role": "ADMIN", "password": "x-password-1" } }),
        ),
        (
            "mutation($id: ID!) { deactivateUser(id: $id) { user { id } } }",
            json!({ "id": "1" }),
        ),
    ] {
        let answer = app.gql(Some(&member), query, variables).await;
        assert_eq!(error_code(&answer), "FORBIDDEN", "{query}");
    }
    assert_eq!(app.count("users").await, 2);

    // Members may still read a colleague.
    let colleague = app
        .gql(
            Some(&member),
            "query($id: ID!) { user(id: $id) { email } }",
            json!({ "id": "1" }),
        )
        .await;
    assert_eq!(colleague["data"]["user"]["email"], ADMIN_EMAIL);

    let promoted = app
        .gql(
            Some(&admin),
            UPDATE,
            json!({ "i": { "id": member_id, "role": "MANAGER", "name": "  Mia M  " } }),
        )
        .await;
    assert_eq!(
        promoted["data"]["updateUser"]["user"]["role"], "MANAGER",
        "{promoted}"
    );
    assert_eq!(promoted["data"]["updateUser"]["user"]["name"], "Mia M");
    // The role change applies to the member's very next request.
    let me = app.gql(Some(&member), "{ me { role } }", json!({})).await;
    assert_eq!(me["data"]["me"]["role"], "MANAGER");
}

#[tokio::test]
async fn bad_user_input_names_the_field_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let cases = [
        (
            json!({ "email": "no-at-sign", "name": "X", "role": "MEMBER", "password": "x-password-1" }),
            "BAD_USER_INPUT",
            "email",
        ),
        (
            json!({ "email": "x@example.com", "name": " ", "role": "MEMBER", "password": "x-password-1" }),
            "BAD_USER_INPUT",
            "name",
        ),
        (
            json!({ "email": "x@example.com", "name": "X", "role": "MEMBER", "password": "short" }),
            "BAD_USER_INPUT",
            "password",
        ),
        (
            json!({ "email": ADMIN_EMAIL.to_uppercase(), "name": "X", "role": "MEMBER", "password": "x-password-1" }),
            "CONFLICT",
            "email",
        ),
    ];
    for (input, code, field) in cases {
        let answer = app.gql(Some(&admin), CREATE, json!({ "i": input })).await;
        assert_eq!(error_code(&answer), code, "{answer}");
        assert_eq!(error_field(&answer), field, "{answer}");
    }
    // An enum value that does not exist is refused by the schema.
    let bad_role = app
        .gql(Some(&admin), CREATE, json!({ "i": { "email": "x@example.com", "name": "X", "role": "OWNER", "password": "x-password-1" } }))
        .await;
    assert!(
        bad_role["errors"][0]["extensions"]["code"].is_string(),
        "{bad_role}"
    );
    assert_eq!(app.count("users").await, 1);

    let bad_id = app
        .gql(
            Some(&admin),
            UPDATE,
            json!({ "i": { "id": "abc", "name": "Y" } }),
        )
        .await;
    assert_eq!(error_code(&bad_id), "BAD_USER_INPUT");
    assert_eq!(error_field(&bad_id), "id");
}

#[tokio::test]
async fn the_last_admin_stays() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let demote = app
        .gql(
            Some(&admin),
            UPDATE,
            json!({ "i": { "id": "1", "role": "MEMBER" } }),
        )
        .await;
    assert_eq!(error_code(&demote), "CONFLICT");
    let self_deactivate = app
        .gql(
            Some(&admin),
            "mutation { deactivateUser(id: \"1\") { user { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&self_deactivate), "BAD_USER_INPUT");
    let me = app
        .gql(Some(&admin), "{ me { role isActive } }", json!({}))
        .await;
    assert_eq!(me["data"]["me"]["role"], "ADMIN");
    assert_eq!(me["data"]["me"]["isActive"], true);
}

#[tokio::test]
async fn deactivation_ends_sessions_and_blocks_login() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (id, member) = app.user_with_role("dan@example.com", "MEMBER").await;
    let answer = app
        .gql(
            Some(&admin),
            "mutation($id: ID!) { deactivateUser(id: $id) { user { isActive deactivatedAt } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        answer["data"]["deactivateUser"]["user"]["isActive"], false,
        "{answer}"
    );
    assert_eq!(
        error_code(&app.gql(Some(&member), "{ me { id } }", json!({})).await),
        "UNAUTHENTICATED"
    );
    let login = app.try_login("dan@example.com", "user-password-1").await;
    assert_eq!(error_code(&login), "UNAUTHENTICATED");

    app.gql(
        Some(&admin),
        "mutation($id: ID!) { reactivateUser(id: $id) { user { isActive } } }",
        json!({ "id": id }),
    )
    .await;
    app.login("dan@example.com", "user-password-1").await;
}

#[tokio::test]
async fn other_workspaces_are_invisible() {
    let app = TestApp::spawn().await;
    let other = app
        .other_workspace("Other", "o@other.test", "other-password")
        .await;
    let other_token = token_of(&other);
    let other_id = other["user"]["id"].as_str().unwrap().to_string();
    let admin = app.admin_token().await;

    let read = app
        .gql(
            Some(&admin),
            "query($id: ID!) { user(id: $id) { email } }",
            json!({ "id": other_id }),
        )
        .await;
    assert_eq!(error_code(&read), "NOT_FOUND");
    let write = app
        .gql(
            Some(&admin),
            UPDATE,
            json!({ "i": { "id": other_id, "name": "Hacked" } }),
        )
        .await;
    assert_eq!(error_code(&write), "NOT_FOUND");
    let me = app
        .gql(Some(&other_token), "{ me { name } }", json!({}))
        .await;
    assert_eq!(me["data"]["me"]["name"], "Other Admin");
}

#[tokio::test]
async fn users_are_paged_with_cursors() {
    let app = TestApp::spawn().await;
    for i in 0..4 {
        app.user_with_role(&format!("u{i}@example.com"), "MEMBER")
            .await;
    }
    let admin = app.admin_token().await;
    let page = "query($first: Int, $after: String, $last: Int, $before: String, $f: UserFilter) {
        users(first: $first, after: $after, last: $last, before: $before, filter: $f) {
          totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
          edges { cursor node { email } } nodes { email } } }";
    let first = app.gql(Some(&admin), page, json!({ "first": 2 })).await;
    let users = &first["data"]["users"];
    assert_eq!(users["totalCount"], 5, "{first}");
    assert_eq!(users["nodes"][0]["email"], ADMIN_EMAIL);
    assert_eq!(users["pageInfo"]["hasNextPage"], true);
    let after = users["pageInfo"]["endCursor"].clone();
    let second = app
        .gql(Some(&admin), page, json!({ "first": 2, "after": after }))
        .await;
    assert_eq!(
        second["data"]["users"]["nodes"][0]["email"],
        "u1@example.com"
    );
    let last = app.gql(Some(&admin), page, json!({ "last": 2 })).await;
    assert_eq!(last["data"]["users"]["nodes"][1]["email"], "u3@example.com");
    assert_eq!(last["data"]["users"]["pageInfo"]["hasPreviousPage"], true);

    let filtered = app
        .gql(Some(&admin), page, json!({ "f": { "search": "U2@" } }))
        .await;
    assert_eq!(filtered["data"]["users"]["totalCount"], 1);
    let admins = app
        .gql(Some(&admin), page, json!({ "f": { "role": "ADMIN" } }))
        .await;
    assert_eq!(admins["data"]["users"]["totalCount"], 1);
    // A LIKE wildcard is matched literally.
    let wildcard = app
        .gql(Some(&admin), page, json!({ "f": { "search": "%" } }))
        .await;
    assert_eq!(wildcard["data"]["users"]["totalCount"], 0);

    for (variables, field) in [
        (json!({ "first": 0 }), "first"),
        (json!({ "first": 501 }), "first"),
        (json!({ "first": 2, "last": 2 }), "last"),
        (json!({ "after": "garbage" }), "after"),
    ] {
        let answer = app.gql(Some(&admin), page, variables).await;
        assert_eq!(error_code(&answer), "BAD_USER_INPUT", "{answer}");
        assert_eq!(error_field(&answer), field);
    }
}
