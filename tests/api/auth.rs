//! Login, refresh-token rotation and reuse detection, logout, token checks, throttling,
//! password change, sign-up and the REST login routes.

use serde_json::{json, Value};

use crate::harness::*;
use crate::sinks::SmtpSink;

const ME: &str = "{ me { id email role workspace { id name } } }";
const REFRESH: &str =
    "mutation($t: String!) { refreshToken(token: $t) { accessToken refreshToken user { email } } }";

async fn refresh(app: &TestApp, token: &str) -> Value {
    app.gql(None, REFRESH, json!({ "t": token })).await
}

#[tokio::test]
async fn login_then_me() {
    let app = TestApp::spawn().await;
    let session = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(session["user"]["role"], "ADMIN");
    let me = app.gql(Some(&token_of(&session)), ME, json!({})).await;
    assert_eq!(me["data"]["me"]["email"], ADMIN_EMAIL);
    assert_eq!(me["data"]["me"]["workspace"]["name"], "My Workspace");
    // Emails are matched case-insensitively.
    app.login("  ADMIN@Example.com ", ADMIN_PASSWORD).await;
}

#[tokio::test]
async fn wrong_email_and_wrong_password_get_the_same_answer() {
    let app = TestApp::spawn().await;
    let wrong_password = app.try_login(ADMIN_EMAIL, "not-the-password").await;
    let wrong_email = app.try_login("nobody@example.com", ADMIN_PASSWORD).await;
    assert_eq!(error_code(&wrong_password), "UNAUTHENTICATED");
    assert_eq!(error_code(&wrong_email), "UNAUTHENTICATED");
    assert_eq!(
        wrong_password["errors"][0]["message"],
        wrong_email["errors"][0]["message"]
    );
}

#[tokio::test]
async fn missing_token_on_a_protected_field() {
    let app = TestApp::spawn().await;
    let answer = app.gql(None, ME, json!({})).await;
    assert_eq!(error_code(&answer), "UNAUTHENTICATED");
    assert!(answer["data"].is_null());
    let malformed = app
        .client
        .post(app.url("/graphql"))
        .header("authorization", "Basic YWRtaW46YWRtaW4=")
        .json(&json!({ "query": ME }))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(error_code(&malformed), "UNAUTHENTICATED");
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_session() {
    let app = TestApp::spawn().await;
    let first = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let r1 = first["refreshToken"].as_str().unwrap();

    let second = refresh(&app, r1).await;
    assert!(second["errors"].is_null(), "{second}");
    let r2 = second["data"]["refreshToken"]["refreshToken"]
        .as_str()
        .unwrap();
    let a2 = second["data"]["refreshToken"]["accessToken"]
        .as_str()
        .unwrap();
    assert_ne!(r1, r2);
    assert_eq!(
        app.gql(Some(a2), ME, json!({})).await["data"]["me"]["email"],
        ADMIN_EMAIL
    );

    // r1 again: someone copied it. The whole family dies, including r2 and its access token.
    let reused = refresh(&app, r1).await;
    assert_eq!(error_code(&reused), "UNAUTHENTICATED");
    assert!(reused["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("already used"));
    assert_eq!(error_code(&refresh(&app, r2).await), "UNAUTHENTICATED");
    assert_eq!(
        error_code(&app.gql(Some(a2), ME, json!({})).await),
        "UNAUTHENTICATED"
    );

    // Another login session is untouched.
    let other = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert!(app.gql(Some(&token_of(&other)), ME, json!({})).await["errors"].is_null());

    // Junk refresh tokens are refused without detail.
    assert_eq!(
        error_code(&refresh(&app, "mcr_nonsense").await),
        "UNAUTHENTICATED"
    );
}

#[tokio::test]
async fn logout_ends_the_session_at_once() {
    let app = TestApp::spawn().await;
    let session = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let other = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let access = token_of(&session);
    let answer = app
        .gql(
            None,
            "mutation($t: String) { logout(refreshToken: $t) { revokedSessions } }",
            json!({ "t": session["refreshToken"] }),
        )
        .await;
    assert_eq!(answer["data"]["logout"]["revokedSessions"], 1);
    assert_eq!(
        error_code(&app.gql(Some(&access), ME, json!({})).await),
        "UNAUTHENTICATED"
    );
    assert_eq!(
        error_code(&refresh(&app, session["refreshToken"].as_str().unwrap()).await),
        "UNAUTHENTICATED"
    );
    // The other session still works; logging out everywhere with its access token ends it.
    let other_access = token_of(&other);
    assert!(app.gql(Some(&other_access), ME, json!({})).await["errors"].is_null());
    let everywhere = app
        .gql(
            Some(&other_access),
            "mutation { logout(allSessions: true) { revokedSessions } }",
            json!({}),
        )
        .await;
    assert_eq!(everywhere["data"]["logout"]["revokedSessions"], 1);
    assert_eq!(
        error_code(&app.gql(Some(&other_access), ME, json!({})).await),
        "UNAUTHENTICATED"
    );
}

/// Re-signs the claims of a real token with `secret` after `change` edits them.
fn forge(token: &str, secret: &[u8], change: impl FnOnce(&mut Value)) -> String {
    use base64::Engine;
    use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    let mut claims: Value = serde_json::from_slice(&bytes).unwrap();
    change(&mut claims);
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret),
    )
    .unwrap()
}

#[tokio::test]
async fn expired_and_foreign_tokens_are_refused() {
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    let now = chrono::Utc::now().timestamp();

    let expired = forge(&token, JWT_SECRET.as_bytes(), |c| {
        c["iat"] = json!(now - 7200);
        c["exp"] = json!(now - 3600);
    });
    let answer = app.gql(Some(&expired), ME, json!({})).await;
    assert_eq!(error_code(&answer), "UNAUTHENTICATED");
    assert_eq!(answer["errors"][0]["message"], "access token expired");

    let foreign = forge(&token, b"some-other-secret-some-other-secret!!", |_| {});
    let answer = app.gql(Some(&foreign), ME, json!({})).await;
    assert_eq!(error_code(&answer), "UNAUTHENTICATED");
    assert_eq!(answer["errors"][0]["message"], "invalid access token");

    // A token for another user id, correctly signed, still needs that user's live session.
    let other_user = forge(&token, JWT_SECRET.as_bytes(), |c| c["sub"] = json!("999"));
    assert_eq!(
        error_code(&app.gql(Some(&other_user), ME, json!({})).await),
        "UNAUTHENTICATED"
    );

    // Public fields still work with a bad token, so the client can log in again.
    let login = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&expired)
        .json(&json!({
            "query": "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }",
            "variables": { "e": ADMIN_EMAIL, "p": ADMIN_PASSWORD }
        }))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert!(login["errors"].is_null(), "{login}");
}

#[tokio::test]
async fn failed_logins_are_throttled_per_account() {
    let app = TestApp::spawn_with(|c| c.auth.max_login_failures_per_account = 3).await;
    app.user_with_role("other@example.com", "MEMBER").await;
    for _ in 0..3 {
        assert_eq!(
            error_code(&app.try_login(ADMIN_EMAIL, "wrong-password").await),
            "UNAUTHENTICATED"
        );
    }
    // Now even the right password is refused until the window passes.
    let limited = app.try_login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(error_code(&limited), "RATE_LIMITED");
    assert!(
        limited["errors"][0]["extensions"]["retryAfterSeconds"]
            .as_u64()
            .unwrap()
            > 0
    );
    // Other accounts are not affected.
    app.login("other@example.com", "user-password-1").await;
}

#[tokio::test]
async fn failed_logins_are_throttled_per_address() {
    let app = TestApp::spawn_with(|c| c.auth.max_login_failures_per_ip = 4).await;
    for i in 0..4 {
        let answer = app
            .try_login(&format!("guess{i}@example.com"), "wrong-password")
            .await;
        assert_eq!(error_code(&answer), "UNAUTHENTICATED");
    }
    assert_eq!(
        error_code(&app.try_login(ADMIN_EMAIL, ADMIN_PASSWORD).await),
        "RATE_LIMITED"
    );
}

#[tokio::test]
async fn change_password() {
    let app = TestApp::spawn().await;
    let old_session = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let token = token_of(&old_session);
    let change = "mutation($i: ChangePasswordInput!) { changePassword(input: $i) { accessToken } }";

    let wrong = app
        .gql(
            Some(&token),
            change,
            json!({ "i": { "currentPassword": "nope-nope", "newPassword": "brand-new-password" } }),
        )
        .await;
    assert_eq!(error_code(&wrong), "BAD_USER_INPUT");
    assert_eq!(error_field(&wrong), "currentPassword");
    let short = app
        .gql(
            Some(&token),
            change,
            json!({ "i": { "currentPassword": ADMIN_PASSWORD, "newPassword": "short" } }),
        )
        .await;
    assert_eq!(error_code(&short), "BAD_USER_INPUT");
    assert_eq!(error_field(&short), "newPassword");
    // Nothing was written: the old password and session still work.
    app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert!(app.gql(Some(&token), ME, json!({})).await["errors"].is_null());

    let changed = app
        .gql(Some(&token), change, json!({ "i": { "currentPassword": ADMIN_PASSWORD, "newPassword": "brand-new-password" } }))
        .await;
    let new_token = changed["data"]["changePassword"]["accessToken"]
        .as_str()
        .unwrap();
    assert!(app.gql(Some(new_token), ME, json!({})).await["errors"].is_null());
    assert_eq!(
        error_code(&app.gql(Some(&token), ME, json!({})).await),
        "UNAUTHENTICATED"
    );
    assert_eq!(
        error_code(&app.try_login(ADMIN_EMAIL, ADMIN_PASSWORD).await),
        "UNAUTHENTICATED"
    );
    app.login(ADMIN_EMAIL, "brand-new-password").await;
}

const SIGN_UP: &str = "mutation($i: SignUpInput!) { signUp(input: $i) { accepted message } }";
const CONFIRM: &str = "mutation($t: String!) { confirmSignUp(token: $t) { accessToken user { email role workspace { name } } } }";

/// An email's text with quoted-printable soft line breaks and escapes undone.
fn unfolded(data: &str) -> String {
    let bytes = data.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' {
            if bytes[i + 1..].starts_with(b"\r\n") {
                i += 3;
                continue;
            }
            if bytes[i + 1..].starts_with(b"\n") {
                i += 2;
                continue;
            }
            if let Some(hex) = data.get(i + 1..i + 3) {
                if let Ok(byte) = u8::from_str_radix(hex, 16) {
                    out.push(byte);
                    i += 3;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The token in the newest sign-up email to `to`.
fn sign_up_token(sink: &SmtpSink, to: &str) -> Option<String> {
    let mail = sink.received();
    let data = unfolded(
        &mail
            .iter()
            .rev()
            .find(|m| m.to.iter().any(|t| t.contains(to)))?
            .data,
    );
    let start = data.find("confirmSignUp(token: \"")? + "confirmSignUp(token: \"".len();
    Some(data[start..].split('"').next()?.to_string())
}

/// Waits for the emails sent in the background.
async fn mail_to(sink: &SmtpSink, to: &str, count: usize) -> Vec<String> {
    for _ in 0..100 {
        let found: Vec<String> = sink
            .received()
            .into_iter()
            .filter(|m| m.to.iter().any(|t| t.contains(to)))
            .map(|m| unfolded(&m.data))
            .collect();
        if found.len() >= count {
            return found;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no {count} emails to {to}: {:?}", sink.received());
}

#[tokio::test]
async fn sign_up_creates_an_isolated_workspace_after_the_email_confirms_it() {
    let sink = SmtpSink::start().await;
    let url = sink.url();
    let app = TestApp::spawn_with(move |c| {
        c.auth.allow_sign_up = true;
        c.mail.smtp_url = Some(url);
    })
    .await;
    let answer = app
        .gql(None, SIGN_UP, json!({ "i": { "workspaceName": "Acme", "name": "Ann", "email": "ann@acme.test", "password": "ann-password-1" } }))
        .await;
    assert_eq!(answer["data"]["signUp"]["accepted"], true, "{answer}");
    // Nothing exists until the email's token comes back.
    assert_eq!(app.count("workspaces").await, 1);
    mail_to(&sink, "ann@acme.test", 1).await;
    let token = sign_up_token(&sink, "ann@acme.test").unwrap();
    let confirmed = app.gql(None, CONFIRM, json!({ "t": token })).await;
    let payload = &confirmed["data"]["confirmSignUp"];
    assert_eq!(payload["user"]["role"], "ADMIN", "{confirmed}");
    assert_eq!(payload["user"]["workspace"]["name"], "Acme");
    let access = token_of(payload);
    let users = app
        .gql(
            Some(&access),
            "{ users { totalCount nodes { email } } }",
            json!({}),
        )
        .await;
    assert_eq!(users["data"]["users"]["totalCount"], 1);
    assert_eq!(users["data"]["users"]["nodes"][0]["email"], "ann@acme.test");
    // The token works once.
    let again = app.gql(None, CONFIRM, json!({ "t": token })).await;
    assert_eq!(error_code(&again), "BAD_USER_INPUT");
    assert_eq!(error_field(&again), "token");
    assert_eq!(app.count("workspaces").await, 2);

    // Bad input: the error names the field and nothing is written.
    let requests = app.count("sign_up_requests").await;
    let bad_email = app
        .gql(None, SIGN_UP, json!({ "i": { "workspaceName": "Copy", "name": "X", "email": "not-an-email", "password": "a-password-1" } }))
        .await;
    assert_eq!(error_code(&bad_email), "BAD_USER_INPUT");
    assert_eq!(error_field(&bad_email), "email");
    let blank_workspace = app
        .gql(None, SIGN_UP, json!({ "i": { "workspaceName": "  ", "name": "X", "email": "x@y.test", "password": "a-password-1" } }))
        .await;
    assert_eq!(error_field(&blank_workspace), "workspaceName");
    assert_eq!(app.count("sign_up_requests").await, requests);
    assert_eq!(app.count("workspaces").await, 2);
}

#[tokio::test]
async fn sign_up_answers_the_same_for_a_taken_email_and_tells_its_owner_by_email() {
    let sink = SmtpSink::start().await;
    let url = sink.url();
    let app = TestApp::spawn_with(move |c| {
        c.auth.allow_sign_up = true;
        c.mail.smtp_url = Some(url);
    })
    .await;
    let taken = app
        .gql(None, SIGN_UP, json!({ "i": { "workspaceName": "Copy", "name": "X", "email": ADMIN_EMAIL, "password": "a-password-1" } }))
        .await;
    let free = app
        .gql(None, SIGN_UP, json!({ "i": { "workspaceName": "New", "name": "N", "email": "new@new.test", "password": "a-password-1" } }))
        .await;
    assert_eq!(
        taken, free,
        "the answer must not tell a taken email from a free one"
    );
    let note = mail_to(&sink, ADMIN_EMAIL, 1).await;
    assert!(note[0].contains("already has an account"), "{}", note[0]);
    assert!(!note[0].contains("confirmSignUp"));
    mail_to(&sink, "new@new.test", 1).await;
    // A second request for the same address within minutes sends nothing more.
    let again = app
        .gql(None, SIGN_UP, json!({ "i": { "workspaceName": "New", "name": "N", "email": "new@new.test", "password": "a-password-1" } }))
        .await;
    assert_eq!(again, free);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(mail_to(&sink, "new@new.test", 1).await.len(), 1);
    assert_eq!(app.count("workspaces").await, 1);
}

#[tokio::test]
async fn sign_up_is_off_unless_the_instance_allows_it() {
    // The default of a self-hosted install: admins invite.
    assert!(!mycrm::config::AuthConfig::default().allow_sign_up);
    let app = TestApp::spawn().await;
    let answer = app
        .gql(None, SIGN_UP, json!({ "i": { "workspaceName": "Acme", "name": "Ann", "email": "ann@acme.test", "password": "ann-password-1" } }))
        .await;
    assert_eq!(error_code(&answer), "FORBIDDEN");
    assert_eq!(app.count("workspaces").await, 1);
    assert_eq!(app.count("sign_up_requests").await, 0);
}

#[tokio::test]
async fn first_admin_is_created_once() {
    let app = TestApp::spawn().await;
    assert_eq!(app.count("users").await, 1);
    let again = mycrm::auth::bootstrap::ensure_first_admin(&app.app.db, &test_config().bootstrap)
        .await
        .unwrap();
    assert!(again.is_none());
    assert_eq!(app.count("users").await, 1);
    assert_eq!(app.count("workspaces").await, 1);
}

#[tokio::test]
async fn rest_login_and_refresh() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .post(app.url("/api/auth/login/"))
        .json(&json!({ "username": ADMIN_EMAIL, "password": ADMIN_PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["user"]["email"], ADMIN_EMAIL);
    let access = body["access"].as_str().unwrap();
    assert!(app.gql(Some(access), ME, json!({})).await["errors"].is_null());

    let refreshed = app
        .client
        .post(app.url("/api/auth/refresh/"))
        .json(&json!({ "refresh": body["refresh"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), 200);
    let pair: Value = refreshed.json().await.unwrap();
    assert!(pair["access"].is_string() && pair["refresh"].is_string());

    let wrong = app
        .client
        .post(app.url("/api/auth/login/"))
        .json(&json!({ "email": ADMIN_EMAIL, "password": "wrong-password" }))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let body: Value = wrong.json().await.unwrap();
    assert_eq!(body["error"]["code"], "UNAUTHENTICATED");

    let missing = app
        .client
        .post(app.url("/api/auth/login/"))
        .json(&json!({ "email": ADMIN_EMAIL }))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 400);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["error"]["field"], "password");

    let malformed = app
        .client
        .post(app.url("/api/auth/login/"))
        .header("content-type", "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    let body: Value = malformed.json().await.unwrap();
    assert_eq!(body["error"]["code"], "BAD_USER_INPUT");
}

#[tokio::test]
async fn rest_login_is_throttled_with_retry_after() {
    let app = TestApp::spawn_with(|c| c.auth.max_login_failures_per_account = 1).await;
    let attempt = || {
        app.client
            .post(app.url("/api/auth/login/"))
            .json(&json!({ "email": ADMIN_EMAIL, "password": "wrong-password" }))
            .send()
    };
    assert_eq!(attempt().await.unwrap().status(), 401);
    let limited = attempt().await.unwrap();
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().get("retry-after").is_some());
}

/// Waits (at most 10 s) until `done` holds, checking every 20 ms.
async fn eventually(mut done: impl AsyncFnMut() -> bool) -> bool {
    for _ in 0..500 {
        if done().await {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn checked_sessions_are_remembered_until_they_end() {
    let (app, counter) = TestApp::spawn_counting().await;
    let session = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let access = token_of(&session);
    // Once the live feed listens, a request whose session was just checked runs no SQL at
    // all (the token is checked for every request; `__typename` itself reads nothing).
    let statements = async |app: &TestApp| {
        let before = counter.get();
        let answer = app.gql(Some(&access), "{ __typename }", json!({})).await;
        assert!(answer["errors"].is_null(), "{answer}");
        counter.get() - before
    };
    assert!(eventually(async || statements(&app).await == 0).await);

    // Another process ends the session: its announcement reaches this one.
    let family = app
        .rows("SELECT family_id::text AS f FROM refresh_tokens ORDER BY id DESC LIMIT 1")
        .await[0]["f"]
        .as_str()
        .unwrap()
        .to_string();
    app.execute(&format!(
        "WITH ended AS (UPDATE refresh_tokens SET revoked_at = now() \
           WHERE family_id = '{family}' RETURNING 1) \
         SELECT pg_notify('mycrm_live', '{{\"k\": \"sessions_ended\", \"sessions\": [\"{family}\"]}}') \
         FROM ended LIMIT 1"
    ))
    .await;
    let refused = async || {
        // Public fields still answer with a refused token; `me` does not.
        let answer = app.gql(Some(&access), ME, json!({})).await;
        !answer["errors"].is_null() && error_code(&answer) == "UNAUTHENTICATED"
    };
    assert!(
        eventually(refused).await,
        "the ended session was still accepted"
    );

    // A role change by this process applies to the very next request.
    let (casey, member) = app.user_with_role("casey@example.com", "MEMBER").await;
    assert_eq!(
        app.gql(Some(&member), ME, json!({})).await["data"]["me"]["role"],
        "MEMBER"
    );
    let admin = token_of(&app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await);
    let changed = app
        .gql(
            Some(&admin),
            "mutation($id: ID!) { updateUser(input: {id: $id, role: MANAGER}) { user { role } } }",
            json!({ "id": casey }),
        )
        .await;
    assert_eq!(
        changed["data"]["updateUser"]["user"]["role"], "MANAGER",
        "{changed}"
    );
    assert_eq!(
        app.gql(Some(&member), ME, json!({})).await["data"]["me"]["role"],
        "MANAGER"
    );
}
