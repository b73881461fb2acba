//! CSV import over real HTTP multipart against PostgreSQL: the original curl flows, every parse
//! case, dry runs, updates by email, all-or-nothing, background imports with progress, undo,
//! scoping, the size limit, errors.csv and the export → import round trip.

use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::*;

/// A multipart form as curl sends it: `-F file=@name;type=text/csv -F key=value`.
fn form(file: &[u8], file_name: &str, fields: &[(&str, &str)]) -> (String, Vec<u8>) {
    let boundary = "------------------------mycrmtestboundary";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\ncontent-disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\ncontent-disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\ncontent-type: text/csv\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

pub(crate) async fn upload(
    app: &TestApp,
    token: &str,
    resource: &str,
    file: &[u8],
    fields: &[(&str, &str)],
) -> (u16, Value) {
    let (content_type, body) = form(file, "upload.csv", fields);
    let response = app
        .client
        .post(app.url(&format!("/api/v1/import/{resource}/")))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(json!({ "raw": text })),
    )
}

async fn leads(app: &TestApp, token: &str) -> Vec<Value> {
    let answer = app
        .gql(
            Some(token),
            "{ leads(first: 500, orderBy: {field: CREATED_AT, direction: ASC}) { nodes { id firstName lastName email companyName leadSource status priority companySize estimatedValue probability nextFollowUpAt notes tags customFields owner { email } } } }",
            json!({}),
        )
        .await;
    answer["data"]["leads"]["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("{answer}"))
        .clone()
}

fn detail_lines(answer: &Value) -> Vec<(u64, String)> {
    answer["error_details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["row"].as_u64().unwrap(),
                d["column"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_original_curl_flows_import_with_a_mapping_and_download_the_template() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let file = b"First Name,Last Name,Work Email,Org,Source\n\
                 Ada,Lovelace,ada.lovelace@example.com,Analytical Engines,Referral\n\
                 Grace,Hopper,grace@example.com,Navy,Trade Show\n";
    let mapping = r#"{"Work Email": "email", "Org": "company_name"}"#;
    let (status, answer) = upload(&app, &admin, "leads", file, &[("mapping", mapping)]).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["success"], true);
    assert_eq!(answer["status"], "completed");
    assert_eq!(answer["total_rows"], 2);
    assert_eq!(answer["imported"], 2);
    assert_eq!(answer["errors"], 0);
    assert!(answer["import_id"].as_i64().unwrap() > 0);
    assert!(answer["job_id"].is_null());
    assert_eq!(answer["columns"]["Source"], "lead_source");
    let rows = leads(&app, &admin).await;
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["email"], "ada.lovelace@example.com");
    assert_eq!(rows[0]["companyName"], "Analytical Engines");
    assert_eq!(rows[1]["leadSource"], "TRADE_SHOW");
    assert_eq!(rows[1]["owner"]["email"], ADMIN_EMAIL);
    // Each imported record is on the change stream.
    assert_eq!(app.count("record_events").await, 2);

    // The template, then the template imported back as it is.
    let template = app
        .client
        .get(app.url("/api/v1/import/leads/"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(template.status(), 200);
    let body = template.bytes().await.unwrap();
    let (status, answer) = upload(&app, &admin, "leads", &body, &[]).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["imported"], 1, "{answer}");
    assert_eq!(answer["ignored_columns"], json!([]));
}

#[tokio::test]
async fn every_parse_case_is_read_or_reported_with_its_line() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    app.user_with_role("dana@example.com", "MEMBER").await;
    // BOM, semicolons, CRLF, a quoted field with the delimiter, quotes and a newline, blank
    // lines, a ragged row, labels for enums, spreadsheet numbers, day/month dates, owners by
    // email, a custom field, an ignored column, a neutralised formula cell.
    let file = "\u{feff}First Name;E-mail;Company;Lead Source;Priority;Employees;Estimated Value;Next Follow Up At;Owner;custom.region;Shoe Size;Notes;Tags\r\n\
        Ada;ADA@Example.com;Analytical;Email Campaign;HIGH;1 200;$12,500.50;24/11/2026 09:30;dana@example.com;EMEA;42;\"semi; colon\r\nand \"\"quotes\"\"\";\"vip; emea\"\r\n\
        \r\n\
        Bob;bob@example.com;Globex;website;low;50;1.234,50 €;2026-12-01;;;;'=SUM(A1);\r\n\
        Cy;cy@example.com\r\n\
        Dee;not-an-email;X;fax;medium;ten;12;03/04/2026;ghost@example.com;;;;\r\n\
        ;;;;;;;;;;;;\r\n\
        Eve;eve@example.com;Eve Co;Event;Urgent;7;0;Nov 24, 2026;;;;;\r\n";
    let (status, answer) = upload(&app, &admin, "leads", file.as_bytes(), &[]).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["total_rows"], 5, "{answer}");
    assert_eq!(answer["imported"], 3, "{answer}");
    assert_eq!(answer["errors"], 2);
    assert_eq!(answer["skipped"], 2);
    assert_eq!(answer["ignored_columns"], json!(["Shoe Size"]));
    let details = detail_lines(&answer);
    assert_eq!(details[0], (6, String::new()), "ragged row: {answer}");
    let dee: Vec<&str> = details
        .iter()
        .filter(|(line, _)| *line == 7)
        .map(|(_, c)| c.as_str())
        .collect();
    assert_eq!(
        dee,
        vec![
            "E-mail",
            "Lead Source",
            "Employees",
            "Next Follow Up At",
            "Owner"
        ],
        "{answer}"
    );
    let ambiguous = answer["error_details"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["column"] == "Next Follow Up At")
        .unwrap();
    assert!(ambiguous["error"].as_str().unwrap().contains("ambiguous"));
    assert_eq!(ambiguous["value"], "03/04/2026");

    let rows = leads(&app, &admin).await;
    let ada = &rows[0];
    assert_eq!(ada["email"], "ada@example.com");
    assert_eq!(ada["leadSource"], "EMAIL_CAMPAIGN");
    assert_eq!(ada["priority"], "HIGH");
    assert_eq!(ada["companySize"], 1200);
    assert_eq!(ada["estimatedValue"], "12500.50");
    assert_eq!(ada["nextFollowUpAt"], "2026-11-24T09:30:00+00:00");
    assert_eq!(ada["owner"]["email"], "dana@example.com");
    assert_eq!(ada["customFields"], json!({ "region": "EMEA" }));
    assert_eq!(ada["notes"], "semi; colon\r\nand \"quotes\"");
    assert_eq!(ada["tags"], json!(["vip", "emea"]));
    let bob = &rows[1];
    assert_eq!(bob["estimatedValue"], "1234.50");
    assert_eq!(bob["notes"], "=SUM(A1)");
    assert_eq!(bob["nextFollowUpAt"], "2026-12-01T00:00:00+00:00");
    assert_eq!(rows[2]["nextFollowUpAt"], "2026-11-24T00:00:00+00:00");
    assert_eq!(rows[2]["priority"], "URGENT");
}

#[tokio::test]
async fn windows_1252_tabs_and_file_level_errors() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let file = b"Name\tDomain\tIndustry\nCaf\xe9 M\xfcller\tcafe.example\tFood \x96 Drink\n";
    let (status, answer) = upload(&app, &admin, "companies", file, &[]).await;
    assert_eq!(
        (status, answer["imported"].clone()),
        (200, json!(1)),
        "{answer}"
    );
    let companies = app
        .gql(
            Some(&admin),
            "{ companies(first: 5) { nodes { name industry } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        companies["data"]["companies"]["nodes"][0]["name"],
        "Café Müller"
    );
    assert_eq!(
        companies["data"]["companies"]["nodes"][0]["industry"],
        "Food – Drink"
    );

    let (status, answer) = upload(&app, &admin, "leads", b"", &[]).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["field"], "file");
    assert!(answer["error"]["message"]
        .as_str()
        .unwrap()
        .contains("line 1"));
    // Duplicate headers name the header's line (blank lines before it are skipped).
    for (file, line) in [
        (&b"email,Email\na@x.io,b@x.io\n"[..], 1),
        (&b"\r\n\r\nemail,Email\r\na@x.io,b@x.io\r\n"[..], 3),
    ] {
        let (status, answer) = upload(&app, &admin, "leads", file, &[]).await;
        assert_eq!(status, 400, "{answer}");
        assert_eq!(answer["error"]["code"], "BAD_USER_INPUT");
        assert_eq!(answer["error"]["field"], "file");
        assert_eq!(
            answer["error"]["message"],
            format!("line {line}: the header \"Email\" appears twice (columns 1 and 2)")
        );
    }
    let (status, answer) = upload(
        &app,
        &admin,
        "leads",
        b"email\na@x.io\n",
        &[("mapping", "[1]")],
    )
    .await;
    assert_eq!(
        (status, answer["error"]["field"].clone()),
        (400, json!("mapping"))
    );
    let (status, answer) = upload(
        &app,
        &admin,
        "leads",
        b"email\na@x.io\n",
        &[("match_on", "name")],
    )
    .await;
    assert_eq!(
        (status, answer["error"]["field"].clone()),
        (400, json!("match_on"))
    );
    let (status, answer) = upload(&app, &admin, "widgets", b"email\na@x.io\n", &[]).await;
    assert_eq!(status, 404, "{answer}");
    // Refused requests keep nothing.
    assert_eq!(app.count("leads").await, 0);
    let response = app
        .client
        .post(app.url("/api/v1/import/leads/"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn dry_run_writes_nothing_and_update_existing_matches_by_email() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let first = b"email,first_name,status\nada@example.com,Ada,new\nbob@example.com,Bob,new\n";
    let (_, answer) = upload(&app, &admin, "leads", first, &[("dry_run", "true")]).await;
    assert_eq!(
        (answer["dry_run"].clone(), answer["imported"].clone()),
        (json!(true), json!(2))
    );
    assert_eq!(app.count("leads").await, 0);
    assert_eq!(app.count("record_events").await, 0);
    upload(&app, &admin, "leads", first, &[]).await;
    assert_eq!(app.count("leads").await, 2);

    // Without update_existing, known emails are skipped and reported; a key twice in one file
    // is an error on its second line.
    let second = b"Email,First Name,Status\nADA@example.com,Ada B.,qualified\ncy@example.com,Cy,new\ncy@example.com,Cyrus,new\n";
    let (_, answer) = upload(&app, &admin, "leads", second, &[]).await;
    assert_eq!(answer["imported"], 1, "{answer}");
    assert_eq!(answer["skipped"], 2);
    assert_eq!(answer["errors"], 1);
    let details = answer["error_details"].as_array().unwrap();
    assert!(details[0]["error"]
        .as_str()
        .unwrap()
        .contains("update_existing"));
    assert_eq!(details[1]["row"], 4);
    assert!(details[1]["error"].as_str().unwrap().contains("line 3"));

    let third = b"email,first_name,status,custom.region\nada@example.com,Ada B.,qualified,EMEA\n";
    let (_, answer) = upload(&app, &admin, "leads", third, &[("update_existing", "true")]).await;
    assert_eq!(
        (answer["updated"].clone(), answer["imported"].clone()),
        (json!(1), json!(0)),
        "{answer}"
    );
    let rows = leads(&app, &admin).await;
    assert_eq!(rows[0]["firstName"], "Ada B.");
    assert_eq!(rows[0]["status"], "QUALIFIED");
    assert_eq!(rows[0]["lastName"], Value::Null);
    assert_eq!(app.count("leads").await, 3);
}

#[tokio::test]
async fn skip_errors_false_writes_nothing_when_one_row_fails() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let file = b"email,first_name,probability\na@example.com,A,10\nb@example.com,B,250\nc@example.com,C,30\n";
    let (status, answer) = upload(&app, &admin, "leads", file, &[("skip_errors", "false")]).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["success"], false);
    assert_eq!(answer["status"], "failed");
    assert_eq!(answer["imported"], 0);
    assert_eq!(answer["skipped"], 3);
    assert_eq!(detail_lines(&answer), vec![(3, "probability".to_string())]);
    assert_eq!(app.count("leads").await, 0);
    assert_eq!(app.count("record_events").await, 0);
    // The same file fixed goes in whole.
    let fixed = b"email,first_name,probability\na@example.com,A,10\nb@example.com,B,25\n";
    let (_, answer) = upload(&app, &admin, "leads", fixed, &[("skip_errors", "false")]).await;
    assert_eq!(
        (answer["success"].clone(), answer["imported"].clone()),
        (json!(true), json!(2))
    );
}

#[tokio::test]
async fn large_files_import_in_the_background_with_progress() {
    let app = TestApp::spawn_with(|c| c.imports.inline_rows = 10).await;
    let admin = app.admin_token().await;
    let mut file = String::from("email,first_name,company_size\n");
    for i in 0..2500 {
        let size = if i == 1234 {
            "many".to_string()
        } else {
            i.to_string()
        };
        file.push_str(&format!("lead{i}@example.com,Lead {i},{size}\n"));
    }
    let (status, answer) = upload(&app, &admin, "leads", file.as_bytes(), &[]).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["status"], "queued");
    let job_id = answer["job_id"].as_i64().unwrap().to_string();
    let import_id = answer["import_id"].as_i64().unwrap().to_string();

    // The import is held at line 2102 (in its third batch) by a lock this test holds, so its
    // progress is seen part way whatever the machine's speed: a trigger makes the insert of
    // that row wait for the lock.
    use diesel_async::AsyncConnection;
    let mut holder = diesel_async::AsyncPgConnection::establish(&app.database_url)
        .await
        .unwrap();
    let on_holder = async |conn: &mut diesel_async::AsyncPgConnection, sql: &str| {
        diesel_async::RunQueryDsl::execute(diesel::sql_query(sql), conn)
            .await
            .unwrap();
    };
    on_holder(&mut holder, "SELECT pg_advisory_lock(5005)").await;
    app.execute(
        "CREATE FUNCTION hold_import() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN IF NEW.email = 'lead2100@example.com' THEN PERFORM pg_advisory_xact_lock(5005); \
         END IF; RETURN NEW; END $$",
    )
    .await;
    app.execute(
        "CREATE TRIGGER hold_import BEFORE INSERT ON leads \
         FOR EACH ROW EXECUTE FUNCTION hold_import()",
    )
    .await;

    let shutdown = tokio_util::sync::CancellationToken::new();
    let worker = tokio::spawn(mycrm::jobs::worker::run(
        app.app.clone(),
        std::sync::Arc::new(mycrm::jobs::registry()),
        mycrm::jobs::worker::WorkerConfig {
            poll: Duration::from_millis(50),
            ..Default::default()
        },
        app.database_url.clone(),
        shutdown.clone(),
    ));
    let job_query = "query($id: ID!) { job(id: $id) { state progress progressMessage result } }";
    let mut seen: Vec<i64> = Vec::new();
    // Part way: two batches committed and reported, the third waiting for the lock. (A
    // bound on the wait, so a changed progress message fails the test instead of hanging it.)
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let partway = loop {
        assert!(
            std::time::Instant::now() < deadline,
            "the import never reported its second batch; seen {seen:?}"
        );
        let answer = app
            .gql(Some(&admin), job_query, json!({ "id": job_id }))
            .await;
        let job = answer["data"]["job"].clone();
        assert!(
            job["state"] == "AVAILABLE" || job["state"] == "RUNNING",
            "the import cannot end while held: {answer}"
        );
        seen.push(job["progress"].as_i64().unwrap());
        if job["progressMessage"] == "line 2001: 1999 imported, 0 updated, 1 skipped, 1 errors" {
            break job;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(partway["state"], "RUNNING");
    let progress = partway["progress"].as_i64().unwrap();
    assert!(0 < progress && progress < 100, "{partway}");
    let import = app
        .gql(
            Some(&admin),
            "query($id: ID!) { import(id: $id) { status totalRows imported errors } }",
            json!({ "id": import_id }),
        )
        .await;
    assert_eq!(
        import["data"]["import"],
        json!({ "status": "running", "totalRows": 2000, "imported": 1999, "errors": 1 })
    );
    on_holder(&mut holder, "SELECT pg_advisory_unlock(5005)").await;
    let job = loop {
        let answer = app
            .gql(Some(&admin), job_query, json!({ "id": job_id }))
            .await;
        let job = answer["data"]["job"].clone();
        seen.push(job["progress"].as_i64().unwrap());
        if job["state"] == "COMPLETED" || job["state"] == "DISCARDED" {
            break job;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    shutdown.cancel();
    assert!(
        seen.windows(2).all(|w| w[0] <= w[1]),
        "progress never goes back: {seen:?}"
    );
    worker.await.unwrap();
    assert_eq!(job["state"], "COMPLETED", "{job}");
    assert_eq!(job["progress"], 100);
    assert_eq!(job["result"]["imported"], 2499);
    let import = app
        .gql(
            Some(&admin),
            "query($id: ID!) { import(id: $id) { status totalRows imported errors fileName errorDetails { row column value } } }",
            json!({ "id": import_id }),
        )
        .await;
    let import = &import["data"]["import"];
    assert_eq!(import["status"], "completed", "{import}");
    assert_eq!(import["totalRows"], 2500);
    assert_eq!(import["errors"], 1);
    assert_eq!(import["fileName"], "upload.csv");
    assert_eq!(
        import["errorDetails"],
        json!([{ "row": 1236, "column": "company_size", "value": "many" }])
    );
    assert_eq!(app.count("leads").await, 2499);
    assert_eq!(app.count("import_file_chunks").await, 0);
    // The planner knows the table's new size as soon as the import ends (ANALYZE).
    #[derive(diesel::QueryableByName)]
    struct Estimate {
        #[diesel(sql_type = diesel::sql_types::Float4)]
        reltuples: f32,
    }
    let mut conn = app.app.db.get().await.unwrap();
    let estimate: Estimate = diesel_async::RunQueryDsl::get_result(
        diesel::sql_query("SELECT reltuples FROM pg_class WHERE relname = 'leads'"),
        &mut conn,
    )
    .await
    .unwrap();
    assert_eq!(estimate.reltuples, 2499.0);
}

#[tokio::test]
async fn undo_deletes_created_records_restores_updates_and_keeps_later_edits() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    upload(
        &app,
        &admin,
        "leads",
        b"email,first_name,status,city\nold@example.com,Old,new,Paris\nkeep@example.com,Keep,new,Rome\n",
        &[],
    )
    .await;
    let file = b"email,first_name,status,city\nold@example.com,Renamed,contacted,Berlin\nkeep@example.com,Kept,qualified,Oslo\nnew1@example.com,New1,new,\nnew2@example.com,New2,new,\n";
    let (_, answer) = upload(&app, &admin, "leads", file, &[("update_existing", "true")]).await;
    assert_eq!(
        (answer["imported"].clone(), answer["updated"].clone()),
        (json!(2), json!(2)),
        "{answer}"
    );
    let import_id = answer["import_id"].as_i64().unwrap().to_string();
    // Later edits: one on an updated record's field, one on a created record.
    let rows = leads(&app, &admin).await;
    let id_of = |email: &str| {
        rows.iter().find(|r| r["email"] == email).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    for (id, patch) in [
        (id_of("keep@example.com"), json!({ "city": "Madrid" })),
        (id_of("new2@example.com"), json!({ "notes": "called" })),
    ] {
        let edit = app
            .gql(
                Some(&admin),
                "mutation($id: ID!, $i: LeadInput!) { updateLead(id: $id, input: $i) { lead { id } } }",
                json!({ "id": id, "i": patch }),
            )
            .await;
        assert!(edit["errors"].is_null(), "{edit}");
    }
    let undone = app
        .gql(
            Some(&admin),
            "mutation($id: ID!) { undoImport(id: $id) { status undoneAt undoResult { deleted restored conflictCount conflicts { recordId field reason } } } }",
            json!({ "id": import_id }),
        )
        .await;
    let undone = &undone["data"]["undoImport"];
    assert_eq!(undone["status"], "undone", "{undone}");
    let result = &undone["undoResult"];
    assert_eq!(result["deleted"], 1);
    assert_eq!(result["restored"], 2);
    assert_eq!(result["conflictCount"], 2);
    let conflicts = result["conflicts"].as_array().unwrap();
    assert!(conflicts
        .iter()
        .any(|c| c["field"] == "city" && c["recordId"] == id_of("keep@example.com")));
    assert!(conflicts
        .iter()
        .any(|c| c["field"].is_null() && c["recordId"] == id_of("new2@example.com")));

    let rows = leads(&app, &admin).await;
    let by_email = |email: &str| rows.iter().find(|r| r["email"] == email).cloned();
    let old = by_email("old@example.com").unwrap();
    assert_eq!(
        (old["firstName"].clone(), old["status"].clone()),
        (json!("Old"), json!("NEW"))
    );
    let keep = by_email("keep@example.com").unwrap();
    assert_eq!(keep["firstName"], "Keep");
    assert_eq!(keep["status"], "NEW");
    let city = app
        .gql(
            Some(&admin),
            "query($id: ID!) { lead(id: $id) { city } }",
            json!({ "id": id_of("keep@example.com") }),
        )
        .await;
    assert_eq!(city["data"]["lead"]["city"], "Madrid");
    assert!(by_email("new1@example.com").is_none());
    assert!(by_email("new2@example.com").is_some());
    // Once only.
    let again = app
        .gql(
            Some(&admin),
            "mutation($id: ID!) { undoImport(id: $id) { status } }",
            json!({ "id": import_id }),
        )
        .await;
    assert_eq!(error_code(&again), "CONFLICT");
}

#[tokio::test]
async fn members_import_for_themselves_and_see_only_their_imports() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (_, member) = app.user_with_role("mia@example.com", "MEMBER").await;
    let file = b"email,first_name,owner\nm1@example.com,M1,\nm2@example.com,M2,admin@example.com\n";
    let (_, answer) = upload(&app, &member, "leads", file, &[]).await;
    assert_eq!(answer["imported"], 1, "{answer}");
    assert_eq!(answer["error_details"][0]["column"], "owner");
    let member_import = answer["import_id"].as_i64().unwrap().to_string();
    let (_, admin_answer) = upload(&app, &admin, "leads", b"email\nadm@example.com\n", &[]).await;
    let admin_import = admin_answer["import_id"].as_i64().unwrap().to_string();

    let list = app
        .gql(
            Some(&member),
            "{ imports { totalCount nodes { id createdBy { email } } } }",
            json!({}),
        )
        .await;
    assert_eq!(list["data"]["imports"]["totalCount"], 1, "{list}");
    assert_eq!(
        list["data"]["imports"]["nodes"][0]["createdBy"]["email"],
        "mia@example.com"
    );
    let hidden = app
        .gql(
            Some(&member),
            "query($id: ID!) { import(id: $id) { id } }",
            json!({ "id": admin_import }),
        )
        .await;
    assert_eq!(error_code(&hidden), "NOT_FOUND");
    let errors = app
        .client
        .get(app.url(&format!("/api/v1/import/{admin_import}/errors.csv")))
        .bearer_auth(&member)
        .send()
        .await
        .unwrap();
    assert_eq!(errors.status(), 404);
    let list = app
        .gql(Some(&admin), "{ imports { totalCount } }", json!({}))
        .await;
    assert_eq!(list["data"]["imports"]["totalCount"], 2);

    // Another workspace sees none of it, and a reference into it is refused.
    let signup = app
        .other_workspace("Other", "o@other.test", "other-password-1")
        .await;
    let other = token_of(&signup);
    let list = app
        .gql(Some(&other), "{ imports { totalCount } }", json!({}))
        .await;
    assert_eq!(list["data"]["imports"]["totalCount"], 0);
    let hidden = app
        .gql(
            Some(&other),
            "query($id: ID!) { import(id: $id) { id } }",
            json!({ "id": member_import }),
        )
        .await;
    assert_eq!(error_code(&hidden), "NOT_FOUND");
    let company = app
        .gql(
            Some(&admin),
            "mutation { createCompany(input: {name: \"Mine\"}) { company { id } } }",
            json!({}),
        )
        .await;
    let company_id = company["data"]["createCompany"]["company"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let file = format!("first_name,company_id\nZed,{company_id}\n");
    let (_, answer) = upload(&app, &other, "contacts", file.as_bytes(), &[]).await;
    assert_eq!(answer["imported"], 0, "{answer}");
    assert!(answer["error_details"][0]["error"]
        .as_str()
        .unwrap()
        .contains("not a company you can see"));
}

#[tokio::test]
async fn uploads_over_the_limit_get_413_and_leave_nothing() {
    let app = TestApp::spawn_with(|c| c.imports.max_upload_bytes = 2000).await;
    let admin = app.admin_token().await;
    let mut file = String::from("email\n");
    for i in 0..500 {
        file.push_str(&format!("lead{i}@example.com\n"));
    }
    let (status, answer) = upload(&app, &admin, "leads", file.as_bytes(), &[]).await;
    assert_eq!(status, 413, "{answer}");
    assert_eq!(answer["error"]["code"], "PAYLOAD_TOO_LARGE");
    assert_eq!(app.count("imports").await, 0);
    assert_eq!(app.count("import_file_chunks").await, 0);
    assert_eq!(app.count("leads").await, 0);
}

#[tokio::test]
async fn errors_csv_lists_failed_rows_ready_to_fix_and_reimport() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let file = b"email,first_name,priority\nok@example.com,Ok,high\nbad,=cmd(),extreme\n";
    let (_, answer) = upload(&app, &admin, "leads", file, &[]).await;
    let id = answer["import_id"].as_i64().unwrap();
    let response = app
        .client
        .get(app.url(&format!("/api/v1/import/{id}/errors.csv")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains(&format!("import_{id}_errors.csv")));
    let text = response.text().await.unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("line,errors,email,first_name,priority"));
    let row = lines.next().unwrap();
    assert!(row.starts_with("3,\"email:"), "{row}");
    assert!(row.contains("priority:"), "{row}");
    assert!(row.ends_with(",bad,'=cmd(),extreme"), "{row}");
    assert_eq!(lines.next(), None);
}

#[tokio::test]
async fn export_then_import_round_trips_without_loss() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let created = app
        .gql(
            Some(&admin),
            "mutation($i: LeadInput!) { createLead(input: $i) { lead { id } } }",
            json!({ "i": { "firstName": "+Plus", "lastName": "O'Hara", "email": "rt@example.com", "phone": "+44 20 7946 0000", "companyName": "Round, Trip \"Ltd\"", "leadSource": "TRADE_SHOW", "status": "QUALIFIED", "priority": "URGENT", "companySize": 1200, "estimatedValue": "12345.67", "probability": 40, "nextFollowUpAt": "2026-12-01T09:30:00Z", "notes": "line one\nline two", "tags": ["vip", "emea"], "customFields": { "region": "EMEA", "seats": 12 } } }),
        )
        .await;
    assert!(created["errors"].is_null(), "{created}");
    let export = app
        .client
        .get(app.url("/api/v1/export/leads/"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let signup = app
        .other_workspace("Copy", "c@copy.test", "copy-password-1")
        .await;
    let other = token_of(&signup);
    // The owner is a user of the first workspace, so the copy leaves that column out.
    let (_, answer) = upload(
        &app,
        &other,
        "leads",
        &export,
        &[("mapping", r#"{"owner": null}"#)],
    )
    .await;
    assert_eq!(answer["imported"], 1, "{answer}");
    let original = leads(&app, &admin).await;
    let copy = leads(&app, &other).await;
    let strip = |v: &Value| {
        let mut v = v.clone();
        v.as_object_mut().unwrap().remove("id");
        v.as_object_mut().unwrap().remove("owner");
        v
    };
    assert_eq!(strip(&copy[0]), strip(&original[0]));
}

#[tokio::test]
async fn a_failed_undo_resumes_where_it_stopped_without_false_conflicts() {
    let app = TestApp::spawn_with(|c| c.imports.inline_rows = 10_000).await;
    let admin = app.admin_token().await;
    let mut first = String::from("email,first_name,city\n");
    for i in 0..1500 {
        first.push_str(&format!("lead{i}@example.com,Old {i},Paris\n"));
    }
    let (_, answer) = upload(&app, &admin, "leads", first.as_bytes(), &[]).await;
    assert_eq!(answer["imported"], 1500, "{answer}");
    // 1,500 updates (in the file's first two batches) and 1,200 creates.
    let mut second = String::from("email,first_name,city\n");
    for i in 0..1500 {
        second.push_str(&format!("lead{i}@example.com,New {i},Berlin\n"));
    }
    for i in 0..1200 {
        second.push_str(&format!("fresh{i}@example.com,Fresh {i},Oslo\n"));
    }
    let (_, answer) = upload(
        &app,
        &admin,
        "leads",
        second.as_bytes(),
        &[("update_existing", "true")],
    )
    .await;
    assert_eq!(
        (answer["updated"].clone(), answer["imported"].clone()),
        (json!(1500), json!(1200)),
        "{answer}"
    );
    let import_id = answer["import_id"].as_i64().unwrap().to_string();
    // One real later edit: lead0's city (a record of the first batch of updates).
    let lead0 = app
        .rows("SELECT id FROM leads WHERE email = 'lead0@example.com'")
        .await[0]["id"]
        .to_string();
    let edit = app
        .gql(
            Some(&admin),
            "mutation($id: ID!) { updateLead(id: $id, input: {city: \"Madrid\"}) { lead { id } } }",
            json!({ "id": lead0 }),
        )
        .await;
    assert!(edit["errors"].is_null(), "{edit}");

    // The database refuses the 2,300th row update from now on: the undo's deletes are updates
    // 1-1,200 (two stored batches), its first batch of restores 1,201-2,200, so the second
    // batch of restores fails part way and is rolled back.
    app.execute("CREATE SEQUENCE undo_updates").await;
    app.execute(
        "CREATE FUNCTION fail_one_update() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN IF nextval('undo_updates') = 2300 THEN \
           RAISE EXCEPTION 'simulated failure on the 2300th update'; END IF; RETURN NEW; END $$",
    )
    .await;
    app.execute(
        "CREATE TRIGGER fail_one_update BEFORE UPDATE ON leads \
         FOR EACH ROW EXECUTE FUNCTION fail_one_update()",
    )
    .await;
    let undo = "mutation($id: ID!) { undoImport(id: $id) { status undoFailure undoResult { deleted restored conflictCount conflicts { recordId field reason } } } }";
    let failed = app
        .gql(Some(&admin), undo, json!({ "id": import_id }))
        .await;
    assert_eq!(error_code(&failed), "INTERNAL", "{failed}");
    let import = app
        .gql(
            Some(&admin),
            "query($id: ID!) { import(id: $id) { status undoFailure undoneAt undoResult { deleted restored conflictCount } } }",
            json!({ "id": import_id }),
        )
        .await;
    let import = &import["data"]["import"];
    assert_eq!(import["status"], "undo_failed", "{import}");
    assert!(
        import["undoFailure"]
            .as_str()
            .unwrap()
            .contains("undoImport resumes it"),
        "{import}"
    );
    assert!(import["undoneAt"].is_null());
    // Exactly the committed batches are done and counted.
    assert_eq!(
        import["undoResult"],
        json!({ "deleted": 1200, "restored": 1000, "conflictCount": 1 })
    );
    assert_eq!(
        app.rows(
            "SELECT count(*) FILTER (WHERE first_name LIKE 'Old %') AS old, \
                    count(*) FILTER (WHERE first_name LIKE 'New %') AS new, \
                    count(*) FILTER (WHERE email LIKE 'fresh%' AND deleted_at IS NULL) AS fresh \
             FROM leads"
        )
        .await,
        json!([{ "old": 1000, "new": 500, "fresh": 0 }])
    );

    // The condition goes away; undoImport again resumes after the last committed batch.
    app.execute("DROP TRIGGER fail_one_update ON leads").await;
    let resumed = app
        .gql(Some(&admin), undo, json!({ "id": import_id }))
        .await;
    let resumed = &resumed["data"]["undoImport"];
    assert_eq!(resumed["status"], "undone", "{resumed}");
    assert!(resumed["undoFailure"].is_null());
    assert_eq!(
        resumed["undoResult"],
        json!({ "deleted": 1200, "restored": 1500, "conflictCount": 1, "conflicts": [
            { "recordId": lead0, "field": "city", "reason": "changed since the import; kept" }
        ] })
    );
    // Every record is exactly as before the import, but for the later edit.
    let wrong = app.rows(
        "SELECT email, first_name, city FROM leads WHERE deleted_at IS NULL AND \
         (first_name <> 'Old ' || substring(email FROM 'lead([0-9]+)@') \
          OR city IS DISTINCT FROM CASE WHEN email = 'lead0@example.com' THEN 'Madrid' ELSE 'Paris' END)",
    )
    .await;
    assert_eq!(wrong, json!([]));
    assert_eq!(
        app.rows("SELECT count(*) AS live FROM leads WHERE deleted_at IS NULL")
            .await,
        json!([{ "live": 1500 }])
    );
    // One change-stream event per record undone: the failed batch's events went with it.
    assert_eq!(
        app.rows(
            "SELECT action, count(*) AS n FROM record_events \
             WHERE action IN ('deleted', 'updated') GROUP BY action ORDER BY action"
        )
        .await,
        // Updated: 1,500 by the import, 1 edit, 1,500 by the undo.
        json!([{ "action": "deleted", "n": 1200 }, { "action": "updated", "n": 3001 }])
    );
    let again = app
        .gql(Some(&admin), undo, json!({ "id": import_id }))
        .await;
    assert_eq!(error_code(&again), "CONFLICT");
}

/// The data rows of an export (`fields=...`) as maps of header → cell, in ID order.
async fn exported(app: &TestApp, token: &str, resource: &str, fields: &str) -> Vec<Value> {
    let response = app
        .client
        .get(app.url(&format!("/api/v1/export/{resource}/?fields=id,{fields}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().unwrap().clone();
    let mut rows: Vec<Value> = reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            Value::Object(
                headers
                    .iter()
                    .zip(r.iter())
                    .map(|(h, c)| (h.to_string(), json!(c)))
                    .collect(),
            )
        })
        .collect();
    rows.sort_by_key(|r| r["id"].as_str().unwrap().parse::<i64>().unwrap());
    rows
}

fn totals(answer: &Value) -> Value {
    json!({
        "total_rows": answer["total_rows"],
        "imported": answer["imported"],
        "updated": answer["updated"],
        "skipped": answer["skipped"],
        "errors": answer["errors"],
    })
}

fn counts(total_rows: u64, imported: u64, updated: u64, skipped: u64, errors: u64) -> Value {
    json!({
        "total_rows": total_rows,
        "imported": imported,
        "updated": updated,
        "skipped": skipped,
        "errors": errors,
    })
}

#[tokio::test]
async fn companies_update_existing_matched_on_name_or_domain() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let file = b"name,domain,industry\nAcme,acme.test,Old\nGlobex,globex.test,Old\nInitech,initech.test,Old\nTwin,twin-a.test,Old\nTwin,twin-b.test,Old\n";
    // Twin twice in one file would be refused when matching on name: match on domain here.
    let (_, answer) = upload(&app, &admin, "companies", file, &[("match_on", "domain")]).await;
    assert_eq!(totals(&answer), counts(5, 5, 0, 0, 0), "{answer}");

    // On name, ignoring case and surrounding spaces; a name two companies share is refused.
    let file = b"name,industry,employee_count\n ACME ,Rockets,10\nGlobex,Chemicals,\nUmbrella,Pharma,5\nTwin,Twins,\n";
    let (_, answer) = upload(
        &app,
        &admin,
        "companies",
        file,
        &[("match_on", "name"), ("update_existing", "true")],
    )
    .await;
    assert_eq!(totals(&answer), counts(4, 1, 2, 1, 1), "{answer}");
    assert_eq!(
        answer["error_details"],
        json!([{ "row": 5, "column": "name", "value": "Twin",
                 "error": "2 companies have this name; match on id instead" }])
    );
    let rows = exported(
        &app,
        &admin,
        "companies",
        "name,domain,industry,employee_count",
    )
    .await;
    let view: Vec<(&str, &str, &str, &str)> = rows
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap(),
                r["domain"].as_str().unwrap(),
                r["industry"].as_str().unwrap(),
                r["employee_count"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        view,
        vec![
            // The file's values are written, its name included.
            ("ACME", "acme.test", "Rockets", "10"),
            // An empty cell leaves the field alone.
            ("Globex", "globex.test", "Chemicals", ""),
            ("Initech", "initech.test", "Old", ""),
            ("Twin", "twin-a.test", "Old", ""),
            ("Twin", "twin-b.test", "Old", ""),
            ("Umbrella", "", "Pharma", "5"),
        ]
    );

    // On domain, normalised as stored (scheme, www., path and case dropped).
    let file = b"domain,name\nhttps://www.INITECH.test/about,Initech Corp\nnew.test,Newco\ntwin-b.test,Twin B\n";
    let (_, answer) = upload(
        &app,
        &admin,
        "companies",
        file,
        &[("match_on", "domain"), ("update_existing", "true")],
    )
    .await;
    assert_eq!(totals(&answer), counts(3, 1, 2, 0, 0), "{answer}");
    let rows = exported(&app, &admin, "companies", "name,domain").await;
    let names: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r["name"].as_str().unwrap(), r["domain"].as_str().unwrap()))
        .collect();
    assert_eq!(
        names,
        vec![
            ("ACME", "acme.test"),
            ("Globex", "globex.test"),
            ("Initech Corp", "initech.test"),
            ("Twin", "twin-a.test"),
            ("Twin B", "twin-b.test"),
            ("Umbrella", ""),
            ("Newco", "new.test"),
        ]
    );
    // Without update_existing a match is skipped and reported, and nothing changes.
    let (_, answer) = upload(
        &app,
        &admin,
        "companies",
        b"domain,industry\nacme.test,Ignored\n",
        &[("match_on", "domain")],
    )
    .await;
    assert_eq!(totals(&answer), counts(1, 0, 0, 1, 0), "{answer}");
    assert_eq!(answer["error_details"][0]["column"], "domain");
    assert_eq!(
        exported(&app, &admin, "companies", "industry").await[0]["industry"],
        "Rockets"
    );
    assert_eq!(app.count("companies").await, 7);
}

#[tokio::test]
async fn every_kind_updates_existing_records_matched_on_id() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    for (resource, field) in [
        ("leads", "notes"),
        ("contacts", "notes"),
        ("companies", "notes"),
        ("opportunities", "description"),
        ("tasks", "description"),
    ] {
        // Two records from the template's example row (twice, so matched on id only).
        let template = app
            .client
            .get(app.url(&format!("/api/v1/import/{resource}/")))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        for copy in 0..2 {
            // Told apart by their default match keys (email, or a company's name).
            let template = String::from_utf8(template.to_vec())
                .unwrap()
                .replace("ada@example.com", &format!("ada{copy}@example.com"))
                .replace("grace@example.com", &format!("grace{copy}@example.com"))
                .replace("Acme Corporation", &format!("Acme Corporation {copy}"));
            let (_, answer) = upload(&app, &admin, resource, template.as_bytes(), &[]).await;
            assert_eq!(answer["imported"], 1, "{resource}: {answer}");
        }
        let before = exported(&app, &admin, resource, field).await;
        assert_eq!(before.len(), 2, "{resource}");
        let second = before[1]["id"].as_str().unwrap();
        let file = format!("id,{field}\n{second},changed by id\n");
        let (_, answer) = upload(
            &app,
            &admin,
            resource,
            file.as_bytes(),
            &[("match_on", "id"), ("update_existing", "true")],
        )
        .await;
        assert_eq!(
            totals(&answer),
            counts(1, 0, 1, 0, 0),
            "{resource}: {answer}"
        );
        let after = exported(&app, &admin, resource, field).await;
        assert_eq!(
            after[0], before[0],
            "{resource}: the other record is untouched"
        );
        assert_eq!(after[1]["id"], second);
        assert_eq!(after[1][field], "changed by id", "{resource}");

        // An ID that names no record the caller can see is an error (an import cannot
        // create a record with a given ID), and nothing is written.
        let file = format!("id,{field}\n999999,x\n");
        let (_, answer) = upload(
            &app,
            &admin,
            resource,
            file.as_bytes(),
            &[("match_on", "id"), ("update_existing", "true")],
        )
        .await;
        assert_eq!(
            totals(&answer),
            counts(1, 0, 0, 1, 1),
            "{resource}: {answer}"
        );
        assert_eq!(answer["error_details"][0]["row"], 2);
        assert_eq!(answer["error_details"][0]["column"], "id");
        assert_eq!(answer["error_details"][0]["value"], "999999");
        assert_eq!(app.count(resource).await, 2, "{resource}");
    }
}

#[tokio::test]
async fn contacts_assigned_by_email_and_updated_by_email() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    app.user_with_role("dana@example.com", "MEMBER").await;
    app.user_with_role("eli@example.com", "MANAGER").await;
    let file = b"first_name,email,assigned_to\nAnn,ann@example.com,DANA@example.com\nBen,ben@example.com,ghost@example.com\nCat,cat@example.com,\n";
    let (_, answer) = upload(&app, &admin, "contacts", file, &[]).await;
    assert_eq!(totals(&answer), counts(3, 2, 0, 1, 1), "{answer}");
    assert_eq!(
        answer["error_details"],
        json!([{ "row": 3, "column": "assigned_to", "value": "ghost@example.com",
                 "error": "no active user of this workspace has the email ghost@example.com" }])
    );
    let rows = exported(&app, &admin, "contacts", "email,first_name,assigned_to").await;
    assert_eq!(
        rows.iter()
            .map(|r| (
                r["email"].as_str().unwrap(),
                r["assigned_to"].as_str().unwrap()
            ))
            .collect::<Vec<_>>(),
        vec![
            ("ann@example.com", "dana@example.com"),
            ("cat@example.com", "")
        ]
    );

    // update_existing on contacts, matched on email (the default): reassigned and renamed.
    let file = b"Email,First Name,Assigned To\nANN@example.com,Anna,eli@example.com\ncat@example.com,,dana@example.com\ndan@example.com,Dan,\n";
    let (_, answer) = upload(
        &app,
        &admin,
        "contacts",
        file,
        &[("update_existing", "true")],
    )
    .await;
    assert_eq!(totals(&answer), counts(3, 1, 2, 0, 0), "{answer}");
    let rows = exported(&app, &admin, "contacts", "email,first_name,assigned_to").await;
    assert_eq!(
        rows.iter()
            .map(|r| (
                r["email"].as_str().unwrap(),
                r["first_name"].as_str().unwrap(),
                r["assigned_to"].as_str().unwrap()
            ))
            .collect::<Vec<_>>(),
        vec![
            ("ann@example.com", "Anna", "eli@example.com"),
            ("cat@example.com", "Cat", "dana@example.com"),
            ("dan@example.com", "Dan", "")
        ]
    );
    // The member sees the contact now assigned to them.
    let dana = token_of(&app.login("dana@example.com", "user-password-1").await);
    let mine = exported(&app, &dana, "contacts", "email").await;
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["email"], "cat@example.com");
}

#[tokio::test]
async fn imports_are_paged_newest_first_by_cursor() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let file = format!("email\npage{i}@example.com\n");
        let (_, answer) = upload(&app, &admin, "leads", file.as_bytes(), &[]).await;
        ids.push(answer["import_id"].as_i64().unwrap().to_string());
    }
    ids.reverse();
    let query = "query($first: Int, $after: String) { imports(first: $first, after: $after) { totalCount edges { cursor node { id fileName } } pageInfo { hasNextPage hasPreviousPage endCursor } } }";
    let mut seen = Vec::new();
    let mut after = Value::Null;
    let mut pages = Vec::new();
    loop {
        let answer = app
            .gql(Some(&admin), query, json!({ "first": 2, "after": after }))
            .await;
        let page = answer["data"]["imports"].clone();
        assert_eq!(page["totalCount"], 5, "{answer}");
        let edges = page["edges"].as_array().unwrap();
        for edge in edges {
            seen.push(edge["node"]["id"].as_str().unwrap().to_string());
        }
        assert_eq!(
            page["pageInfo"]["endCursor"],
            edges.last().unwrap()["cursor"]
        );
        assert_eq!(page["pageInfo"]["hasPreviousPage"], !after.is_null());
        pages.push((edges.len(), page["pageInfo"]["hasNextPage"].clone()));
        if page["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(
        pages,
        vec![(2, json!(true)), (2, json!(true)), (1, json!(false))]
    );
    assert_eq!(seen, ids, "every import once, newest first");

    for (variables, field) in [
        (json!({ "first": 0 }), "first"),
        (json!({ "first": 101 }), "first"),
        (json!({ "first": 2, "after": "not a cursor" }), "after"),
    ] {
        let answer = app.gql(Some(&admin), query, variables.clone()).await;
        assert_eq!(error_code(&answer), "BAD_USER_INPUT", "{variables}");
        assert_eq!(error_field(&answer), field, "{variables}");
    }
}
