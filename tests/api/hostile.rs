//! Hostile input (issue 22): each finding of the outside security test, reproduced with the
//! exact request, answered with its code; the server still answers `/healthz` afterwards and
//! nothing was written.

use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::*;
use crate::subscriptions::{connect, errors_of, next, operation, send};

/// `{leads(filter:{not:{not:…{firstName:{eq:"x"}}…}}){totalCount}}`, `levels` deep.
fn nested_not(root: &str, levels: usize) -> String {
    format!(
        "{{{root}(filter:{}{{id:{{eq:\"1\"}}}}{}){{totalCount}}}}",
        "{not:".repeat(levels),
        "}".repeat(levels)
    )
}

async fn get_query(app: &TestApp, token: Option<&str>, query: &str) -> (u16, Value) {
    let mut request = app
        .client
        .get(app.url("/graphql"))
        .query(&[("query", query)]);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("GET /graphql");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn post_body(app: &TestApp, token: Option<&str>, body: String) -> (u16, Value) {
    let mut request = app
        .client
        .post(app.url("/graphql"))
        .header("content-type", "application/json")
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("POST /graphql");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The status line of a GET whose URL no HTTP client library would build (over 64 KB).
async fn raw_get_status(app: &TestApp, query: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let encoded: String = query
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let request = format!(
        "GET /graphql?query={encoded} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n"
    );
    // The server may answer and close before reading it all.
    let _ = stream.write_all(request.as_bytes()).await;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).await.expect("a status line");
    std::str::from_utf8(&head[9..12]).unwrap().parse().unwrap()
}

async fn assert_alive(app: &TestApp) {
    let health = app
        .client
        .get(app.url("/healthz"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .expect("the server still answers /healthz");
    assert_eq!(health.status(), 200);
}

fn code_and_field(answer: &Value) -> (String, String) {
    let ext = &answer["errors"][0]["extensions"];
    let code = ext["code"]
        .as_str()
        .or_else(|| answer["error"]["code"].as_str())
        .unwrap_or_else(|| panic!("no error code in {answer}"))
        .to_string();
    (code, ext["field"].as_str().unwrap_or_default().to_string())
}

#[tokio::test]
async fn the_nested_filter_that_crashed_the_server_is_refused() {
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    // The request of the report: 120 levels of `not`, anonymous, over GET.
    let (status, answer) = get_query(&app, None, &nested_not("leads", 120)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        code_and_field(&answer),
        ("BAD_USER_INPUT".into(), "filter".into())
    );
    assert_alive(&app).await;
    // The same through a variable, with a token, over POST.
    let mut filter = json!({ "id": { "eq": "1" } });
    for _ in 0..120 {
        filter = json!({ "not": filter });
    }
    let body = json!({
        "query": "query($f: LeadFilter) { leads(filter: $f) { totalCount } }",
        "variables": { "f": filter },
    });
    let (_, answer) = post_body(&app, Some(&token), body.to_string()).await;
    assert_eq!(
        code_and_field(&answer),
        ("BAD_USER_INPUT".into(), "filter".into())
    );
    assert_alive(&app).await;

    // Within the bounds, a filter nests: ten `not`s are an ordinary (if odd) filter.
    let (_, answer) = get_query(&app, Some(&token), &nested_not("leads", 10)).await;
    assert!(answer["errors"].is_null(), "{answer}");
    assert_eq!(answer["data"]["leads"]["totalCount"], 0);
    // Past the filter's own bound (10 levels of and/or/not) but within the input bound.
    let (_, answer) = get_query(&app, Some(&token), &nested_not("leads", 11)).await;
    assert_eq!(
        code_and_field(&answer),
        ("BAD_USER_INPUT".into(), "filter".into())
    );
}

/// The deepest document the body limit allows, for every recursive input: each list's filter
/// through `not` and through `and`, custom fields, workflow conditions; as a document and as
/// variables; with and without a token; over POST and GET. Nothing crashes, each answer has
/// a code, nothing is written.
#[tokio::test]
async fn the_deepest_input_the_body_limit_allows_is_refused_for_every_recursive_input() {
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    let limit = app.app.config.http.body_limit_bytes;
    let roots = ["leads", "companies", "contacts", "opportunities", "tasks"];
    for root in roots {
        for (open, close) in [("{not:", "}"), ("{and:[", "]}")] {
            let levels = (limit - 200) / (open.len() + close.len());
            let query = format!(
                "{{{root}(filter:{}{{id:{{eq:\"1\"}}}}{}){{totalCount}}}}",
                open.repeat(levels),
                close.repeat(levels)
            );
            assert!(query.len() < limit);
            for auth in [None, Some(token.as_str())] {
                let body = json!({ "query": query }).to_string();
                let (status, answer) = post_body(&app, auth, body).await;
                assert_eq!(status, 200, "{root} {open}: {answer}");
                assert_eq!(
                    code_and_field(&answer),
                    ("BAD_USER_INPUT".into(), "filter".into()),
                    "{root} {open}"
                );
            }
        }
        assert_alive(&app).await;
    }
    // GET carries the query in the URL, which HTTP libraries bound at 64 KB: 4,000 levels
    // fit and are refused with their code; 10,000 levels are refused by the HTTP layer
    // itself (414), before any of it is parsed.
    let (_, answer) = get_query(&app, None, &nested_not("leads", 4_000)).await;
    assert_eq!(code_and_field(&answer).0, "BAD_USER_INPUT");
    let status = raw_get_status(&app, &nested_not("leads", 10_000)).await;
    assert!(status == 414 || status == 431, "{status}");

    // Custom fields (JSON) and workflow conditions (JSON) as literals, as deep as fits.
    let levels = (limit - 300) / 8;
    let deep_json = format!("{}1{}", "{a:".repeat(levels), "}".repeat(levels));
    let literal_cases = [
        (
            format!("mutation {{ createLead(input: {{firstName: \"x\", customFields: {deep_json}}}) {{ lead {{ id }} }} }}"),
            "input",
        ),
        (
            format!("mutation {{ createWorkflow(input: {{name: \"w\", entity: LEAD, trigger: {{type: \"record_created\"}}, conditions: {deep_json}, actions: []}}) {{ id }} }}"),
            "input",
        ),
    ];
    for (query, field) in literal_cases {
        for auth in [None, Some(token.as_str())] {
            let (_, answer) = post_body(&app, auth, json!({ "query": query }).to_string()).await;
            assert_eq!(
                code_and_field(&answer),
                ("BAD_USER_INPUT".into(), field.into()),
                "{}",
                &query[..80]
            );
        }
    }
    // As variables: the body's values are counted before it is read (past 5,000 values:
    // BAD_USER_INPUT on `variables`); JSON nested past what the JSON reader takes (128 levels)
    // is a malformed body; nested within both, the screen refuses it naming the field.
    let levels = (limit - 300) / 6;
    let deep_variable = format!("{}1{}", "{\"a\":".repeat(levels), "}".repeat(levels));
    let body = format!(
        "{{\"query\":\"mutation($i: LeadInput!) {{ createLead(input: $i) {{ lead {{ id }} }} }}\",\"variables\":{{\"i\":{{\"firstName\":\"x\",\"customFields\":{deep_variable}}}}}}}"
    );
    let (status, answer) = post_body(&app, Some(&token), body).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(
        code_and_field(&answer),
        ("BAD_USER_INPUT".into(), "variables".into())
    );
    let deep_variable = format!("{}1{}", "{\"a\":".repeat(1_000), "}".repeat(1_000));
    let body = format!(
        "{{\"query\":\"mutation($i: LeadInput!) {{ createLead(input: $i) {{ lead {{ id }} }} }}\",\"variables\":{{\"i\":{{\"firstName\":\"x\",\"customFields\":{deep_variable}}}}}}}"
    );
    let (status, answer) = post_body(&app, Some(&token), body).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(code_and_field(&answer).0, "BAD_REQUEST");
    let mut custom = json!(1);
    for _ in 0..100 {
        custom = json!({ "a": custom });
    }
    let answer = app
        .gql(
            Some(&token),
            "mutation($i: LeadInput!) { createLead(input: $i) { lead { id } } }",
            json!({ "i": { "firstName": "x", "customFields": custom } }),
        )
        .await;
    assert_eq!(
        code_and_field(&answer),
        ("BAD_USER_INPUT".into(), "input".into())
    );
    let mut conditions = json!({ "field": "status", "operator": "equals", "value": "new" });
    // Twelve groups: within the input bound, past the conditions' own (ten).
    for _ in 0..12 {
        conditions = json!({ "all": [conditions] });
    }
    let answer = app
        .gql(
            Some(&token),
            "mutation($i: CreateWorkflowInput!) { createWorkflow(input: $i) { id } }",
            json!({ "i": {
                "name": "deep",
                "entity": "LEAD",
                "trigger": { "type": "record_created" },
                "conditions": conditions,
                "actions": [{ "type": "update_field", "field": "priority", "value": "high" }],
            } }),
        )
        .await;
    assert_eq!(code_and_field(&answer).0, "BAD_USER_INPUT", "{answer}");
    assert!(
        code_and_field(&answer).1.starts_with("conditions"),
        "{answer}"
    );
    // A document nested 10,000 deep in its selections.
    let deep = format!("{}{}", "{a".repeat(10_000), "}".repeat(10_000));
    let deep_get = format!("{}{}", "{a".repeat(5_000), "}".repeat(5_000));
    for auth in [None, Some(token.as_str())] {
        let (_, answer) = post_body(&app, auth, json!({ "query": deep }).to_string()).await;
        assert_eq!(code_and_field(&answer).0, "QUERY_TOO_DEEP");
        let (_, answer) = get_query(&app, auth, &deep_get).await;
        assert_eq!(code_and_field(&answer).0, "QUERY_TOO_DEEP");
    }
    assert_alive(&app).await;
    assert_eq!(app.count("leads").await, 0);
    assert_eq!(app.count("workflows").await, 0);
}

#[tokio::test]
async fn deep_documents_over_websocket_are_refused_and_the_socket_stays_usable() {
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    for auth in [None, Some(token.as_str())] {
        let mut socket = connect(&app, "graphql-transport-ws").await;
        let payload = match auth {
            Some(token) => json!({ "Authorization": format!("Bearer {token}") }),
            None => json!({}),
        };
        send(
            &mut socket,
            json!({ "type": "connection_init", "payload": payload }),
        )
        .await;
        assert_eq!(next(&mut socket).await.unwrap()["type"], "connection_ack");
        let cases = [
            (nested_not("leads", 10_000), "BAD_USER_INPUT"),
            (
                format!("{}{}", "{a".repeat(10_000), "}".repeat(10_000)),
                "QUERY_TOO_DEEP",
            ),
            (fragment_bomb(30), "QUERY_TOO_COMPLEX"),
        ];
        for (n, (query, code)) in cases.iter().enumerate() {
            let id = n.to_string();
            let answer = operation(&mut socket, &id, query).await;
            assert_eq!(
                errors_of(&answer)[0]["extensions"]["code"],
                *code,
                "{answer}"
            );
        }
        // The socket still works.
        let answer = operation(&mut socket, "ok", "{ __typename }").await;
        assert_eq!(
            answer["payload"]["data"]["__typename"], "QueryRoot",
            "{answer}"
        );

        // Variables nested 10,000 deep: the message is not JSON the server will read (past
        // 128 levels), and the protocol's answer to an unreadable message is to close the
        // socket with 1002, saying why.
        let deep = format!("{}1{}", "{\"a\":".repeat(10_000), "}".repeat(10_000));
        let message = format!(
            "{{\"id\":\"v\",\"type\":\"subscribe\",\"payload\":{{\"query\":\"{{ __typename }}\",\"variables\":{{\"x\":{deep}}}}}}}"
        );
        use futures_util::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::Message;
        socket.send(Message::Text(message.into())).await.unwrap();
        let closed = loop {
            match tokio::time::timeout(Duration::from_secs(10), socket.next())
                .await
                .expect("an answer within 10 s")
            {
                Some(Ok(Message::Close(frame))) => break frame,
                Some(Ok(_)) => continue,
                other => panic!("expected a close frame, got {other:?}"),
            }
        };
        let frame = closed.expect("a close frame with a code");
        assert_eq!(u16::from(frame.code), 1002, "{frame:?}");
        assert!(frame.reason.contains("recursion limit"), "{frame:?}");
    }
    assert_alive(&app).await;
}

/// `query{me{...F0}} fragment F0 on User{id ...F1 ...F1} … fragment F30 on User{id}`.
fn fragment_bomb(levels: usize) -> String {
    let mut query = String::from("query{me{...F0}}");
    for n in 0..levels {
        query.push_str(&format!(
            " fragment F{n} on User{{id ...F{} ...F{}}}",
            n + 1,
            n + 1
        ));
    }
    query.push_str(&format!(" fragment F{levels} on User{{id}}"));
    query
}

#[tokio::test]
async fn exponential_fragments_aliases_and_root_mutations_are_refused() {
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    // The 1.2 KB document that kept a core busy: refused at once, anonymous, POST and GET,
    // three at a time while /healthz keeps answering.
    let bomb = fragment_bomb(30);
    let (_, answer) = get_query(&app, None, &bomb).await;
    assert_eq!(code_and_field(&answer).0, "QUERY_TOO_COMPLEX", "{answer}");
    let posts: Vec<_> = (0..3)
        .map(|_| post_body(&app, None, json!({ "query": bomb }).to_string()))
        .collect();
    let (answers, _) = tokio::join!(futures_util::future::join_all(posts), assert_alive(&app));
    for (_, answer) in answers {
        assert_eq!(code_and_field(&answer).0, "QUERY_TOO_COMPLEX", "{answer}");
        assert_eq!(
            answer["errors"][0]["extensions"]["limit"],
            "maxQuerySelections"
        );
    }
    // A fragment that spreads itself.
    let (_, answer) = post_body(
        &app,
        None,
        json!({ "query": "{me{...A}} fragment A on User{id ...B} fragment B on User{...A}" })
            .to_string(),
    )
    .await;
    assert_eq!(code_and_field(&answer).0, "GRAPHQL_VALIDATION_FAILED");

    // 1,000 aliased createLead in one request: refused whole, nothing written.
    let mut mutation = String::from("mutation {");
    for n in 0..1000 {
        mutation.push_str(&format!(
            " l{n}: createLead(input: {{firstName: \"L{n}\"}}) {{ lead {{ id }} }}"
        ));
    }
    mutation.push('}');
    let answer = app.gql(Some(&token), &mutation, json!({})).await;
    assert_eq!(code_and_field(&answer).0, "QUERY_TOO_COMPLEX", "{answer}");
    // Twenty fit; twenty-one do not (the root mutation bound), whatever the aliases.
    let mutations = |n: usize| {
        let mut text = String::from("mutation {");
        for i in 0..n {
            text.push_str(&format!(
                " l{i}: createLead(input: {{firstName: \"L{i}\"}}) {{ lead {{ id }} }}"
            ));
        }
        text + "}"
    };
    let answer = app.gql(Some(&token), &mutations(21), json!({})).await;
    assert_eq!(
        answer["errors"][0]["extensions"]["limit"], "maxRootMutations",
        "{answer}"
    );
    assert_eq!(app.count("leads").await, 0);
    let answer = app.gql(Some(&token), &mutations(20), json!({})).await;
    assert!(answer["errors"].is_null(), "{answer}");
    assert_eq!(app.count("leads").await, 20);

    // 1,000 leadStats aliases: past the bound on list and statistics fields.
    let mut stats = String::from("{");
    for n in 0..1000 {
        stats.push_str(&format!(" s{n}: leadStats {{ total }}"));
    }
    stats.push('}');
    let answer = app.gql(Some(&token), &stats, json!({})).await;
    assert_eq!(code_and_field(&answer).0, "QUERY_TOO_COMPLEX", "{answer}");
    let mut stats = String::from("{");
    for n in 0..31 {
        stats.push_str(&format!(" s{n}: leadStats {{ total }}"));
    }
    stats.push('}');
    let answer = app.gql(Some(&token), &stats, json!({})).await;
    assert_eq!(answer["errors"][0]["extensions"]["limit"], "maxQueryReads");
    assert_alive(&app).await;
}

#[tokio::test]
async fn filters_with_too_many_conditions_are_refused_before_reaching_the_database() {
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    // 20,000 `and` conditions (the report's 700 KB request).
    let and: Vec<Value> = (0..20_000)
        .map(|n| json!({ "firstName": { "eq": format!("n{n}") } }))
        .collect();
    let answer = app
        .gql(
            Some(&token),
            "query($f: LeadFilter) { leads(filter: $f) { totalCount } }",
            json!({ "f": { "and": and } }),
        )
        .await;
    // Counted on the body's bytes, before any of it becomes GraphQL values.
    assert_eq!(
        code_and_field(&answer),
        ("BAD_USER_INPUT".into(), "variables".into()),
        "{}",
        &answer.to_string()[..200.min(answer.to_string().len())]
    );
    // 15,000 custom-field `or` conditions.
    let or: Vec<Value> = (0..15_000)
        .map(|n| json!({ "custom": [{ "key": "k", "eq": format!("v{n}") }] }))
        .collect();
    let answer = app
        .gql(
            Some(&token),
            "query($f: ContactFilter) { contacts(filter: $f) { totalCount } }",
            json!({ "f": { "or": or } }),
        )
        .await;
    assert_eq!(
        code_and_field(&answer),
        ("BAD_USER_INPUT".into(), "variables".into())
    );
    // Two lists that are each within the bound but together past it.
    let ids: Vec<Value> = (0..2_600).map(|n| json!(n.to_string())).collect();
    let answer = app
        .gql(
            Some(&token),
            "query($a: [ID!], $b: [ID!]) { a: leads(filter: {id: {in: $a}}) { totalCount } b: leads(filter: {id: {in: $b}}) { totalCount } }",
            json!({ "a": ids, "b": ids }),
        )
        .await;
    assert_eq!(
        code_and_field(&answer).0,
        "BAD_USER_INPUT",
        "{}",
        &answer.to_string()[..200.min(answer.to_string().len())]
    );
    // The same bound for bulk operations and statistics; nothing was changed.
    app.create_lead(&token, json!({ "firstName": "Kept" }))
        .await;
    let or: Vec<Value> = (0..300)
        .map(|n| json!({ "firstName": { "eq": format!("n{n}") } }))
        .collect();
    let answer = app
        .gql(
            Some(&token),
            "mutation($f: LeadFilter) { bulkDeleteLeads(filter: $f) { count } }",
            json!({ "f": { "or": or } }),
        )
        .await;
    assert_eq!(
        code_and_field(&answer),
        ("BAD_USER_INPUT".into(), "filter".into()),
        "{answer}"
    );
    let answer = app
        .gql(
            Some(&token),
            "query($f: LeadFilter) { leadStats(filter: $f) { total } }",
            json!({ "f": { "or": or } }),
        )
        .await;
    assert_eq!(code_and_field(&answer).0, "BAD_USER_INPUT");
    // 200 conditions are fine.
    let answer = app
        .gql(
            Some(&token),
            "query($f: LeadFilter) { leads(filter: $f) { totalCount } }",
            json!({ "f": { "or": or[..200] } }),
        )
        .await;
    assert!(answer["errors"].is_null(), "{answer}");
    assert_eq!(app.count("leads").await, 1);
    assert_alive(&app).await;
}

/// Makes every insert into `leads` of this test's database sleep (a stand-in for a slow
/// statement, deterministic).
async fn slow_lead_inserts(app: &TestApp, seconds: f64) {
    app.execute(&format!(
        "CREATE FUNCTION slow_insert() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN PERFORM pg_sleep({seconds}); RETURN NEW; END $$"
    ))
    .await;
    app.execute(
        "CREATE TRIGGER slow_insert BEFORE INSERT ON leads FOR EACH ROW EXECUTE FUNCTION slow_insert()",
    )
    .await;
}

#[tokio::test]
async fn the_statement_timeout_and_the_request_timeout_answer_timeout_and_write_nothing() {
    // PostgreSQL's statement_timeout, per connection of the app's pool.
    let app = TestApp::spawn_with(|c| {
        c.database.statement_timeout = Duration::from_millis(500);
    })
    .await;
    let token = app.admin_token().await;
    slow_lead_inserts(&app, 3.0).await;
    let answer = app
        .gql(
            Some(&token),
            "mutation { createLead(input: {firstName: \"Slow\"}) { lead { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(code_and_field(&answer).0, "TIMEOUT", "{answer}");
    assert_eq!(app.count("leads").await, 0);
    assert_alive(&app).await;

    // The server's own request timeout.
    let app = TestApp::spawn_with(|c| {
        c.http.request_timeout = Duration::from_secs(2);
        c.database.statement_timeout = Duration::ZERO;
    })
    .await;
    let token = app.admin_token().await;
    slow_lead_inserts(&app, 4.0).await;
    let started = std::time::Instant::now();
    let answer = app
        .gql(
            Some(&token),
            "mutation { createLead(input: {firstName: \"Slow\"}) { lead { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(code_and_field(&answer).0, "TIMEOUT", "{answer}");
    assert!(started.elapsed() < Duration::from_secs(4));
    // The dropped transaction never commits.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(app.count("leads").await, 0);
    assert_alive(&app).await;
}

#[tokio::test]
async fn a_client_that_leaves_stops_its_work() {
    let app = TestApp::spawn_with(|c| c.database.statement_timeout = Duration::ZERO).await;
    let token = app.admin_token().await;
    slow_lead_inserts(&app, 2.0).await;
    let request = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&token)
        .json(&json!({ "query": "mutation { createLead(input: {firstName: \"Gone\"}) { lead { id } } }" }))
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(request.is_err(), "the client gave up");
    // The request's work was dropped with its connection: its transaction never commits.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(app.count("leads").await, 0);
    assert_alive(&app).await;
}

/// NUL in every kind of GraphQL string: BAD_USER_INPUT naming the field, nothing written.
#[tokio::test]
async fn nul_characters_are_refused_naming_the_field() {
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    let lead = app.create_lead(&token, json!({ "firstName": "Ada" })).await;
    let nul = "a\u{0}b";
    let cases: Vec<(Option<&str>, &str, Value, &str)> = vec![
        (
            None,
            "mutation($e: String!) { login(email: $e, password: \"x\") { accessToken } }",
            json!({ "e": nul }),
            "email",
        ),
        (
            Some(&token),
            "mutation($i: LeadInput!) { createLead(input: $i) { lead { id } } }",
            json!({ "i": { "firstName": nul } }),
            "firstName",
        ),
        (
            Some(&token),
            "mutation($i: LeadInput!) { createLead(input: $i) { lead { id } } }",
            json!({ "i": { "firstName": "x", "customFields": { "note": nul } } }),
            "customFields.note",
        ),
        (
            Some(&token),
            "mutation($i: AddCommentInput!) { addComment(input: $i) { id } }",
            json!({ "i": { "recordType": "LEAD", "recordId": lead, "body": nul } }),
            "body",
        ),
        (
            Some(&token),
            "mutation($i: CreateWorkflowInput!) { createWorkflow(input: $i) { id } }",
            json!({ "i": { "name": nul, "entity": "LEAD", "trigger": { "type": "manual" }, "actions": [] } }),
            "name",
        ),
        (
            Some(&token),
            "query($f: LeadFilter) { leads(filter: $f) { totalCount } }",
            json!({ "f": { "firstName": { "contains": nul } } }),
            "firstName.contains",
        ),
        (
            Some(&token),
            "query($s: String) { leads(search: $s) { totalCount } }",
            json!({ "s": nul }),
            "search",
        ),
    ];
    for (auth, query, variables, field) in &cases {
        let answer = app.gql(*auth, query, variables.clone()).await;
        assert_eq!(
            code_and_field(&answer),
            ("BAD_USER_INPUT".into(), field.to_string()),
            "{query}: {answer}"
        );
    }
    // As a literal in the document too.
    let answer = app
        .gql(
            Some(&token),
            "mutation { createLead(input: {firstName: \"x\\u0000y\"}) { lead { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        code_and_field(&answer),
        ("BAD_USER_INPUT".into(), "firstName".into())
    );
    // Over REST: login and the export's filters.
    let login = app
        .client
        .post(app.url("/api/auth/login/"))
        .json(&json!({ "email": nul, "password": "x" }))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 400);
    let body: Value = login.json().await.unwrap();
    assert_eq!(body["error"]["field"], "email");
    let export = app
        .client
        .get(app.url("/api/v1/export/leads/"))
        .query(&[("search", nul)])
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(export.status(), 400);
    assert_eq!(app.count("leads").await, 1);
    assert_eq!(app.count("comments").await, 0);
    assert_eq!(app.count("workflows").await, 0);
    assert_alive(&app).await;
}

/// A TCP proxy in front of the test's PostgreSQL that can be cut: while down, every open
/// connection is dropped and new ones are closed at once, as when the database host goes
/// away. (The cluster itself is shared by the tests running in parallel, so it stays up.)
struct PgProxy {
    addr: std::net::SocketAddr,
    down: std::sync::Arc<std::sync::atomic::AtomicBool>,
    cut: tokio::sync::watch::Sender<u64>,
}

impl PgProxy {
    async fn start(database_url: &str) -> PgProxy {
        use std::sync::atomic::Ordering;
        // postgres://user@<host>:<port>/<db>: a percent-encoded socket directory or a TCP host.
        let rest = database_url.split_once('@').unwrap().1;
        let host_port = rest.split('/').next().unwrap();
        let (host, port) = host_port.rsplit_once(':').unwrap();
        let upstream = if host.starts_with("%2F") {
            let dir = percent_decode(host);
            Upstream::Unix(format!("{dir}/.s.PGSQL.{port}"))
        } else {
            Upstream::Tcp(host_port.to_string())
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let down = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (cut, _) = tokio::sync::watch::channel(0u64);
        let proxy = PgProxy {
            addr,
            down: down.clone(),
            cut: cut.clone(),
        };
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                if down.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let upstream = upstream.clone();
                let mut cut = cut.subscribe();
                tokio::spawn(async move {
                    let copy = async {
                        match upstream {
                            Upstream::Unix(path) => {
                                let mut server = tokio::net::UnixStream::connect(path).await?;
                                tokio::io::copy_bidirectional(&mut client, &mut server).await
                            }
                            Upstream::Tcp(addr) => {
                                let mut server = tokio::net::TcpStream::connect(addr).await?;
                                tokio::io::copy_bidirectional(&mut client, &mut server).await
                            }
                        }
                    };
                    tokio::select! {
                        _ = copy => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        proxy
    }

    fn url(&self, database_url: &str) -> String {
        let (scheme_user, rest) = database_url.split_once('@').unwrap();
        let path = rest.split_once('/').unwrap().1;
        format!("{scheme_user}@{}/{path}", self.addr)
    }

    fn down(&self) {
        self.down.store(true, std::sync::atomic::Ordering::SeqCst);
        self.cut.send_modify(|n| *n += 1);
    }

    fn up(&self) {
        self.down.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

#[derive(Clone)]
enum Upstream {
    Unix(String),
    Tcp(String),
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() + 1 {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn a_database_outage_is_service_unavailable_never_an_auth_failure() {
    let database_url = fresh_database().await;
    let proxy = PgProxy::start(&database_url).await;
    let config = test_config();
    let app = mycrm::server::build_app(&config, &proxy.url(&database_url)).unwrap();
    mycrm::auth::bootstrap::ensure_first_admin(&app.db, &config.bootstrap)
        .await
        .unwrap();
    let app = TestApp::serve(app, database_url).await;
    let token = app.admin_token().await;
    let me = app.gql(Some(&token), "{ me { email } }", json!({})).await;
    assert_eq!(me["data"]["me"]["email"], ADMIN_EMAIL);

    // A heartbeat that must outlive a blip shorter than its interval.
    let mut socket = connect(&app, "graphql-transport-ws").await;
    send(&mut socket, json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } })).await;
    assert_eq!(next(&mut socket).await.unwrap()["type"], "connection_ack");
    send(
        &mut socket,
        json!({ "id": "hb", "type": "subscribe", "payload": { "query": "subscription { heartbeat(intervalSeconds: 2) { sequence } }" } }),
    )
    .await;
    assert_eq!(
        next(&mut socket).await.unwrap()["payload"]["data"]["heartbeat"]["sequence"],
        1
    );

    proxy.down();
    // GraphQL with a valid token: SERVICE_UNAVAILABLE, never UNAUTHENTICATED.
    let answer = app.gql(Some(&token), "{ me { email } }", json!({})).await;
    assert_eq!(code_and_field(&answer).0, "SERVICE_UNAVAILABLE", "{answer}");
    assert!(
        answer["errors"][0]["extensions"]["retryAfterSeconds"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert!(
        !answer.to_string().contains("PGSQL"),
        "no internals: {answer}"
    );
    // A login attempt is not a credentials failure either.
    let login = app.try_login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(code_and_field(&login).0, "SERVICE_UNAVAILABLE", "{login}");
    // REST: 503 with Retry-After.
    let export = app
        .client
        .get(app.url("/api/v1/export/leads/"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(export.status(), 503);
    assert!(export.headers().contains_key("retry-after"));
    let body: Value = export.json().await.unwrap();
    assert_eq!(body["error"]["code"], "SERVICE_UNAVAILABLE");
    assert_alive(&app).await;

    tokio::time::sleep(Duration::from_millis(1500)).await;
    proxy.up();
    // The heartbeat goes on (beats skipped while down), and so does everything else.
    let beat = next(&mut socket)
        .await
        .expect("the subscription is still open");
    assert_eq!(beat["type"], "next", "{beat}");
    assert!(
        beat["payload"]["data"]["heartbeat"]["sequence"]
            .as_i64()
            .unwrap()
            >= 2
    );
    let mut me = Value::Null;
    for _ in 0..50 {
        me = app.gql(Some(&token), "{ me { email } }", json!({})).await;
        if me["errors"].is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(me["data"]["me"]["email"], ADMIN_EMAIL, "{me}");
}

/// Sends a login from a given address (the server trusts X-Forwarded-For in these tests).
async fn login_from(app: &TestApp, address: &str, email: &str, password: &str) -> Value {
    app.client
        .post(app.url("/graphql"))
        .header("x-forwarded-for", address)
        .json(&json!({
            "query": "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }",
            "variables": { "e": email, "p": password },
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn failures_from_one_address_do_not_lock_the_account_for_others() {
    let app = TestApp::spawn_with(|c| {
        c.http.trust_forwarded_for = true;
        c.auth.max_login_failures_per_account = 5;
        c.auth.max_login_failures_per_account_total = 8;
    })
    .await;
    // An attacker fails five times from one address: that address is refused...
    for _ in 0..5 {
        let answer = login_from(&app, "203.0.113.1", ADMIN_EMAIL, "wrong").await;
        assert_eq!(code_and_field(&answer).0, "UNAUTHENTICATED");
    }
    let answer = login_from(&app, "203.0.113.1", ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(code_and_field(&answer).0, "RATE_LIMITED");
    // ...but the owner, from their own address, logs in.
    let answer = login_from(&app, "198.51.100.7", ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert!(answer["errors"].is_null(), "{answer}");

    // Guessing spread over many addresses: past the account-wide bound (8), an address that
    // has failed on the account waits, even with the right password...
    for n in 2..=4 {
        let answer = login_from(&app, &format!("203.0.113.{n}"), ADMIN_EMAIL, "wrong").await;
        assert_eq!(code_and_field(&answer).0, "UNAUTHENTICATED");
    }
    let answer = login_from(&app, "203.0.113.2", ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(code_and_field(&answer).0, "RATE_LIMITED", "{answer}");
    // ...each fresh address gets one attempt...
    let answer = login_from(&app, "203.0.113.9", ADMIN_EMAIL, "wrong").await;
    assert_eq!(code_and_field(&answer).0, "UNAUTHENTICATED");
    let answer = login_from(&app, "203.0.113.9", ADMIN_EMAIL, "wrong").await;
    assert_eq!(code_and_field(&answer).0, "RATE_LIMITED");
    // ...and the owner's address, which has not failed, still gets in.
    let answer = login_from(&app, "198.51.100.7", ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert!(answer["errors"].is_null(), "{answer}");
}

/// The malformed-CSV findings: no encoding, binary or NUL produces a 5xx or an error without a
/// line. UTF-16/32 with a byte-order mark are read; what cannot be read is named (415).
#[tokio::test]
async fn csv_files_in_odd_encodings_are_read_or_refused_with_what_they_are() {
    use crate::csv_import::upload;
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    let texts: Vec<String> = (0..4)
        .map(|n| format!("first_name,last_name,email\nZoë,Ünal,zoe{n}@example.com\nJo,Ng,jo{n}@example.com\n"))
        .collect();
    let text = texts[0].as_str();
    let utf16 = |text: &str, le: bool, bom: bool| -> Vec<u8> {
        let mut out = Vec::new();
        if bom {
            out.extend_from_slice(if le { &[0xFF, 0xFE] } else { &[0xFE, 0xFF] });
        }
        for unit in text.encode_utf16() {
            out.extend_from_slice(&if le {
                unit.to_le_bytes()
            } else {
                unit.to_be_bytes()
            });
        }
        out
    };
    let utf32 = |text: &str, le: bool| -> Vec<u8> {
        let mut out: Vec<u8> = if le {
            vec![0xFF, 0xFE, 0, 0]
        } else {
            vec![0, 0, 0xFE, 0xFF]
        };
        for c in text.chars() {
            out.extend_from_slice(&if le {
                (c as u32).to_le_bytes()
            } else {
                (c as u32).to_be_bytes()
            });
        }
        out
    };
    let mut expected = 0;
    for (name, file) in [
        ("UTF-16 LE", utf16(&texts[0], true, true)),
        ("UTF-16 BE", utf16(&texts[1], false, true)),
        ("UTF-32 LE", utf32(&texts[2], true)),
        ("UTF-32 BE", utf32(&texts[3], false)),
    ] {
        let (status, answer) = upload(&app, &token, "leads", &file, &[]).await;
        assert_eq!(status, 200, "{name}: {answer}");
        assert_eq!(answer["imported"], 2, "{name}: {answer}");
        expected += 2;
    }
    let names = app
        .rows("SELECT first_name, last_name FROM leads ORDER BY id LIMIT 2")
        .await;
    assert_eq!(names[0]["first_name"], "Zoë");
    assert_eq!(names[0]["last_name"], "Ünal");

    let mut gzip = vec![0x1F, 0x8B, 0x08, 0x00, 0, 0, 0, 0, 0, 0x03];
    gzip.extend_from_slice(&[0x4B, 0x4C, 0x4A, 0x06, 0x00]);
    for (name, file, says) in [
        (
            "UTF-16 LE without a mark",
            utf16(text, true, false),
            "UTF-16",
        ),
        (
            "UTF-16 BE without a mark",
            utf16(text, false, false),
            "UTF-16",
        ),
        ("gzip", gzip, "gzip"),
        ("all NUL", vec![0u8; 2048], "NUL"),
        (
            "NUL in the header",
            b"first_name,la\0st_name\nA,B\n".to_vec(),
            "NUL",
        ),
        ("a workbook", b"PK\x03\x04\x14\x00\x06\x00".to_vec(), "ZIP"),
    ] {
        let (status, answer) = upload(&app, &token, "leads", &file, &[]).await;
        assert_eq!(status, 415, "{name}: {answer}");
        assert_eq!(answer["error"]["field"], "file", "{name}");
        assert!(
            answer["error"]["message"].as_str().unwrap().contains(says),
            "{name}: {answer}"
        );
    }
    assert_eq!(
        app.count("imports").await,
        4,
        "refused uploads leave no import"
    );

    // A NUL in one cell fails that row, with its line; the others are imported.
    let file =
        b"first_name,email\nGood,good@example.com\nBa\0d,bad@example.com\nAlso,also@example.com\n";
    let (status, answer) = upload(&app, &token, "leads", file, &[]).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["imported"], 2, "{answer}");
    assert_eq!(answer["error_details"][0]["row"], 3, "{answer}");
    assert_eq!(
        answer["error_details"][0]["column"], "first_name",
        "{answer}"
    );
    expected += 2;
    assert_eq!(app.count("leads").await, expected);
    assert_alive(&app).await;
}

/// A second workspace with its admin (made by the operator path, as `mycrm demo` does);
/// returns its admin's token and the workspace's ID.
async fn other_workspace(app: &TestApp, email: &str) -> (String, i64) {
    let user = app
        .app
        .auth
        .create_workspace(mycrm::auth::SignUp {
            workspace_name: format!("Other {email}"),
            name: "Olga".into(),
            email: email.into(),
            password: "other-password-1".into(),
        })
        .await
        .unwrap();
    (
        token_of(&app.login(email, "other-password-1").await),
        user.workspace_id.0,
    )
}

#[tokio::test]
async fn an_admins_retrain_trigger_acts_on_their_workspace_only() {
    let app = TestApp::spawn_with(|c| c.jobs.poll = Duration::from_millis(100)).await;
    let admin = app.admin_token().await;
    let (_, other) = other_workspace(&app, "olga@other.test").await;
    // Both workspaces have enough closed leads to train on.
    for workspace in [
        "(SELECT workspace_id FROM users WHERE email = 'admin@example.com')".to_string(),
        other.to_string(),
    ] {
        app.execute(&format!(
            "INSERT INTO leads (workspace_id, first_name, status, priority, lead_source) \
             SELECT {workspace}, 'L' || i, CASE WHEN i % 3 = 0 THEN 'converted' ELSE 'lost' END, \
               'medium', CASE WHEN i % 3 = 0 THEN 'referral' ELSE 'website' END \
             FROM generate_series(1, 120) AS i"
        ))
        .await;
    }
    let shutdown = crate::workflows::workers(&app);
    let mut answer = Value::Null;
    for _ in 0..300 {
        answer = app
            .gql(
                Some(&admin),
                "mutation { triggerSchedule(name: \"lead_scoring.retrain\") { schedule { name } } }",
                json!({}),
            )
            .await;
        // The workers' start-up catch-up run may hold the schedule for a moment.
        if answer["errors"][0]["extensions"]["code"] != "CONFLICT" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(answer["errors"].is_null(), "{answer}");
    let admin_workspace = app
        .rows("SELECT workspace_id FROM users WHERE email = 'admin@example.com'")
        .await[0]["workspace_id"]
        .as_i64()
        .unwrap();
    let retrained = || {
        app.rows(
            "SELECT workspace_id FROM jobs WHERE kind = 'scoring.retrain' \
             UNION ALL SELECT workspace_id FROM job_history WHERE kind = 'scoring.retrain'",
        )
    };
    let mut rows;
    for _ in 0..300 {
        rows = retrained().await;
        if !rows.as_array().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Let a wrongly scoped run show itself, if there were one.
    tokio::time::sleep(Duration::from_millis(500)).await;
    rows = retrained().await;
    shutdown.cancel();
    let workspaces: Vec<i64> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["workspace_id"].as_i64().unwrap())
        .collect();
    assert_eq!(workspaces, vec![admin_workspace], "{rows}");
}

#[tokio::test]
async fn workflows_naming_another_workspaces_user_or_record_are_refused_when_saved() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (other_token, _) = other_workspace(&app, "olga@other.test").await;
    let foreign_company = app
        .gql(
            Some(&other_token),
            "mutation { createCompany(input: {name: \"Foreign\"}) { company { id } } }",
            json!({}),
        )
        .await["data"]["createCompany"]["company"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let create = "mutation($i: CreateWorkflowInput!) { createWorkflow(input: $i) { id } }";
    let cases = [
        (
            json!([{ "type": "update_field", "field": "assigned_to", "value": "olga@other.test" }]),
            "actions[0].value",
        ),
        (
            json!([{ "type": "create_record", "entity": "contact", "fields": { "first_name": "X", "owner": "olga@other.test" } }]),
            "actions[0].fields.owner",
        ),
        (
            json!([{ "type": "create_record", "entity": "contact", "fields": { "first_name": "X", "company_id": foreign_company } }]),
            "actions[0].fields.company_id",
        ),
    ];
    for (actions, field) in cases {
        let answer = app
            .gql(
                Some(&admin),
                create,
                json!({ "i": { "name": "W", "entity": "LEAD", "trigger": { "type": "record_created" }, "actions": actions } }),
            )
            .await;
        assert_eq!(
            code_and_field(&answer),
            ("BAD_USER_INPUT".into(), field.into()),
            "{answer}"
        );
    }
    assert_eq!(app.count("workflows").await, 0);
    // The workspace's own user and records are accepted.
    let own_company = app
        .gql(
            Some(&admin),
            "mutation { createCompany(input: {name: \"Own\"}) { company { id } } }",
            json!({}),
        )
        .await["data"]["createCompany"]["company"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let answer = app
        .gql(
            Some(&admin),
            create,
            json!({ "i": { "name": "W", "entity": "LEAD", "trigger": { "type": "record_created" }, "actions": [
                { "type": "update_field", "field": "assigned_to", "value": ADMIN_EMAIL },
                { "type": "create_record", "entity": "contact", "fields": { "first_name": "X", "company_id": own_company } },
            ] } }),
        )
        .await;
    assert!(answer["errors"].is_null(), "{answer}");
}

#[tokio::test]
async fn html_pages_send_security_headers_and_anonymous_callers_get_no_suggestions() {
    let app = TestApp::spawn().await;
    for (path, accept) in [("/graphql", "text/html"), ("/playground/live", "text/html")] {
        let response = app
            .client
            .get(app.url(path))
            .header("accept", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let headers = response.headers();
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(csp.contains("script-src 'self' 'sha256-"), "{csp}");
        assert!(
            !csp.contains("'unsafe-inline'; img") || csp.contains("style-src"),
            "{csp}"
        );
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["referrer-policy"], "no-referrer");
    }
    // JSON answers are not sniffed either.
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.headers()["x-content-type-options"], "nosniff");

    // "Did you mean" maps the schema: not for anonymous callers.
    let anonymous = app.gql(None, "{ me { emai } }", json!({})).await;
    let message = anonymous["errors"][0]["message"].as_str().unwrap();
    assert!(!message.contains("Did you mean"), "{message}");
    assert_eq!(code_and_field(&anonymous).0, "GRAPHQL_VALIDATION_FAILED");
    let token = app.admin_token().await;
    let signed_in = app.gql(Some(&token), "{ me { emai } }", json!({})).await;
    assert!(
        signed_in["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("Did you mean"),
        "{signed_in}"
    );
}

#[tokio::test]
async fn out_of_range_ints_are_refused_and_exported_semicolons_are_quoted() {
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    crate::csv_import::upload(&app, &token, "leads", b"first_name\nA\n", &[]).await;
    let answer = app
        .gql(
            Some(&token),
            "{ imports(first: 1) { nodes { errorDetails(afterLine: -2147483649) { row } } } }",
            json!({}),
        )
        .await;
    assert_eq!(code_and_field(&answer).0, "BAD_USER_INPUT", "{answer}");
    let answer = app
        .gql(
            Some(&token),
            "{ imports(first: 1) { nodes { errorDetails(afterLine: -2) { row } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        code_and_field(&answer),
        ("BAD_USER_INPUT".into(), "afterLine".into()),
        "{answer}"
    );
    let answer = app
        .gql(
            Some(&token),
            "query($n: Int) { leads(first: $n) { totalCount } }",
            json!({ "n": 4_294_967_296i64 }),
        )
        .await;
    assert_eq!(code_and_field(&answer).0, "BAD_USER_INPUT", "{answer}");

    app.create_lead(
        &token,
        json!({ "firstName": "Semi", "lastName": "a;b", "tags": ["x", "y"] }),
    )
    .await;
    let text = app
        .client
        .get(app.url("/api/v1/export/leads/?fields=first_name,last_name,tags"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.lines().any(|row| row == "\"Semi\",\"a;b\",\"x;y\""),
        "{text}"
    );
}
