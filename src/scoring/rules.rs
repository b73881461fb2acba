//! The rule-based scorer: the original MyCRM's points table, used whenever a workspace has no
//! usable model. Its explanation is the points of each rule (plus the cap when it bites), so
//! it adds up to the score like a model's.

use super::features::{LeadFacts, Seniority};
use super::Factor;

/// Highest score.
const CAP: i32 = 100;

/// Points for where the lead came from.
pub fn source_points(source: Option<&str>) -> i32 {
    match source {
        Some("referral") => 20,
        Some("event") => 18,
        Some("website") => 15,
        Some("email_campaign") => 12,
        Some("social_media") => 10,
        // cold_call, trade_show, advertisement, other: the table's "other".
        Some(_) => 5,
        None => 0,
    }
}

fn size_points(size: Option<i32>) -> i32 {
    match size {
        None => 0,
        Some(n) if n <= 10 => 5,
        Some(n) if n <= 50 => 10,
        Some(n) if n <= 200 => 15,
        Some(n) if n <= 1000 => 20,
        Some(_) => 25,
    }
}

fn title_points(seniority: Seniority) -> i32 {
    match seniority {
        // The table has no row for owners and founders; they decide like a C-level.
        Seniority::CLevel | Seniority::OwnerOrFounder => 25,
        Seniority::Vp | Seniority::Director => 20,
        Seniority::Manager | Seniority::HeadOrLead => 15,
        Seniority::Other => 10,
        Seniority::None => 5,
    }
}

/// The score (0-100) and the points behind it.
pub fn score(lead: &LeadFacts) -> (i32, Vec<Factor>) {
    let seniority = Seniority::of(lead.job_title.as_deref());
    let activities = lead.activities();
    let completeness = lead.completeness();
    let mut factors = vec![
        factor(
            "source_quality",
            lead.lead_source.clone().unwrap_or_else(|| "none".into()),
            source_points(lead.lead_source.as_deref()),
        ),
        factor(
            "company_size",
            lead.company_size.map(|n| n.to_string()).unwrap_or_default(),
            size_points(lead.company_size),
        ),
        factor(
            "activities",
            activities.to_string(),
            (2 * activities).min(20) as i32,
        ),
        factor(
            "title_seniority",
            seniority.name().to_string(),
            title_points(seniority),
        ),
        factor(
            "completeness",
            format!("{completeness}/4"),
            3 * completeness as i32,
        ),
    ];
    let total: i32 = factors.iter().map(|f| f.contribution as i32).sum();
    if total > CAP {
        factors.push(factor("cap", CAP.to_string(), CAP - total));
    }
    factors.retain(|f| f.contribution != 0.0);
    factors.sort_by(|a, b| b.contribution.abs().total_cmp(&a.contribution.abs()));
    (total.min(CAP), factors)
}

fn factor(feature: &str, value: String, points: i32) -> Factor {
    Factor {
        feature: feature.to_string(),
        value,
        contribution: points as f64,
    }
}
