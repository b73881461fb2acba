//! Screening a GraphQL request before async-graphql validates or executes it, so that no
//! request, authenticated or not, can overflow a stack, keep a core busy or write without
//! bound. Every check here runs in time linear in the request's size and stops at the first
//! limit crossed:
//!
//! 1. [`screen_text`], on the document text before it is parsed: bracket nesting. Inside an
//!    argument list the bound is [`MAX_INPUT_NESTING`] (answered BAD_USER_INPUT naming the
//!    argument); elsewhere [`MAX_DOCUMENT_NESTING`] (QUERY_TOO_DEEP). Parsing, validating and
//!    reading arguments all recurse over the document, so nothing deeper is ever parsed. The
//!    aliases written are counted here too: a document of a thousand aliased fields is
//!    refused before the parser spends tens of milliseconds on it.
//! 2. [`screen_document`], on the parsed document: each fragment's cost is computed once and
//!    reused wherever it is spread (async-graphql's own validation expands every spread, which
//!    is exponential in a chain of fragments that each spread the next twice), giving per
//!    operation the depth, the selections after expansion, the aliases, the list and
//!    statistics fields and the root mutation fields, each with its limit. Fragment cycles are
//!    refused here too, so nothing below walks one.
//! 3. The input values, argument literals and variables alike: nesting, their number
//!    ([`MAX_INPUT_VALUES`]: reading 20,000 filter conditions took async-graphql a third of a
//!    second before any resolver could refuse them) and the text rule (no NUL character:
//!    PostgreSQL cannot store one in text), answered BAD_USER_INPUT naming the input field.
//!    Variables arrive as JSON, whose parser already stops at 128 levels.
//!
//! The walks over values use an explicit stack; the walk over selection sets recurses at most
//! [`MAX_DOCUMENT_NESTING`] levels (the text screen guarantees it).

use std::collections::{HashMap, HashSet};

use async_graphql::parser::types::{
    BaseType, DocumentOperations, ExecutableDocument, OperationType, Selection, SelectionSet, Type,
    TypeKind, TypeSystemDefinition,
};
use async_graphql::{ServerError, Value as ConstValue, Variables};
use async_graphql_value::Value;

use super::errors::{server_error, GRAPHQL_VALIDATION_FAILED, QUERY_TOO_COMPLEX, QUERY_TOO_DEEP};
use crate::config::GraphqlLimits;
use crate::error::ErrorCode;

/// Deepest bracket nesting of a document outside argument lists (selection sets): the
/// parser's own bound on selection sets is 64 too; the depth limit proper is
/// `GraphqlLimits::max_depth`, checked on the parsed document.
pub const MAX_DOCUMENT_NESTING: usize = 64;
/// Deepest nesting of an input value (objects and lists inside one argument or variable).
/// The filters' own `and`/`or`/`not` bound (`crm::query::MAX_FILTER_NESTING`) is tighter.
pub const MAX_INPUT_NESTING: usize = 32;
/// Most values (each scalar, list and object counts one) in all the inputs of one operation,
/// literals and variables together. The largest legitimate inputs are an `in` list (1,000
/// values) or a filter at its bound (200 conditions, a few values each).
pub const MAX_INPUT_VALUES: usize = 5_000;

/// A refusal of the input: BAD_USER_INPUT naming the field.
fn bad_input(field: &str, message: impl Into<String>) -> ServerError {
    let mut error = server_error(message, ErrorCode::BadUserInput.as_str());
    if let Some(ext) = error.extensions.as_mut() {
        ext.set("field", field);
    }
    error
}

/// A limit crossed: its code, and the configuration that sets it in `extensions.limit`.
fn over_limit(code: &str, limit: &str, message: String) -> ServerError {
    let mut error = server_error(message, code);
    if let Some(ext) = error.extensions.as_mut() {
        ext.set("limit", limit);
    }
    error
}

/// Checks the bracket nesting of a document's text and the aliases it writes, before it is
/// parsed. Strings, block strings and comments are skipped; one pass, no allocation beyond the
/// bracket stack (which never grows past the limit). An alias is a `name:` directly in a
/// selection set (a `:` inside an argument or variable list is something else); the count
/// is of aliases as written, a lower bound of the count after fragments are expanded, which
/// [`screen_document`] checks exactly.
pub fn screen_text(query: &str, limits: &GraphqlLimits) -> Result<(), ServerError> {
    let bytes = query.as_bytes();
    // Open brackets, with, for `(`, the name of the argument being written inside it.
    let mut stack: Vec<u8> = Vec::new();
    // Depth of the innermost `(` in `stack` (0: none), and the argument name seen last in it.
    let mut argument_list_at: Vec<usize> = Vec::new();
    let mut argument: &str = "";
    let mut last_name: &str = "";
    let mut aliases = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
                continue;
            }
            b'"' => {
                i = skip_string(bytes, i);
                continue;
            }
            b'{' | b'[' | b'(' => {
                stack.push(b);
                if b == b'(' {
                    argument_list_at.push(stack.len());
                    argument = "";
                }
                match argument_list_at.last() {
                    Some(&at) if stack.len() - at > MAX_INPUT_NESTING => {
                        let field = if argument.is_empty() {
                            "arguments"
                        } else {
                            argument
                        };
                        return Err(bad_input(
                            field,
                            format!(
                                "input is nested too deeply: at most {MAX_INPUT_NESTING} levels \
                                 of objects and lists"
                            ),
                        ));
                    }
                    _ if stack.len() > MAX_DOCUMENT_NESTING => {
                        return Err(over_limit(
                            QUERY_TOO_DEEP,
                            "maxDocumentNesting",
                            format!(
                                "the document is nested too deeply: at most \
                                 {MAX_DOCUMENT_NESTING} levels of brackets"
                            ),
                        ));
                    }
                    _ => {}
                }
            }
            b'}' | b']' | b')' => {
                if b == b')' && argument_list_at.last() == Some(&stack.len()) {
                    argument_list_at.pop();
                }
                stack.pop();
            }
            b':' if argument_list_at.last() == Some(&stack.len()) => argument = last_name,
            b':' if argument_list_at.is_empty() && stack.last() == Some(&b'{') => {
                aliases += 1;
                if aliases > limits.max_aliases {
                    return Err(too_many_aliases(limits));
                }
            }
            b'_' | b'a'..=b'z' | b'A'..=b'Z' => {
                let start = i;
                while i < bytes.len() && (bytes[i] == b'_' || bytes[i].is_ascii_alphanumeric()) {
                    i += 1;
                }
                last_name = &query[start..i];
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// The index just past the string (or block string) starting at `start`.
fn skip_string(bytes: &[u8], start: usize) -> usize {
    if bytes[start..].starts_with(b"\"\"\"") {
        let mut i = start + 3;
        while i < bytes.len() {
            if bytes[i..].starts_with(b"\\\"\"\"") {
                i += 4;
            } else if bytes[i..].starts_with(b"\"\"\"") {
                return i + 3;
            } else {
                i += 1;
            }
        }
        return i;
    }
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            // An unterminated string: the parser reports it.
            b'\n' | b'\r' => return i,
            _ => i += 1,
        }
    }
    i
}

/// Counts the values of a JSON request body (one operation, or each of a batch) before it is
/// deserialized, and refuses one whose operation holds more than [`MAX_INPUT_VALUES`]: turning
/// 20,000 filter conditions into async-graphql's values took 90 ms, a byte scan of the same
/// 650 KB takes well under one. A value is counted at each `{`, `[` and `,` outside strings
/// (an upper bound, tight enough: a few more than the variables' values).
pub fn screen_json_body(bytes: &[u8]) -> Result<(), ServerError> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut counted = 0usize;
    // A batch is a list of operations: each is counted on its own.
    let batch = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    for &b in bytes {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                counted += 1;
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            b',' if batch && depth == 1 => counted = 0,
            b',' => counted += 1,
            _ => {}
        }
        // A few values are the request's own (`query`, `variables`, `operationName`).
        if counted > MAX_INPUT_VALUES + 8 {
            return Err(bad_input(
                "variables",
                format!("the inputs of one operation may hold at most {MAX_INPUT_VALUES} values"),
            ));
        }
    }
    Ok(())
}

/// The output side of a schema, read once from its SDL: each field's type, and which fields
/// read lists or statistics from the database (see [`FieldTypes::reads`]).
#[derive(Default)]
pub struct FieldTypes {
    /// (type, field) → (the field's named type, whether it counts as a read).
    fields: HashMap<(String, String), (String, bool)>,
    /// The names of the query, mutation and subscription types.
    roots: [String; 3],
}

impl FieldTypes {
    /// Reads the types from the schema's SDL. A field counts as a read when it is a field of
    /// the query type (each reads the database), returns a connection, or returns a list of
    /// records (objects with an `id`).
    pub fn of_sdl(sdl: &str) -> FieldTypes {
        let mut types = FieldTypes {
            fields: HashMap::new(),
            roots: ["Query", "Mutation", "Subscription"].map(String::from),
        };
        let Ok(document) = async_graphql::parser::parse_schema(sdl) else {
            return types;
        };
        let mut declared: Vec<(String, Vec<(String, Type)>)> = Vec::new();
        let mut records: HashSet<String> = HashSet::new();
        for definition in document.definitions {
            match definition {
                TypeSystemDefinition::Schema(schema) => {
                    super::input_errors::read_roots(schema.node, &mut types.roots)
                }
                TypeSystemDefinition::Type(definition) => {
                    let definition = definition.node;
                    let fields = match definition.kind {
                        TypeKind::Object(object) => object.fields,
                        TypeKind::Interface(interface) => interface.fields,
                        _ => continue,
                    };
                    let owner = definition.name.node.to_string();
                    let fields: Vec<(String, Type)> = fields
                        .into_iter()
                        .map(|f| (f.node.name.node.to_string(), f.node.ty.node))
                        .collect();
                    if fields.iter().any(|(name, _)| name == "id") {
                        records.insert(owner.clone());
                    }
                    declared.push((owner, fields));
                }
                TypeSystemDefinition::Directive(_) => {}
            }
        }
        for (owner, fields) in declared {
            let is_query = owner == types.roots[0];
            for (name, ty) in fields {
                let (named, list) = named_type(&ty);
                let reads =
                    is_query || named.ends_with("Connection") || (list && records.contains(&named));
                types.fields.insert((owner.clone(), name), (named, reads));
            }
        }
        types
    }

    fn field(&self, owner: Option<&str>, name: &str) -> Option<&(String, bool)> {
        self.fields.get(&(owner?.to_string(), name.to_string()))
    }
}

/// The named type under any list and non-null wrappers, and whether there was a list.
fn named_type(ty: &Type) -> (String, bool) {
    let mut base = &ty.base;
    let mut list = false;
    loop {
        match base {
            BaseType::Named(name) => return (name.to_string(), list),
            BaseType::List(inner) => {
                list = true;
                base = &inner.base;
            }
        }
    }
}

/// What one selection set costs once its fragments are expanded. Counts saturate, so a
/// fragment chain that doubles at each step cannot overflow them.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Cost {
    /// Deepest field nesting, introspection not counted.
    pub depth: usize,
    /// Fields selected, after expansion.
    pub selections: u64,
    /// Fields with an alias, after expansion.
    pub aliases: u64,
    /// Fields that read lists or statistics ([`FieldTypes::of_sdl`]).
    pub reads: u64,
    /// Fields at the top of the set.
    pub top: u64,
}

impl Cost {
    /// `inner` spread (or inlined) into this set at the same level.
    fn spread(&mut self, inner: &Cost) {
        self.depth = self.depth.max(inner.depth);
        self.selections = self.selections.saturating_add(inner.selections);
        self.aliases = self.aliases.saturating_add(inner.aliases);
        self.reads = self.reads.saturating_add(inner.reads);
        self.top = self.top.saturating_add(inner.top);
    }
}

/// Checks a parsed document against the limits, and the input values of its arguments and
/// of the variables. Called on every operation, over HTTP and WebSocket.
pub fn screen_document(
    document: &ExecutableDocument,
    variables: &Variables,
    limits: &GraphqlLimits,
    types: &FieldTypes,
) -> Result<(), ServerError> {
    let fragments = fragment_costs(document, types)?;
    for (_, operation) in document.operations.iter() {
        let kind = match operation.node.ty {
            OperationType::Query => 0,
            OperationType::Mutation => 1,
            OperationType::Subscription => 2,
        };
        let root = types.roots[kind].as_str();
        let cost = set_cost(
            &operation.node.selection_set.node,
            Some(root),
            types,
            &fragments,
        );
        check_cost(&cost, kind == 1, limits)?;
    }
    screen_inputs(document, variables)
}

fn too_many_aliases(limits: &GraphqlLimits) -> ServerError {
    over_limit(
        QUERY_TOO_COMPLEX,
        "maxQueryAliases",
        format!(
            "query is too complex: it selects more than {} aliased fields",
            limits.max_aliases
        ),
    )
}

fn check_cost(cost: &Cost, mutation: bool, limits: &GraphqlLimits) -> Result<(), ServerError> {
    if cost.depth > limits.max_depth {
        return Err(over_limit(
            QUERY_TOO_DEEP,
            "maxQueryDepth",
            format!(
                "query is nested too deeply: it exceeds the depth limit of {}",
                limits.max_depth
            ),
        ));
    }
    if cost.aliases > limits.max_aliases as u64 {
        return Err(too_many_aliases(limits));
    }
    let counted = [
        (
            cost.selections,
            limits.max_selections,
            "maxQuerySelections",
            "fields after fragments are expanded",
        ),
        (
            cost.reads,
            limits.max_reads,
            "maxQueryReads",
            "list and statistics fields",
        ),
    ];
    for (count, max, limit, what) in counted {
        if count > max as u64 {
            return Err(over_limit(
                QUERY_TOO_COMPLEX,
                limit,
                format!("query is too complex: it selects more than {max} {what}"),
            ));
        }
    }
    if mutation && cost.top > limits.max_root_mutations as u64 {
        return Err(over_limit(
            QUERY_TOO_COMPLEX,
            "maxRootMutations",
            format!(
                "an operation may hold at most {} mutations; use the bulk mutations for more",
                limits.max_root_mutations
            ),
        ));
    }
    Ok(())
}

/// Every fragment's cost, each computed once, in an order where a fragment comes after the
/// fragments it spreads (found with an explicit stack, so a chain of any length is fine).
/// A cycle is refused here (validation would refuse it too, after walking it).
fn fragment_costs<'a>(
    document: &'a ExecutableDocument,
    types: &FieldTypes,
) -> Result<HashMap<&'a str, Cost>, ServerError> {
    let mut spreads: HashMap<&str, Vec<&str>> = HashMap::new();
    for (name, fragment) in &document.fragments {
        let mut names = Vec::new();
        spreads_of(&fragment.node.selection_set.node, &mut names);
        names.retain(|n| document.fragments.contains_key(*n));
        spreads.insert(name.as_str(), names);
    }
    // 1: being visited (on the stack); 2: done.
    let mut state: HashMap<&str, u8> = HashMap::new();
    let mut order: Vec<&str> = Vec::new();
    for start in spreads.keys() {
        if state.contains_key(start) {
            continue;
        }
        let mut stack: Vec<(&str, usize)> = vec![(start, 0)];
        state.insert(start, 1);
        while let Some((name, next)) = stack.pop() {
            let children = &spreads[name];
            if let Some(&child) = children.get(next) {
                stack.push((name, next + 1));
                match state.get(child) {
                    Some(1) => {
                        return Err(server_error(
                            format!("fragment \"{child}\" spreads itself, directly or not"),
                            GRAPHQL_VALIDATION_FAILED,
                        ))
                    }
                    Some(_) => {}
                    None => {
                        state.insert(child, 1);
                        stack.push((child, 0));
                    }
                }
            } else {
                state.insert(name, 2);
                order.push(name);
            }
        }
    }
    let mut costs: HashMap<&str, Cost> = HashMap::with_capacity(order.len());
    for name in order {
        let fragment = &document.fragments[name].node;
        let owner = fragment.type_condition.node.on.node.as_str();
        let cost = set_cost(&fragment.selection_set.node, Some(owner), types, &costs);
        costs.insert(name, cost);
    }
    Ok(costs)
}

/// The names of the fragments a selection set spreads, inline fragments included.
fn spreads_of<'a>(set: &'a SelectionSet, out: &mut Vec<&'a str>) {
    for selection in &set.items {
        match &selection.node {
            Selection::Field(field) => spreads_of(&field.node.selection_set.node, out),
            Selection::InlineFragment(inline) => spreads_of(&inline.node.selection_set.node, out),
            Selection::FragmentSpread(spread) => out.push(spread.node.fragment_name.node.as_str()),
        }
    }
}

/// The cost of a selection set on type `owner` (`None` when unknown: introspection types or
/// a misspelt field, which validation reports), with the fragments' costs already known.
fn set_cost(
    set: &SelectionSet,
    owner: Option<&str>,
    types: &FieldTypes,
    fragments: &HashMap<&str, Cost>,
) -> Cost {
    let mut cost = Cost::default();
    for selection in &set.items {
        match &selection.node {
            Selection::Field(field) => {
                let field = &field.node;
                let name = field.name.node.as_str();
                let known = types.field(owner, name);
                let child_owner = known.map(|(named, _)| named.as_str());
                let inner = set_cost(&field.selection_set.node, child_owner, types, fragments);
                let this = Cost {
                    // Introspection (`__schema`, `__type`) is as deep as the type system, so
                    // it does not count towards the depth limit.
                    depth: if name.starts_with("__") {
                        0
                    } else {
                        inner.depth + 1
                    },
                    selections: inner.selections.saturating_add(1),
                    aliases: inner
                        .aliases
                        .saturating_add(u64::from(field.alias.is_some())),
                    reads: inner
                        .reads
                        .saturating_add(u64::from(known.is_some_and(|(_, reads)| *reads))),
                    top: 1,
                };
                cost.spread(&this);
            }
            Selection::InlineFragment(inline) => {
                let inline = &inline.node;
                let on = inline
                    .type_condition
                    .as_ref()
                    .map(|c| c.node.on.node.as_str())
                    .or(owner);
                cost.spread(&set_cost(&inline.selection_set.node, on, types, fragments));
            }
            Selection::FragmentSpread(spread) => {
                if let Some(inner) = fragments.get(spread.node.fragment_name.node.as_str()) {
                    cost.spread(inner);
                }
            }
        }
    }
    cost
}

/// The input values of every argument in the document (each written once, however often its
/// fragment is spread) and of every variable: nesting, and no NUL in any text.
fn screen_inputs(document: &ExecutableDocument, variables: &Variables) -> Result<(), ServerError> {
    // Where each variable is used: the argument, and the input fields above the use.
    let mut uses: HashMap<&str, (String, Vec<String>)> = HashMap::new();
    // Values of all the inputs so far, against MAX_INPUT_VALUES.
    let mut counted = 0usize;
    let mut sets: Vec<&SelectionSet> = Vec::new();
    for (_, operation) in document.operations.iter() {
        sets.push(&operation.node.selection_set.node);
    }
    for fragment in document.fragments.values() {
        sets.push(&fragment.node.selection_set.node);
    }
    while let Some(set) = sets.pop() {
        for selection in &set.items {
            match &selection.node {
                Selection::Field(field) => {
                    for (name, value) in &field.node.arguments {
                        screen_literal(name.node.as_str(), &value.node, &mut uses, &mut counted)?;
                    }
                    sets.push(&field.node.selection_set.node);
                }
                Selection::InlineFragment(inline) => sets.push(&inline.node.selection_set.node),
                Selection::FragmentSpread(_) => {}
            }
        }
    }
    for (name, value) in variables.iter() {
        let (argument, above) = match uses.get(name.as_str()) {
            Some((argument, above)) => (argument.as_str(), above.clone()),
            None => (name.as_str(), Vec::new()),
        };
        screen_variable(argument, above, value, &mut counted)?;
    }
    // A variable declared `Int` holds a 32-bit integer (GraphQL's Int); async-graphql refuses
    // a larger one only as a document-level error without the field.
    for (_, operation) in document.operations.iter() {
        for definition in &operation.node.variable_definitions {
            let definition = &definition.node;
            if named_type(&definition.var_type.node).0 != "Int" {
                continue;
            }
            let name = definition.name.node.as_str();
            let Some(value) = variables.get(&definition.name.node) else {
                continue;
            };
            let mut stack = vec![value];
            while let Some(value) = stack.pop() {
                match value {
                    ConstValue::Number(n)
                        if n.as_i64().and_then(|v| i32::try_from(v).ok()).is_none() =>
                    {
                        let field = uses.get(name).map_or(name, |(argument, _)| argument);
                        return Err(bad_input(
                            field,
                            "an Int is a whole number from -2147483648 to 2147483647",
                        ));
                    }
                    ConstValue::List(items) => stack.extend(items),
                    _ => {}
                }
            }
        }
    }
    Ok(())
}

/// A problem found in one input value.
enum Flaw {
    TooDeep,
    TooMany,
    Nul,
}

impl Flaw {
    fn error(self, argument: &str, path: &[String]) -> ServerError {
        // A text is named as our own checks name its field: the input field path below the
        // argument (`firstName`, `customFields.note`), or the argument itself when the value
        // is the argument. Nesting is named by the argument it is in (`filter`).
        let field = if path.is_empty() || matches!(self, Flaw::TooDeep | Flaw::TooMany) {
            argument.to_string()
        } else {
            path.join(".")
        };
        match self {
            Flaw::TooDeep => bad_input(
                &field,
                format!(
                    "input is nested too deeply: at most {MAX_INPUT_NESTING} levels of objects \
                     and lists"
                ),
            ),
            Flaw::TooMany => bad_input(
                &field,
                format!("the inputs of one operation may hold at most {MAX_INPUT_VALUES} values"),
            ),
            Flaw::Nul => bad_input(&field, crate::validation::NUL_MESSAGE),
        }
    }
}

/// The shape of an input value: argument literals (which may hold variables) and variable
/// values are walked by the one [`walk`].
enum Shape<'a, V> {
    Text(&'a str),
    Variable(&'a str),
    List(&'a [V]),
    Object(&'a async_graphql::indexmap::IndexMap<async_graphql::Name, V>),
    Leaf,
}

trait InputValue: Sized {
    fn shape(&self) -> Shape<'_, Self>;
}

impl InputValue for Value {
    fn shape(&self) -> Shape<'_, Self> {
        match self {
            Value::String(text) => Shape::Text(text),
            Value::Variable(name) => Shape::Variable(name),
            Value::List(items) => Shape::List(items),
            Value::Object(fields) => Shape::Object(fields),
            _ => Shape::Leaf,
        }
    }
}

impl InputValue for ConstValue {
    fn shape(&self) -> Shape<'_, Self> {
        match self {
            ConstValue::String(text) => Shape::Text(text),
            ConstValue::List(items) => Shape::List(items),
            ConstValue::Object(fields) => Shape::Object(fields),
            _ => Shape::Leaf,
        }
    }
}

/// Walks one input value with an explicit stack: nesting past [`MAX_INPUT_NESTING`] and NUL
/// in any text or key are refused; each variable met is handed to `variable` with the input
/// fields above it. `above` is where the value sits (a variable's place of use).
fn walk<'a, V: InputValue>(
    argument: &str,
    value: &'a V,
    above: Vec<String>,
    counted: &mut usize,
    mut variable: impl FnMut(&'a str, &[String]),
) -> Result<(), ServerError> {
    let mut stack: Vec<(&V, usize, Vec<String>)> = vec![(value, above.len(), above)];
    while let Some((value, depth, path)) = stack.pop() {
        if depth > MAX_INPUT_NESTING {
            return Err(Flaw::TooDeep.error(argument, &path));
        }
        *counted += 1;
        if *counted > MAX_INPUT_VALUES {
            return Err(Flaw::TooMany.error(argument, &path));
        }
        match value.shape() {
            Shape::Text(text) if text.contains('\0') => {
                return Err(Flaw::Nul.error(argument, &path))
            }
            Shape::Variable(name) => variable(name, &path),
            Shape::List(items) => {
                stack.extend(items.iter().map(|item| (item, depth + 1, path.clone())));
            }
            Shape::Object(fields) => {
                for (key, item) in fields {
                    if key.contains('\0') {
                        return Err(Flaw::Nul.error(argument, &path));
                    }
                    let mut inner = path.clone();
                    inner.push(key.to_string());
                    stack.push((item, depth + 1, inner));
                }
            }
            Shape::Text(_) | Shape::Leaf => {}
        }
    }
    Ok(())
}

fn screen_literal<'a>(
    argument: &str,
    value: &'a Value,
    uses: &mut HashMap<&'a str, (String, Vec<String>)>,
    counted: &mut usize,
) -> Result<(), ServerError> {
    walk(argument, value, Vec::new(), counted, |name, path| {
        uses.entry(name)
            .or_insert_with(|| (argument.to_string(), path.to_vec()));
    })
}

fn screen_variable(
    argument: &str,
    above: Vec<String>,
    value: &ConstValue,
    counted: &mut usize,
) -> Result<(), ServerError> {
    walk(argument, value, above, counted, |_, _| {})
}

/// The operations of a document that change state (for `GET`, which must not).
pub fn changes_state(document: &ExecutableDocument) -> bool {
    match &document.operations {
        DocumentOperations::Single(op) => op.node.ty != OperationType::Query,
        DocumentOperations::Multiple(ops) => {
            ops.values().any(|op| op.node.ty != OperationType::Query)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(error: &ServerError) -> String {
        error
            .extensions
            .as_ref()
            .and_then(|e| e.get("code"))
            .map(|v| v.to_string().trim_matches('"').to_string())
            .unwrap_or_default()
    }

    fn field(error: &ServerError) -> String {
        error
            .extensions
            .as_ref()
            .and_then(|e| e.get("field"))
            .map(|v| v.to_string().trim_matches('"').to_string())
            .unwrap_or_default()
    }

    /// The document screen with the default limits and no schema types.
    fn screen(document: &ExecutableDocument, variables: &Variables) -> Result<(), ServerError> {
        screen_document(
            document,
            variables,
            &GraphqlLimits::default(),
            &FieldTypes::default(),
        )
    }

    fn nested_not(levels: usize) -> String {
        format!(
            "{{leads(filter:{}{{firstName:{{eq:\"x\"}}}}{}){{totalCount}}}}",
            "{not:".repeat(levels),
            "}".repeat(levels)
        )
    }

    #[test]
    fn text_nesting_is_bounded_inside_and_outside_arguments() {
        assert!(screen_text(&nested_not(10), &GraphqlLimits::default()).is_ok());
        let error = screen_text(&nested_not(10_000), &GraphqlLimits::default()).unwrap_err();
        assert_eq!(code(&error), "BAD_USER_INPUT");
        assert_eq!(field(&error), "filter");
        let deep = format!("{}{}", "{a".repeat(10_000), "}".repeat(10_000));
        assert_eq!(
            code(&screen_text(&deep, &GraphqlLimits::default()).unwrap_err()),
            "QUERY_TOO_DEEP"
        );
        // Brackets inside strings, block strings and comments do not count.
        let quoted = format!(
            "{{ a(x: \"{}\", y: \"\"\"{}\"\"\") # {}\n }}",
            "{".repeat(500),
            "[".repeat(500),
            "(".repeat(500)
        );
        assert!(screen_text(&quoted, &GraphqlLimits::default()).is_ok());
        // Aliases are counted as written, outside argument lists.
        let aliased = |n: usize| {
            let fields: String = (0..n).map(|i| format!(" a{i}: me {{ id }}")).collect();
            format!("query($x: Int) {{{fields} b: me {{ f(x: {{k: 1}}) }} }}")
        };
        let limits = GraphqlLimits::default();
        assert!(screen_text(&aliased(limits.max_aliases - 1), &limits).is_ok());
        assert_eq!(
            code(&screen_text(&aliased(limits.max_aliases), &limits).unwrap_err()),
            "QUERY_TOO_COMPLEX"
        );
    }

    #[test]
    fn json_bodies_are_counted_per_operation_before_they_are_read() {
        let values = |n: usize| {
            let list: Vec<String> = (0..n).map(|i| format!("\"{i}\"")).collect();
            format!(
                "{{\"query\":\"query($l: [ID!]) {{ leads(filter: {{id: {{in: $l}}}}) {{ totalCount }} }}\",\"variables\":{{\"l\":[{}]}}}}",
                list.join(",")
            )
        };
        assert!(screen_json_body(values(MAX_INPUT_VALUES).as_bytes()).is_ok());
        let error = screen_json_body(values(MAX_INPUT_VALUES + 100).as_bytes()).unwrap_err();
        assert_eq!(code(&error), "BAD_USER_INPUT");
        assert_eq!(field(&error), "variables");
        // Commas inside strings are text, not values; a batch counts each operation alone.
        let text = format!("{{\"query\":\"{}\"}}", ",".repeat(3 * MAX_INPUT_VALUES));
        assert!(screen_json_body(text.as_bytes()).is_ok());
        let half = values(MAX_INPUT_VALUES / 2);
        let batch = format!("[{half},{half},{half}]");
        assert!(screen_json_body(batch.as_bytes()).is_ok());
    }

    #[test]
    fn a_fragment_chain_is_costed_once_per_fragment() {
        let mut query = String::from("query{me{...F0}}");
        for n in 0..30 {
            query.push_str(&format!(
                " fragment F{n} on User{{id ...F{} ...F{}}}",
                n + 1,
                n + 1
            ));
        }
        query.push_str(" fragment F30 on User{id}");
        let document = async_graphql::parser::parse_query(&query).unwrap();
        let started = std::time::Instant::now();
        let error = screen(&document, &Variables::default()).unwrap_err();
        assert_eq!(code(&error), "QUERY_TOO_COMPLEX");
        // Linear, not 2^30 (a loose bound: this is about the shape, not the speed).
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn fragment_cycles_are_refused() {
        let document = async_graphql::parser::parse_query(
            "{me{...A}} fragment A on User{...B} fragment B on User{...A}",
        )
        .unwrap();
        let error = screen(&document, &Variables::default()).unwrap_err();
        assert_eq!(code(&error), "GRAPHQL_VALIDATION_FAILED");
    }

    #[test]
    fn nul_is_refused_naming_the_field() {
        let document = async_graphql::parser::parse_query(
            r#"mutation{createLead(input:{firstName:"a\u0000b"}){lead{id}}}"#,
        )
        .unwrap();
        let error = screen(&document, &Variables::default()).unwrap_err();
        assert_eq!(code(&error), "BAD_USER_INPUT");
        assert_eq!(field(&error), "firstName");

        let document = async_graphql::parser::parse_query(
            "mutation($e:String!){login(email:$e,password:\"p\"){accessToken}}",
        )
        .unwrap();
        let variables = Variables::from_json(serde_json::json!({"e": "x\u{0}"}));
        let error = screen(&document, &variables).unwrap_err();
        assert_eq!(field(&error), "email");
    }
}
