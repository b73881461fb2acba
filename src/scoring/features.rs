//! What a lead looks like to a scorer: the facts read from the record and its activities
//! (`LeadFacts`), and the numeric row a model reads, built by the feature list stored with the
//! model (`FeatureSet`), so a model never reads a feature it was not trained on.
//!
//! Categorical values (industry, country, source, priority, text custom fields) are encoded
//! as their smoothed conversion rate among the training leads; values seen fewer than
//! `MIN_CATEGORY_COUNT` times share one "(other)" bucket, so a rare value cannot overfit.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use diesel::sql_types::{
    Array, BigInt, Bool, Double, Int2, Int4, Jsonb, Nullable, Text, Timestamptz,
};
use diesel::QueryableByName;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A lead as the scorers see it.
#[derive(Debug, Clone, QueryableByName)]
pub struct LeadFacts {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub status: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub lead_source: Option<String>,
    #[diesel(sql_type = Nullable<Int4>)]
    pub company_size: Option<i32>,
    #[diesel(sql_type = Nullable<Double>)]
    pub estimated_value: Option<f64>,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = Bool)]
    pub has_email: bool,
    #[diesel(sql_type = Bool)]
    pub has_phone: bool,
    #[diesel(sql_type = Bool)]
    pub has_company: bool,
    #[diesel(sql_type = Nullable<Text>)]
    pub job_title: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub industry: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub country: Option<String>,
    #[diesel(sql_type = Text)]
    pub priority: String,
    #[diesel(sql_type = Jsonb)]
    pub custom_fields: Value,
    #[diesel(sql_type = Array<Nullable<Text>>)]
    pub tags: Vec<Option<String>>,
    #[diesel(sql_type = Nullable<Int2>)]
    pub score: Option<i16>,
    #[diesel(sql_type = BigInt)]
    pub calls: i64,
    #[diesel(sql_type = BigInt)]
    pub emails: i64,
    #[diesel(sql_type = BigInt)]
    pub meetings: i64,
    #[diesel(sql_type = BigInt)]
    pub notes: i64,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub last_activity_at: Option<DateTime<Utc>>,
}

impl LeadFacts {
    pub fn activities(&self) -> i64 {
        self.calls + self.emails + self.meetings + self.notes
    }

    /// How many of email, phone, company and title are present.
    pub fn completeness(&self) -> u32 {
        [
            self.has_email,
            self.has_phone,
            self.has_company,
            self.job_title
                .as_deref()
                .is_some_and(|t| !t.trim().is_empty()),
        ]
        .iter()
        .filter(|&&b| b)
        .count() as u32
    }

    /// The label for training: converted = 1; lost and unqualified = 0; open leads none.
    pub fn label(&self) -> Option<bool> {
        match self.status.as_str() {
            "converted" => Some(true),
            "lost" | "unqualified" => Some(false),
            _ => None,
        }
    }

    fn field(&self, field: Field) -> Option<&str> {
        match field {
            Field::Industry => self.industry.as_deref(),
            Field::Country => self.country.as_deref(),
            Field::LeadSource => self.lead_source.as_deref(),
            Field::Priority => Some(self.priority.as_str()),
        }
    }

    fn tags(&self) -> impl Iterator<Item = &str> {
        self.tags.iter().flatten().map(String::as_str)
    }
}

/// The SELECT list and joins that read `LeadFacts` for leads `l` (activities counted by kind;
/// comments count with notes).
pub const FACTS_SQL: &str = "SELECT l.id, l.status, l.lead_source, l.company_size, \
    l.estimated_value::float8 AS estimated_value, l.created_at, \
    coalesce(l.email, '') <> '' AS has_email, coalesce(l.phone, '') <> '' AS has_phone, \
    coalesce(l.company_name, '') <> '' AS has_company, l.job_title, l.industry, l.country, \
    l.priority, l.custom_fields, l.tags, l.score, \
    coalesce(a.calls, 0) AS calls, coalesce(a.emails, 0) AS emails, \
    coalesce(a.meetings, 0) AS meetings, coalesce(a.notes, 0) AS notes, a.last_activity_at \
    FROM leads l LEFT JOIN LATERAL ( \
      SELECT count(*) FILTER (WHERE kind = 'call') AS calls, \
        count(*) FILTER (WHERE kind = 'email') AS emails, \
        count(*) FILTER (WHERE kind = 'meeting') AS meetings, \
        count(*) FILTER (WHERE kind IN ('note', 'comment')) AS notes, \
        max(occurred_at) AS last_activity_at \
      FROM activities WHERE lead_id = l.id AND deleted_at IS NULL) a ON true";

/// The lead columns that feed a feature: a change to one of them calls for a new score.
pub const FEATURE_COLUMNS: &[&str] = &[
    "lead_source",
    "company_size",
    "estimated_value",
    "email",
    "phone",
    "company_name",
    "job_title",
    "industry",
    "country",
    "priority",
    "custom_fields",
    "tags",
];

/// Job title seniority, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Seniority {
    None,
    Other,
    Manager,
    HeadOrLead,
    Director,
    Vp,
    OwnerOrFounder,
    CLevel,
}

impl Seniority {
    pub fn of(title: Option<&str>) -> Seniority {
        let Some(title) = title.map(str::trim).filter(|t| !t.is_empty()) else {
            return Seniority::None;
        };
        let lower = title.to_lowercase();
        let words: Vec<&str> = lower
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .collect();
        let has = |w: &str| words.contains(&w);
        if [
            "ceo",
            "cto",
            "cfo",
            "coo",
            "cmo",
            "cio",
            "cro",
            "chief",
            "president",
        ]
        .iter()
        .any(|w| has(w))
            && !has("vice")
        {
            Seniority::CLevel
        } else if has("owner") || has("founder") || lower.contains("co-founder") {
            Seniority::OwnerOrFounder
        } else if has("vp") || has("svp") || has("evp") || lower.contains("vice president") {
            Seniority::Vp
        } else if has("director") {
            Seniority::Director
        } else if has("head") || has("lead") {
            Seniority::HeadOrLead
        } else if has("manager") {
            Seniority::Manager
        } else {
            Seniority::Other
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Seniority::None => "none",
            Seniority::Other => "other",
            Seniority::Manager => "manager",
            Seniority::HeadOrLead => "head/lead",
            Seniority::Director => "director",
            Seniority::Vp => "vp",
            Seniority::OwnerOrFounder => "owner/founder",
            Seniority::CLevel => "c-level",
        }
    }
}

/// A feature computed from the record itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Builtin {
    SourceQuality,
    LeadAgeDays,
    CompanySize,
    EstimatedValue,
    Activities,
    Calls,
    Emails,
    Meetings,
    Notes,
    DaysSinceLastActivity,
    Completeness,
    TitleSeniority,
}

impl Builtin {
    const ALL: [Builtin; 12] = [
        Builtin::SourceQuality,
        Builtin::LeadAgeDays,
        Builtin::CompanySize,
        Builtin::EstimatedValue,
        Builtin::Activities,
        Builtin::Calls,
        Builtin::Emails,
        Builtin::Meetings,
        Builtin::Notes,
        Builtin::DaysSinceLastActivity,
        Builtin::Completeness,
        Builtin::TitleSeniority,
    ];

    fn name(self) -> &'static str {
        match self {
            Builtin::SourceQuality => "source_quality",
            Builtin::LeadAgeDays => "lead_age_days",
            Builtin::CompanySize => "company_size",
            Builtin::EstimatedValue => "estimated_value",
            Builtin::Activities => "activities",
            Builtin::Calls => "calls",
            Builtin::Emails => "emails",
            Builtin::Meetings => "meetings",
            Builtin::Notes => "notes_and_comments",
            Builtin::DaysSinceLastActivity => "days_since_last_activity",
            Builtin::Completeness => "completeness",
            Builtin::TitleSeniority => "title_seniority",
        }
    }

    /// The value (no text built: this runs for every feature of every lead scored).
    fn value(self, lead: &LeadFacts, now: DateTime<Utc>) -> f64 {
        let days = |t: DateTime<Utc>| ((now - t).num_seconds() as f64 / 86_400.0).max(0.0).floor();
        match self {
            Builtin::SourceQuality => {
                super::rules::source_points(lead.lead_source.as_deref()) as f64
            }
            Builtin::LeadAgeDays => days(lead.created_at),
            Builtin::CompanySize => lead.company_size.map_or(f64::NAN, f64::from),
            Builtin::EstimatedValue => lead
                .estimated_value
                .filter(|v| v.is_finite())
                .unwrap_or(f64::NAN),
            Builtin::Activities => lead.activities() as f64,
            Builtin::Calls => lead.calls as f64,
            Builtin::Emails => lead.emails as f64,
            Builtin::Meetings => lead.meetings as f64,
            Builtin::Notes => lead.notes as f64,
            Builtin::DaysSinceLastActivity => lead.last_activity_at.map_or(f64::NAN, days),
            Builtin::Completeness => lead.completeness() as f64,
            Builtin::TitleSeniority => Seniority::of(lead.job_title.as_deref()) as u8 as f64,
        }
    }

    /// How an explanation shows the value.
    fn display(self, lead: &LeadFacts, now: DateTime<Utc>) -> String {
        match self {
            Builtin::SourceQuality => lead.lead_source.clone().unwrap_or_else(|| "none".into()),
            Builtin::DaysSinceLastActivity if lead.last_activity_at.is_none() => "never".into(),
            Builtin::Completeness => format!("{}/4", lead.completeness()),
            Builtin::TitleSeniority => Seniority::of(lead.job_title.as_deref()).name().into(),
            _ => {
                let value = self.value(lead, now);
                if value.is_nan() {
                    String::new()
                } else {
                    value.to_string()
                }
            }
        }
    }
}

/// A categorical column of the lead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    Industry,
    Country,
    LeadSource,
    Priority,
}

impl Field {
    const ALL: [Field; 4] = [
        Field::Industry,
        Field::Country,
        Field::LeadSource,
        Field::Priority,
    ];

    fn name(self) -> &'static str {
        match self {
            Field::Industry => "industry",
            Field::Country => "country",
            Field::LeadSource => "lead_source",
            Field::Priority => "priority",
        }
    }
}

/// A category's encoding: the smoothed conversion rate of each kept value; the rest share
/// `other`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rates {
    pub rates: BTreeMap<String, f64>,
    pub other: f64,
}

impl Rates {
    fn encode(&self, value: &str) -> f64 {
        self.rates.get(value).copied().unwrap_or(self.other)
    }
}

/// Where a feature's value comes from and how it is encoded.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Feature {
    Builtin { builtin: Builtin },
    Field { field: Field, encoding: Rates },
    CustomNumber { key: String },
    CustomCategory { key: String, encoding: Rates },
    Tag { tag: String },
}

/// Text a missing category shows as (and is encoded as).
const NONE: &str = "(none)";
/// Values seen fewer times than this among the training leads share the "(other)" bucket.
pub const MIN_CATEGORY_COUNT: usize = 10;
/// Pseudo-count pulling a value's rate towards the overall rate.
const SMOOTHING: f64 = 20.0;
/// Custom fields and tags must be on at least this share of training leads to be features.
const MIN_PRESENCE: f64 = 0.01;
/// At most this many custom fields and tags each (the most common first).
const MAX_CUSTOM: usize = 40;
/// A custom field is numeric when at least this share of its values are numbers; the other
/// values then count as missing. Otherwise every value is a category (numbers as text).
const NUMERIC_SHARE: f64 = 0.9;

impl Feature {
    pub fn name(&self) -> String {
        match self {
            Feature::Builtin { builtin } => builtin.name().to_string(),
            Feature::Field { field, .. } => field.name().to_string(),
            Feature::CustomNumber { key } | Feature::CustomCategory { key, .. } => {
                format!("custom.{key}")
            }
            Feature::Tag { tag } => format!("tag:{tag}"),
        }
    }

    /// The encoded value (no text built: this runs for every feature of every lead scored).
    fn value(&self, lead: &LeadFacts, now: DateTime<Utc>) -> f64 {
        match self {
            Feature::Builtin { builtin } => builtin.value(lead, now),
            Feature::Field { field, encoding } => {
                encoding.encode(lead.field(*field).unwrap_or(NONE))
            }
            Feature::CustomNumber { key } => custom(lead, key).and_then(number).unwrap_or(f64::NAN),
            Feature::CustomCategory { key, encoding } => match custom(lead, key) {
                None => encoding.encode(NONE),
                Some(Value::String(s)) => encoding.encode(s.trim()),
                Some(other) => encoding.encode(&other.to_string()),
            },
            Feature::Tag { tag } => lead.tags().any(|t| t == tag) as u8 as f64,
        }
    }

    /// The value as an explanation shows it.
    fn display(&self, lead: &LeadFacts, now: DateTime<Utc>) -> String {
        match self {
            Feature::Builtin { builtin } => builtin.display(lead, now),
            Feature::Field { field, .. } => lead.field(*field).unwrap_or(NONE).to_string(),
            Feature::CustomNumber { key } => match custom(lead, key) {
                Some(v) => number(v).map_or_else(|| text(v), |x| x.to_string()),
                None => String::new(),
            },
            Feature::CustomCategory { key, .. } => {
                custom(lead, key).map(text).unwrap_or_else(|| NONE.into())
            }
            Feature::Tag { tag } => if lead.tags().any(|t| t == tag) {
                "yes"
            } else {
                "no"
            }
            .into(),
        }
    }
}

fn custom<'a>(lead: &'a LeadFacts, key: &str) -> Option<&'a Value> {
    lead.custom_fields.get(key).filter(|v| !v.is_null())
}

/// A finite number (huge values stay as they are: trees only compare them).
fn number(value: &Value) -> Option<f64> {
    value.as_f64().filter(|x| x.is_finite())
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.trim().to_string(),
        other => other.to_string(),
    }
}

/// The features a model reads, in column order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FeatureSet {
    pub features: Vec<Feature>,
}

impl FeatureSet {
    /// Chooses and encodes the features from the training leads (with their labels).
    pub fn fit(leads: &[&LeadFacts], labels: &[bool]) -> FeatureSet {
        let n = leads.len().max(1);
        let prior = labels.iter().filter(|&&l| l).count() as f64 / n as f64;
        let mut features: Vec<Feature> = Builtin::ALL
            .iter()
            .map(|&builtin| Feature::Builtin { builtin })
            .collect();
        for field in Field::ALL {
            let values = leads
                .iter()
                .map(|l| l.field(field).unwrap_or(NONE).to_string());
            features.push(Feature::Field {
                field,
                encoding: rates(values, labels, prior),
            });
        }

        // Custom fields: the common keys, numeric or categorical by what their values are.
        let mut keys: HashMap<&str, (usize, usize)> = HashMap::new(); // key → (present, numbers)
        for lead in leads {
            if let Some(map) = lead.custom_fields.as_object() {
                for (key, value) in map.iter().filter(|(_, v)| !v.is_null()) {
                    let entry = keys.entry(key.as_str()).or_default();
                    entry.0 += 1;
                    entry.1 += number(value).is_some() as usize;
                }
            }
        }
        for (key, (present, numbers)) in common(keys.into_iter().map(|(k, c)| (k, c.0, c)), n) {
            if numbers as f64 >= NUMERIC_SHARE * present as f64 {
                features.push(Feature::CustomNumber {
                    key: key.to_string(),
                });
            } else {
                let values = leads
                    .iter()
                    .map(|l| custom(l, key).map(text).unwrap_or_else(|| NONE.into()));
                features.push(Feature::CustomCategory {
                    key: key.to_string(),
                    encoding: rates(values, labels, prior),
                });
            }
        }

        let mut tags: HashMap<&str, usize> = HashMap::new();
        for lead in leads {
            for tag in lead.tags() {
                *tags.entry(tag).or_default() += 1;
            }
        }
        for (tag, _) in common(tags.into_iter().map(|(t, c)| (t, c, ())), n) {
            features.push(Feature::Tag {
                tag: tag.to_string(),
            });
        }
        FeatureSet { features }
    }

    pub fn len(&self) -> usize {
        self.features.len()
    }

    pub fn is_empty(&self) -> bool {
        self.features.is_empty()
    }

    pub fn row(&self, lead: &LeadFacts, now: DateTime<Utc>) -> Vec<f64> {
        self.features.iter().map(|f| f.value(lead, now)).collect()
    }

    /// The display text of feature `index` for `lead`.
    pub fn display(&self, index: usize, lead: &LeadFacts, now: DateTime<Utc>) -> String {
        self.features[index].display(lead, now)
    }
}

/// The keys present on at least `MIN_PRESENCE` of `n` leads (and `MIN_CATEGORY_COUNT`), most
/// common first, at most `MAX_CUSTOM`; sorted by name for a stable column order.
fn common<'a, T>(counts: impl Iterator<Item = (&'a str, usize, T)>, n: usize) -> Vec<(&'a str, T)> {
    let floor = ((n as f64 * MIN_PRESENCE).ceil() as usize).max(MIN_CATEGORY_COUNT);
    let mut kept: Vec<(&str, usize, T)> = counts.filter(|(_, c, _)| *c >= floor).collect();
    kept.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    kept.truncate(MAX_CUSTOM);
    kept.sort_by(|a, b| a.0.cmp(b.0));
    kept.into_iter().map(|(k, _, t)| (k, t)).collect()
}

/// Smoothed conversion rate per value, rare values pooled as "(other)".
fn rates(values: impl Iterator<Item = String>, labels: &[bool], prior: f64) -> Rates {
    let mut counts: HashMap<String, (usize, usize)> = HashMap::new();
    for (value, &label) in values.zip(labels) {
        let entry = counts.entry(value).or_default();
        entry.0 += 1;
        entry.1 += label as usize;
    }
    let smooth = |n: usize, pos: usize| (pos as f64 + SMOOTHING * prior) / (n as f64 + SMOOTHING);
    let (mut rare_n, mut rare_pos) = (0, 0);
    let mut rates = BTreeMap::new();
    for (value, (n, pos)) in counts {
        if n >= MIN_CATEGORY_COUNT {
            rates.insert(value, smooth(n, pos));
        } else {
            rare_n += n;
            rare_pos += pos;
        }
    }
    Rates {
        rates,
        other: smooth(rare_n, rare_pos),
    }
}
