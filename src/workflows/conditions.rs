//! Evaluating conditions against a record and the change that triggered the run.
//!
//! Text compares without regard to case and surrounding spaces ("CA" equals " ca"); numbers
//! compare as numbers (also when one side is written as text, "100" = 100); dates and times
//! compare in time order; a list field (tags) `contains` or `equals` a value when one of its
//! items does.

use std::cmp::Ordering;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::definition::{Condition, Operator, Rule};
use super::template::lookup;
use crate::imports::values::timestamp;

/// What a rule saw, for dry runs.
#[derive(Debug, Clone, Serialize)]
pub struct RuleResult {
    pub path: String,
    pub field: String,
    pub operator: Operator,
    pub value: Option<Value>,
    /// The record's value (`{old, new}` for the change operators).
    pub actual: Value,
    pub passed: bool,
}

/// What a condition tree is evaluated against.
pub struct Facts<'a> {
    /// The record as the context shows it (`custom`, `owner`, `company`, ... included).
    pub record: &'a Value,
    /// `{column: {old, new}}` of the triggering change (empty for manual runs).
    pub changes: &'a Value,
}

/// Whether `condition` holds; every rule's result goes to `trace` (no short cut, so a dry
/// run shows them all).
pub fn evaluate(
    condition: &Condition,
    facts: &Facts,
    path: &str,
    trace: &mut Vec<RuleResult>,
) -> bool {
    match condition {
        Condition::All(items) => items
            .iter()
            .enumerate()
            .map(|(i, c)| evaluate(c, facts, &format!("{path}.all[{i}]"), trace))
            .collect::<Vec<_>>()
            .into_iter()
            .all(|passed| passed),
        Condition::Any(items) => items
            .iter()
            .enumerate()
            .map(|(i, c)| evaluate(c, facts, &format!("{path}.any[{i}]"), trace))
            .collect::<Vec<_>>()
            .into_iter()
            .any(|passed| passed),
        Condition::Rule(rule) => {
            let (passed, actual) = rule_holds(rule, facts);
            trace.push(RuleResult {
                path: path.to_string(),
                field: rule.field.clone(),
                operator: rule.operator,
                value: rule.value.clone(),
                actual,
                passed,
            });
            passed
        }
    }
}

/// Whether `condition` holds (no trace).
pub fn holds(condition: Option<&Condition>, facts: &Facts) -> bool {
    condition.is_none_or(|c| evaluate(c, facts, "conditions", &mut Vec::new()))
}

fn rule_holds(rule: &Rule, facts: &Facts) -> (bool, Value) {
    let value = rule.value.as_ref().unwrap_or(&Value::Null);
    match rule.operator {
        Operator::Changed | Operator::ChangedTo | Operator::ChangedFrom => {
            let Some((old, new)) = change_of(facts.changes, &rule.field) else {
                return (false, Value::Null);
            };
            let passed = match rule.operator {
                Operator::Changed => true,
                Operator::ChangedTo => equals(&new, value),
                _ => equals(&old, value),
            };
            (passed, serde_json::json!({ "old": old, "new": new }))
        }
        operator => {
            let actual = lookup(facts.record, &rule.field)
                .cloned()
                .unwrap_or(Value::Null);
            (compare(operator, &actual, value), actual)
        }
    }
}

/// The old and new value of a field in a change: a column's own entry, or a custom field's
/// inside the `custom_fields` entry.
pub fn change_of(changes: &Value, field: &str) -> Option<(Value, Value)> {
    if let Some(key) = field.strip_prefix("custom.") {
        let entry = changes.get("custom_fields")?;
        let pick = |side: &str| {
            entry
                .get(side)
                .and_then(|v| v.get(key))
                .cloned()
                .unwrap_or(Value::Null)
        };
        let (old, new) = (pick("old"), pick("new"));
        return (old != new).then_some((old, new));
    }
    let entry = changes.get(field)?;
    Some((
        entry.get("old").cloned().unwrap_or(Value::Null),
        entry.get("new").cloned().unwrap_or(Value::Null),
    ))
}

/// Applies a comparison operator (not the change ones).
pub fn compare(operator: Operator, actual: &Value, value: &Value) -> bool {
    match operator {
        Operator::Equals => equals(actual, value),
        Operator::NotEquals => !equals(actual, value),
        Operator::Contains => contains(actual, value),
        Operator::NotContains => !contains(actual, value),
        Operator::StartsWith => text(actual)
            .zip(text(value))
            .is_some_and(|(a, v)| a.starts_with(&v)),
        Operator::GreaterThan => order(actual, value) == Some(Ordering::Greater),
        Operator::LessThan => order(actual, value) == Some(Ordering::Less),
        Operator::Between => match value.as_array().map(Vec::as_slice) {
            Some([low, high]) => {
                matches!(
                    order(actual, low),
                    Some(Ordering::Greater | Ordering::Equal)
                ) && matches!(order(actual, high), Some(Ordering::Less | Ordering::Equal))
            }
            _ => false,
        },
        Operator::In => list(value).iter().any(|v| equals(actual, v)),
        Operator::NotIn => !list(value).iter().any(|v| equals(actual, v)),
        Operator::IsEmpty => is_empty(actual),
        Operator::IsNotEmpty => !is_empty(actual),
        Operator::Changed | Operator::ChangedTo | Operator::ChangedFrom => false,
    }
}

fn list(value: &Value) -> &[Value] {
    value.as_array().map(Vec::as_slice).unwrap_or_default()
}

pub fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        Value::Array(items) => items.is_empty(),
        Value::Object(map) => map.is_empty(),
        _ => false,
    }
}

fn equals(actual: &Value, value: &Value) -> bool {
    if value.is_null() {
        return is_empty(actual);
    }
    if let Value::Array(items) = actual {
        return items.iter().any(|item| equals(item, value));
    }
    if let (Some(a), Some(v)) = (number(actual), number(value)) {
        return a == v;
    }
    match (actual, value) {
        (Value::Bool(a), Value::Bool(v)) => a == v,
        _ => text(actual).zip(text(value)).is_some_and(|(a, v)| a == v),
    }
}

fn contains(actual: &Value, value: &Value) -> bool {
    match actual {
        Value::Array(items) => items.iter().any(|item| equals(item, value)),
        _ => text(actual)
            .zip(text(value))
            .is_some_and(|(a, v)| a.contains(&v)),
    }
}

/// Numbers as numbers, then times in time order, then text.
fn order(actual: &Value, value: &Value) -> Option<Ordering> {
    if let (Some(a), Some(v)) = (number(actual), number(value)) {
        return a.partial_cmp(&v);
    }
    if let (Some(a), Some(v)) = (time(actual), time(value)) {
        return Some(a.cmp(&v));
    }
    Some(text(actual)?.cmp(&text(value)?))
}

/// A JSON number, or text that is one (decimals are stored as text in some places).
fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|x| x.is_finite()),
        _ => None,
    }
}

/// A moment as the CSV import reads one (RFC 3339 as stored values render, or a date).
fn time(value: &Value) -> Option<DateTime<Utc>> {
    timestamp(value.as_str()?.trim()).ok()
}

/// Text for comparison: trimmed and lower-cased; numbers and booleans as written.
fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.trim().to_lowercase()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(rule: Value, record: Value, changes: Value) -> bool {
        let condition = Condition::parse(&rule, "conditions").unwrap();
        holds(
            Some(&condition),
            &Facts {
                record: &record,
                changes: &changes,
            },
        )
    }

    #[test]
    fn every_operator() {
        let record = json!({"state": "CA", "score": 72, "tags": ["vip", "west"], "email": "",
            "custom": {"region": "West"}, "owner": {"email": "dana@example.com"},
            "due_at": "2026-12-01T09:30:00+00:00", "estimated_value": "1500.00"});
        let none = json!({});
        let cases = [
            (
                json!({"field": "state", "operator": "equals", "value": "ca"}),
                true,
            ),
            (
                json!({"field": "state", "operator": "not_equals", "value": "NY"}),
                true,
            ),
            (
                json!({"field": "custom.region", "operator": "contains", "value": "es"}),
                true,
            ),
            (
                json!({"field": "tags", "operator": "contains", "value": "VIP"}),
                true,
            ),
            (
                json!({"field": "tags", "operator": "not_contains", "value": "east"}),
                true,
            ),
            (
                json!({"field": "owner.email", "operator": "starts_with", "value": "dana@"}),
                true,
            ),
            (
                json!({"field": "score", "operator": "greater_than", "value": 50}),
                true,
            ),
            (
                json!({"field": "score", "operator": "less_than", "value": "50"}),
                false,
            ),
            (
                json!({"field": "estimated_value", "operator": "greater_than", "value": 1000}),
                true,
            ),
            (
                json!({"field": "score", "operator": "between", "value": [70, 72]}),
                true,
            ),
            (
                json!({"field": "due_at", "operator": "between", "value": ["2026-11-30", "2026-12-02"]}),
                true,
            ),
            (
                json!({"field": "due_at", "operator": "less_than", "value": "2026-12-01"}),
                false,
            ),
            (
                json!({"field": "state", "operator": "in", "value": ["NY", "CA"]}),
                true,
            ),
            (
                json!({"field": "state", "operator": "not_in", "value": ["NY", "CA"]}),
                false,
            ),
            (json!({"field": "email", "operator": "is_empty"}), true),
            (json!({"field": "missing", "operator": "is_empty"}), true),
            (json!({"field": "state", "operator": "is_not_empty"}), true),
            (json!({"field": "state", "operator": "changed"}), false),
        ];
        for (rule, expected) in cases {
            assert_eq!(
                check(rule.clone(), record.clone(), none.clone()),
                expected,
                "{rule}"
            );
        }
    }

    #[test]
    fn change_operators_read_the_trigger() {
        let changes = json!({"status": {"old": "new", "new": "qualified"},
            "custom_fields": {"old": {"region": "East"}, "new": {"region": "West", "x": 1}}});
        let record = json!({});
        let cases = [
            (json!({"field": "status", "operator": "changed"}), true),
            (
                json!({"field": "status", "operator": "changed_to", "value": "Qualified"}),
                true,
            ),
            (
                json!({"field": "status", "operator": "changed_from", "value": "contacted"}),
                false,
            ),
            (
                json!({"field": "custom.region", "operator": "changed_from", "value": "east"}),
                true,
            ),
            (json!({"field": "custom.y", "operator": "changed"}), false),
            (json!({"field": "priority", "operator": "changed"}), false),
        ];
        for (rule, expected) in cases {
            assert_eq!(
                check(rule.clone(), record.clone(), changes.clone()),
                expected,
                "{rule}"
            );
        }
    }

    #[test]
    fn groups_nest() {
        let record = json!({"state": "CA", "score": 10});
        let rule = json!({"all": [{"field": "state", "operator": "equals", "value": "CA"},
            {"any": [{"field": "score", "operator": "greater_than", "value": 50},
                     {"field": "state", "operator": "in", "value": ["CA"]}]}]});
        assert!(check(rule, record.clone(), json!({})));
        let rule = json!({"any": [{"field": "state", "operator": "equals", "value": "NY"},
            {"all": [{"field": "score", "operator": "greater_than", "value": 50}]}]});
        assert!(!check(rule, record, json!({})));
    }
}
