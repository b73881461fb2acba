//! The saved examples in `playground/examples/` are valid against the live schema.
//!
//! Every `.graphql` file there (found by listing the directory, so a new file is covered
//! without touching this test) is split into its operations, and each operation is sent to a
//! test server the way GraphiQL sends it: the whole document, the `operationName`, and the
//! JSON of the file's `# variables: {...}` line (the convention playground/README.md
//! describes), with an admin's token. No answer may carry an error coded
//! GRAPHQL_PARSE_FAILED or GRAPHQL_VALIDATION_FAILED (nor INTERNAL), nor a value the schema
//! itself refuses (coded BAD_USER_INPUT, see `refused_by_schema`). Other errors (NOT_FOUND
//! for an ID that does not exist, a CONFLICT for running a create twice, a login with the
//! placeholder password) are the examples working as documented, and are allowed.
//!
//! The server validates the whole document whichever operation is named, as it does for
//! GraphiQL, so one invalid operation is reported under every operation of its file.

use std::path::{Path, PathBuf};

use async_graphql::parser::parse_query;
use async_graphql::parser::types::OperationType;
use serde_json::{json, Value};

use crate::harness::*;

/// The comment line holding the JSON for GraphiQL's Variables tab (at most one per file; its
/// values serve every operation of the file, as the Variables tab does).
const VARIABLES_LINE: &str = "# variables:";

/// The codes of errors that mean the example is broken: the document does not parse or
/// validate, or running it makes the server fail.
const BROKEN: [&str; 3] = [
    "GRAPHQL_PARSE_FAILED",
    "GRAPHQL_VALIDATION_FAILED",
    "INTERNAL",
];

/// What async-graphql answers a subscription sent over HTTP. It gets there only after the
/// document has parsed and validated against the schema (variables included), so this answer
/// and no other error shows the subscription is valid. (Over the WebSocket a valid
/// subscription answers nothing until an event happens, so only a timeout could tell it from
/// a slow refusal.) The server codes this answer GRAPHQL_VALIDATION_FAILED, which is why
/// subscriptions are checked by the message.
const SUBSCRIPTION_OVER_HTTP: &str = "Subscriptions are not supported on this transport.";

/// Whether the schema itself refused a value of the example (an unknown enumeration value, a
/// date that does not parse): such errors are coded BAD_USER_INPUT like any bad input, but
/// in a saved example they mean the example is wrong.
fn refused_by_schema(error: &Value) -> bool {
    let message = error["message"].as_str().unwrap_or_default();
    message.starts_with("Invalid value for argument") || message.starts_with("Failed to parse")
}

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("playground/examples")
}

/// Every `.graphql` file of playground/examples, by name.
fn example_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(examples_dir())
        .expect("listing playground/examples")
        .map(|entry| entry.expect("listing playground/examples").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "graphql"))
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no .graphql files in playground/examples"
    );
    files
}

fn file_name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

struct Operation {
    name: String,
    kind: OperationType,
    /// Where it starts in the file (1-based), for messages.
    line: usize,
}

struct Example {
    file: String,
    text: String,
    variables: Value,
    /// In the order they appear in the file.
    operations: Vec<Operation>,
}

/// Reads one example file: its variables and its operations. A file that breaks the
/// conventions (no parse, an unnamed operation, a variable without a value, a value for no
/// variable, a malformed `# variables:` line) is an `Err` naming the problem.
fn load(path: &Path) -> Result<Example, String> {
    let file = file_name(path);
    let text = std::fs::read_to_string(path).map_err(|e| format!("{file}: {e}"))?;

    let lines: Vec<&str> = text
        .lines()
        .filter_map(|line| line.trim_start().strip_prefix(VARIABLES_LINE))
        .collect();
    let variables = match lines.as_slice() {
        [] => json!({}),
        [line] => match serde_json::from_str::<Value>(line) {
            Ok(object @ Value::Object(_)) => object,
            _ => {
                return Err(format!(
                    "{file}: `{VARIABLES_LINE}` must be followed by one JSON object on the same line, not {:?}",
                    line.trim()
                ))
            }
        },
        _ => return Err(format!("{file}: more than one `{VARIABLES_LINE}` line")),
    };

    let document = parse_query(&text).map_err(|e| format!("{file}: does not parse: {e}"))?;
    let mut operations = Vec::new();
    let mut declared = Vec::new();
    for (name, operation) in document.operations.iter() {
        let line = operation.pos.line;
        let Some(name) = name else {
            return Err(format!(
                "{file}:{line}: an operation without a name (name it: GraphiQL lists operations by name)"
            ));
        };
        for definition in &operation.node.variable_definitions {
            let variable = definition.node.name.node.to_string();
            // Required: non-null and without a default.
            if definition.node.default_value().is_none() && variables.get(&variable).is_none() {
                return Err(format!(
                    "{file}:{line}: {name} needs ${variable}, which the `{VARIABLES_LINE}` line does not give"
                ));
            }
            declared.push(variable);
        }
        operations.push(Operation {
            name: name.to_string(),
            kind: operation.node.ty,
            line,
        });
    }
    operations.sort_by_key(|operation| operation.line);
    for key in variables.as_object().unwrap().keys() {
        if !declared.contains(key) {
            return Err(format!(
                "{file}: the `{VARIABLES_LINE}` line gives `{key}`, which no operation declares"
            ));
        }
    }
    Ok(Example {
        file,
        text,
        variables,
        operations,
    })
}

/// The first record of each kind, so that the examples' ID "1" exists, as it does on a fresh
/// database once the create examples have run. None of them matches the examples' bulk
/// deletes.
async fn seed(app: &TestApp, token: &str) {
    let records = [
        (
            "createCompany",
            "CompanyInput",
            "company",
            json!({ "name": "Globex", "domain": "globex.example", "industry": "Logistics", "employeeCount": 1200 }),
        ),
        (
            "createContact",
            "ContactInput",
            "contact",
            json!({ "firstName": "Lena", "lastName": "Park", "email": "lena.park@globex.example", "companyId": "1", "contactType": "CUSTOMER" }),
        ),
        (
            "createLead",
            "LeadInput",
            "lead",
            json!({ "firstName": "Omar", "lastName": "Haddad", "email": "omar.haddad@initech.example", "companyName": "Initech", "estimatedValue": "8000.00", "priority": "HIGH" }),
        ),
        (
            "createOpportunity",
            "OpportunityInput",
            "opportunity",
            json!({ "name": "Globex: fleet renewal", "companyId": "1", "contactId": "1", "amount": "42000.00", "currency": "EUR", "expectedCloseDate": "2027-02-15" }),
        ),
        (
            "createTask",
            "TaskInput",
            "task",
            json!({ "title": "Call Omar about the pilot", "taskType": "CALL", "leadId": "1", "dueAt": "2027-01-11T10:00:00Z" }),
        ),
    ];
    for (mutation, input_type, field, input) in records {
        let query = format!(
            "mutation($i: {input_type}!) {{ {mutation}(input: $i) {{ {field} {{ id }} }} }}"
        );
        let answer = app.gql(Some(token), &query, json!({ "i": input })).await;
        assert_eq!(
            answer["data"][mutation][field]["id"], "1",
            "seeding with {mutation} (the examples expect ID 1): {answer}"
        );
    }
}

/// Sends one operation of an example as GraphiQL does.
async fn send(app: &TestApp, token: &str, example: &Example, operation: &Operation) -> Value {
    let body = json!({
        "query": example.text,
        "operationName": operation.name,
        "variables": example.variables,
    });
    let response = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("POST /graphql");
    response.json().await.expect("a JSON answer")
}

fn code(error: &Value) -> &str {
    error["extensions"]["code"].as_str().unwrap_or("no code")
}

/// The errors of an answer, one a line, with where they are in the file.
fn describe(errors: &[Value]) -> String {
    errors
        .iter()
        .map(|error| {
            let at = &error["locations"][0];
            format!(
                "\n    {} at {}:{}: {}",
                code(error),
                at["line"],
                at["column"],
                error["message"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

#[tokio::test]
async fn every_example_operation_is_valid_against_the_schema() {
    let mut problems = Vec::new();
    let examples: Vec<Example> = example_files()
        .iter()
        .filter_map(|path| load(path).map_err(|e| problems.push(e)).ok())
        .collect();

    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    seed(&app, &token).await;

    let mut sent = 0;
    for example in &examples {
        for operation in &example.operations {
            let answer = send(&app, &token, example, operation).await;
            sent += 1;
            let at = format!("{}:{} {}", example.file, operation.line, operation.name);
            let errors = answer["errors"].as_array().cloned().unwrap_or_default();
            // For the log (`--nocapture`): what each example answers on this database.
            let outcome: Vec<&str> = errors.iter().map(code).collect();
            eprintln!(
                "{at}: {}",
                if outcome.is_empty() {
                    "ok".to_string()
                } else {
                    outcome.join(", ")
                }
            );
            if operation.kind == OperationType::Subscription {
                let refused_transport_only =
                    errors.len() == 1 && errors[0]["message"] == SUBSCRIPTION_OVER_HTTP;
                if !refused_transport_only {
                    problems.push(format!("{at} (subscription):{}", describe(&errors)));
                }
                continue;
            }
            if errors
                .iter()
                .any(|error| BROKEN.contains(&code(error)) || refused_by_schema(error))
            {
                problems.push(format!("{at}:{}", describe(&errors)));
            } else if answer.get("data").is_none() && errors.is_empty() {
                problems.push(format!("{at}: neither data nor errors: {answer}"));
            }
        }
    }
    assert!(sent > 0, "no operations in playground/examples");
    assert!(
        problems.is_empty(),
        "playground examples that are not valid against the schema:\n{}",
        problems.join("\n")
    );
}

/// playground/README.md lists every example file (as `name.graphql`), so a new one is found.
#[test]
fn every_example_is_listed_in_the_playground_readme() {
    let readme_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("playground/README.md");
    let readme = std::fs::read_to_string(readme_path).expect("reading playground/README.md");
    let missing: Vec<String> = example_files()
        .iter()
        .map(|path| file_name(path))
        .filter(|name| !readme.contains(&format!("`{name}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "playground/README.md does not list these examples: {missing:?}"
    );
}
