//! Which field each column of an imported file fills: the caller's mapping ("CSV header" →
//! field) where given, otherwise the header itself, compared ignoring case, spaces, dashes and
//! underscores, with the synonyms other CRMs and spreadsheets use ("E-mail", "Company",
//! "Phone Number", "Lead Source").

use std::collections::HashMap;

use super::columns::{Column, Resource};
use crate::error::{AppError, AppResult};
use crate::validation::MAX_CUSTOM_FIELD_KEY_CHARS;

/// What one column of the file becomes.
#[derive(Debug, Clone)]
pub enum Target {
    Column(&'static Column),
    /// `custom.<key>`: a custom field.
    Custom(String),
    /// The record's ID (used to match existing records with `match_on=id`).
    Id,
}

impl PartialEq for Target {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name()
    }
}

impl Target {
    pub fn name(&self) -> String {
        match self {
            Target::Column(c) => c.name.to_string(),
            Target::Custom(key) => format!("custom.{key}"),
            Target::Id => "id".into(),
        }
    }
}

/// The file's columns and what each becomes (`None`: ignored).
#[derive(Debug, Clone)]
pub struct Plan {
    pub headers: Vec<String>,
    pub targets: Vec<Option<Target>>,
}

impl Plan {
    /// The headers nothing reads, for the answer.
    pub fn ignored(&self) -> Vec<String> {
        self.headers
            .iter()
            .zip(&self.targets)
            .filter(|(_, t)| t.is_none())
            .map(|(h, _)| h.clone())
            .collect()
    }

    /// The position of the column that fills `target`.
    pub fn position(&self, target: &Target) -> Option<usize> {
        self.targets.iter().position(|t| t.as_ref() == Some(target))
    }
}

/// Other names for a column: (normalised synonym, column, only for this kind).
const SYNONYMS: &[(&str, &str, Option<Resource>)] = &[
    ("mail", "email", None),
    ("emailaddress", "email", None),
    ("first", "first_name", None),
    ("givenname", "first_name", None),
    ("forename", "first_name", None),
    ("last", "last_name", None),
    ("surname", "last_name", None),
    ("familyname", "last_name", None),
    ("phonenumber", "phone", None),
    ("telephone", "phone", None),
    ("tel", "phone", None),
    ("workphone", "phone", None),
    ("mobilephone", "mobile", None),
    ("mobilenumber", "mobile", None),
    ("cellphone", "mobile", None),
    ("title", "job_title", None),
    ("position", "job_title", None),
    ("company", "company_name", Some(Resource::Leads)),
    ("organization", "company_name", Some(Resource::Leads)),
    ("organisation", "company_name", Some(Resource::Leads)),
    ("account", "company_name", Some(Resource::Leads)),
    ("accountname", "company_name", Some(Resource::Leads)),
    ("company", "name", Some(Resource::Companies)),
    ("companyname", "name", Some(Resource::Companies)),
    ("organization", "name", Some(Resource::Companies)),
    ("organisation", "name", Some(Resource::Companies)),
    ("accountname", "name", Some(Resource::Companies)),
    ("dealname", "name", Some(Resource::Opportunities)),
    ("opportunityname", "name", Some(Resource::Opportunities)),
    ("source", "lead_source", None),
    ("leadstatus", "status", Some(Resource::Leads)),
    ("employees", "company_size", None),
    ("numberofemployees", "company_size", None),
    ("headcount", "company_size", None),
    ("employees", "employee_count", None),
    ("numberofemployees", "employee_count", None),
    ("headcount", "employee_count", None),
    ("revenue", "annual_revenue", None),
    ("value", "estimated_value", None),
    ("dealvalue", "estimated_value", None),
    ("dealvalue", "amount", None),
    ("dealstage", "stage", None),
    ("closedate", "expected_close_date", None),
    ("duedate", "due_at", None),
    ("due", "due_at", None),
    ("type", "task_type", None),
    ("type", "contact_type", None),
    ("owneremail", "owner", None),
    ("leadowner", "owner", None),
    ("contactowner", "owner", None),
    ("dealowner", "owner", None),
    ("recordowner", "owner", None),
    ("assignee", "assigned_to", None),
    ("assignedtoemail", "assigned_to", None),
    ("zip", "postal_code", None),
    ("zipcode", "postal_code", None),
    ("postcode", "postal_code", None),
    ("address", "address_line1", None),
    ("street", "address_line1", None),
    ("streetaddress", "address_line1", None),
    ("province", "state", None),
    ("region", "state", None),
    ("url", "website", None),
    ("web", "website", None),
    ("linkedinurl", "linkedin", None),
    ("companydomain", "domain", None),
    ("labels", "tags", None),
    ("note", "notes", None),
    ("comments", "notes", None),
    ("description", "notes", None),
];

/// Lower case without spaces, dashes, underscores or dots.
fn normalise(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, ' ' | '-' | '_' | '.'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// The field a header or mapping value names, if any.
fn resolve(resource: Resource, name: &str) -> Result<Option<Target>, String> {
    let name = name.trim();
    if let Some(key) = name
        .get(..7)
        .filter(|p| p.eq_ignore_ascii_case("custom."))
        .map(|_| &name[7..])
    {
        let valid = !key.is_empty()
            && key.chars().count() <= MAX_CUSTOM_FIELD_KEY_CHARS
            && key
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '-');
        return if valid {
            Ok(Some(Target::Custom(key.to_string())))
        } else {
            Err(format!(
                "custom field key {key:?} must be 1-64 letters, digits, '_' or '-'"
            ))
        };
    }
    let wanted = normalise(name);
    if wanted == "id" {
        return Ok(Some(Target::Id));
    }
    let columns = resource.columns();
    let by_name = |column: &str| {
        columns
            .iter()
            .find(|c| c.importable && c.name == column)
            .map(Target::Column)
    };
    if let Some(column) = columns
        .iter()
        .find(|c| c.importable && normalise(c.name) == wanted)
    {
        return Ok(Some(Target::Column(column)));
    }
    Ok(SYNONYMS
        .iter()
        .filter(|(synonym, _, only)| *synonym == wanted && only.is_none_or(|r| r == resource))
        .find_map(|(_, column, _)| by_name(column)))
}

/// Plans the columns of a file, whose header is on `line`. `mapping` (header → field name, or
/// `null`/`""` to ignore the column) overrides the automatic match for the headers it names.
/// Duplicate headers, a mapping naming a header the file lacks or a field that does not exist,
/// and two columns filling one field are errors.
pub fn plan(
    resource: Resource,
    headers: Vec<String>,
    line: u64,
    mapping: &HashMap<String, Option<String>>,
) -> AppResult<Plan> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, header) in headers.iter().enumerate() {
        if header.is_empty() {
            continue;
        }
        if let Some(first) = seen.insert(header.to_lowercase(), i) {
            return Err(AppError::bad_input(
                "file",
                format!(
                    "line {line}: the header {header:?} appears twice (columns {} and {})",
                    first + 1,
                    i + 1
                ),
            ));
        }
    }
    for header in mapping.keys() {
        if !headers.iter().any(|h| h == header) {
            return Err(AppError::bad_input(
                "mapping",
                format!("the mapping names the header {header:?}, which the file does not have"),
            ));
        }
    }
    let mut targets = Vec::with_capacity(headers.len());
    for header in &headers {
        let target = match mapping.get(header) {
            Some(None) => None,
            Some(Some(field)) if field.trim().is_empty() => None,
            Some(Some(field)) => Some(
                resolve(resource, field)
                    .map_err(|e| AppError::bad_input("mapping", e))?
                    .ok_or_else(|| {
                        AppError::bad_input(
                            "mapping",
                            format!(
                                "{field:?} (for {header:?}) is not an importable field of {}",
                                resource.name()
                            ),
                        )
                    })?,
            ),
            None if header.is_empty() => None,
            // An unmatched header is ignored, not an error: files carry columns we don't keep.
            None => resolve(resource, header).ok().flatten(),
        };
        targets.push(target);
    }
    for (i, target) in targets.iter().enumerate() {
        if let Some(target) = target {
            if let Some(j) = targets[..i].iter().position(|t| t.as_ref() == Some(target)) {
                return Err(AppError::bad_input(
                    "mapping",
                    format!(
                        "the columns {:?} and {:?} both fill {}; map one of them to null",
                        headers[j],
                        headers[i],
                        target.name()
                    ),
                ));
            }
        }
    }
    Ok(Plan { headers, targets })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(plan: &Plan) -> Vec<Option<String>> {
        plan.targets
            .iter()
            .map(|t| t.as_ref().map(Target::name))
            .collect()
    }

    #[test]
    fn headers_match_ignoring_case_and_synonyms() {
        let headers = [
            "E-mail",
            "First Name",
            "Company",
            "Phone Number",
            "Lead Source",
            "Shoe size",
            "custom.Region",
            "ID",
            "score",
        ];
        let plan = plan(
            Resource::Leads,
            headers.iter().map(|h| h.to_string()).collect(),
            1,
            &HashMap::new(),
        )
        .unwrap();
        assert_eq!(
            names(&plan),
            vec![
                Some("email".into()),
                Some("first_name".into()),
                Some("company_name".into()),
                Some("phone".into()),
                Some("lead_source".into()),
                None,
                Some("custom.Region".into()),
                Some("id".into()),
                None,
            ]
        );
        assert_eq!(plan.ignored(), vec!["Shoe size", "score"]);
    }

    #[test]
    fn mapping_overrides_and_is_checked() {
        let headers = vec!["Mail".to_string(), "Org".to_string()];
        let mapping = HashMap::from([
            ("Org".to_string(), Some("companyName".to_string())),
            ("Mail".to_string(), None),
        ]);
        let plan = plan(Resource::Leads, headers.clone(), 1, &mapping).unwrap();
        assert_eq!(names(&plan), vec![None, Some("company_name".into())]);
        let bad = HashMap::from([("Org".to_string(), Some("nope".to_string()))]);
        assert!(super::plan(Resource::Leads, headers.clone(), 1, &bad).is_err());
        let missing = HashMap::from([("Nope".to_string(), Some("email".to_string()))]);
        assert!(super::plan(Resource::Leads, headers, 1, &missing).is_err());
        let twice = vec!["Email".to_string(), "E-mail".to_string()];
        assert!(super::plan(Resource::Leads, twice, 1, &HashMap::new()).is_err());
        let dup = vec!["email".to_string(), "Email".to_string()];
        let err = super::plan(Resource::Leads, dup, 3, &HashMap::new()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 3: the header \"Email\" appears twice (columns 1 and 2)"
        );
    }
}
