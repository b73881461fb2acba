//! Naming the input field behind errors async-graphql raises itself, so that every bad input
//! answers BAD_USER_INPUT with a `field`, as our own checks do, over HTTP and WebSocket alike.
//!
//! Two kinds of error need this:
//! - validation refusing an argument value (an unknown enumeration value, a missing required
//!   input field): the message carries the path (`Invalid value for argument "input.stage",
//!   ...`), which only needs reading;
//! - a scalar refusing its value while the arguments are read (`Failed to parse "DateTime":
//!   ...`, raised for `dueAt: "tomorrow"`): the message names only the scalar and the input
//!   object, so the field is found by walking the field's arguments with their declared types
//!   (read once from the schema's SDL) to the first value of that scalar that does not parse.
//!
//! A field is named as our own checks name it (see [`field_path`]): `expectedCloseDate`,
//! `doNotDisturb.start`, `dueAt` for a condition on it in a filter, `first`.

use std::collections::HashMap;

use async_graphql::parser::types::{
    BaseType, DocumentOperations, ExecutableDocument, Selection, SelectionSet, Type, TypeKind,
    TypeSystemDefinition,
};
use async_graphql::{InputType, Name, ServerError, Value as ConstValue, Variables};
use chrono::{DateTime, Utc};

use super::filters::{Date, Decimal};

/// The declared types of every argument and input-object field of a schema.
pub struct InputTypes {
    /// Field arguments: (object type, field) → argument → type.
    arguments: HashMap<(String, String), HashMap<String, Type>>,
    /// Input objects: type → field → type.
    inputs: HashMap<String, HashMap<String, Type>>,
    /// The names of the query, mutation and subscription types.
    roots: [String; 3],
}

impl Default for InputTypes {
    fn default() -> Self {
        InputTypes {
            arguments: HashMap::new(),
            inputs: HashMap::new(),
            roots: ["Query", "Mutation", "Subscription"].map(String::from),
        }
    }
}

/// The query, mutation and subscription type names a `schema { ... }` definition gives, over
/// the defaults in `roots` (for the SDL readers here and in `screen::FieldTypes`).
pub(super) fn read_roots(
    schema: async_graphql::parser::types::SchemaDefinition,
    roots: &mut [String; 3],
) {
    let named = [schema.query, schema.mutation, schema.subscription];
    for (root, name) in roots.iter_mut().zip(named) {
        if let Some(name) = name {
            *root = name.node.to_string();
        }
    }
}

impl InputTypes {
    /// Reads the types from the schema's SDL (once, when the server starts).
    pub fn of_sdl(sdl: &str) -> InputTypes {
        let mut types = InputTypes::default();
        let Ok(document) = async_graphql::parser::parse_schema(sdl) else {
            return types;
        };
        for definition in document.definitions {
            let definition = match definition {
                TypeSystemDefinition::Type(definition) => definition,
                TypeSystemDefinition::Schema(schema) => {
                    read_roots(schema.node, &mut types.roots);
                    continue;
                }
                TypeSystemDefinition::Directive(_) => continue,
            };
            let definition = definition.node;
            let owner = definition.name.node.to_string();
            match definition.kind {
                TypeKind::Object(object) => {
                    for field in object.fields {
                        let field = field.node;
                        let arguments = field
                            .arguments
                            .into_iter()
                            .map(|a| (a.node.name.node.to_string(), a.node.ty.node))
                            .collect();
                        types
                            .arguments
                            .insert((owner.clone(), field.name.node.to_string()), arguments);
                    }
                }
                TypeKind::InputObject(input) => {
                    let fields = input
                        .fields
                        .into_iter()
                        .map(|f| (f.node.name.node.to_string(), f.node.ty.node))
                        .collect();
                    types.inputs.insert(owner, fields);
                }
                _ => {}
            }
        }
        types
    }

    /// The input field of an error raised while executing `document`, if it is a scalar's
    /// refusal of a value (`Failed to parse "Date": ...`) in the arguments of a top-level field.
    pub fn field_of_execution_error(
        &self,
        error: &ServerError,
        document: &ExecutableDocument,
        operation_name: Option<&str>,
        variables: &Variables,
    ) -> Option<String> {
        let scalar = quoted_after(&error.message, "Failed to parse ")?;
        let key = match error.path.first()? {
            async_graphql::PathSegment::Field(key) => key.as_str(),
            async_graphql::PathSegment::Index(_) => return None,
        };
        let (kind, set, definitions) = operation(document, operation_name)?;
        let root = &self.roots[kind];
        let field = top_level_field(document, set, key)?;
        let declared = self
            .arguments
            .get(&(root.clone(), field.name.node.to_string()))?;
        for (name, value) in &field.arguments {
            let ty = declared.get(name.node.as_str())?;
            let value = value
                .node
                .clone()
                .into_const_with(|var| {
                    variables
                        .get(&var)
                        .cloned()
                        .or_else(|| {
                            definitions
                                .iter()
                                .find(|d| d.node.name.node == var)
                                .and_then(|d| d.node.default_value.as_ref())
                                .map(|v| v.node.clone())
                        })
                        .ok_or(())
                })
                .ok()?;
            let mut path = vec![name.node.to_string()];
            if self.find_refused(ty, &value, scalar, &mut path) {
                return Some(field_path(&path));
            }
        }
        None
    }

    /// Whether a value of `scalar` under `value` (of type `ty`) does not parse; `path` then
    /// leads to it.
    fn find_refused(
        &self,
        ty: &Type,
        value: &ConstValue,
        scalar: &str,
        path: &mut Vec<String>,
    ) -> bool {
        match (&ty.base, value) {
            (_, ConstValue::Null) => false,
            (BaseType::List(inner), ConstValue::List(items)) => {
                items.iter().enumerate().any(|(i, item)| {
                    path.push(i.to_string());
                    let found = self.find_refused(inner.as_ref(), item, scalar, path);
                    if !found {
                        path.pop();
                    }
                    found
                })
            }
            // A single value where a list is expected is read as a list of one.
            (BaseType::List(inner), single) => {
                self.find_refused(inner.as_ref(), single, scalar, path)
            }
            (BaseType::Named(name), value) if name.as_str() == scalar => refuses(scalar, value),
            (BaseType::Named(name), ConstValue::Object(fields)) => {
                let Some(declared) = self.inputs.get(name.as_str()) else {
                    return false;
                };
                fields.iter().any(|(field, value)| {
                    let Some(ty) = declared.get(field.as_str()) else {
                        return false;
                    };
                    path.push(field.to_string());
                    let found = self.find_refused(ty, value, scalar, path);
                    if !found {
                        path.pop();
                    }
                    found
                })
            }
            _ => false,
        }
    }
}

/// The field of a validation error refusing an argument value
/// (`Invalid value for argument "input.stage", ...` → `stage`).
pub fn field_of_validation_error(message: &str) -> Option<String> {
    let path = quoted_after(message, "Invalid value for argument ")?;
    Some(field_path(
        &path.split('.').map(str::to_string).collect::<Vec<_>>(),
    ))
}

/// The field as our own checks name it: inside an `input` or `patch`, the path below it
/// (`stage`, `doNotDisturb.start`); inside a list `filter`, the record field the condition is
/// on, past `and`/`or`/`not` and list positions (`filter.and.1.dueAt.lt` → `dueAt`, as a
/// too-long `in` list on `dueAt` is named); any other argument, its own path (`first`).
fn field_path(path: &[String]) -> String {
    match path {
        [first, rest @ ..] if (first == "input" || first == "patch") && !rest.is_empty() => {
            rest.join(".")
        }
        [first, rest @ ..] if first == "filter" => rest
            .iter()
            .find(|s| !matches!(s.as_str(), "and" | "or" | "not") && s.parse::<usize>().is_err())
            .unwrap_or(first)
            .clone(),
        all => all.join("."),
    }
}

/// Whether the scalar named `scalar` refuses `value` (only the scalars whose parse can fail on
/// a value of the right JSON kind are known; others never count as refused).
fn refuses(scalar: &str, value: &ConstValue) -> bool {
    let value = Some(value.clone());
    match scalar {
        "DateTime" => <DateTime<Utc> as InputType>::parse(value).is_err(),
        "Date" => <Date as InputType>::parse(value).is_err(),
        "Decimal" => <Decimal as InputType>::parse(value).is_err(),
        "Int" => <i32 as InputType>::parse(value).is_err(),
        "Float" => <f64 as InputType>::parse(value).is_err(),
        _ => false,
    }
}

/// The text between the first pair of double quotes after `prefix` at the start of `message`.
fn quoted_after<'m>(message: &'m str, prefix: &str) -> Option<&'m str> {
    let rest = message.strip_prefix(prefix)?.strip_prefix('"')?;
    rest.split('"').next()
}

type VariableDefinitions =
    [async_graphql::Positioned<async_graphql::parser::types::VariableDefinition>];

/// The kind (0 query, 1 mutation, 2 subscription), selection set and variable definitions of
/// the operation that ran.
fn operation<'d>(
    document: &'d ExecutableDocument,
    name: Option<&str>,
) -> Option<(usize, &'d SelectionSet, &'d VariableDefinitions)> {
    let operation = match (&document.operations, name) {
        (DocumentOperations::Single(op), _) => op,
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(&Name::new(name))?,
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next()?,
        _ => return None,
    };
    use async_graphql::parser::types::OperationType;
    let root = match operation.node.ty {
        OperationType::Query => 0,
        OperationType::Mutation => 1,
        OperationType::Subscription => 2,
    };
    Some((
        root,
        &operation.node.selection_set.node,
        &operation.node.variable_definitions,
    ))
}

/// The top-level field answering to `key` (its alias or name), looking into fragments.
fn top_level_field<'d>(
    document: &'d ExecutableDocument,
    set: &'d SelectionSet,
    key: &str,
) -> Option<&'d async_graphql::parser::types::Field> {
    set.items
        .iter()
        .find_map(|selection| match &selection.node {
            Selection::Field(field) => {
                (field.node.response_key().node == key).then_some(&field.node)
            }
            Selection::InlineFragment(fragment) => {
                top_level_field(document, &fragment.node.selection_set.node, key)
            }
            Selection::FragmentSpread(spread) => {
                let fragment = document.fragments.get(&spread.node.fragment_name.node)?;
                top_level_field(document, &fragment.node.selection_set.node, key)
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SDL: &str = r#"
        scalar Date
        scalar DateTime
        input TaskInput { title: String, dueAt: DateTime, tags: [String!] }
        input DateFilter { lt: Date, in: [Date!] }
        input TaskFilter { due: DateFilter, and: [TaskFilter!] }
        type Task { id: ID! }
        type QueryRoot { tasks(filter: TaskFilter, first: Int): [Task!]! }
        type MutationRoot { createTask(input: TaskInput!): Task }
        schema { query: QueryRoot mutation: MutationRoot }
    "#;

    /// The field found for a `Failed to parse "<scalar>"` error of top-level field `key`.
    fn field_of(
        query: &str,
        variables: serde_json::Value,
        key: &str,
        scalar: &str,
    ) -> Option<String> {
        let types = InputTypes::of_sdl(SDL);
        let document = async_graphql::parser::parse_query(query).unwrap();
        let mut error = ServerError::new(format!("Failed to parse \"{scalar}\": bad"), None);
        error.path = vec![async_graphql::PathSegment::Field(key.to_string())];
        types.field_of_execution_error(&error, &document, None, &Variables::from_json(variables))
    }

    #[test]
    fn finds_the_refused_value_in_literals_variables_lists_and_aliases() {
        assert_eq!(
            field_of(
                r#"mutation { createTask(input: {title: "2026-01-01", dueAt: "tomorrow"}) { id } }"#,
                serde_json::json!({}),
                "createTask",
                "DateTime",
            ),
            Some("dueAt".into())
        );
        assert_eq!(
            field_of(
                "mutation($i: TaskInput!) { made: createTask(input: $i) { id } }",
                serde_json::json!({ "i": { "title": "x", "dueAt": "2026-13-01T00:00:00Z" } }),
                "made",
                "DateTime",
            ),
            Some("dueAt".into())
        );
        assert_eq!(
            field_of(
                r#"query($d: Date) { tasks(filter: {and: [{due: {lt: "2026-01-01"}}, {due: {in: ["2026-01-02", $d]}}]}) { id } }"#,
                serde_json::json!({ "d": "02/01/2026" }),
                "tasks",
                "Date",
            ),
            Some("due".into())
        );
        // Nothing of that scalar refused: no field rather than a wrong one.
        assert_eq!(
            field_of(
                r#"mutation { createTask(input: {dueAt: "2026-01-01T00:00:00Z"}) { id } }"#,
                serde_json::json!({}),
                "createTask",
                "DateTime",
            ),
            None
        );
    }

    #[test]
    fn reads_the_path_of_refused_arguments() {
        assert_eq!(
            field_of_validation_error(
                "Invalid value for argument \"input.stage\", enumeration type \"Stage\" does not contain the value \"WON\""
            ),
            Some("stage".into())
        );
        assert_eq!(
            field_of_validation_error(
                "Invalid value for argument \"first\", expected type \"Int\""
            ),
            Some("first".into())
        );
        assert_eq!(
            field_of_validation_error("Unknown field \"x\" on type \"Query\"."),
            None
        );
    }
}
