//! schema.graphql is the exported SDL, and the schema documents itself.

use serde_json::Value;

#[test]
fn schema_graphql_is_up_to_date() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema.graphql");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    let current = mycrm::graphql::sdl();
    assert!(
        committed == current,
        "schema.graphql is out of date; regenerate it with:\n\n    cargo run -- export-schema > schema.graphql\n"
    );
}

#[tokio::test]
async fn every_type_and_field_has_a_description() {
    let schema = mycrm::graphql::build_schema(
        &mycrm::config::GraphqlLimits::default(),
        mycrm::graphql::Transport::Http,
    );
    let query = "{ __schema { types { name kind description
        fields { name description args { name description } }
        inputFields { name description }
        enumValues { name description } } } }";
    let response = schema.execute(query).await;
    assert!(response.errors.is_empty(), "{:?}", response.errors);
    let data: Value = response.data.into_json().unwrap();
    let mut missing = Vec::new();
    let blank = |v: &Value| v.as_str().is_none_or(|s| s.trim().is_empty());
    for ty in data["__schema"]["types"].as_array().unwrap() {
        let name = ty["name"].as_str().unwrap();
        // Introspection types and the scalars the GraphQL spec defines.
        if name.starts_with("__") || ["ID", "String", "Int", "Float", "Boolean"].contains(&name) {
            continue;
        }
        if blank(&ty["description"]) {
            missing.push(name.to_string());
        }
        for field in ty["fields"].as_array().into_iter().flatten() {
            if blank(&field["description"]) {
                missing.push(format!("{name}.{}", field["name"]));
            }
            for arg in field["args"].as_array().into_iter().flatten() {
                if blank(&arg["description"]) {
                    missing.push(format!("{name}.{}({})", field["name"], arg["name"]));
                }
            }
        }
        for list in ["inputFields", "enumValues"] {
            for item in ty[list].as_array().into_iter().flatten() {
                if blank(&item["description"]) {
                    missing.push(format!("{name}.{}", item["name"]));
                }
            }
        }
    }
    assert!(missing.is_empty(), "undocumented: {missing:#?}");
}
