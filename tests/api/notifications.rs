//! Notifications end to end: events from the change stream and comments reach the right
//! people (never the actor, never someone who may not see the record), preferences and
//! quiet hours decide the channels and the timing, and deliveries reach a real SMTP server
//! and a real HTTP push gateway, retried when it fails.

use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::{error_code, error_field, TestApp};
use crate::sinks::{SmtpSink, WebhookSink};
use crate::workflows::workers;

const NOTIFICATIONS: &str = "{ unreadNotificationCount notifications(first: 50) { totalCount nodes { id kind title message recordType recordId read data actor { email } } } }";
const DELIVERIES: &str = "{ notificationDeliveries(first: 50) { nodes { id channel status attempts error deliverAt sentAt } } }";
const PREFERENCES: &str = "mutation($i: UpdateNotificationPreferencesInput!) { updateNotificationPreferences(input: $i) { timezone channels { inApp email push sms } digest doNotDisturb { enabled start end days } smsNumber matrix { kind channel enabled } } }";

async fn spawn(smtp: &SmtpSink, push: Option<&WebhookSink>) -> TestApp {
    let smtp = smtp.url();
    let push = push.map(|p| p.url("/push"));
    TestApp::spawn_with(move |c| {
        c.mail.smtp_url = Some(smtp);
        c.notifications.push = push.map(|url| mycrm::config::Gateway {
            url,
            token: Some("push-secret".into()),
        });
        c.jobs.poll = Duration::from_millis(100);
        c.jobs.backoff.base = Duration::from_millis(50);
        c.jobs.backoff.max = Duration::from_millis(200);
    })
    .await
}

/// Waits until `token`'s user has at least `count` notifications; returns them newest first.
async fn notifications(app: &TestApp, token: &str, count: usize) -> Vec<Value> {
    for _ in 0..150 {
        let answer = app.gql(Some(token), NOTIFICATIONS, json!({})).await;
        let nodes = answer["data"]["notifications"]["nodes"]
            .as_array()
            .cloned()
            .unwrap_or_else(|| panic!("{answer}"));
        if nodes.len() >= count {
            return nodes;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("fewer than {count} notifications arrived");
}

async fn count_now(app: &TestApp, token: &str) -> usize {
    let answer = app.gql(Some(token), NOTIFICATIONS, json!({})).await;
    answer["data"]["notifications"]["nodes"]
        .as_array()
        .map_or(0, Vec::len)
}

/// Waits until `check` holds for the user's deliveries; returns them.
async fn deliveries_until(
    app: &TestApp,
    token: &str,
    check: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let mut last = Vec::new();
    for _ in 0..200 {
        let answer = app.gql(Some(token), DELIVERIES, json!({})).await;
        last = answer["data"]["notificationDeliveries"]["nodes"]
            .as_array()
            .cloned()
            .unwrap_or_else(|| panic!("{answer}"));
        if check(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the deliveries never got there: {last:?}");
}

async fn settle() {
    // Long enough for the dispatcher to have handed over every event (it polls at 100 ms).
    tokio::time::sleep(Duration::from_millis(1500)).await;
}

#[tokio::test]
async fn changes_and_comments_reach_the_right_people_and_never_the_actor() {
    let smtp = SmtpSink::start().await;
    let app = spawn(&smtp, None).await;
    let admin = app.admin_token().await;
    let (dana_id, dana) = app.user_with_role("dana@example.com", "MEMBER").await;
    let (_, eve) = app.user_with_role("eve@example.com", "MEMBER").await;
    let stop = workers(&app);

    // An assignment tells the assignee, by bell and by mail; the admin did it and hears nothing.
    let lead = app
        .create_lead(
            &admin,
            json!({"firstName": "Ada", "lastName": "Lovelace", "assignedToId": dana_id}),
        )
        .await;
    let got = notifications(&app, &dana, 1).await;
    assert_eq!(got[0]["kind"], "ASSIGNMENT", "{got:?}");
    assert_eq!(got[0]["title"], "Lead assigned to you: Ada Lovelace");
    assert_eq!(got[0]["recordType"], "LEAD");
    assert_eq!(got[0]["recordId"], json!(lead));
    assert_eq!(got[0]["actor"]["email"], "admin@example.com");
    let sent = deliveries_until(&app, &dana, |d| d.iter().any(|d| d["status"] == "SENT")).await;
    assert_eq!(sent[0]["channel"], "EMAIL");
    let mail = smtp.received();
    assert!(
        mail.iter()
            .any(|m| m.to.iter().any(|t| t.contains("dana@example.com"))
                && m.data.contains("Lead assigned to you: Ada Lovelace")),
        "{mail:?}"
    );

    // A change by someone else tells the assignee which fields changed.
    app.gql(
        Some(&admin),
        "mutation($id: ID!) { updateLead(id: $id, input: {status: CONTACTED, priority: HIGH}) { lead { id } } }",
        json!({ "id": lead }),
    )
    .await;
    let got = notifications(&app, &dana, 2).await;
    assert_eq!(got[0]["kind"], "UPDATE", "{got:?}");
    let mut fields: Vec<String> = serde_json::from_value(got[0]["data"]["fields"].clone()).unwrap();
    fields.sort();
    assert_eq!(fields, vec!["priority", "status"]);
    let message = got[0]["message"].as_str().unwrap();
    assert!(message.ends_with(" changed priority, status."), "{message}");

    // Dana comments, mentioning the admin (by handle) and Eve (who may not see the lead).
    let comment = app
        .gql(
            Some(&dana),
            "mutation($i: AddCommentInput!) { addComment(input: $i) { id body mentions { email } author { email } } }",
            json!({"i": {"recordType": "LEAD", "recordId": lead, "body": "@admin can you call her? cc @eve@example.com"}}),
        )
        .await;
    let comment_id = comment["data"]["addComment"]["id"].clone();
    assert_eq!(
        comment["data"]["addComment"]["mentions"],
        json!([{"email": "admin@example.com"}, {"email": "eve@example.com"}]),
        "{comment}"
    );
    let got = notifications(&app, &admin, 1).await;
    assert_eq!(got[0]["kind"], "MENTION", "{got:?}");
    assert_eq!(
        got[0]["data"]["comment_id"],
        json!(comment_id.as_str().unwrap().parse::<i64>().unwrap())
    );
    // A reply by the admin tells Dana (the thread's author, the assignee, a follower) once.
    let reply = app
        .gql(
            Some(&admin),
            "mutation($i: AddCommentInput!) { addComment(input: $i) { id parentId } }",
            json!({"i": {"recordType": "LEAD", "recordId": lead, "body": "Done.", "parentId": comment_id}}),
        )
        .await;
    assert_eq!(
        reply["data"]["addComment"]["parentId"], comment_id,
        "{reply}"
    );
    let got = notifications(&app, &dana, 3).await;
    assert_eq!(got[0]["kind"], "COMMENT", "{got:?}");
    settle().await;
    assert_eq!(
        count_now(&app, &dana).await,
        3,
        "one notification per event"
    );
    assert_eq!(count_now(&app, &eve).await, 0, "Eve may not see the lead");
    assert_eq!(
        count_now(&app, &admin).await,
        1,
        "the admin's own doings tell them nothing"
    );

    // Comments: only their author edits or deletes; others' records are out of reach.
    let edit = app
        .gql(
            Some(&admin),
            "mutation($id: ID!) { editComment(id: $id, body: \"mine now\") { id } }",
            json!({ "id": comment_id }),
        )
        .await;
    assert_eq!(error_code(&edit), "FORBIDDEN", "{edit}");
    let hidden = app
        .gql(
            Some(&eve),
            "mutation($i: AddCommentInput!) { addComment(input: $i) { id } }",
            json!({"i": {"recordType": "LEAD", "recordId": lead, "body": "hi"}}),
        )
        .await;
    assert_eq!(error_code(&hidden), "NOT_FOUND", "{hidden}");
    let empty = app
        .gql(
            Some(&dana),
            "mutation($i: AddCommentInput!) { addComment(input: $i) { id } }",
            json!({"i": {"recordType": "LEAD", "recordId": lead, "body": "   "}}),
        )
        .await;
    assert_eq!(error_field(&empty), "body", "{empty}");
    let listed = app
        .gql(
            Some(&dana),
            "query($id: ID!) { comments(recordType: LEAD, recordId: $id) { body } following(recordType: LEAD, recordId: $id) }",
            json!({ "id": lead }),
        )
        .await;
    assert_eq!(
        listed["data"]["comments"].as_array().unwrap().len(),
        2,
        "{listed}"
    );
    assert_eq!(
        listed["data"]["following"], true,
        "commenting follows the record"
    );

    // Reading: the bell's count goes down as notifications are read.
    let first = got[0]["id"].clone();
    let marked = app
        .gql(
            Some(&dana),
            "mutation($ids: [ID!]!) { markNotificationsRead(ids: $ids) }",
            json!({ "ids": [first] }),
        )
        .await;
    assert_eq!(marked["data"]["markNotificationsRead"], 1, "{marked}");
    let answer = app.gql(Some(&dana), NOTIFICATIONS, json!({})).await;
    assert_eq!(answer["data"]["unreadNotificationCount"], 2);
    // Someone else's notification IDs do nothing.
    let admin_own = notifications(&app, &admin, 1).await[0]["id"].clone();
    let marked = app
        .gql(
            Some(&dana),
            "mutation($ids: [ID!]!) { markNotificationsRead(ids: $ids) }",
            json!({ "ids": [admin_own] }),
        )
        .await;
    assert_eq!(marked["data"]["markNotificationsRead"], 0);
    let all = app
        .gql(
            Some(&dana),
            "mutation { markAllNotificationsRead }",
            json!({}),
        )
        .await;
    assert_eq!(all["data"]["markAllNotificationsRead"], 2);
    let answer = app.gql(Some(&dana), NOTIFICATIONS, json!({})).await;
    assert_eq!(answer["data"]["unreadNotificationCount"], 0);
    stop.cancel();
}

#[tokio::test]
async fn preferences_pick_the_channels_and_quiet_hours_hold_deliveries() {
    let smtp = SmtpSink::start().await;
    let push = WebhookSink::start().await;
    let app = spawn(&smtp, Some(&push)).await;
    let admin = app.admin_token().await;
    let (dana_id, dana) = app.user_with_role("dana@example.com", "MEMBER").await;
    let (sam_id, sam) = app.user_with_role("sam@example.com", "MEMBER").await;

    // Bad input names its field.
    for (input, field) in [
        (json!({"timezone": "Mars/Olympus"}), "timezone"),
        (json!({"digestTime": "8am"}), "digestTime"),
        (
            json!({"doNotDisturb": {"start": "25:00"}}),
            "doNotDisturb.start",
        ),
        (json!({"doNotDisturb": {"days": [0]}}), "doNotDisturb.days"),
        (json!({"channels": {"sms": true}}), "channels"),
        (json!({"smsNumber": "12345"}), "smsNumber"),
    ] {
        let answer = app
            .gql(Some(&dana), PREFERENCES, json!({ "i": input }))
            .await;
        assert_eq!(error_code(&answer), "BAD_USER_INPUT", "{input}: {answer}");
        assert_eq!(error_field(&answer), field, "{input}: {answer}");
    }

    // Dana: push on, email off, quiet hours around now in Tokyo (they span midnight there
    // whenever the test runs: 23 hours from one hour ago).
    let tz: chrono_tz::Tz = "Asia/Tokyo".parse().unwrap();
    let local = chrono::Utc::now().with_timezone(&tz);
    let start = (local - chrono::Duration::hours(1))
        .format("%H:00")
        .to_string();
    let end = (local + chrono::Duration::hours(22))
        .format("%H:00")
        .to_string();
    let set = app
        .gql(
            Some(&dana),
            PREFERENCES,
            json!({"i": {"timezone": "Asia/Tokyo", "channels": {"push": true, "email": false},
                         "doNotDisturb": {"enabled": true, "start": start, "end": end}}}),
        )
        .await;
    let prefs = &set["data"]["updateNotificationPreferences"];
    assert_eq!(prefs["timezone"], "Asia/Tokyo", "{set}");
    assert_eq!(
        prefs["channels"],
        json!({"inApp": true, "email": false, "push": true, "sms": false})
    );
    assert_eq!(prefs["doNotDisturb"]["days"], json!([1, 2, 3, 4, 5, 6, 7]));
    // Sam: push on, and assignments not by mail.
    app.gql(
        Some(&sam),
        PREFERENCES,
        json!({"i": {"channels": {"push": true},
                     "matrix": [{"kind": "ASSIGNMENT", "channel": "EMAIL", "enabled": false}]}}),
    )
    .await;

    let stop = workers(&app);
    app.create_lead(
        &admin,
        json!({"firstName": "Quiet", "assignedToId": dana_id}),
    )
    .await;
    app.create_lead(&admin, json!({"firstName": "Loud", "assignedToId": sam_id}))
        .await;

    // Sam's push goes now, with the gateway's token; no mail (switched off for assignments).
    let sams = deliveries_until(&app, &sam, |d| d.iter().any(|d| d["status"] == "SENT")).await;
    assert_eq!(sams.len(), 1, "{sams:?}");
    assert_eq!(sams[0]["channel"], "PUSH");
    let calls = push.received();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].headers["authorization"], "Bearer push-secret");
    let body: Value = serde_json::from_str(&calls[0].body).unwrap();
    assert_eq!(body["user_email"], "sam@example.com");
    assert_eq!(body["kind"], "assignment");
    assert_eq!(body["title"], "Lead assigned to you: Loud");

    // Dana's push is held until her quiet hours end; the bell has it already.
    let danas = deliveries_until(&app, &dana, |d| !d.is_empty()).await;
    assert_eq!(danas.len(), 1, "{danas:?}");
    assert_eq!(danas[0]["status"], "HELD");
    let deliver_at: chrono::DateTime<chrono::Utc> =
        danas[0]["deliverAt"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        deliver_at.with_timezone(&tz).format("%H:%M").to_string(),
        end,
        "held until the end of the quiet hours"
    );
    assert_eq!(notifications(&app, &dana, 1).await[0]["kind"], "ASSIGNMENT");
    settle().await;
    assert_eq!(
        push.received().len(),
        1,
        "nothing reached the gateway for Dana"
    );
    assert!(smtp.received().is_empty(), "{:?}", smtp.received());

    // A failing gateway: retried with backoff, then the delivery is failed with the error.
    push.answer(503);
    app.create_lead(
        &admin,
        json!({"firstName": "Again", "assignedToId": sam_id}),
    )
    .await;
    let sams = deliveries_until(&app, &sam, |d| d.iter().any(|d| d["status"] == "FAILED")).await;
    let failed = sams.iter().find(|d| d["status"] == "FAILED").unwrap();
    assert_eq!(failed["attempts"], 5, "{failed}");
    assert!(
        failed["error"].as_str().unwrap().contains("503"),
        "{failed}"
    );
    assert_eq!(push.received().len(), 1 + 5);
    stop.cancel();
}

#[tokio::test]
async fn workflow_notifications_go_through_the_notification_service() {
    let smtp = SmtpSink::start().await;
    let app = spawn(&smtp, None).await;
    let admin = app.admin_token().await;
    let (_, dana) = app.user_with_role("dana@example.com", "MANAGER").await;
    let created = app
        .gql(
            Some(&admin),
            "mutation($i: CreateWorkflowInput!) { createWorkflow(input: $i) { id } }",
            json!({"i": {"name": "Tell Dana", "entity": "LEAD", "trigger": {"type": "record_created"},
                    "actions": [{"type": "send_notification", "users": ["dana@example.com"],
                                 "title": "New lead {{record.first_name}}", "message": "Have a look."}]}}),
        )
        .await;
    let id = created["data"]["createWorkflow"]["id"].clone();
    app.gql(
        Some(&admin),
        "mutation($id: ID!) { activateWorkflow(id: $id) { status } }",
        json!({ "id": id }),
    )
    .await;
    let stop = workers(&app);
    app.create_lead(&admin, json!({"firstName": "Grace"})).await;
    let got = notifications(&app, &dana, 1).await;
    assert_eq!(got[0]["kind"], "WORKFLOW", "{got:?}");
    assert_eq!(got[0]["title"], "New lead Grace");
    deliveries_until(&app, &dana, |d| d.iter().any(|d| d["status"] == "SENT")).await;
    assert!(smtp
        .received()
        .iter()
        .any(|m| m.data.contains("New lead Grace")));
    stop.cancel();
}

/// A timezone (Etc/GMT±N) in which the wall clock now reads between 12:00 and 13:00, so a
/// test's "today" cannot cross midnight.
fn noon_zone(now: chrono::DateTime<chrono::Utc>) -> String {
    use chrono::Timelike;
    let mut offset = 12 - now.hour() as i32;
    if offset > 12 {
        offset -= 24;
    }
    if offset < -11 {
        offset += 24;
    }
    // Etc/GMT signs are inverted: Etc/GMT-9 is UTC+9.
    match offset {
        0 => "Etc/GMT".to_string(),
        o if o > 0 => format!("Etc/GMT-{o}"),
        o => format!("Etc/GMT+{}", -o),
    }
}

#[tokio::test]
async fn digests_list_what_needs_each_user_once_and_nothing_when_empty() {
    use chrono::{Duration as Span, Timelike, Utc};
    use mycrm::notifications::digest::claim_due;
    let smtp = SmtpSink::start().await;
    let app = spawn(&smtp, None).await;
    let _workers = workers(&app);
    let admin = app.admin_token().await;
    let (ann_id, ann) = app.user_with_role("ann@example.com", "MEMBER").await;
    let (_, bob) = app.user_with_role("bob@example.com", "MEMBER").await;

    let real_now = Utc::now();
    let zone = noon_zone(real_now);
    let tz: chrono_tz::Tz = zone.parse().unwrap();
    // The digest slot: two minutes from now on the local clock.
    let slot_local = (real_now + Span::minutes(2)).with_timezone(&tz);
    let digest_time = format!("{:02}:{:02}", slot_local.hour(), slot_local.minute());
    for token in [&ann, &bob] {
        let answer = app
            .gql(
                Some(token),
                PREFERENCES,
                json!({ "i": { "timezone": zone, "digest": "DAILY", "digestTime": digest_time } }),
            )
            .await;
        assert!(answer["errors"].is_null(), "{answer}");
    }

    // What Ann's digest must hold: a lead newly assigned, a task due today, an overdue task,
    // an opportunity that moved, and the unread notifications all that made.
    app.create_lead(
        &admin,
        json!({ "firstName": "Newly", "lastName": "Assigned", "assignedToId": ann_id }),
    )
    .await;
    let due_today = (real_now + Span::hours(2)).to_rfc3339();
    app.create_task(
        &admin,
        json!({ "title": "Call Ada back", "dueAt": due_today, "assignedToId": ann_id }),
    )
    .await;
    let overdue = (real_now - Span::days(2)).to_rfc3339();
    app.create_task(
        &admin,
        json!({ "title": "Send the proposal", "dueAt": overdue, "assignedToId": ann_id }),
    )
    .await;
    let created = app
        .gql(
            Some(&admin),
            "mutation($i: OpportunityInput!) { createOpportunity(input: $i) { opportunity { id } } }",
            json!({ "i": { "name": "Big deal", "assignedToId": ann_id } }),
        )
        .await;
    let opportunity = created["data"]["createOpportunity"]["opportunity"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{created}"))
        .to_string();
    let moved = app
        .gql(
            Some(&admin),
            "mutation($id: ID!) { updateOpportunity(id: $id, input: {stage: PROPOSAL}) { opportunity { stage } } }",
            json!({ "id": opportunity }),
        )
        .await;
    assert!(moved["errors"].is_null(), "{moved}");
    notifications(&app, &ann, 4).await;

    // Before the slot: nothing is due.
    assert_eq!(claim_due(&app.app.db, real_now).await.unwrap(), 0);
    // After it: both digests are claimed, once.
    let later = real_now + Span::minutes(3);
    assert_eq!(claim_due(&app.app.db, later).await.unwrap(), 2);
    assert_eq!(claim_due(&app.app.db, later).await.unwrap(), 0);

    let mail = loop {
        let all = smtp.received();
        if let Some(mail) = all.iter().find(|m| m.data.contains("Message-ID: <digest-")) {
            break mail.clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let body = mail.data.replace("=\r\n", "");
    for expected in [
        "Unread notifications (",
        "Tasks due today (1):",
        "Call Ada back",
        "Overdue tasks (1):",
        "Send the proposal",
        "Leads newly assigned to you (1):",
        "Newly Assigned",
        "Opportunities that moved (1):",
        "Big deal: prospecting -> proposal",
    ] {
        assert!(body.contains(expected), "missing {expected:?} in {body}");
    }
    assert!(body.contains("daily MyCRM digest"), "{body}");

    // Bob has nothing: no mail, and the slot is recorded as empty.
    for _ in 0..100 {
        let rows = app
            .rows("SELECT status FROM notification_digests ORDER BY user_id")
            .await;
        if rows
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] != "pending")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rows = app
        .rows("SELECT u.email, d.status FROM notification_digests d JOIN users u ON u.id = d.user_id ORDER BY u.email")
        .await;
    assert_eq!(
        rows,
        json!([
            { "email": "ann@example.com", "status": "sent" },
            { "email": "bob@example.com", "status": "empty" }
        ])
    );
    let digests: Vec<_> = smtp
        .received()
        .into_iter()
        .filter(|m| m.data.contains("Message-ID: <digest-"))
        .collect();
    assert_eq!(digests.len(), 1);
    assert_eq!(digests[0].to, vec!["ann@example.com".to_string()]);
}

#[tokio::test]
async fn system_notices_reach_whoever_started_the_work() {
    let smtp = SmtpSink::start().await;
    let app = TestApp::spawn_with({
        let smtp = smtp.url();
        move |c| {
            c.mail.smtp_url = Some(smtp);
            c.imports.inline_rows = 1;
            c.jobs.poll = Duration::from_millis(100);
            c.jobs.backoff.base = Duration::from_millis(50);
            c.jobs.backoff.max = Duration::from_millis(100);
        }
    })
    .await;
    let _workers = workers(&app);
    let admin = app.admin_token().await;
    let (member_id, member) = app.user_with_role("mo@example.com", "MEMBER").await;

    // A background import (over the inline row limit) tells its starter when it is done.
    let csv = b"first_name,email\nAda,ada@example.com\nBo,bo@example.com\nCy,cy@example.com\n";
    let (status, answer) = crate::csv_import::upload(&app, &member, "leads", csv, &[]).await;
    assert!(status < 300, "{answer}");
    let got = notifications(&app, &member, 1).await;
    assert_eq!(got[0]["kind"], "SYSTEM", "{got:?}");
    assert_eq!(got[0]["title"], "Import of upload.csv completed");
    assert!(got[0]["message"].as_str().unwrap().contains("3 imported"));
    assert_eq!(got[0]["data"]["resource"], "leads");

    // A model retrained at an admin's request tells that admin.
    crate::scoring::seed_leads(&app, 120, crate::scoring::SEED_STATUS).await;
    let retrain = app
        .gql(
            Some(&admin),
            "mutation { retrainLeadScoringModel { job { id } } }",
            json!({}),
        )
        .await;
    assert!(retrain["errors"].is_null(), "{retrain}");
    let got = notifications(&app, &admin, 1).await;
    assert_eq!(got[0]["title"], "Lead-scoring model v1 is ready", "{got:?}");
    assert!(got[0]["message"].as_str().unwrap().contains("AUC"));

    // A job that fails for good tells its starter (and only the kind and ID, not its errors).
    app.execute(&format!(
        "INSERT INTO jobs (kind, args, workspace_id, created_by, max_attempts) \
         SELECT 'imports.run', '{{\"import_id\": 987654}}', workspace_id, id, 2 \
         FROM users WHERE id = {member_id}"
    ))
    .await;
    app.execute("SELECT pg_notify('mycrm_jobs', 'default')")
        .await;
    let got = notifications(&app, &member, 2).await;
    assert_eq!(got[0]["kind"], "SYSTEM");
    assert_eq!(
        got[0]["title"], "A background job failed: imports.run",
        "{got:?}"
    );
    let job = app
        .rows("SELECT id FROM job_history WHERE args ->> 'import_id' = '987654'")
        .await;
    assert_eq!(got[0]["data"]["job_id"], job[0]["id"], "{job}");
    assert!(!got[0]["message"].as_str().unwrap().contains("987654"));
}
