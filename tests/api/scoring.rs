//! Lead scoring end to end: the rule scorer, training through the API with real workers,
//! explanations that add up, the registry, rescoring from the change stream, and bad input.

use std::time::Duration;

use diesel_async::RunQueryDsl;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::harness::{error_code, TestApp, ADMIN_EMAIL};

const CREATE: &str = "mutation($i: LeadInput!) { createLead(input: $i) { lead { id updatedAt } } }";
const SCORE: &str = "mutation($id: ID!) { scoreLead(id: $id) { leadId score scorer modelVersion baseScore factors { feature value contribution } } }";
const RETRAIN: &str = "mutation { retrainLeadScoringModel { job { id state } } }";
const ACTIVE: &str = "{ activeLeadScoringModel { version learner active loadError trainRows testRows positives negatives features trainingMs startedById metrics { rocAuc accuracy precision recall logLoss calibrationError } candidates { learner trainingMs metrics { rocAuc } } importances { feature importance } } }";

async fn sql(app: &TestApp, statement: &str) {
    let mut conn = app.app.db.get().await.unwrap();
    diesel::sql_query(statement)
        .execute(&mut conn)
        .await
        .unwrap();
}

/// Closed (and a few open) leads straight into the admin's workspace: converted when the
/// budget is high or the lead came by referral, with some noise; plus the awkward custom
/// values (a field that is a number on some leads and text on others, "NaN", 1e300).
pub(crate) async fn seed_leads(app: &TestApp, n: i32, status_sql: &str) {
    sql(
        app,
        &format!(
            "INSERT INTO leads (workspace_id, first_name, email, lead_source, company_size, \
               job_title, status, priority, custom_fields, tags) \
             SELECT (SELECT workspace_id FROM users WHERE email = '{ADMIN_EMAIL}'), 'Seed ' || i, \
               'seed' || i || '@example.com', \
               CASE WHEN i % 3 = 0 THEN 'referral' ELSE 'website' END, 10 + i % 500, \
               CASE WHEN i % 4 = 0 THEN 'VP Sales' ELSE 'Analyst' END, {status_sql}, 'medium', \
               jsonb_build_object('budget', (i * 37) % 100, 'region', \
                 CASE WHEN i % 2 = 0 THEN 'emea' ELSE 'amer' END, \
                 'size', CASE WHEN i % 7 = 0 THEN to_jsonb('big'::text) ELSE to_jsonb(i % 9) END, \
                 'odd', CASE WHEN i % 5 = 0 THEN to_jsonb('NaN'::text) ELSE to_jsonb(1e300) END), \
               ARRAY['seed'] \
             FROM generate_series(1, {n}) AS i"
        ),
    )
    .await;
}

/// The label rule of the seed: converted when the budget is high or by referral, 1 in 11
/// flipped.
pub(crate) const SEED_STATUS: &str =
    "CASE WHEN ((i * 37) % 100 > 60 OR i % 3 = 0) <> (i % 11 = 0) \
    THEN 'converted' ELSE 'lost' END";

fn workers(app: &TestApp) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let shutdown = CancellationToken::new();
    let handle = mycrm::workers::spawn(app.app.clone(), app.database_url.clone(), shutdown.clone());
    (shutdown, handle)
}

async fn finished_job(app: &TestApp, token: &str, id: &str) -> Value {
    for _ in 0..600 {
        let answer = app
            .gql(
                Some(token),
                "query($id: ID!) { job(id: $id) { state progress progressMessage result errors { message } } }",
                json!({ "id": id }),
            )
            .await;
        let job = answer["data"]["job"].clone();
        if ["COMPLETED", "DISCARDED", "FAILED"].contains(&job["state"].as_str().unwrap_or("")) {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let answer = app
        .gql(Some(token), "query($id: ID!) { job(id: $id) { kind state progress progressMessage errors { message } } }", json!({ "id": id }))
        .await;
    panic!("job {id} did not finish: {answer}");
}

fn assert_adds_up(score: &Value) {
    let sum: f64 = score["factors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["contribution"].as_f64().unwrap())
        .sum::<f64>()
        + score["baseScore"].as_f64().unwrap();
    let rounded = score["score"].as_f64().unwrap();
    assert!(
        (sum - rounded).abs() <= 0.5 + 1e-6,
        "base + factors = {sum}, score {rounded}: {score}"
    );
}

async fn create_lead(app: &TestApp, token: &str, input: Value) -> (String, String) {
    let answer = app.gql(Some(token), CREATE, json!({ "i": input })).await;
    assert!(answer["errors"].is_null(), "{answer}");
    let lead = &answer["data"]["createLead"]["lead"];
    (
        lead["id"].as_str().unwrap().to_string(),
        lead["updatedAt"].as_str().unwrap().to_string(),
    )
}

#[tokio::test]
async fn rule_scorer_answers_without_a_model_and_explains_its_points() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (id, updated_at) = create_lead(
        &app,
        &admin,
        json!({ "firstName": "Vera", "email": "vera@example.com", "phone": "+1 555 0100",
                "companyName": "Acme", "jobTitle": "VP Sales", "leadSource": "REFERRAL",
                "companySize": 120 }),
    )
    .await;
    let answer = app.gql(Some(&admin), SCORE, json!({ "id": id })).await;
    let score = &answer["data"]["scoreLead"];
    // referral 20 + size ≤200 15 + no activities 0 + VP 20 + four fields 12.
    assert_eq!(score["score"], 67, "{answer}");
    assert_eq!(score["scorer"], "rules");
    assert_eq!(score["modelVersion"], Value::Null);
    assert_eq!(score["baseScore"], 0.0);
    assert_adds_up(score);
    let features: Vec<&str> = score["factors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["feature"].as_str().unwrap())
        .collect();
    assert_eq!(
        features,
        [
            "source_quality",
            "title_seniority",
            "company_size",
            "completeness"
        ]
    );

    let lead = app
        .gql(
            Some(&admin),
            "query($id: ID!) { lead(id: $id) { score scorer scoredAt updatedAt scoreFactors { feature value contribution } } }",
            json!({ "id": id }),
        )
        .await;
    let lead = &lead["data"]["lead"];
    assert_eq!(lead["score"], 67);
    assert_eq!(lead["scorer"], "rules");
    assert!(lead["scoredAt"].is_string());
    assert_eq!(
        lead["scoreFactors"][1],
        json!({"feature": "title_seniority", "value": "vp", "contribution": 20.0})
    );
    // Scoring is not an edit: updatedAt (which import undo reads as "edited") stays.
    assert_eq!(lead["updatedAt"], updated_at.as_str());
    assert_eq!(
        app.count("record_events").await,
        2,
        "created + score_changed"
    );

    // The cap: every rule at its top is 102 points, shown as a -2 factor.
    let (top, _) = create_lead(
        &app,
        &admin,
        json!({ "firstName": "Top", "email": "top@example.com", "phone": "1", "companyName": "Big",
                "jobTitle": "Chief Executive Officer", "leadSource": "REFERRAL", "companySize": 5000 }),
    )
    .await;
    for i in 0..10 {
        app.gql(
            Some(&admin),
            "mutation($i: LogActivityInput!) { logActivity(input: $i) { activity { id } } }",
            json!({ "i": { "kind": "CALL", "subject": format!("call {i}"), "leadId": top } }),
        )
        .await;
    }
    let answer = app.gql(Some(&admin), SCORE, json!({ "id": top })).await;
    let score = &answer["data"]["scoreLead"];
    assert_eq!(score["score"], 100, "{answer}");
    assert!(score["factors"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["feature"] == "cap" && f["contribution"] == -2.0));
    assert_adds_up(score);
}

#[tokio::test]
async fn retraining_refuses_too_little_data_members_and_leaves_the_rules_in_charge() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    seed_leads(&app, 40, SEED_STATUS).await;
    let answer = app.gql(Some(&admin), RETRAIN, json!({})).await;
    assert_eq!(error_code(&answer), "BAD_USER_INPUT", "{answer}");
    assert!(answer["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("at least 50 closed leads"));

    // Enough leads, but one outcome only.
    sql(&app, "DELETE FROM leads").await;
    seed_leads(&app, 80, "'lost'").await;
    let answer = app.gql(Some(&admin), RETRAIN, json!({})).await;
    assert_eq!(error_code(&answer), "BAD_USER_INPUT", "{answer}");
    assert!(
        answer["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("0 converted and 80 lost"),
        "{answer}"
    );

    let (_, member) = app.user_with_role("member@example.com", "MEMBER").await;
    let answer = app.gql(Some(&member), RETRAIN, json!({})).await;
    assert_eq!(error_code(&answer), "FORBIDDEN", "{answer}");
    let answer = app
        .gql(
            Some(&member),
            "mutation { activateLeadScoringModel(version: 1) { version } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&answer), "FORBIDDEN", "{answer}");

    assert_eq!(app.count("jobs").await, 0);
    assert_eq!(app.count("lead_scoring_models").await, 0);
    let active = app.gql(Some(&admin), ACTIVE, json!({})).await;
    assert_eq!(active["data"]["activeLeadScoringModel"], Value::Null);
}

#[tokio::test]
async fn a_trained_model_scores_explains_rolls_back_and_survives_corruption() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (_, manager) = app.user_with_role("manager@example.com", "MANAGER").await;
    seed_leads(&app, 400, SEED_STATUS).await;
    let (open, _) = create_lead(
        &app,
        &admin,
        json!({ "firstName": "Open", "email": "open@example.com", "leadSource": "REFERRAL",
                "customFields": { "budget": 90, "region": "emea", "size": "big", "odd": 1e300 } }),
    )
    .await;
    let (shutdown, handle) = workers(&app);

    let answer = app.gql(Some(&manager), RETRAIN, json!({})).await;
    let job_id = answer["data"]["retrainLeadScoringModel"]["job"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{answer}"))
        .to_string();
    let job = finished_job(&app, &manager, &job_id).await;
    assert_eq!(job["state"], "COMPLETED", "{job}");
    assert_eq!(job["progress"], 100);
    assert_eq!(job["result"]["version"], 1);

    let active = app.gql(Some(&admin), ACTIVE, json!({})).await;
    let model = &active["data"]["activeLeadScoringModel"];
    assert_eq!(model["version"], 1, "{active}");
    assert_eq!(model["active"], true);
    assert_eq!(model["loadError"], Value::Null);
    assert_eq!(
        model["positives"].as_i64().unwrap() + model["negatives"].as_i64().unwrap(),
        400
    );
    assert_eq!(
        model["testRows"].as_i64().unwrap() + model["trainRows"].as_i64().unwrap(),
        400
    );
    assert!(
        model["metrics"]["rocAuc"].as_f64().unwrap() > 0.8,
        "{model}"
    );
    let candidates: Vec<&str> = model["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["learner"].as_str().unwrap())
        .collect();
    assert_eq!(candidates, ["random_forest", "gradient_boosting"]);
    assert!(["random_forest", "gradient_boosting"].contains(&model["learner"].as_str().unwrap()));
    let features: Vec<&str> = model["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    for expected in [
        "source_quality",
        "title_seniority",
        "custom.budget",
        "custom.region",
        "custom.size",
        "custom.odd",
        "tag:seed",
    ] {
        assert!(
            features.contains(&expected),
            "{expected} missing from {features:?}"
        );
    }
    let top: Vec<&str> = model["importances"].as_array().unwrap()[..3]
        .iter()
        .map(|i| i["feature"].as_str().unwrap())
        .collect();
    assert!(top.contains(&"custom.budget"), "{top:?}");
    assert!(model["startedById"].is_string());

    let answer = app.gql(Some(&admin), SCORE, json!({ "id": open })).await;
    let score = &answer["data"]["scoreLead"];
    assert_eq!(score["scorer"], "model", "{answer}");
    assert_eq!(score["modelVersion"], 1);
    assert!(
        score["score"].as_i64().unwrap() >= 50,
        "a high-budget referral: {score}"
    );
    assert_adds_up(score);
    let budget = score["factors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["feature"] == "custom.budget")
        .expect("budget factor");
    assert_eq!(budget["value"], "90");
    assert!(budget["contribution"].as_f64().unwrap() > 0.0);

    // Training queued a rescoring of the whole workspace; then bulk scoring by filter.
    let answer = app
        .gql(
            Some(&admin),
            "mutation { bulkScoreLeads(filter: {}) { job { id } } }",
            json!({}),
        )
        .await;
    let bulk = answer["data"]["bulkScoreLeads"]["job"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{answer}"))
        .to_string();
    let job = finished_job(&app, &admin, &bulk).await;
    assert_eq!(job["state"], "COMPLETED", "{job}");
    assert_eq!(job["result"]["scored"], 401);
    let stats = app
        .gql(
            Some(&admin),
            "{ leadScoringStats { total high medium low unscored average histogram } }",
            json!({}),
        )
        .await;
    let stats = &stats["data"]["leadScoringStats"];
    assert_eq!(stats["total"], 401, "{stats}");
    assert_eq!(stats["unscored"], 0);
    let bands = stats["high"].as_i64().unwrap()
        + stats["medium"].as_i64().unwrap()
        + stats["low"].as_i64().unwrap();
    assert_eq!(bands, 401);
    assert_eq!(
        stats["histogram"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .sum::<i64>(),
        401
    );

    // Another workspace cannot score this lead.
    let other = app
        .other_workspace("Other", "o@other.test", "other-password")
        .await;
    let other = other["accessToken"].as_str().unwrap().to_string();
    let answer = app.gql(Some(&other), SCORE, json!({ "id": open })).await;
    assert_eq!(error_code(&answer), "NOT_FOUND", "{answer}");
    let answer = app
        .gql(
            Some(&other),
            "mutation($id: ID!) { bulkScoreLeads(ids: [$id]) { job { id } } }",
            json!({ "id": open }),
        )
        .await;
    assert_eq!(error_code(&answer), "NOT_FOUND", "{answer}");

    // A second version, then a rollback to the first.
    let answer = app.gql(Some(&admin), RETRAIN, json!({})).await;
    let job_id = answer["data"]["retrainLeadScoringModel"]["job"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        finished_job(&app, &admin, &job_id).await["state"],
        "COMPLETED"
    );
    let answer = app
        .gql(
            Some(&admin),
            "mutation { activateLeadScoringModel(version: 1) { version active } }",
            json!({}),
        )
        .await;
    assert_eq!(
        answer["data"]["activateLeadScoringModel"],
        json!({"version": 1, "active": true}),
        "{answer}"
    );
    let answer = app
        .gql(
            Some(&admin),
            "mutation { activateLeadScoringModel(version: 9) { version } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&answer), "NOT_FOUND", "{answer}");
    let models = app
        .gql(
            Some(&admin),
            "{ leadScoringModels { version active } }",
            json!({}),
        )
        .await;
    assert_eq!(
        models["data"]["leadScoringModels"],
        json!([{"version": 2, "active": false}, {"version": 1, "active": true}])
    );
    shutdown.cancel();
    handle.await.unwrap();

    // A stored model that no longer reads: reported, and the rules answer meanwhile.
    sql(&app, "UPDATE lead_scoring_models SET model = '{\"learner\": \"random_forest\", \"trees\": 3}' WHERE version = 1").await;
    assert_rules_take_over(&app, &admin, &open, "cannot be read").await;
    // A model whose trees point outside themselves is refused the same way.
    sql(&app, "UPDATE lead_scoring_models SET model = jsonb_set(model, '{ensemble,trees,0,nodes,0,l}', '99999') WHERE version = 2").await;
    sql(&app, "UPDATE lead_scoring_models SET active = false").await;
    sql(
        &app,
        "UPDATE lead_scoring_models SET active = true WHERE version = 2",
    )
    .await;
    assert_rules_take_over(&app, &admin, &open, "malformed").await;
}

/// The active model does not load: scoring falls back to the rules and the model reports why.
async fn assert_rules_take_over(app: &TestApp, token: &str, lead: &str, why: &str) {
    let answer = app.gql(Some(token), SCORE, json!({ "id": lead })).await;
    assert_eq!(answer["data"]["scoreLead"]["scorer"], "rules", "{answer}");
    let active = app.gql(Some(token), ACTIVE, json!({})).await;
    let error = active["data"]["activeLeadScoringModel"]["loadError"].as_str();
    assert!(error.is_some_and(|e| e.contains(why)), "{active}");
}

#[tokio::test]
async fn leads_are_rescored_when_their_features_change_or_activity_is_logged() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (shutdown, handle) = workers(&app);
    let (id, _) = create_lead(
        &app,
        &admin,
        json!({ "firstName": "Ray", "leadSource": "WEBSITE" }),
    )
    .await;
    let read = async |app: &TestApp| {
        app.gql(
            Some(&admin),
            "query($id: ID!) { lead(id: $id) { score scorer updatedAt } }",
            json!({ "id": id }),
        )
        .await["data"]["lead"]
            .clone()
    };
    let wait_for = async |want: i64| {
        for _ in 0..200 {
            let lead = read(&app).await;
            if lead["score"] == want {
                return lead;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the score never became {want}: {}", read(&app).await);
    };
    // website 15 + no title 5.
    wait_for(20).await;
    app.gql(Some(&admin), "mutation($id: ID!) { updateLead(id: $id, input: {jobTitle: \"Director of Ops\"}) { lead { id } } }", json!({ "id": id })).await;
    let lead = wait_for(38).await; // + director 20 - none 5 + title present 3
    let edited_at = lead["updatedAt"].clone();
    app.gql(
        Some(&admin),
        "mutation($i: LogActivityInput!) { logActivity(input: $i) { activity { id } } }",
        json!({ "i": { "kind": "MEETING", "subject": "Intro", "leadId": id } }),
    )
    .await;
    let lead = wait_for(40).await;
    // Logging the meeting set last_contacted_at (an edit); the rescoring itself did not.
    assert!(lead["updatedAt"].as_str() >= edited_at.as_str());
    // A change no feature reads (notes) does not rescore: no new score_changed event.
    let before = app.count("record_events").await;
    app.gql(
        Some(&admin),
        "mutation($id: ID!) { updateLead(id: $id, input: {notes: \"hello\"}) { lead { id } } }",
        json!({ "id": id }),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(app.count("record_events").await, before + 1);
    shutdown.cancel();
    handle.await.unwrap();

    #[derive(diesel::QueryableByName)]
    struct Change {
        #[diesel(sql_type = diesel::sql_types::Jsonb)]
        changes: Value,
    }
    let mut conn = app.app.db.get().await.unwrap();
    let changes: Vec<Change> = diesel::sql_query(
        "SELECT changes FROM record_events WHERE action = 'score_changed' ORDER BY id",
    )
    .load(&mut conn)
    .await
    .unwrap();
    let scores: Vec<Value> = changes
        .into_iter()
        .map(|c| c.changes["score"].clone())
        .collect();
    assert_eq!(
        scores,
        [
            json!({"old": null, "new": 20}),
            json!({"old": 20, "new": 38}),
            json!({"old": 38, "new": 40})
        ]
    );
}

#[tokio::test]
async fn the_weekly_schedule_retrains_every_workspace_with_enough_data() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    seed_leads(&app, 120, SEED_STATUS).await;
    // A second workspace with too few closed leads is left alone.
    app.other_workspace("Small", "s@small.test", "small-password")
        .await;
    sql(&app, "INSERT INTO leads (workspace_id, first_name, status, priority) \
        SELECT (SELECT workspace_id FROM users WHERE email = 's@small.test'), 'S' || i, 'converted', 'low' \
        FROM generate_series(1, 10) AS i").await;
    let (shutdown, handle) = workers(&app);
    // In the first 30 minutes of an hour the workers start by catching up on that hour's
    // slot (its grace period); that run trains nobody (it is not Monday 02:00 anywhere
    // relevant) but holds the schedule until it ends, so a trigger waits for it.
    let mut answer = Value::Null;
    for _ in 0..300 {
        answer = app
            .gql(
                Some(&admin),
                "mutation { triggerSchedule(name: \"lead_scoring.retrain\") { schedule { name } } }",
                json!({}),
            )
            .await;
        if answer["errors"][0]["extensions"]["code"] != "CONFLICT" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        answer["data"]["triggerSchedule"]["schedule"]["name"], "lead_scoring.retrain",
        "{answer}"
    );
    let mut model = Value::Null;
    for _ in 0..300 {
        model = app.gql(Some(&admin), ACTIVE, json!({})).await["data"]["activeLeadScoringModel"]
            .clone();
        if !model.is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    shutdown.cancel();
    handle.await.unwrap();
    assert_eq!(model["version"], 1, "{model}");
    assert_eq!(model["startedById"], Value::Null, "the schedule started it");
    assert_eq!(app.count("lead_scoring_models").await, 1);
}

/// The weekly retrain ticks hourly in UTC and trains a workspace at Monday 02:00 on its own
/// clock (a manual trigger trains every workspace at once: see the test above).
#[tokio::test]
async fn a_tick_retrains_a_workspace_at_monday_two_oclock_in_its_timezone() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    seed_leads(&app, 120, SEED_STATUS).await;
    let zone = app
        .gql(
            Some(&admin),
            "mutation { updateWorkspace(input: {timezone: \"Asia/Tokyo\"}) { timezone } }",
            json!({}),
        )
        .await;
    assert!(zone["errors"].is_null(), "{zone}");
    let (shutdown, handle) = workers(&app);
    // 2026-11-23 is a Monday: 02:00 UTC is 11:00 in Tokyo; Sunday 17:00 UTC is Monday 02:00 there.
    for (slot, trained) in [("2026-11-23T02:00:00Z", 0), ("2026-11-22T17:00:00Z", 1)] {
        sql(
            &app,
            &format!(
                "WITH j AS (INSERT INTO jobs (kind, args) VALUES ('scoring.retrain_all', '{{}}') \
                   RETURNING id) \
                 INSERT INTO schedule_runs (schedule, slot, reason, job_id) \
                 SELECT 'lead_scoring.retrain', '{slot}', 'tick', id FROM j"
            ),
        )
        .await;
        let mut result = Value::Null;
        for _ in 0..100 {
            let rows = app
                .rows(&format!(
                    "SELECT h.result FROM job_history h JOIN schedule_runs r ON r.job_id = h.id \
                     WHERE r.slot = '{slot}'"
                ))
                .await;
            if let Some(row) = rows.as_array().and_then(|r| r.iter().next()) {
                result = row["result"].clone();
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(result["workspaces"], trained, "slot {slot}: {result}");
    }
    shutdown.cancel();
    handle.await.unwrap();
}
