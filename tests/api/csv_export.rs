//! CSV export and templates over real HTTP: filters, field selection, custom fields, formula
//! neutralisation, member scoping, workspace isolation, bad parameters and auth.

use serde_json::{json, Value};

use crate::harness::*;

async fn get(app: &TestApp, token: Option<&str>, path: &str) -> reqwest::Response {
    let mut request = app.client.get(app.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

/// The CSV as rows of cells, header first.
async fn csv_rows(response: reqwest::Response) -> Vec<Vec<String>> {
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    let text = response.text().await.unwrap();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes());
    reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect()
}

/// The data rows sorted by their `id` column (exports come in storage order).
fn by_id(mut rows: Vec<Vec<String>>) -> Vec<Vec<String>> {
    let at = rows[0]
        .iter()
        .position(|h| h == "id")
        .expect("an id column");
    rows[1..].sort_by_key(|r| r[at].parse::<i64>().unwrap());
    rows
}

fn column<'a>(rows: &'a [Vec<String>], name: &str) -> Vec<&'a str> {
    let at = rows[0]
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("no column {name} in {:?}", rows[0]));
    rows[1..].iter().map(|r| r[at].as_str()).collect()
}

async fn error_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, response.json::<Value>().await.unwrap())
}

#[tokio::test]
async fn leads_export_with_filters_fields_custom_columns_and_safe_cells() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    app.create_lead(&admin,
        json!({ "firstName": "=HYPERLINK(\"http://evil\")", "email": "evil@acme.test", "companyName": "Acme", "status": "QUALIFIED", "priority": "HIGH", "customFields": { "region": "EMEA", "seats": 12 }, "tags": ["vip", "emea"] }),
    )
    .await;
    app.create_lead(&admin,
        json!({ "firstName": "Bob", "email": "bob@globex.test", "companyName": "Globex", "status": "NEW", "estimatedValue": "1500.50" }),
    )
    .await;

    let response = get(&app, Some(&admin), "/api/v1/export/leads/").await;
    let disposition = response.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        disposition.starts_with("attachment; filename=\"leads_export_")
            && disposition.ends_with(".csv\""),
        "{disposition}"
    );
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let rows = by_id(csv_rows(response).await);
    assert_eq!(rows.len(), 3);
    assert_eq!(&rows[0][..3], ["id", "first_name", "last_name"]);
    assert!(rows[0].contains(&"custom.region".to_string()));
    assert!(rows[0].contains(&"custom.seats".to_string()));
    assert_eq!(
        column(&rows, "first_name"),
        vec!["'=HYPERLINK(\"http://evil\")", "Bob"]
    );
    assert_eq!(column(&rows, "status"), vec!["qualified", "new"]);
    assert_eq!(column(&rows, "tags"), vec!["vip;emea", ""]);
    assert_eq!(column(&rows, "custom.seats"), vec!["12", ""]);
    assert_eq!(column(&rows, "estimated_value")[1], "1500.50");
    assert_eq!(column(&rows, "owner"), vec![ADMIN_EMAIL, ADMIN_EMAIL]);
    let created = column(&rows, "created_at")[0];
    // PostgreSQL's own ISO form, in UTC.
    assert!(
        created.ends_with("+00")
            && chrono::DateTime::parse_from_str(created, "%Y-%m-%d %H:%M:%S%.f%#z").is_ok(),
        "{created}"
    );

    // Filters as query parameters, like the GraphQL list filters.
    for (query, expected) in [
        ("status=qualified", vec!["evil@acme.test"]),
        (
            "status=Qualified,new",
            vec!["evil@acme.test", "bob@globex.test"],
        ),
        ("priority=high", vec!["evil@acme.test"]),
        ("search=Globex", vec!["bob@globex.test"]),
        ("tags=vip", vec!["evil@acme.test"]),
        ("estimated_value_min=1000", vec!["bob@globex.test"]),
        (
            "created_after=2000-01-01",
            vec!["evil@acme.test", "bob@globex.test"],
        ),
        ("created_before=2000-01-01", vec![]),
        ("assigned_to_me=true", vec![]),
        ("owner=nobody@acme.test", vec![]),
    ] {
        let rows = csv_rows(
            get(
                &app,
                Some(&admin),
                &format!("/api/v1/export/leads/?{query}&fields=email,status"),
            )
            .await,
        )
        .await;
        assert_eq!(rows[0], vec!["email", "status"], "{query}");
        let mut emails = column(&rows, "email");
        emails.sort_unstable();
        let mut expected = expected;
        expected.sort_unstable();
        assert_eq!(emails, expected, "{query}");
    }

    let by_owner = format!(
        "/api/v1/export/leads/?owner={}&fields=email",
        ADMIN_EMAIL.to_uppercase()
    );
    let rows = csv_rows(get(&app, Some(&admin), &by_owner).await).await;
    assert_eq!(rows.len(), 3, "owner by e-mail, case-insensitive");
    let twice = csv_rows(
        get(
            &app,
            Some(&admin),
            "/api/v1/export/leads/?fields=owner,email,owner",
        )
        .await,
    )
    .await;
    assert_eq!(twice[0], vec!["owner", "email", "owner"]);
    assert_eq!(twice[1][0], ADMIN_EMAIL);

    // Values are written into the COPY statement as literals: quotes and backslashes stay
    // data.
    app.create_lead(&admin,
        json!({ "firstName": "Quote", "email": "q@obrien.test", "companyName": "O'Brien \\ Sons'); --" }),
    )
    .await;
    for query in [
        "company_name=O%27Brien%20%5C%20Sons%27)%3B%20--",
        "search=o%27brien%20%5C",
        "tags=it%27s",
    ] {
        let rows = csv_rows(
            get(
                &app,
                Some(&admin),
                &format!("/api/v1/export/leads/?{query}&fields=email"),
            )
            .await,
        )
        .await;
        let expected: Vec<&str> = if query.starts_with("tags") {
            vec![]
        } else {
            vec!["q@obrien.test"]
        };
        assert_eq!(column(&rows, "email"), expected, "{query}");
    }

    // Bad parameters name themselves.
    for (query, field) in [
        ("fields=email,nope", "fields"),
        ("status=maybe", "status"),
        ("colour=red", "colour"),
        ("created_after=yesterday", "created_after"),
        ("assigned_to_me=perhaps", "assigned_to_me"),
        ("estimated_value_min=lots", "estimated_value_min"),
        ("tags_min=1", "tags_min"),
        ("status_after=2026-01-01", "status_after"),
        ("company_name=a%00b", "company_name"),
    ] {
        let (status, body) = error_of(
            get(
                &app,
                Some(&admin),
                &format!("/api/v1/export/leads/?{query}"),
            )
            .await,
        )
        .await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["error"]["code"], "BAD_USER_INPUT", "{query}");
        assert_eq!(body["error"]["field"], field, "{query}");
    }
    let (status, body) = error_of(get(&app, Some(&admin), "/api/v1/export/widgets/").await).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("NOT_FOUND"))
    );
    let (status, body) = error_of(get(&app, None, "/api/v1/export/leads/").await).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("UNAUTHENTICATED"))
    );
    let (status, _) = error_of(get(&app, Some("not-a-token"), "/api/v1/export/leads/").await).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn members_export_only_their_records_and_other_workspaces_never_appear() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (member_id, member) = app.user_with_role("mia@acme.test", "MEMBER").await;
    app.create_lead(&admin, json!({ "email": "admins@acme.test" }))
        .await;
    app.create_lead(
        &admin,
        json!({ "email": "assigned@acme.test", "assignedToId": member_id }),
    )
    .await;
    app.create_lead(&member, json!({ "email": "mine@acme.test" }))
        .await;
    let other = app
        .other_workspace("Other", "o@other.test", "other-password")
        .await;
    let other_token = token_of(&other);
    app.create_lead(&other_token, json!({ "email": "secret@other.test" }))
        .await;

    let emails = |rows: Vec<Vec<String>>| {
        let mut emails: Vec<String> = column(&rows, "email")
            .iter()
            .map(|e| e.to_string())
            .collect();
        emails.sort();
        emails
    };
    let path = "/api/v1/export/leads/?fields=email";
    assert_eq!(
        emails(csv_rows(get(&app, Some(&member), path).await).await),
        vec!["assigned@acme.test", "mine@acme.test"]
    );
    assert_eq!(
        emails(csv_rows(get(&app, Some(&admin), path).await).await),
        vec!["admins@acme.test", "assigned@acme.test", "mine@acme.test"]
    );
    assert_eq!(
        emails(csv_rows(get(&app, Some(&other_token), path).await).await),
        vec!["secret@other.test"]
    );
    assert_eq!(
        emails(
            csv_rows(get(&app, Some(&member), &format!("{path}&assigned_to_me=true")).await).await
        ),
        vec!["assigned@acme.test"]
    );
}

#[tokio::test]
async fn exports_stream_a_large_table_in_id_order_and_a_held_slot_limits_others() {
    let app = TestApp::spawn_with(|c| c.imports.max_concurrent_exports = 1).await;
    let admin = app.admin_token().await;
    // Enough rows that a client that does not read holds the export open, written directly
    // for speed.
    app.execute(
        "INSERT INTO contacts (workspace_id, first_name, email, owner_id) \
         SELECT 1, 'Contact ' || i, 'c' || i || '@bulk.test', 1 FROM generate_series(1, 12001) i",
    )
    .await;
    let rows = csv_rows(
        get(
            &app,
            Some(&admin),
            "/api/v1/export/contacts/?fields=id,email",
        )
        .await,
    )
    .await;
    assert_eq!(rows.len(), 12_002);
    let ids: Vec<i64> = column(&rows, "id")
        .iter()
        .map(|i| i.parse().unwrap())
        .collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), 12_001, "every row once");

    // A client with a tiny receive window that reads only the status line holds the one
    // export slot (and its COPY connection): another export is RATE_LIMITED meanwhile.
    let tcp = tokio::net::TcpSocket::new_v4().unwrap();
    tcp.set_recv_buffer_size(4096).unwrap();
    let mut slow = tcp.connect(app.addr).await.unwrap();
    let request = format!(
        "GET /api/v1/export/contacts/ HTTP/1.1\r\nHost: localhost\r\n\
         Authorization: Bearer {admin}\r\n\r\n"
    );
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    slow.write_all(request.as_bytes()).await.unwrap();
    let mut status = [0u8; 12];
    slow.read_exact(&mut status).await.unwrap();
    assert_eq!(&status, b"HTTP/1.1 200");
    let (code, body) = error_of(get(&app, Some(&admin), "/api/v1/export/contacts/").await).await;
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (429, Some("RATE_LIMITED"))
    );
    // The slot comes back once that client goes away.
    drop(slow);
    let mut freed = false;
    for _ in 0..100 {
        let response = get(&app, Some(&admin), "/api/v1/export/contacts/?fields=id").await;
        if response.status() == 200 {
            assert_eq!(csv_rows(response).await.len(), 12_002);
            freed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(freed, "the export slot was never released");
}

#[tokio::test]
async fn templates_list_the_importable_columns_with_an_example() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    for resource in ["leads", "contacts", "companies", "opportunities", "tasks"] {
        let response = get(&app, Some(&admin), &format!("/api/v1/import/{resource}/")).await;
        assert_eq!(
            response.headers()["content-disposition"],
            format!("attachment; filename=\"{resource}_template.csv\"").as_str()
        );
        let rows = csv_rows(response).await;
        assert_eq!(rows.len(), 2, "{resource}");
        assert!(!rows[0].contains(&"id".to_string()));
        assert_eq!(rows[0].len(), rows[1].len());
    }
    let leads = csv_rows(get(&app, Some(&admin), "/api/v1/import/leads/").await).await;
    assert_eq!(column(&leads, "email"), vec!["ada@example.com"]);
    let (status, _) = error_of(get(&app, None, "/api/v1/import/leads/").await).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn the_openapi_document_describes_the_rest_routes() {
    let app = TestApp::spawn().await;
    let document: Value = get(&app, None, "/api/openapi.json")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(document["openapi"], "3.1.0");
    for path in [
        "/api/auth/login/",
        "/api/auth/refresh/",
        "/api/v1/export/{resource}/",
        "/api/v1/import/{resource}/",
        "/api/v1/import/{import_id}/errors.csv",
    ] {
        assert!(document["paths"][path].is_object(), "{path}");
    }
    let errors_csv = &document["paths"]["/api/v1/import/{import_id}/errors.csv"]["get"];
    assert_eq!(
        errors_csv["parameters"],
        json!([{ "name": "import_id", "in": "path", "required": true, "schema": { "type": "integer" } }])
    );
    assert_eq!(errors_csv["security"], json!([{ "bearer": [] }]));
    for status in ["200", "401", "404"] {
        assert!(errors_csv["responses"][status].is_object(), "{status}");
    }
    assert!(errors_csv["responses"]["200"]["content"]["text/csv"].is_object());
    let resources =
        &document["paths"]["/api/v1/export/{resource}/"]["get"]["parameters"][0]["schema"]["enum"];
    assert_eq!(
        resources,
        &json!(["leads", "contacts", "companies", "opportunities", "tasks"])
    );
    assert!(document["x-csv-columns"]["leads"]
        .as_array()
        .unwrap()
        .contains(&json!("email")));
}

#[tokio::test]
async fn assigned_to_me_and_owned_by_me_false_mean_not_mine_as_in_graphql() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (member_id, member) = app.user_with_role("mia@acme.test", "MEMBER").await;
    let admin_id = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await["user"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.create_lead(
        &admin,
        json!({ "email": "to-admin@acme.test", "assignedToId": admin_id }),
    )
    .await;
    app.create_lead(
        &admin,
        json!({ "email": "to-mia@acme.test", "assignedToId": member_id }),
    )
    .await;
    app.create_lead(&admin, json!({ "email": "nobody@acme.test" }))
        .await;
    app.create_lead(&member, json!({ "email": "by-mia@acme.test" }))
        .await;

    let exported = async |query: &str| {
        let rows = csv_rows(
            get(
                &app,
                Some(&admin),
                &format!("/api/v1/export/leads/?fields=email&{query}"),
            )
            .await,
        )
        .await;
        let mut emails: Vec<String> = column(&rows, "email")
            .iter()
            .map(|e| e.to_string())
            .collect();
        emails.sort();
        emails
    };
    let listed = async |filter: Value| {
        let answer = app
            .gql(
                Some(&admin),
                "query($f: LeadFilter) { leads(first: 50, filter: $f) { nodes { email } } }",
                json!({ "f": filter }),
            )
            .await;
        let mut emails: Vec<String> = answer["data"]["leads"]["nodes"]
            .as_array()
            .unwrap_or_else(|| panic!("{answer}"))
            .iter()
            .map(|n| n["email"].as_str().unwrap().to_string())
            .collect();
        emails.sort();
        emails
    };
    for (query, filter, expected) in [
        (
            "assigned_to_me=false",
            json!({ "assignedToMe": false }),
            // Someone else's and nobody's.
            vec!["by-mia@acme.test", "nobody@acme.test", "to-mia@acme.test"],
        ),
        (
            "assigned_to_me=true",
            json!({ "assignedToMe": true }),
            vec!["to-admin@acme.test"],
        ),
        (
            "owned_by_me=false",
            json!({ "ownedByMe": false }),
            vec!["by-mia@acme.test"],
        ),
        (
            "assigned_to_me=false&owned_by_me=true",
            json!({ "assignedToMe": false, "ownedByMe": true }),
            vec!["nobody@acme.test", "to-mia@acme.test"],
        ),
    ] {
        assert_eq!(exported(query).await, expected, "{query}");
        assert_eq!(listed(filter).await, expected, "GraphQL for {query}");
    }
    // An empty value is no filter, like GraphQL's null.
    assert_eq!(exported("assigned_to_me=").await.len(), 4);
    // Companies have no assignee.
    let (status, body) = error_of(
        get(
            &app,
            Some(&admin),
            "/api/v1/export/companies/?assigned_to_me=false",
        )
        .await,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "BAD_USER_INPUT");
    assert_eq!(body["error"]["field"], "assigned_to_me");
}

#[tokio::test]
async fn cells_starting_with_any_formula_character_are_neutralised() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    // What a spreadsheet would run, and look-alikes it would not.
    let cells = [
        ("=1+2", "'=1+2"),
        ("+1+2", "'+1+2"),
        ("-1+2", "'-1+2"),
        ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
        ("\t=1+2", "'\t=1+2"),
        ("\r=1+2", "'\r=1+2"),
        ("1-2", "1-2"),
        (" -1", " -1"),
        ("'-1", "'-1"),
    ];
    for (i, (cell, _)) in cells.iter().enumerate() {
        app.create_lead(
            &admin,
            json!({ "email": format!("f{i}@formula.test"), "customFields": { "cell": cell } }),
        )
        .await;
    }
    // The API trims text fields, but other writers need not: the same values straight into
    // text columns.
    app.execute(
        "UPDATE leads SET first_name = custom_fields ->> 'cell', notes = custom_fields ->> 'cell'",
    )
    .await;
    for path in [
        "/api/v1/export/leads/?fields=id,first_name,notes,custom.cell",
        "/api/v1/export/leads/",
    ] {
        let rows = by_id(csv_rows(get(&app, Some(&admin), path).await).await);
        let expected: Vec<&str> = cells.iter().map(|(_, out)| *out).collect();
        for name in ["first_name", "notes", "custom.cell"] {
            assert_eq!(column(&rows, name), expected, "{path}: {name}");
        }
    }
}
