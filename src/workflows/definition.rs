//! What a workflow is made of, as stored (JSON) and as the engine uses it: the entity it
//! watches, its trigger, its conditions and its actions. Parsing names the path of every
//! problem (`actions[1].then[0].to`), so a client sees where its definition is wrong; the
//! checks that need the database (fields, users) are in `validate`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{AppError, AppResult};

/// The kinds of record a workflow can watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Entity {
    Lead,
    Contact,
    Company,
    Opportunity,
    Task,
}

impl Entity {
    pub const ALL: [Entity; 5] = [
        Entity::Lead,
        Entity::Contact,
        Entity::Company,
        Entity::Opportunity,
        Entity::Task,
    ];

    /// As events and the `workflows` table name it.
    pub fn name(self) -> &'static str {
        match self {
            Entity::Lead => "lead",
            Entity::Contact => "contact",
            Entity::Company => "company",
            Entity::Opportunity => "opportunity",
            Entity::Task => "task",
        }
    }

    pub fn table(self) -> &'static str {
        self.resource().name()
    }

    pub fn parse(name: &str) -> Option<Entity> {
        Self::ALL.into_iter().find(|e| e.name() == name)
    }

    /// The CSV resource of the same kind: its columns are what actions may write.
    pub fn resource(self) -> crate::imports::columns::Resource {
        use crate::imports::columns::Resource;
        match self {
            Entity::Lead => Resource::Leads,
            Entity::Contact => Resource::Contacts,
            Entity::Company => Resource::Companies,
            Entity::Opportunity => Resource::Opportunities,
            Entity::Task => Resource::Tasks,
        }
    }
}

/// What starts a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Trigger {
    RecordCreated,
    /// Any update, or only one touching one of `fields` when given.
    RecordUpdated {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        fields: Vec<String>,
    },
    /// `field` changed, optionally from and/or to a value.
    FieldChanged {
        field: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<Value>,
    },
    RecordDeleted,
    /// A lead's score changed, optionally only when it crossed into `above` (new > above
    /// and old ≤ above) or `below` (new < below and old ≥ below).
    ScoreChanged {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        above: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        below: Option<i64>,
    },
    /// At moments rather than on changes: every slot of a cron `schedule` (5 fields, read in
    /// the workspace timezone) over the records matching the conditions, or a moment of each
    /// record: its date `field`, moved `before` or `after` by a duration; a date without a
    /// time is read at `at` (default 09:00) in the workspace timezone. See `time_triggers`.
    TimeBased {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        schedule: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        field: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        before: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        at: Option<String>,
    },
    /// Only `executeWorkflow`.
    Manual,
}

/// Deepest nesting of `all`/`any` groups in a workflow's conditions.
pub const MAX_CONDITION_NESTING: usize = 10;

/// A condition tree: groups of all/any, nestable, of rules.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    All(Vec<Condition>),
    Any(Vec<Condition>),
    Rule(Rule),
}

/// `field operator value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// A dotted path into the record: `status`, `custom.region`, `owner.email`.
    pub field: String,
    pub operator: Operator,
    pub value: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operator {
    Equals,
    NotEquals,
    Contains,
    NotContains,
    StartsWith,
    GreaterThan,
    LessThan,
    Between,
    In,
    NotIn,
    IsEmpty,
    IsNotEmpty,
    Changed,
    ChangedTo,
    ChangedFrom,
}

impl Operator {
    const NAMES: &'static str = "equals, not_equals, contains, not_contains, starts_with, \
        greater_than, less_than, between, in, not_in, is_empty, is_not_empty, changed, \
        changed_to, changed_from";

    /// What the operator wants as `value`.
    fn value_shape(self) -> ValueShape {
        match self {
            Operator::IsEmpty | Operator::IsNotEmpty | Operator::Changed => ValueShape::None,
            Operator::Between => ValueShape::Pair,
            Operator::In | Operator::NotIn => ValueShape::List,
            _ => ValueShape::One,
        }
    }
}

enum ValueShape {
    None,
    One,
    Pair,
    List,
}

impl Condition {
    /// Parses `{"all": [...]}`, `{"any": [...]}` or `{"field", "operator", "value"}`;
    /// problems are reported at `path`.
    pub fn parse(value: &Value, path: &str) -> AppResult<Condition> {
        Condition::parse_within(value, path, 0)
    }

    /// `parse`, `depth` groups down: refused past [`MAX_CONDITION_NESTING`] before going
    /// deeper, so a stored or sent tree can never exhaust the stack.
    fn parse_within(value: &Value, path: &str, depth: usize) -> AppResult<Condition> {
        if depth > MAX_CONDITION_NESTING {
            return Err(bad(
                path,
                format!("condition groups nest at most {MAX_CONDITION_NESTING} levels deep"),
            ));
        }
        let object = value.as_object().ok_or_else(|| {
            bad(
                path,
                "a condition is an object: {all}, {any} or {field, operator, value}",
            )
        })?;
        for group in ["all", "any"] {
            if let Some(items) = object.get(group) {
                if object.len() != 1 {
                    return Err(bad(path, format!("a group has only its \"{group}\" list")));
                }
                let items = items
                    .as_array()
                    .ok_or_else(|| bad(&format!("{path}.{group}"), "a list of conditions"))?;
                let parsed = items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| {
                        Condition::parse_within(item, &format!("{path}.{group}[{i}]"), depth + 1)
                    })
                    .collect::<AppResult<Vec<_>>>()?;
                return Ok(if group == "all" {
                    Condition::All(parsed)
                } else {
                    Condition::Any(parsed)
                });
            }
        }
        if let Some(unknown) = object
            .keys()
            .find(|k| !["field", "operator", "value"].contains(&k.as_str()))
        {
            return Err(bad(
                &format!("{path}.{unknown}"),
                "unknown key; a rule has field, operator and value",
            ));
        }
        let field = object
            .get("field")
            .and_then(Value::as_str)
            .filter(|f| !f.trim().is_empty())
            .ok_or_else(|| bad(&format!("{path}.field"), "a field path is required"))?
            .trim()
            .to_string();
        let operator_name = object
            .get("operator")
            .and_then(Value::as_str)
            .ok_or_else(|| bad(&format!("{path}.operator"), "an operator is required"))?;
        let operator: Operator = serde_json::from_value(Value::String(operator_name.into()))
            .map_err(|_| {
                bad(
                    &format!("{path}.operator"),
                    format!(
                        "unknown operator {operator_name:?}; one of {}",
                        Operator::NAMES
                    ),
                )
            })?;
        let value = object.get("value").cloned();
        let value_path = format!("{path}.value");
        match (operator.value_shape(), &value) {
            (ValueShape::None, Some(v)) if !v.is_null() => {
                return Err(bad(&value_path, format!("{operator_name} takes no value")))
            }
            (ValueShape::One, None | Some(Value::Null))
                if !matches!(operator, Operator::Equals | Operator::NotEquals) =>
            {
                return Err(bad(&value_path, format!("{operator_name} needs a value")))
            }
            (ValueShape::Pair, v)
                if v.as_ref()
                    .and_then(Value::as_array)
                    .is_none_or(|a| a.len() != 2) =>
            {
                return Err(bad(
                    &value_path,
                    "between needs a list of two values [low, high]",
                ))
            }
            (ValueShape::List, v) if !v.as_ref().is_some_and(Value::is_array) => {
                return Err(bad(
                    &value_path,
                    format!("{operator_name} needs a list of values"),
                ))
            }
            _ => {}
        }
        Ok(Condition::Rule(Rule {
            field,
            operator,
            value: value.filter(|v| !v.is_null()),
        }))
    }

    pub fn to_json(&self) -> Value {
        match self {
            Condition::All(items) => {
                serde_json::json!({ "all": items.iter().map(Condition::to_json).collect::<Vec<_>>() })
            }
            Condition::Any(items) => {
                serde_json::json!({ "any": items.iter().map(Condition::to_json).collect::<Vec<_>>() })
            }
            Condition::Rule(rule) => {
                let mut object =
                    serde_json::json!({ "field": rule.field, "operator": rule.operator });
                if let Some(value) = &rule.value {
                    object["value"] = value.clone();
                }
                object
            }
        }
    }

    /// The relations its paths go through (`owner` for `owner.email`): what a record's
    /// context must expand for the conditions to be evaluated.
    pub fn relations_read(&self) -> std::collections::BTreeSet<String> {
        let mut rules = Vec::new();
        self.rules("conditions", &mut rules);
        rules
            .iter()
            .filter_map(|(_, rule)| rule.field.split_once('.').map(|(head, _)| head.to_string()))
            .collect()
    }

    /// Every rule with its path, depth first.
    pub fn rules<'a>(&'a self, path: &str, out: &mut Vec<(String, &'a Rule)>) {
        match self {
            Condition::All(items) | Condition::Any(items) => {
                let group = if matches!(self, Condition::All(_)) {
                    "all"
                } else {
                    "any"
                };
                for (i, item) in items.iter().enumerate() {
                    item.rules(&format!("{path}.{group}[{i}]"), out);
                }
            }
            Condition::Rule(rule) => out.push((path.to_string(), rule)),
        }
    }
}

impl Serialize for Condition {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Condition {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Condition::parse(&value, "conditions").map_err(serde::de::Error::custom)
    }
}

/// One step of a workflow. Text params are templates (`template`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    SendEmail {
        /// Addresses, comma-separated.
        to: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cc: Option<String>,
        subject: String,
        body: String,
    },
    CreateTask {
        title: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
        /// A user's email; the record's assignee (or owner) when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        assigned_to: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        priority: Option<String>,
        /// `2d`, `3 hours`, ...: the task's due time from when the step runs.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        due_in: Option<String>,
    },
    /// Sets one field (a column as CSV imports name it, or `custom.<key>`).
    UpdateField { field: String, value: Value },
    /// Exactly one of the three.
    AssignRecord {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        round_robin: Option<Vec<String>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        least_open_records: Option<Vec<String>>,
    },
    SendNotification {
        /// Users' emails (templates allowed).
        users: Vec<String>,
        title: String,
        message: String,
    },
    CreateRecord {
        entity: Entity,
        fields: BTreeMap<String, Value>,
    },
    CallWebhook {
        url: String,
        #[serde(default = "default_method")]
        method: String,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        headers: BTreeMap<String, String>,
        /// A template string, or JSON whose strings are templates; the trigger data when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body: Option<Value>,
    },
    /// Exactly one of the two: a duration (`2d`), or a date field of the record (`due_at`).
    Wait {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        duration: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until: Option<String>,
    },
    Branch {
        conditions: Condition,
        #[serde(default)]
        then: Vec<Action>,
        #[serde(default, rename = "else")]
        otherwise: Vec<Action>,
    },
}

fn default_method() -> String {
    "POST".into()
}

impl Action {
    /// The action's name as definitions and step logs show it.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::SendEmail { .. } => "send_email",
            Action::CreateTask { .. } => "create_task",
            Action::UpdateField { .. } => "update_field",
            Action::AssignRecord { .. } => "assign_record",
            Action::SendNotification { .. } => "send_notification",
            Action::CreateRecord { .. } => "create_record",
            Action::CallWebhook { .. } => "call_webhook",
            Action::Wait { .. } => "wait",
            Action::Branch { .. } => "branch",
        }
    }
}

/// A whole definition, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Definition {
    pub entity: Entity,
    pub trigger: Trigger,
    pub conditions: Option<Condition>,
    pub actions: Vec<Action>,
}

/// At most this many actions in a workflow, nested ones included.
pub const MAX_ACTIONS: usize = 50;

impl Definition {
    /// Parses the stored or submitted JSON parts; every problem names its path.
    pub fn parse(
        entity: &str,
        trigger: &Value,
        conditions: Option<&Value>,
        actions: &Value,
    ) -> AppResult<Definition> {
        let entity = Entity::parse(entity)
            .ok_or_else(|| bad("entity", "one of lead, contact, company, opportunity, task"))?;
        let trigger: Trigger = serde_json::from_value(trigger.clone())
            .map_err(|e| bad("trigger", serde_message(&e)))?;
        super::time_triggers::Timing::of(&trigger)?;
        let conditions = match conditions {
            None | Some(Value::Null) => None,
            Some(value) => Some(Condition::parse(value, "conditions")?),
        };
        let list = actions
            .as_array()
            .ok_or_else(|| bad("actions", "a list of actions"))?;
        let actions = parse_actions(list, "actions")?;
        let definition = Definition {
            entity,
            trigger,
            conditions,
            actions,
        };
        let count = definition.steps().len();
        if count == 0 {
            return Err(bad("actions", "a workflow needs at least one action"));
        }
        if count > MAX_ACTIONS {
            return Err(bad(
                "actions",
                format!("at most {MAX_ACTIONS} actions, branches included ({count} given)"),
            ));
        }
        Ok(definition)
    }

    /// Every action with its path, depth first (branches, then their arms).
    pub fn steps(&self) -> Vec<(String, &Action)> {
        fn walk<'a>(actions: &'a [Action], path: &str, out: &mut Vec<(String, &'a Action)>) {
            for (i, action) in actions.iter().enumerate() {
                let here = format!("{path}[{i}]");
                out.push((here.clone(), action));
                if let Action::Branch {
                    then, otherwise, ..
                } = action
                {
                    walk(then, &format!("{here}.then"), out);
                    walk(otherwise, &format!("{here}.else"), out);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.actions, "actions", &mut out);
        out
    }

    pub fn trigger_json(&self) -> Value {
        serde_json::to_value(&self.trigger).unwrap_or(Value::Null)
    }

    pub fn conditions_json(&self) -> Option<Value> {
        self.conditions.as_ref().map(Condition::to_json)
    }

    pub fn actions_json(&self) -> Value {
        serde_json::to_value(&self.actions).unwrap_or(Value::Null)
    }
}

fn parse_actions(list: &[Value], path: &str) -> AppResult<Vec<Action>> {
    list.iter()
        .enumerate()
        .map(|(i, item)| {
            let here = format!("{path}[{i}]");
            // Branch arms are parsed here (not by serde) so their problems get full paths.
            if item.get("type").and_then(Value::as_str) == Some("branch") {
                let object = item.as_object().ok_or_else(|| bad(&here, "an object"))?;
                if let Some(unknown) = object
                    .keys()
                    .find(|k| !["type", "conditions", "then", "else"].contains(&k.as_str()))
                {
                    return Err(bad(
                        &format!("{here}.{unknown}"),
                        "unknown key; a branch has conditions, then and else",
                    ));
                }
                let conditions = Condition::parse(
                    object.get("conditions").unwrap_or(&Value::Null),
                    &format!("{here}.conditions"),
                )?;
                let arm = |name: &str| -> AppResult<Vec<Action>> {
                    match object.get(name) {
                        None | Some(Value::Null) => Ok(Vec::new()),
                        Some(Value::Array(items)) => {
                            parse_actions(items, &format!("{here}.{name}"))
                        }
                        Some(_) => Err(bad(&format!("{here}.{name}"), "a list of actions")),
                    }
                };
                return Ok(Action::Branch {
                    conditions,
                    then: arm("then")?,
                    otherwise: arm("else")?,
                });
            }
            serde_json::from_value::<Action>(item.clone())
                .map_err(|e| bad(&here, serde_message(&e)))
        })
        .collect()
}

/// serde's message without its "at line 1 column 2" tail (meaningless for a JSON value).
fn serde_message(err: &serde_json::Error) -> String {
    let text = err.to_string();
    match text.find(" at line ") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
    .replace("variant", "type")
}

/// The longest wait or due offset: a year.
const MAX_DURATION_DAYS: i64 = 366;

/// `45s`, `30m`, `3h`, `2d`, `1w`, or with words: `2 days`, `3 hours`, `1 week`.
pub fn parse_duration(text: &str) -> Result<chrono::Duration, String> {
    let text = text.trim().to_lowercase();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let amount: i64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 30m, 2h, 3d or 1w"))?;
    let duration = match unit.trim() {
        "s" | "sec" | "secs" | "second" | "seconds" => chrono::Duration::seconds(amount),
        "m" | "min" | "mins" | "minute" | "minutes" => chrono::Duration::minutes(amount),
        "h" | "hour" | "hours" => chrono::Duration::hours(amount),
        "d" | "day" | "days" => chrono::Duration::days(amount),
        "w" | "week" | "weeks" => chrono::Duration::weeks(amount.min(1000)),
        _ => return Err(format!("{text:?} is not a duration like 30m, 2h, 3d or 1w")),
    };
    if duration > chrono::Duration::days(MAX_DURATION_DAYS) {
        return Err(format!("{text:?} is longer than {MAX_DURATION_DAYS} days"));
    }
    Ok(duration)
}

pub fn bad(path: &str, message: impl Into<String>) -> AppError {
    AppError::bad_input(path, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(trigger: Value, conditions: Option<Value>, actions: Value) -> AppResult<Definition> {
        Definition::parse("lead", &trigger, conditions.as_ref(), &actions)
    }

    fn field_of(err: AppError) -> String {
        match err {
            AppError::BadUserInput { field, .. } => field,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_full_definition_round_trips() {
        let definition = parse(
            json!({"type": "field_changed", "field": "status", "to": "qualified"}),
            Some(json!({"all": [{"field": "state", "operator": "equals", "value": "CA"},
                {"any": [{"field": "custom.region", "operator": "in", "value": ["west"]},
                         {"field": "email", "operator": "is_not_empty"}]}]})),
            json!([{"type": "wait", "duration": "2d"},
                   {"type": "branch", "conditions": {"field": "score", "operator": "greater_than", "value": 50},
                    "then": [{"type": "update_field", "field": "priority", "value": "high"}],
                    "else": [{"type": "send_email", "to": "{{record.email}}", "subject": "Hi", "body": "Hello"}]}]),
        )
        .unwrap();
        assert_eq!(definition.steps().len(), 4);
        assert_eq!(definition.steps()[3].0, "actions[1].else[0]");
        let again = Definition::parse(
            "lead",
            &definition.trigger_json(),
            definition.conditions_json().as_ref(),
            &definition.actions_json(),
        )
        .unwrap();
        assert_eq!(again, definition);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("2d").unwrap(), chrono::Duration::days(2));
        assert_eq!(
            parse_duration(" 3 Hours").unwrap(),
            chrono::Duration::hours(3)
        );
        assert_eq!(
            parse_duration("45s").unwrap(),
            chrono::Duration::seconds(45)
        );
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("2 fortnights").is_err());
        assert!(parse_duration("400d").is_err());
    }

    #[test]
    fn problems_name_their_path() {
        let actions = json!([{"type": "update_field", "field": "status", "value": "new"}]);
        let err = parse(
            json!({"type": "record_created"}),
            Some(json!({"all": [{"field": "state", "operator": "equal", "value": 1}]})),
            actions.clone(),
        )
        .unwrap_err();
        assert_eq!(field_of(err), "conditions.all[0].operator");
        let err = parse(
            json!({"type": "record_created"}),
            Some(json!({"field": "state", "operator": "between", "value": 1})),
            actions.clone(),
        )
        .unwrap_err();
        assert_eq!(field_of(err), "conditions.value");
        let err = parse(json!({"type": "record_made"}), None, actions.clone()).unwrap_err();
        assert_eq!(field_of(err), "trigger");
        let err = parse(
            json!({"type": "manual"}),
            None,
            json!([{"type": "branch", "conditions": {"field": "a", "operator": "is_empty"},
                    "then": [{"type": "send_mail"}]}]),
        )
        .unwrap_err();
        assert_eq!(field_of(err), "actions[0].then[0]");
        let err = parse(json!({"type": "manual"}), None, json!([])).unwrap_err();
        assert_eq!(field_of(err), "actions");
        let err = parse(
            json!({"type": "manual"}),
            None,
            json!([{"type": "wait", "duraton": "1d"}]),
        )
        .unwrap_err();
        assert_eq!(field_of(err), "actions[0]");
    }
}
