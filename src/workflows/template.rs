//! Templates in action params: `Hello {{record.first_name | upper}}, due
//! {{record.due_at | date:"%Y-%m-%d"}}`. A variable is a dotted path into the run's context
//! (`record`, `trigger`, `actor`, `now`); filters: `upper`, `lower`, `trim`,
//! `date:"<strftime>"` and `default:"<text>"`. A missing variable is an error (unless a
//! `default` filter gives a value): a blank in a customer's email is worse than a failed step.

use chrono::format::{Item, StrftimeItems};
use serde_json::Value;

/// A parsed template: text and placeholders.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Variable { path: String, filters: Vec<Filter> },
}

#[derive(Debug, Clone, PartialEq)]
enum Filter {
    Upper,
    Lower,
    Trim,
    Date(String),
    Default(String),
}

impl Template {
    pub fn parse(source: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = source;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                parts.push(Part::Text(rest[..start].to_string()));
            }
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .ok_or_else(|| format!("unclosed {{{{ at {:?}", truncate(&rest[start..])))?;
            parts.push(parse_placeholder(&after[..end])?);
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Template { parts })
    }

    /// The variables it reads, in order.
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Variable { path, .. } => Some(path.as_str()),
            Part::Text(_) => None,
        })
    }

    /// Renders with `context` (an object with `record`, `trigger`, `actor`, `now`).
    pub fn render(&self, context: &Value) -> Result<String, String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Variable { path, filters } => {
                    let mut value = lookup(context, path).and_then(|v| match v {
                        Value::Null => None,
                        Value::String(s) => Some(s.clone()),
                        other => Some(other.to_string()),
                    });
                    for filter in filters {
                        value = match (filter, value) {
                            (Filter::Default(text), None) => Some(text.clone()),
                            (Filter::Default(_), Some(v)) => Some(v),
                            (_, None) => None,
                            (Filter::Upper, Some(v)) => Some(v.to_uppercase()),
                            (Filter::Lower, Some(v)) => Some(v.to_lowercase()),
                            (Filter::Trim, Some(v)) => Some(v.trim().to_string()),
                            (Filter::Date(format), Some(v)) => Some(format_date(&v, format)?),
                        };
                    }
                    let value = value.ok_or_else(|| format!("missing variable {path}"))?;
                    out.push_str(&value);
                }
            }
        }
        Ok(out)
    }
}

/// Renders a JSON value whose strings are templates (webhook bodies, record fields).
pub fn render_json(value: &Value, context: &Value) -> Result<Value, String> {
    Ok(match value {
        Value::String(text) => Value::String(Template::parse(text)?.render(context)?),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| render_json(v, context))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), render_json(v, context)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

/// Every template string inside a JSON value.
pub fn json_templates(value: &Value) -> Vec<&str> {
    match value {
        Value::String(text) => vec![text.as_str()],
        Value::Array(items) => items.iter().flat_map(json_templates).collect(),
        Value::Object(map) => map.values().flat_map(json_templates).collect(),
        _ => Vec::new(),
    }
}

/// The value at a dotted path (`record.owner.email`).
pub fn lookup<'a>(context: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(context, |value, key| match value {
        Value::Object(map) => map.get(key),
        Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

fn parse_placeholder(inner: &str) -> Result<Part, String> {
    let mut pieces = split_filters(inner).into_iter();
    let path = pieces.next().unwrap_or_default().trim().to_string();
    let valid_path = !path.is_empty()
        && path.split('.').all(|segment| {
            !segment.is_empty()
                && segment
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        });
    if !valid_path {
        return Err(format!("{{{{{}}}}} is not a variable path", inner.trim()));
    }
    let filters = pieces
        .map(|piece| parse_filter(piece.trim()))
        .collect::<Result<_, _>>()?;
    Ok(Part::Variable { path, filters })
}

/// Splits on `|` outside quotes.
fn split_filters(inner: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, c) in inner.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '|' if !quoted => {
                pieces.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    pieces.push(&inner[start..]);
    pieces
}

fn parse_filter(text: &str) -> Result<Filter, String> {
    let (name, argument) = match text.split_once(':') {
        Some((name, arg)) => {
            let arg = arg.trim();
            let unquoted = arg
                .strip_prefix('"')
                .and_then(|a| a.strip_suffix('"'))
                .ok_or_else(|| {
                    format!("the argument of {} must be in double quotes", name.trim())
                })?;
            (name.trim(), Some(unquoted.to_string()))
        }
        None => (text, None),
    };
    match (name, argument) {
        ("upper", None) => Ok(Filter::Upper),
        ("lower", None) => Ok(Filter::Lower),
        ("trim", None) => Ok(Filter::Trim),
        ("date", Some(format)) => {
            if StrftimeItems::new(&format).any(|item| matches!(item, Item::Error)) {
                return Err(format!("{format:?} is not a valid date format"));
            }
            Ok(Filter::Date(format))
        }
        ("default", Some(text)) => Ok(Filter::Default(text)),
        ("date" | "default", None) => Err(format!("the {name} filter needs an argument")),
        (name, _) => Err(format!(
            "unknown filter {name:?}; one of upper, lower, trim, date:\"...\", default:\"...\""
        )),
    }
}

fn format_date(value: &str, format: &str) -> Result<String, String> {
    crate::imports::values::timestamp(value.trim())
        .map(|at| at.format(format).to_string())
        .map_err(|_| format!("{value:?} is not a date"))
}

fn truncate(text: &str) -> String {
    text.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn context() -> Value {
        json!({
            "record": {"email": "ann@example.com", "first_name": "ann", "score": 72,
                       "due_at": "2026-12-01T09:30:00+00:00", "owner": {"name": "Dana"},
                       "custom": {"region": "West"}, "phone": null},
            "trigger": {"changes": {"status": {"old": "new", "new": "qualified"}}},
            "now": "2026-11-24T10:00:00Z"
        })
    }

    #[test]
    fn renders_variables_and_filters() {
        let t = Template::parse(
            "Hi {{ record.first_name | upper }} ({{record.owner.name}}, {{record.custom.region|lower}}), \
             score {{record.score}}, due {{record.due_at | date:\"%Y-%m-%d\"}}, was {{trigger.changes.status.old}}",
        )
        .unwrap();
        assert_eq!(
            t.render(&context()).unwrap(),
            "Hi ANN (Dana, west), score 72, due 2026-12-01, was new"
        );
        assert_eq!(
            t.variables().collect::<Vec<_>>(),
            [
                "record.first_name",
                "record.owner.name",
                "record.custom.region",
                "record.score",
                "record.due_at",
                "trigger.changes.status.old"
            ]
        );
    }

    #[test]
    fn a_missing_variable_is_an_error_unless_defaulted() {
        let t = Template::parse("call {{record.phone}}").unwrap();
        assert_eq!(
            t.render(&context()).unwrap_err(),
            "missing variable record.phone"
        );
        let t = Template::parse("call {{record.phone | default:\"nobody | none\"}}").unwrap();
        assert_eq!(t.render(&context()).unwrap(), "call nobody | none");
        assert!(Template::parse("{{record.x").is_err());
        assert!(Template::parse("{{record.x | shout}}").is_err());
        assert!(Template::parse("{{record.x | date:\"%Q\"}}").is_err());
        assert!(Template::parse("{{ }}").is_err());
    }

    #[test]
    fn json_bodies_render_every_string() {
        let body =
            json!({"lead": "{{record.email}}", "tags": ["{{record.custom.region}}"], "n": 1});
        assert_eq!(
            render_json(&body, &context()).unwrap(),
            json!({"lead": "ann@example.com", "tags": ["West"], "n": 1})
        );
    }
}
