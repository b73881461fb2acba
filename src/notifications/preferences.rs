//! What a user wants to hear about, where and when: the event types and channels, the
//! per-type switches, digests and do-not-disturb, read in the user's own timezone. The rules
//! here are pure (a clock is a parameter), so the tests can move it across midnight and
//! timezones.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::auth::parse_timezone;
use crate::error::{AppError, AppResult};

/// Why someone is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// @someone in a comment.
    Mention,
    /// A record or task assigned to you.
    Assignment,
    /// A comment on a record you own or follow.
    Comment,
    /// Someone else changed a record you own or follow.
    Update,
    /// A task due soon or overdue.
    Reminder,
    /// A workflow's send_notification.
    Workflow,
    /// Import finished, model retrained, job failed.
    System,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::Mention,
        Kind::Assignment,
        Kind::Comment,
        Kind::Update,
        Kind::Reminder,
        Kind::Workflow,
        Kind::System,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Mention => "mention",
            Kind::Assignment => "assignment",
            Kind::Comment => "comment",
            Kind::Update => "update",
            Kind::Reminder => "reminder",
            Kind::Workflow => "workflow",
            Kind::System => "system",
        }
    }

    pub fn parse(name: &str) -> Option<Kind> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// Where someone is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    InApp,
    Email,
    Push,
    Sms,
}

impl Channel {
    pub const ALL: [Channel; 4] = [Channel::InApp, Channel::Email, Channel::Push, Channel::Sms];
    /// The channels a delivery job carries (in-app is the stored notification itself).
    pub const OUTSIDE: [Channel; 3] = [Channel::Email, Channel::Push, Channel::Sms];

    pub fn name(self) -> &'static str {
        match self {
            Channel::InApp => "in_app",
            Channel::Email => "email",
            Channel::Push => "push",
            Channel::Sms => "sms",
        }
    }

    pub fn parse(name: &str) -> Option<Channel> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }

    /// Whether a user's channel is on when they never said.
    fn on_by_default(self) -> bool {
        matches!(self, Channel::InApp | Channel::Email)
    }
}

/// Whether a type reaches a channel when the user never said: everything, except the mail
/// of every change to records one follows (the noisy one; the bell still has it).
fn default_switch(kind: Kind, channel: Channel) -> bool {
    !(kind == Kind::Update && channel == Channel::Email)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Digest {
    Off,
    Daily,
    Weekly,
}

impl Digest {
    pub fn name(self) -> &'static str {
        match self {
            Digest::Off => "off",
            Digest::Daily => "daily",
            Digest::Weekly => "weekly",
        }
    }

    pub fn parse(name: &str) -> Option<Digest> {
        [Digest::Off, Digest::Daily, Digest::Weekly]
            .into_iter()
            .find(|d| d.name() == name)
    }

    /// The time one digest covers (the gap between two slots).
    pub fn period(self) -> Duration {
        match self {
            Digest::Weekly => Duration::days(7),
            _ => Duration::days(1),
        }
    }
}

/// Do not disturb: from `start` to `end` local time (past midnight when `end` ≤ `start`),
/// starting on `days`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuietHours {
    pub enabled: bool,
    pub start: NaiveTime,
    pub end: NaiveTime,
    pub days: Vec<Weekday>,
}

/// One user's preferences, complete (defaults filled in).
#[derive(Debug, Clone, PartialEq)]
pub struct Preferences {
    pub timezone: Tz,
    /// Channels the user switched; the others are at their defaults.
    pub channels: BTreeMap<Channel, bool>,
    /// Type × channel switches the user set; the others are at their defaults.
    pub matrix: BTreeMap<(Kind, Channel), bool>,
    pub digest: Digest,
    pub digest_weekday: Weekday,
    pub digest_time: NaiveTime,
    pub quiet: QuietHours,
    pub sms_number: Option<String>,
}

impl Default for Preferences {
    fn default() -> Self {
        Preferences {
            timezone: Tz::UTC,
            channels: BTreeMap::new(),
            matrix: BTreeMap::new(),
            digest: Digest::Off,
            digest_weekday: Weekday::Mon,
            digest_time: hm(8, 0),
            quiet: QuietHours {
                enabled: false,
                start: hm(22, 0),
                end: hm(7, 0),
                days: ALL_DAYS.to_vec(),
            },
            sms_number: None,
        }
    }
}

pub const ALL_DAYS: [Weekday; 7] = [
    Weekday::Mon,
    Weekday::Tue,
    Weekday::Wed,
    Weekday::Thu,
    Weekday::Fri,
    Weekday::Sat,
    Weekday::Sun,
];

fn hm(hour: u32, minute: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(hour, minute, 0).expect("a valid time")
}

impl Preferences {
    pub fn channel_on(&self, channel: Channel) -> bool {
        self.channels
            .get(&channel)
            .copied()
            .unwrap_or_else(|| channel.on_by_default())
    }

    /// Whether `kind` reaches the user on `channel`.
    pub fn wants(&self, kind: Kind, channel: Channel) -> bool {
        self.channel_on(channel)
            && self
                .matrix
                .get(&(kind, channel))
                .copied()
                .unwrap_or_else(|| default_switch(kind, channel))
    }

    /// When a delivery outside the app may go: `now`, or the end of the quiet hours `now`
    /// falls in.
    pub fn deliver_at(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        self.quiet_until(now).unwrap_or(now)
    }

    /// The end of the quiet hours `now` is in, if it is in some.
    pub fn quiet_until(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let quiet = &self.quiet;
        if !quiet.enabled || quiet.start == quiet.end {
            return None;
        }
        let local = now.with_timezone(&self.timezone).naive_local();
        let overnight = quiet.end <= quiet.start;
        // A window that started today, or one that started yesterday and runs past midnight.
        let today = local.date();
        let mut candidates = vec![today];
        if overnight {
            candidates.push(today.pred_opt()?);
        }
        for day in candidates {
            if !quiet.days.contains(&day.weekday()) {
                continue;
            }
            let start = day.and_time(quiet.start);
            let end_day = if overnight { day.succ_opt()? } else { day };
            let end = end_day.and_time(quiet.end);
            if start <= local && local < end {
                return Some(self.utc(end));
            }
        }
        None
    }

    /// The user's local day that holds `now`, as a UTC range [start, end).
    pub fn local_day(&self, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
        let day = now.with_timezone(&self.timezone).date_naive();
        let next = day.succ_opt().unwrap_or(day);
        (
            self.utc(day.and_time(NaiveTime::MIN)),
            self.utc(next.and_time(NaiveTime::MIN)),
        )
    }

    /// A local time of the user's timezone as UTC (a time skipped by a daylight-saving jump
    /// is read an hour later).
    fn utc(&self, local: NaiveDateTime) -> DateTime<Utc> {
        use chrono::TimeZone;
        self.timezone
            .from_local_datetime(&local)
            .earliest()
            .or_else(|| {
                self.timezone
                    .from_local_datetime(&(local + Duration::hours(1)))
                    .earliest()
            })
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|| local.and_utc())
    }

    /// The digest slot at or before `now` (the last time a digest was due), if digests are on.
    pub fn digest_due(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = now.with_timezone(&self.timezone).naive_local();
        let mut day: NaiveDate = local.date();
        for _ in 0..8 {
            let slot = day.and_time(self.digest_time);
            let right_day = match self.digest {
                Digest::Off => return None,
                Digest::Daily => true,
                Digest::Weekly => day.weekday() == self.digest_weekday,
            };
            if right_day && slot <= local {
                return Some(self.utc(slot));
            }
            day = day.pred_opt()?;
        }
        None
    }
}

/// A change to preferences, as the API takes it; omitted parts stay.
#[derive(Debug, Clone, Default)]
pub struct PreferencesPatch {
    pub timezone: Option<String>,
    pub channels: Vec<(Channel, bool)>,
    pub matrix: Vec<(Kind, Channel, bool)>,
    pub digest: Option<Digest>,
    /// ISO weekday, 1 (Monday) to 7.
    pub digest_weekday: Option<i32>,
    pub digest_time: Option<String>,
    pub quiet_enabled: Option<bool>,
    pub quiet_start: Option<String>,
    pub quiet_end: Option<String>,
    pub quiet_days: Option<Vec<i32>>,
    /// Empty clears it.
    pub sms_number: Option<String>,
}

/// Which outside channels this server can deliver on (a gateway is configured).
#[derive(Debug, Clone, Copy)]
pub struct Gateways {
    pub push: bool,
    pub sms: bool,
}

impl Preferences {
    /// The preferences with `patch` applied; every problem names its input field.
    pub fn apply(&self, patch: PreferencesPatch, gateways: Gateways) -> AppResult<Preferences> {
        let mut next = self.clone();
        if let Some(tz) = patch.timezone {
            next.timezone = parse_timezone("timezone", &tz)?;
        }
        next.channels.extend(patch.channels);
        next.matrix
            .extend(patch.matrix.into_iter().map(|(k, c, on)| ((k, c), on)));
        if let Some(digest) = patch.digest {
            next.digest = digest;
        }
        if let Some(day) = patch.digest_weekday {
            next.digest_weekday = weekday("digestWeekday", day)?;
        }
        if let Some(time) = patch.digest_time {
            next.digest_time = time_of_day("digestTime", &time)?;
        }
        if let Some(on) = patch.quiet_enabled {
            next.quiet.enabled = on;
        }
        if let Some(time) = patch.quiet_start {
            next.quiet.start = time_of_day("doNotDisturb.start", &time)?;
        }
        if let Some(time) = patch.quiet_end {
            next.quiet.end = time_of_day("doNotDisturb.end", &time)?;
        }
        if let Some(days) = patch.quiet_days {
            let mut parsed = days
                .into_iter()
                .map(|d| weekday("doNotDisturb.days", d))
                .collect::<AppResult<Vec<_>>>()?;
            parsed.sort_by_key(|d| d.number_from_monday());
            parsed.dedup();
            next.quiet.days = parsed;
        }
        if next.quiet.enabled && next.quiet.start == next.quiet.end {
            return Err(AppError::bad_input(
                "doNotDisturb.end",
                "the quiet hours end when they start",
            ));
        }
        if let Some(number) = patch.sms_number {
            let number: String = number.chars().filter(|c| !c.is_whitespace()).collect();
            next.sms_number = if number.is_empty() {
                None
            } else if is_e164(&number) {
                Some(number)
            } else {
                return Err(AppError::bad_input(
                    "smsNumber",
                    "a phone number in international form, like +14155550123",
                ));
            };
        }
        if next.channel_on(Channel::Push) && !gateways.push {
            return Err(AppError::bad_input(
                "channels",
                "this server has no push gateway (MYCRM_PUSH_URL)",
            ));
        }
        if next.channel_on(Channel::Sms) {
            if !gateways.sms {
                return Err(AppError::bad_input(
                    "channels",
                    "this server has no SMS gateway (MYCRM_SMS_URL)",
                ));
            }
            if next.sms_number.is_none() {
                return Err(AppError::bad_input(
                    "smsNumber",
                    "the sms channel needs a phone number",
                ));
            }
        }
        Ok(next)
    }
}

fn weekday(field: &str, iso: i32) -> AppResult<Weekday> {
    usize::try_from(iso - 1)
        .ok()
        .and_then(|i| ALL_DAYS.get(i).copied())
        .ok_or_else(|| AppError::bad_input(field, "a weekday from 1 (Monday) to 7 (Sunday)"))
}

fn time_of_day(field: &str, text: &str) -> AppResult<NaiveTime> {
    NaiveTime::parse_from_str(text.trim(), "%H:%M")
        .map_err(|_| AppError::bad_input(field, "a time of day like 07:30 (24-hour clock)"))
}

fn is_e164(number: &str) -> bool {
    let digits = number.strip_prefix('+').unwrap_or("");
    (7..=15).contains(&digits.len())
        && digits.chars().all(|c| c.is_ascii_digit())
        && !digits.starts_with('0')
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    fn quiet(tz: &str, start: (u32, u32), end: (u32, u32), days: &[Weekday]) -> Preferences {
        Preferences {
            timezone: tz.parse().unwrap(),
            quiet: QuietHours {
                enabled: true,
                start: hm(start.0, start.1),
                end: hm(end.0, end.1),
                days: days.to_vec(),
            },
            ..Preferences::default()
        }
    }

    #[test]
    fn quiet_hours_span_midnight_in_the_users_timezone() {
        // 22:00-07:00 in Paris (UTC+1 in November).
        let prefs = quiet("Europe/Paris", (22, 0), (7, 0), &ALL_DAYS);
        // 20:59 UTC = 21:59 Paris: not yet.
        assert_eq!(prefs.quiet_until(utc(2026, 11, 24, 20, 59)), None);
        // 21:00 UTC = 22:00 Paris: held until 07:00 Paris = 06:00 UTC the next day.
        assert_eq!(
            prefs.quiet_until(utc(2026, 11, 24, 21, 0)),
            Some(utc(2026, 11, 25, 6, 0))
        );
        // 03:00 UTC = 04:00 Paris, after midnight: the window of the day before.
        assert_eq!(
            prefs.quiet_until(utc(2026, 11, 25, 3, 0)),
            Some(utc(2026, 11, 25, 6, 0))
        );
        assert_eq!(prefs.quiet_until(utc(2026, 11, 25, 6, 0)), None);
        assert_eq!(
            prefs.deliver_at(utc(2026, 11, 25, 12, 0)),
            utc(2026, 11, 25, 12, 0)
        );
    }

    #[test]
    fn quiet_hours_keep_to_their_days() {
        // Weekends only, starting Friday and Saturday nights, in Tokyo (UTC+9).
        let prefs = quiet("Asia/Tokyo", (20, 0), (8, 0), &[Weekday::Fri, Weekday::Sat]);
        // Thursday 2026-11-26 21:00 Tokyo: not a quiet day.
        assert_eq!(prefs.quiet_until(utc(2026, 11, 26, 12, 0)), None);
        // Friday 21:00 Tokyo: until Saturday 08:00 Tokyo (Friday 23:00 UTC).
        assert_eq!(
            prefs.quiet_until(utc(2026, 11, 27, 12, 0)),
            Some(utc(2026, 11, 27, 23, 0))
        );
        // Sunday 2026-11-29 07:00 Tokyo: inside Saturday's window, until 08:00.
        assert_eq!(
            prefs.quiet_until(utc(2026, 11, 28, 22, 0)),
            Some(utc(2026, 11, 28, 23, 0))
        );
        // Monday 07:00 Tokyo: Sunday started no window.
        assert_eq!(prefs.quiet_until(utc(2026, 11, 29, 22, 0)), None);
        // A daytime window (no midnight).
        let lunch = quiet("UTC", (12, 0), (13, 0), &ALL_DAYS);
        assert_eq!(
            lunch.quiet_until(utc(2026, 11, 24, 12, 30)),
            Some(utc(2026, 11, 24, 13, 0))
        );
        assert_eq!(lunch.quiet_until(utc(2026, 11, 24, 13, 30)), None);
    }

    #[test]
    fn defaults_and_switches() {
        let prefs = Preferences::default();
        assert!(prefs.wants(Kind::Mention, Channel::Email));
        assert!(prefs.wants(Kind::Update, Channel::InApp));
        assert!(!prefs.wants(Kind::Update, Channel::Email));
        assert!(!prefs.wants(Kind::Mention, Channel::Push));
        let gateways = Gateways {
            push: true,
            sms: false,
        };
        let changed = prefs
            .apply(
                PreferencesPatch {
                    channels: vec![(Channel::Push, true), (Channel::Email, false)],
                    matrix: vec![(Kind::Reminder, Channel::Push, false)],
                    ..Default::default()
                },
                gateways,
            )
            .unwrap();
        assert!(changed.wants(Kind::Mention, Channel::Push));
        assert!(!changed.wants(Kind::Reminder, Channel::Push));
        assert!(!changed.wants(Kind::Mention, Channel::Email));
    }

    #[test]
    fn bad_input_names_its_field() {
        let gateways = Gateways {
            push: false,
            sms: true,
        };
        let field = |patch: PreferencesPatch| match Preferences::default().apply(patch, gateways) {
            Err(AppError::BadUserInput { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        let p = PreferencesPatch::default;
        assert_eq!(
            field(PreferencesPatch {
                timezone: Some("Moon/Base".into()),
                ..p()
            }),
            "timezone"
        );
        assert_eq!(
            field(PreferencesPatch {
                digest_time: Some("25:00".into()),
                ..p()
            }),
            "digestTime"
        );
        assert_eq!(
            field(PreferencesPatch {
                quiet_start: Some("7pm".into()),
                ..p()
            }),
            "doNotDisturb.start"
        );
        assert_eq!(
            field(PreferencesPatch {
                quiet_days: Some(vec![0]),
                ..p()
            }),
            "doNotDisturb.days"
        );
        assert_eq!(
            field(PreferencesPatch {
                digest_weekday: Some(8),
                ..p()
            }),
            "digestWeekday"
        );
        assert_eq!(
            field(PreferencesPatch {
                sms_number: Some("555-1234".into()),
                ..p()
            }),
            "smsNumber"
        );
        assert_eq!(
            field(PreferencesPatch {
                channels: vec![(Channel::Sms, true)],
                ..p()
            }),
            "smsNumber"
        );
        assert_eq!(
            field(PreferencesPatch {
                channels: vec![(Channel::Push, true)],
                ..p()
            }),
            "channels"
        );
        assert_eq!(
            field(PreferencesPatch {
                quiet_enabled: Some(true),
                quiet_start: Some("07:00".into()),
                quiet_end: Some("07:00".into()),
                ..p()
            }),
            "doNotDisturb.end"
        );
    }

    #[test]
    fn digests_fall_due_at_the_local_time() {
        let prefs = Preferences {
            timezone: "America/Los_Angeles".parse().unwrap(),
            digest: Digest::Weekly,
            digest_weekday: Weekday::Fri,
            digest_time: hm(17, 0),
            ..Preferences::default()
        };
        // Tuesday 2026-11-24: the last due slot was Friday 2026-11-20 17:00 PST (01:00 UTC).
        assert_eq!(
            prefs.digest_due(utc(2026, 11, 24, 18, 0)),
            Some(utc(2026, 11, 21, 1, 0))
        );
        let daily = Preferences {
            digest: Digest::Daily,
            ..prefs.clone()
        };
        assert_eq!(
            daily.digest_due(utc(2026, 11, 24, 18, 0)),
            Some(utc(2026, 11, 24, 1, 0))
        );
        assert_eq!(
            Preferences::default().digest_due(utc(2026, 11, 24, 18, 0)),
            None
        );
    }
}
