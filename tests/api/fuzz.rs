//! A fuzz test of the GraphQL endpoint (issue 22): random documents and variables, built from
//! the shapes attackers use (deep nesting of every recursive input, aliases by the hundred,
//! fragment chains that double, long lists, NUL and odd Unicode in every string argument),
//! sent anonymously and with a token, over POST and GET. Any 5xx, any error without a code,
//! any INTERNAL error or a dropped connection fails the test, with the seed and the request
//! to reproduce it (`MYCRM_FUZZ_SEED=<seed> cargo test fuzz`).

use std::fmt::Write;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::harness::*;

/// Requests per run: enough to cover every shape several times, well under a minute.
const REQUESTS: usize = 400;

/// Strings an attacker tries in text arguments.
const ODD_TEXT: &[&str] = &[
    "\u{0}",
    "a\u{0}b",
    "\u{FEFF}bom",
    "\u{202E}override",
    "e\u{301}\u{301}\u{301}",
    "😀👩‍👩‍👧",
    "\u{FFFF}\u{FFFE}",
    "\u{7F}\u{1B}[31m",
    "' OR 1=1 --",
    "%s%n%x",
    "\\\\",
    "",
];

const ROOTS: &[&str] = &["leads", "contacts", "companies", "opportunities", "tasks"];
const FILTER_TYPES: &[&str] = &[
    "LeadFilter",
    "ContactFilter",
    "CompanyFilter",
    "OpportunityFilter",
    "TaskFilter",
];

struct Gen {
    rng: StdRng,
}

impl Gen {
    fn text(&mut self) -> String {
        if self.rng.gen_bool(0.6) {
            ODD_TEXT[self.rng.gen_range(0..ODD_TEXT.len())].to_string()
        } else {
            let len = [1usize, 10, 300, 70_000][self.rng.gen_range(0..4)];
            "x".repeat(len)
        }
    }

    /// A GraphQL string literal of `text` (escaped as GraphQL requires).
    fn literal(text: &str) -> String {
        let mut out = String::from("\"");
        for c in text.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if (c as u32) < 0x20 || c == '\u{7F}' => {
                    let _ = write!(out, "\\u{:04X}", c as u32);
                }
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }

    /// A filter literal `depth` levels of and/or/not deep, `width` conditions wide.
    fn filter(&mut self, depth: usize, width: usize) -> String {
        let leaf = |g: &mut Gen| {
            let op = ["eq", "contains", "ne", "startsWith"][g.rng.gen_range(0..4)];
            format!(
                "{{id: {{eq: \"1\"}}, custom: [{{key: \"k\", {op}: {}}}]}}",
                Gen::literal(&g.text())
            )
        };
        let mut filter = leaf(self);
        for _ in 0..depth {
            filter = match self.rng.gen_range(0..3) {
                0 => format!("{{not: {filter}}}"),
                1 => format!("{{and: [{filter}]}}"),
                _ => format!("{{or: [{filter}]}}"),
            };
        }
        if width > 1 {
            let items: Vec<String> = (0..width).map(|_| leaf(self)).collect();
            filter = format!("{{or: [{}], and: [{filter}]}}", items.join(", "));
        }
        filter
    }

    /// A random document (and its variables).
    fn request(&mut self) -> (String, Value) {
        let root = ROOTS[self.rng.gen_range(0..ROOTS.len())];
        let filter_type = FILTER_TYPES[ROOTS.iter().position(|r| *r == root).unwrap()];
        match self.rng.gen_range(0..9) {
            // Nested filters as a literal.
            0 => {
                let depth = [0, 5, 11, 31, 33, 200, 20_000][self.rng.gen_range(0..7)];
                let width = [1, 50, 201, 3000][self.rng.gen_range(0..4)];
                let filter = self.filter(depth, width);
                (
                    format!("{{ {root}(filter: {filter}) {{ totalCount }} }}"),
                    json!({}),
                )
            }
            // Nested filters as a variable.
            1 => {
                let depth = [1, 10, 40, 127, 200][self.rng.gen_range(0..5)];
                let mut filter = json!({ "id": { "eq": self.text() } });
                for _ in 0..depth {
                    filter = json!({ "not": filter });
                }
                (
                    format!("query($f: {filter_type}) {{ {root}(filter: $f) {{ totalCount }} }}"),
                    json!({ "f": filter }),
                )
            }
            // Aliases.
            2 => {
                let n = [2, 99, 101, 1000][self.rng.gen_range(0..4)];
                let mut doc = String::from("{");
                for i in 0..n {
                    let _ = write!(doc, " a{i}: {root}(first: 1) {{ totalCount }}");
                }
                (doc + "}", json!({}))
            }
            // Fragment chains.
            3 => {
                let levels = self.rng.gen_range(1..40);
                let mut doc = String::from("query{me{...F0}}");
                for n in 0..levels {
                    let _ = write!(
                        doc,
                        " fragment F{n} on User{{id ...F{} ...F{}}}",
                        n + 1,
                        n + 1
                    );
                }
                let _ = write!(doc, " fragment F{levels} on User{{id}}");
                (doc, json!({}))
            }
            // Odd text in every kind of string argument.
            4 => {
                let text = Gen::literal(&self.text());
                let doc = match self.rng.gen_range(0..5) {
                    0 => format!("mutation {{ login(email: {text}, password: {text}) {{ accessToken }} }}"),
                    1 => format!("mutation {{ createLead(input: {{firstName: {text}, customFields: {{k: {text}}}}}) {{ lead {{ id }} }} }}"),
                    2 => format!("{{ {root}(search: {text}) {{ totalCount }} }}"),
                    3 => format!("mutation {{ createWorkflow(input: {{name: {text}, entity: LEAD, trigger: {{type: {text}}}, actions: []}}) {{ id }} }}"),
                    _ => format!("mutation {{ addComment(input: {{recordType: LEAD, recordId: {text}, body: {text}}}) {{ id }} }}"),
                };
                (doc, json!({}))
            }
            // Odd text through variables.
            5 => (
                "mutation($i: LeadInput!) { createLead(input: $i) { lead { id } } }".into(),
                json!({ "i": { "firstName": self.text(), "email": self.text(), "tags": [self.text()], "customFields": { "k": self.text() } } }),
            ),
            // Long lists.
            6 => {
                let n = [10, 1001, 50_000][self.rng.gen_range(0..3)];
                let ids: Vec<Value> = (0..n).map(|i| json!(i.to_string())).collect();
                (
                    format!("query($ids: [ID!]) {{ {root}(filter: {{id: {{in: $ids}}}}) {{ totalCount }} }}"),
                    json!({ "ids": ids }),
                )
            }
            // Deep selections and brackets.
            7 => {
                let n = [5, 13, 64, 65, 10_000][self.rng.gen_range(0..5)];
                let open = ["{a", "[", "("][self.rng.gen_range(0..3)];
                let close = match open {
                    "{a" => "}",
                    "[" => "]",
                    _ => ")",
                };
                (
                    format!("{{{}{}}}", open.repeat(n), close.repeat(n)),
                    json!({}),
                )
            }
            // Out-of-range numbers and mutation floods.
            _ => {
                if self.rng.gen_bool(0.5) {
                    let n: i64 =
                        [i64::MAX, -2_147_483_649, 2_147_483_648, -1][self.rng.gen_range(0..4)];
                    (
                        format!("query($n: Int) {{ {root}(first: $n) {{ totalCount }} }}"),
                        json!({ "n": n }),
                    )
                } else {
                    let n = [5, 21, 300][self.rng.gen_range(0..3)];
                    let mut doc = String::from("mutation {");
                    for i in 0..n {
                        let _ = write!(
                            doc,
                            " m{i}: createTask(input: {{title: {}}}) {{ task {{ id }} }}",
                            Gen::literal(&self.text())
                        );
                    }
                    (doc + "}", json!({}))
                }
            }
        }
    }
}

/// Every error carries a code and none is INTERNAL.
fn check_answer(answer: &Value) -> Result<(), String> {
    let answers: Vec<&Value> = match answer {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    for answer in answers {
        for error in answer["errors"].as_array().into_iter().flatten() {
            match error["extensions"]["code"].as_str() {
                None => return Err(format!("an error without a code: {error}")),
                Some("INTERNAL") => return Err(format!("an INTERNAL error: {error}")),
                Some(_) => {}
            }
        }
    }
    Ok(())
}

#[tokio::test]
async fn random_hostile_documents_never_get_a_5xx_an_internal_error_or_a_dropped_connection() {
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    let seed: u64 = std::env::var("MYCRM_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    let mut gen = Gen {
        rng: StdRng::seed_from_u64(seed),
    };
    let limit = app.app.config.http.body_limit_bytes;
    for n in 0..REQUESTS {
        let (query, variables) = gen.request();
        let auth = gen.rng.gen_bool(0.5).then_some(token.as_str());
        let body = json!({ "query": query, "variables": variables }).to_string();
        let get = variables.as_object().is_some_and(|v| v.is_empty())
            && query.len() < 8_000
            && !query.starts_with("mutation")
            && gen.rng.gen_bool(0.3);
        let mut request = if get {
            app.client
                .get(app.url("/graphql"))
                .query(&[("query", query.as_str())])
        } else {
            app.client
                .post(app.url("/graphql"))
                .header("content-type", "application/json")
                .body(body.clone())
        };
        if let Some(token) = auth {
            request = request.bearer_auth(token);
        }
        let shown: String = body.chars().take(300).collect();
        let response = request.send().await.unwrap_or_else(|e| {
            panic!("seed {seed}, request {n}: the connection failed ({e}): {shown}")
        });
        let status = response.status().as_u16();
        assert!(
            status < 500,
            "seed {seed}, request {n}: status {status}: {shown}"
        );
        let text = response.text().await.unwrap_or_else(|e| {
            panic!("seed {seed}, request {n}: the answer was cut ({e}): {shown}")
        });
        if body.len() > limit {
            assert_eq!(status, 413, "seed {seed}, request {n}");
            continue;
        }
        let answer: Value = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("seed {seed}, request {n}: not JSON: {text:.300}"));
        if let Err(problem) = check_answer(&answer) {
            panic!("seed {seed}, request {n}: {problem}: {shown}");
        }
    }
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200, "seed {seed}");
}
