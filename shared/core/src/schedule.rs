//! Deployment schedules, as Prefect 3.9.1 defines them (`prefect/server/schemas/schedules.py`):
//! interval, cron and RRule schedules, the dates each one makes, the scheduler's horizon and
//! the idempotency key of an auto-scheduled run.
//!
//! The dates follow Prefect's rules, including daylight-saving time:
//! - **Interval**: intervals of whole days (`86400 s` multiples) step in *local calendar days*
//!   of the schedule's time zone, so a daily 09:00 stays at 09:00 across a DST change; any
//!   other interval steps in elapsed seconds (an hourly schedule fires every UTC hour, so
//!   it *appears* twice at 01:00 when clocks go back). A local time that falls in a DST gap
//!   moves forward by the gap (02:30 → 03:30) and, as with Prefect's pendulum arithmetic,
//!   the series keeps the new wall time. Dates before the anchor are aligned on it too.
//! - **Cron** (croniter semantics, `day_or` both ways): cron fields match *wall-clock* times
//!   of the time zone; a wall time that happens twice (clocks back) is taken the first time,
//!   one that does not exist (clocks forward) is moved forward by the gap, and a date made
//!   twice that way is kept once.
//! - **RRule** (RFC 5545, dateutil's reading): `DTSTART` defaults to 2020-01-01 00:00 and its
//!   wall time is read in the schedule's time zone, whatever zone the string names.
//!
//! This module knows nothing of storage or HTTP.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use pushpool_core::schedule::Schedule;
//! let schedule = Schedule::parse(&serde_json::json!({"cron": "0 9 * * *", "timezone": "Europe/Paris"})).unwrap();
//! let start = Utc.with_ymd_and_hms(2024, 3, 30, 0, 0, 0).unwrap();
//! let dates = schedule.dates(2, start, None);
//! // 09:00 in Paris: UTC+1 before the change of 31 March 2024, UTC+2 after it.
//! assert_eq!(dates[0].with_timezone(&Utc), Utc.with_ymd_and_hms(2024, 3, 30, 8, 0, 0).unwrap());
//! assert_eq!(dates[1].with_timezone(&Utc), Utc.with_ymd_and_hms(2024, 3, 31, 7, 0, 0).unwrap());
//! ```

use std::str::FromStr;

use chrono::{
    DateTime, Duration, FixedOffset, LocalResult, NaiveDate, NaiveDateTime, Offset, TimeZone,
    Timelike, Utc,
};
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::model::Object;

/// At most this many candidate dates are examined per call (Prefect's `MAX_ITERATIONS`).
pub const MAX_ITERATIONS: usize = 1000;
/// The scheduler makes at least this many runs ahead per schedule
/// (`PREFECT_API_SERVICES_SCHEDULER_MIN_RUNS`, default 3).
pub const MIN_RUNS: usize = 3;
/// ... and at most this many (`PREFECT_API_SERVICES_SCHEDULER_MAX_RUNS`, default 100).
pub const MAX_RUNS: usize = 100;
/// ... reaching at least this far ahead (`..._MIN_SCHEDULED_TIME`, default 1 hour) ...
pub const MIN_SCHEDULED_TIME: Duration = Duration::hours(1);
/// ... and never further than this (`..._MAX_SCHEDULED_TIME`, default 100 days).
pub const MAX_SCHEDULED_TIME: Duration = Duration::days(100);

/// A schedule that cannot be read, naming the field (`schedule.cron`, `schedule.timezone`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ScheduleError {
    /// The field, from the schedule object (`schedule.interval`).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl ScheduleError {
    fn new(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: format!("schedule.{field}"),
            message: message.into(),
        }
    }
}

/// One of Prefect's three schedule types (`SCHEDULE_TYPES`), told apart by their fields
/// (`interval`, `cron`, `rrule`), each refusing unknown fields as Prefect's models do
/// (`extra="forbid"`).
#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    /// `IntervalSchedule`.
    Interval(IntervalSchedule),
    /// `CronSchedule`.
    Cron(CronSchedule),
    /// `RRuleSchedule`.
    RRule(RRuleSchedule),
}

/// `IntervalSchedule`: `anchor_date + k * interval`.
#[derive(Debug, Clone, PartialEq)]
pub struct IntervalSchedule {
    /// The interval, in microseconds (Python's `timedelta` resolution); positive.
    pub interval_us: i64,
    /// The anchor, with the UTC offset it was given with (a naive date-time is UTC, as
    /// Prefect's server reads it); the time zone drives DST.
    pub anchor_date: DateTime<FixedOffset>,
    /// IANA time zone (`UTC` when none was given).
    pub timezone: String,
}

/// `CronSchedule`.
#[derive(Debug, Clone, PartialEq)]
pub struct CronSchedule {
    /// The cron string as given (5 fields, croniter's 6th field of seconds, or a nickname
    /// such as `@daily`).
    pub cron: String,
    /// IANA time zone; none (UTC) unless given, and returned as given (`null`), as Prefect does.
    pub timezone: Option<String>,
    /// Day-of-month and day-of-week joined by OR (cron's rule, the default) or AND (fcron's).
    pub day_or: bool,
}

/// `RRuleSchedule`.
#[derive(Debug, Clone, PartialEq)]
pub struct RRuleSchedule {
    /// The RFC 5545 text (`DTSTART:...\nRRULE:...`, or a bare `FREQ=...` rule).
    pub rrule: String,
    /// IANA time zone (`UTC` by default).
    pub timezone: String,
}

fn parse_tz(field: &str, name: &str) -> Result<Tz, ScheduleError> {
    Tz::from_str(name).map_err(|_| ScheduleError::new(field, format!("Invalid timezone: {name:?}")))
}

/// Reads a Python `timedelta` as Prefect accepts it in JSON: seconds (a number), an ISO 8601
/// duration (`PT1H`, `P1DT2H30M`, `PT0.5S`) or `[D day[s], ]HH:MM:SS[.ffffff]`.
fn parse_interval(value: &Value) -> Result<i64, ScheduleError> {
    let bad = || {
        ScheduleError::new(
            "interval",
            "must be a positive number of seconds or an ISO 8601 duration",
        )
    };
    let seconds = match value {
        Value::Number(n) => n.as_f64().ok_or_else(bad)?,
        Value::String(s) => parse_duration_text(s).ok_or_else(bad)?,
        _ => return Err(bad()),
    };
    if !(seconds.is_finite() && seconds > 0.0 && seconds < 1e12) {
        return Err(ScheduleError::new(
            "interval",
            "Input should be greater than 0",
        ));
    }
    let us = (seconds * 1e6).round() as i64;
    if us <= 0 {
        return Err(ScheduleError::new(
            "interval",
            "Input should be greater than 0",
        ));
    }
    Ok(us)
}

fn parse_duration_text(s: &str) -> Option<f64> {
    let s = s.trim();
    if let Some(rest) = s.strip_prefix('P').or_else(|| s.strip_prefix('p')) {
        let (date, time) = match rest.split_once(['T', 't']) {
            Some((d, t)) => (d, Some(t)),
            None => (rest, None),
        };
        let mut total = 0.0;
        let mut any = false;
        let mut take = |part: &str, units: &[(char, f64)]| -> Option<()> {
            let mut num = String::new();
            for c in part.chars() {
                if c.is_ascii_digit() || c == '.' {
                    num.push(c);
                } else {
                    let factor = units.iter().find(|(u, _)| u.eq_ignore_ascii_case(&c))?.1;
                    total += num.parse::<f64>().ok()? * factor;
                    num.clear();
                    any = true;
                }
            }
            num.is_empty().then_some(())
        };
        take(date, &[('W', 604_800.0), ('D', 86_400.0)])?;
        if let Some(t) = time {
            take(t, &[('H', 3600.0), ('M', 60.0), ('S', 1.0)])?;
        }
        return any.then_some(total);
    }
    // `1 day, 2:00:00` / `2 days, 0:00:00` / `1:30:00`.
    let (days, clock) = match s.split_once(',') {
        Some((d, c)) => {
            let d = d.trim();
            let n = d.strip_suffix("days").or_else(|| d.strip_suffix("day"))?;
            (n.trim().parse::<f64>().ok()?, c.trim())
        }
        None => (0.0, s),
    };
    let parts: Vec<&str> = clock.split(':').collect();
    if parts.len() != 3 {
        return None;
    }
    let h: f64 = parts[0].parse().ok()?;
    let m: f64 = parts[1].parse().ok()?;
    let sec: f64 = parts[2].parse().ok()?;
    Some(days * 86_400.0 + h * 3600.0 + m * 60.0 + sec)
}

fn check_fields(obj: &Map<String, Value>, allowed: &[&str]) -> Result<(), ScheduleError> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(ScheduleError::new(k, "Extra inputs are not permitted")),
        None => Ok(()),
    }
}

fn timezone_field(obj: &Map<String, Value>) -> Result<String, ScheduleError> {
    match obj.get("timezone") {
        None | Some(Value::Null) => Ok("UTC".into()),
        Some(Value::String(s)) => {
            parse_tz("timezone", s)?;
            Ok(s.clone())
        }
        Some(_) => Err(ScheduleError::new(
            "timezone",
            "Input should be a valid string",
        )),
    }
}

/// Reads an anchor date: RFC 3339 (its offset kept), or a naive date-time, which Prefect's
/// server reads as UTC (its docs say the schedule's time zone; its validator says UTC).
fn parse_anchor(value: &Value) -> Result<DateTime<FixedOffset>, ScheduleError> {
    let bad = || ScheduleError::new("anchor_date", "Input should be a valid datetime");
    let s = value.as_str().ok_or_else(bad)?;
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Ok(d);
    }
    let naive = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f"))
        .or_else(|_| {
            NaiveDate::parse_from_str(s, "%Y-%m-%d").map(|d| d.and_time(chrono::NaiveTime::MIN))
        })
        .map_err(|_| bad())?;
    Ok(Utc.from_utc_datetime(&naive).fixed_offset())
}

/// croniter's cron string as croner reads it: croniter's optional 6th field (seconds) comes
/// last, croner's first.
fn croner_pattern(cron: &str) -> Result<croner::Cron, ScheduleError> {
    let fields: Vec<&str> = cron.split_whitespace().collect();
    let invalid = |why: String| ScheduleError::new("cron", format!("Invalid cron string: {why}"));
    let mut builder;
    match fields.len() {
        1 if fields[0].starts_with('@') => builder = croner::Cron::new(fields[0]),
        5 => builder = croner::Cron::new(&fields.join(" ")),
        6 => {
            let reordered = format!("{} {}", fields[5], fields[..5].join(" "));
            builder = croner::Cron::new(&reordered);
            builder.with_seconds_required();
        }
        n => {
            return Err(invalid(format!(
                "{cron:?} has {n} fields; 5 or 6 are supported"
            )));
        }
    }
    builder
        .parse()
        .map_err(|e| invalid(format!("{cron:?}: {e}")))
}

impl Schedule {
    /// Reads a schedule object (`{"interval": ...}`, `{"cron": ...}` or `{"rrule": ...}`)
    /// with Prefect's defaults (`timezone` `UTC`, `day_or` true, `anchor_date` now).
    ///
    /// # Errors
    /// [`ScheduleError`] naming the field: an unknown field, a bad type, an invalid time
    /// zone, cron string or rrule, a non-positive interval.
    pub fn parse(value: &Value) -> Result<Self, ScheduleError> {
        Self::parse_at(value, Utc::now())
    }

    /// [`Schedule::parse`] with `now` as the default anchor date.
    ///
    /// # Errors
    /// As [`Schedule::parse`].
    pub fn parse_at(value: &Value, now: DateTime<Utc>) -> Result<Self, ScheduleError> {
        let Some(obj) = value.as_object() else {
            return Err(ScheduleError {
                field: "schedule".into(),
                message: "Input should be an interval, cron or rrule schedule object".into(),
            });
        };
        if obj.contains_key("interval") {
            check_fields(obj, &["interval", "anchor_date", "timezone"])?;
            let timezone = timezone_field(obj)?;
            let interval_us = parse_interval(&obj["interval"])?;
            let anchor_date = match obj.get("anchor_date") {
                None | Some(Value::Null) => now.fixed_offset(),
                Some(v) => parse_anchor(v)?,
            };
            Ok(Self::Interval(IntervalSchedule {
                interval_us,
                anchor_date,
                timezone,
            }))
        } else if obj.contains_key("cron") {
            check_fields(obj, &["cron", "timezone", "day_or"])?;
            let cron = obj["cron"]
                .as_str()
                .ok_or_else(|| ScheduleError::new("cron", "Input should be a valid string"))?
                .to_owned();
            croner_pattern(&cron)?;
            let day_or = match obj.get("day_or") {
                None => true,
                Some(Value::Bool(b)) => *b,
                Some(_) => {
                    return Err(ScheduleError::new(
                        "day_or",
                        "Input should be a valid boolean",
                    ));
                }
            };
            let timezone = match obj.get("timezone") {
                None | Some(Value::Null) => None,
                Some(_) => Some(timezone_field(obj)?),
            };
            Ok(Self::Cron(CronSchedule {
                cron,
                timezone,
                day_or,
            }))
        } else if obj.contains_key("rrule") {
            check_fields(obj, &["rrule", "timezone"])?;
            let rrule = obj["rrule"]
                .as_str()
                .ok_or_else(|| ScheduleError::new("rrule", "Input should be a valid string"))?
                .to_owned();
            let schedule = RRuleSchedule {
                timezone: timezone_field(obj)?,
                rrule,
            };
            schedule.rule_set()?;
            Ok(Self::RRule(schedule))
        } else {
            Err(ScheduleError {
                field: "schedule".into(),
                message: "Input should be an interval, cron or rrule schedule object".into(),
            })
        }
    }

    /// The schedule's time zone.
    pub fn timezone(&self) -> Tz {
        let name = match self {
            Self::Interval(s) => &s.timezone,
            Self::Cron(s) => s.timezone.as_deref().unwrap_or("UTC"),
            Self::RRule(s) => &s.timezone,
        };
        Tz::from_str(name).unwrap_or(Tz::UTC)
    }

    /// The class name Prefect shows for a schedule without a slug (`created_by.display_value`
    /// of its runs).
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Interval(_) => "IntervalSchedule",
            Self::Cron(_) => "CronSchedule",
            Self::RRule(_) => "RRuleSchedule",
        }
    }

    /// Up to `n` dates on or after `start` and not after `end`, ascending, in the schedule's
    /// time zone (Prefect's `get_dates`; at most [`MAX_ITERATIONS`] candidates are examined).
    pub fn dates(
        &self,
        n: usize,
        start: DateTime<Utc>,
        end: Option<DateTime<Utc>>,
    ) -> Vec<DateTime<Tz>> {
        let mut dates = match self {
            Self::Interval(s) => s.dates(n, start, end),
            Self::Cron(s) => s.dates(n, start, end),
            Self::RRule(s) => s.dates(n, start, end),
        };
        dates.sort();
        dates.dedup();
        dates.truncate(n);
        dates
    }

    /// The dates the scheduler materialises from `now` (Prefect's
    /// `_generate_scheduled_flow_runs` with the default settings): dates from `now` on, at
    /// most [`MAX_RUNS`] and none past `now` + [`MAX_SCHEDULED_TIME`], stopping as soon as
    /// there are at least [`MIN_RUNS`] and the last is at least [`MIN_SCHEDULED_TIME`] ahead.
    pub fn horizon(&self, now: DateTime<Utc>) -> Vec<DateTime<Tz>> {
        let all = self.dates(MAX_RUNS, now, Some(now + MAX_SCHEDULED_TIME));
        let mut out = Vec::new();
        for d in all {
            let far = d.with_timezone(&Utc) >= now + MIN_SCHEDULED_TIME;
            out.push(d);
            if out.len() >= MIN_RUNS && far {
                break;
            }
        }
        out
    }
}

impl Serialize for Schedule {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let value = match self {
            Self::Interval(s) => serde_json::json!({
                "interval": s.interval_us as f64 / 1e6,
                "anchor_date": s.anchor_date.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                "timezone": s.timezone,
            }),
            Self::Cron(s) => serde_json::json!({
                "cron": s.cron,
                "timezone": s.timezone,
                "day_or": s.day_or,
            }),
            Self::RRule(s) => serde_json::json!({
                "rrule": s.rrule,
                "timezone": s.timezone,
            }),
        };
        value.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Schedule {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Self::parse(&value).map_err(serde::de::Error::custom)
    }
}

/// A local wall time in `tz` as Python reads it with `fold=0`: a time that happens twice is
/// the first (earlier) one; a time that does not exist (a DST gap) is read with the offset in
/// force before the gap, which lands after it (02:30 → 03:30 when clocks go forward an hour).
pub fn resolve(tz: Tz, naive: NaiveDateTime) -> DateTime<Tz> {
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(d) => d,
        LocalResult::Ambiguous(a, b) => a.min(b),
        LocalResult::None => {
            let before = tz
                .offset_from_utc_datetime(&(naive - Duration::days(1)))
                .fix()
                .local_minus_utc();
            tz.from_utc_datetime(&(naive - Duration::seconds(i64::from(before))))
        }
    }
}

fn add_local(d: DateTime<Tz>, days: i64, us: i64) -> DateTime<Tz> {
    resolve(
        d.timezone(),
        d.naive_local() + Duration::days(days) + Duration::microseconds(us),
    )
}

impl IntervalSchedule {
    /// Prefect's `IntervalSchedule._get_dates_generator` (the pendulum branch its server runs).
    fn dates(
        &self,
        n: usize,
        start: DateTime<Utc>,
        end: Option<DateTime<Utc>>,
    ) -> Vec<DateTime<Tz>> {
        let tz = Tz::from_str(&self.timezone).unwrap_or(Tz::UTC);
        let anchor = self.anchor_date.with_timezone(&tz);
        let start_tz = start.with_timezone(&tz);
        const DAY_US: i64 = 86_400_000_000;
        let days = self.interval_us / DAY_US;
        let rest_us = self.interval_us % DAY_US;
        let total_us = self.interval_us;
        // pendulum's `add` is wall-clock arithmetic in the time zone for every unit (the
        // local date-time moves, then is read with `fold=0`): that is what Prefect's server
        // does on the Python versions its images ship (before 3.13), whatever its docs say of
        // sub-day intervals. `_jump(k)` adds `k` days and seconds, or `k` total seconds for
        // mixed intervals.
        let jump = |k: i64| -> DateTime<Tz> {
            if days == 0 || rest_us == 0 {
                add_local(anchor, days.saturating_mul(k), rest_us.saturating_mul(k))
            } else {
                add_local(anchor, 0, total_us.saturating_mul(k))
            }
        };
        let advance = |d: DateTime<Tz>| -> DateTime<Tz> { add_local(d, days, rest_us) };
        let mut offset: i64 = 0;
        let mut next;
        if start_tz >= anchor && days != 0 && rest_us == 0 && self.timezone != "UTC" {
            // Calendar days from the anchor: a wall time moved by a DST gap stays moved, so
            // step through the days, in chunks of at most four weeks where the UTC offset is
            // the same at both ends (no DST change in between).
            next = anchor;
            while next < start_tz {
                let remaining_days = (start_tz.date_naive() - next.date_naive()).num_days();
                let count = (remaining_days / days - 1).clamp(1, (28 / days).max(1));
                let candidate = add_local(next, days * count, 0);
                if count > 1 && candidate.offset().fix() != next.offset().fix() {
                    next = add_local(next, days, 0);
                } else {
                    next = candidate;
                }
            }
        } else {
            let diff_us = (start - self.anchor_date.with_timezone(&Utc))
                .num_microseconds()
                .unwrap_or(i64::MAX);
            offset = diff_us / total_us; // truncates toward zero, as Python's int()
            next = jump(offset);
            while next > start_tz {
                offset -= 1;
                next = jump(offset);
            }
        }
        let before_anchor_days = start_tz < anchor && days != 0 && rest_us == 0;
        let mut step = |d: DateTime<Tz>| -> DateTime<Tz> {
            if before_anchor_days && offset < 0 {
                offset += 1;
                jump(offset)
            } else {
                advance(d)
            }
        };
        let mut guard = 0;
        while next < start_tz && guard <= MAX_ITERATIONS * 10 {
            next = step(next);
            guard += 1;
        }
        let mut dates: Vec<DateTime<Tz>> = Vec::new();
        let mut counter = 0;
        loop {
            if end.is_some_and(|e| next.with_timezone(&Utc) > e) {
                break;
            }
            if !dates.contains(&next) {
                dates.push(next);
            }
            if dates.len() >= n || counter > MAX_ITERATIONS {
                break;
            }
            counter += 1;
            next = step(next);
        }
        dates
    }
}

impl CronSchedule {
    /// Prefect's `CronSchedule._get_dates_whenever`: cron wall times in the time zone, each
    /// read with `fold=0` ([`resolve`]), kept once and when on or after `start`.
    fn dates(
        &self,
        n: usize,
        start: DateTime<Utc>,
        end: Option<DateTime<Utc>>,
    ) -> Vec<DateTime<Tz>> {
        let Ok(mut cron) = croner_pattern(&self.cron) else {
            return Vec::new();
        };
        if !self.day_or {
            cron.pattern.dom_and_dow = true;
        }
        let tz = Tz::from_str(self.timezone.as_deref().unwrap_or("UTC")).unwrap_or(Tz::UTC);
        // Wall times are walked as if they were UTC; starting 3 hours early finds the wall
        // times of a DST gap just before `start` that land after it (as Prefect's lookback).
        let local_start = start.with_timezone(&tz).naive_local();
        let mut wall = Utc.from_utc_datetime(&(local_start - Duration::hours(3)));
        if start.nanosecond() == 0 {
            wall -= Duration::seconds(1);
        }
        let mut dates: Vec<DateTime<Tz>> = Vec::new();
        for _ in 0..(MAX_ITERATIONS + 2 + 3 * 3600) {
            let Ok(next) = cron.find_next_occurrence(&wall, false) else {
                break;
            };
            wall = next;
            let date = resolve(tz, next.naive_utc());
            let utc = date.with_timezone(&Utc);
            if end.is_some_and(|e| utc > e + Duration::hours(3)) {
                break;
            }
            if utc >= start && end.is_none_or(|e| utc <= e) && !dates.contains(&date) {
                dates.push(date);
                if dates.len() >= n {
                    break;
                }
            }
        }
        dates
    }
}

/// Reads a rule's `UNTIL` as Prefect's `to_rrule` does: its wall time (as written, `Z` or
/// not) is a wall time of the schedule's time zone (dateutil's `until.replace(tzinfo=tz)`),
/// so `UNTIL=20240105T090000Z` in `America/New_York` ends at 09:00 New York time. The rule
/// is rewritten with that instant in UTC, the form the `rrule` crate takes. As in dateutil,
/// an UNTIL in UTC with a floating (or absent) DTSTART, or a floating UNTIL with an aware
/// DTSTART, is refused ("RRULE UNTIL values must be specified in UTC when DTSTART is
/// timezone-aware"). A date-only UNTIL is midnight.
fn localize_until(line: &str, tz: Tz, dtstart_aware: bool) -> Result<String, String> {
    let (prefix, rule) = match line.split_once(':') {
        Some((p, r)) => (Some(p), r),
        None => (None, line),
    };
    let mut parts = Vec::new();
    for part in rule.split(';') {
        let Some((name, value)) = part.split_once('=') else {
            parts.push(part.to_owned());
            continue;
        };
        if !name.eq_ignore_ascii_case("UNTIL") {
            parts.push(part.to_owned());
            continue;
        }
        let aware = value.ends_with(['Z', 'z']);
        if aware != dtstart_aware {
            return Err(
                "RRULE UNTIL values must be specified in UTC when DTSTART is timezone-aware".into(),
            );
        }
        let wall_text = value.trim_end_matches(['Z', 'z']);
        let wall = NaiveDateTime::parse_from_str(wall_text, "%Y%m%dT%H%M%S")
            .or_else(|_| {
                NaiveDate::parse_from_str(wall_text, "%Y%m%d")
                    .map(|d| d.and_time(chrono::NaiveTime::MIN))
            })
            .map_err(|_| format!("unreadable UNTIL {value:?}"))?;
        let until = resolve(tz, wall).with_timezone(&Utc);
        parts.push(format!("{name}={}", until.format("%Y%m%dT%H%M%SZ")));
    }
    let rule = parts.join(";");
    Ok(match prefix {
        Some(p) => format!("{p}:{rule}"),
        None => rule,
    })
}

impl RRuleSchedule {
    /// The rule set, with `DTSTART` (2020-01-01 00:00 when absent) read as a wall time of the
    /// schedule's time zone, as Prefect's `to_rrule` does.
    fn rule_set(&self) -> Result<rrule::RRuleSet, ScheduleError> {
        let tz = parse_tz("timezone", &self.timezone)?;
        let invalid = |e: String| ScheduleError::new("rrule", format!("Invalid RRule string: {e}"));
        let mut body = Vec::new();
        let mut dtstart: Option<NaiveDateTime> = None;
        // dateutil: a DTSTART in UTC (`Z`) or with a `TZID` is aware; without a DTSTART
        // (Prefect's anchor) or with a floating one it is not. UNTIL must match.
        let dtstart_aware = self.rrule.lines().map(str::trim).any(|l| {
            let upper = l.to_ascii_uppercase();
            upper.starts_with("DTSTART") && (upper.ends_with('Z') || upper.contains("TZID="))
        });
        for line in self.rrule.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let upper = line.to_ascii_uppercase();
            if upper.starts_with("RRULE:")
                || upper.starts_with("EXRULE:")
                || upper.starts_with("FREQ=")
            {
                let line = localize_until(line, tz, dtstart_aware).map_err(invalid)?;
                if upper.starts_with("FREQ=") {
                    body.push(format!("RRULE:{line}"));
                } else {
                    body.push(line);
                }
                continue;
            }
            if line.to_ascii_uppercase().starts_with("DTSTART") {
                let value = line.rsplit(':').next().unwrap_or("");
                let value = value.trim_end_matches(['Z', 'z']);
                let wall = NaiveDateTime::parse_from_str(value, "%Y%m%dT%H%M%S")
                    .or_else(|_| {
                        NaiveDate::parse_from_str(value, "%Y%m%d")
                            .map(|d| d.and_time(chrono::NaiveTime::MIN))
                    })
                    .map_err(|_| invalid(format!("unreadable DTSTART {value:?}")))?;
                dtstart = Some(wall);
            } else {
                body.push(line.to_owned());
            }
        }
        if body.is_empty() {
            return Err(invalid("no rule".into()));
        }
        let wall = dtstart.unwrap_or_else(|| {
            NaiveDate::from_ymd_opt(2020, 1, 1)
                .unwrap_or_default()
                .and_time(chrono::NaiveTime::MIN)
        });
        let start = resolve(tz, wall).with_timezone(&rrule::Tz::Tz(tz));
        rrule::RRuleSet::new(start)
            .set_from_string(&body.join("\n"))
            .map_err(|e| invalid(e.to_string()))
    }

    /// Prefect's `RRuleSchedule._get_dates_generator`: `xafter(start, inc=True)`.
    fn dates(
        &self,
        n: usize,
        start: DateTime<Utc>,
        end: Option<DateTime<Utc>>,
    ) -> Vec<DateTime<Tz>> {
        let Ok(set) = self.rule_set() else {
            return Vec::new();
        };
        let tz = Tz::from_str(&self.timezone).unwrap_or(Tz::UTC);
        let rtz = rrule::Tz::Tz(tz);
        let mut set = set.after((start - Duration::microseconds(1)).with_timezone(&rtz));
        if let Some(e) = end {
            set = set.before((e + Duration::microseconds(1)).with_timezone(&rtz));
        }
        let limit = u16::try_from(n.min(MAX_ITERATIONS + 1)).unwrap_or(u16::MAX);
        let mut dates: Vec<DateTime<Tz>> = Vec::new();
        for d in set.all(limit).dates {
            let d = d.with_timezone(&tz);
            let utc = d.with_timezone(&Utc);
            if utc >= start && end.is_none_or(|e| utc <= e) && !dates.contains(&d) {
                dates.push(d);
            }
        }
        dates
    }
}

/// A schedule of a deployment (Prefect's `DeploymentSchedule`), as the API returns it.
///
/// `max_scheduled_runs` is stored and returned; Prefect 3.9.1's scheduler does not read it
/// (the horizon is the scheduler's), and neither does pushpool's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "StoredSchedule")]
pub struct DeploymentSchedule {
    /// Id.
    pub id: Uuid,
    /// Created at.
    pub created: DateTime<Utc>,
    /// Updated at.
    pub updated: DateTime<Utc>,
    /// The deployment.
    pub deployment_id: Option<Uuid>,
    /// The schedule.
    pub schedule: Schedule,
    /// Inactive schedules make no runs.
    pub active: bool,
    /// Stored and returned (see the type's docs).
    pub max_scheduled_runs: Option<i64>,
    /// Parameters merged over the deployment's in the runs it makes.
    #[serde(default)]
    pub parameters: Object,
    /// Unique within the deployment, when given.
    pub slug: Option<String>,
}

/// A schedule as stored. Deployments stored before schedules had ids kept the client's
/// `DeploymentScheduleCreate` (no `id`, `created`, `updated`, `deployment_id`, and a
/// `replaces`): such a schedule reads with an id derived from its content (stable across
/// reads until it is next written, when it is stored with it) and the Unix epoch as its times.
#[derive(Deserialize)]
struct StoredSchedule {
    #[serde(default)]
    id: Option<Uuid>,
    #[serde(default)]
    created: Option<DateTime<Utc>>,
    #[serde(default)]
    updated: Option<DateTime<Utc>>,
    #[serde(default)]
    deployment_id: Option<Uuid>,
    schedule: Schedule,
    #[serde(default = "active_default")]
    active: bool,
    #[serde(default)]
    max_scheduled_runs: Option<i64>,
    #[serde(default)]
    parameters: Option<Object>,
    #[serde(default)]
    slug: Option<String>,
}

fn active_default() -> bool {
    true
}

impl From<StoredSchedule> for DeploymentSchedule {
    fn from(s: StoredSchedule) -> Self {
        let id = s.id.unwrap_or_else(|| {
            use sha2::Digest;
            let text = format!(
                "{}|{:?}|{:?}",
                serde_json::to_string(&s.schedule).unwrap_or_default(),
                s.slug,
                s.parameters
            );
            let digest = sha2::Sha256::digest(text.as_bytes());
            let mut bytes = [0u8; 16];
            bytes.copy_from_slice(&digest[..16]);
            uuid::Builder::from_random_bytes(bytes).into_uuid()
        });
        Self {
            id,
            created: s.created.unwrap_or(DateTime::UNIX_EPOCH),
            updated: s.updated.unwrap_or(DateTime::UNIX_EPOCH),
            deployment_id: s.deployment_id,
            schedule: s.schedule,
            active: s.active,
            max_scheduled_runs: s.max_scheduled_runs,
            parameters: s.parameters.unwrap_or_default(),
            slug: s.slug,
        }
    }
}

/// The idempotency key of the run of schedule `schedule_id` of `deployment_id` at `date`:
/// Prefect's `f"scheduled {deployment.id} {deployment_schedule.id} {date}"`, the date as
/// Python prints a datetime (`2024-03-10 03:30:00-04:00`, microseconds when not zero).
pub fn idempotency_key(deployment_id: Uuid, schedule_id: Uuid, date: &DateTime<Tz>) -> String {
    let micros = if date.nanosecond() / 1000 == 0 {
        String::new()
    } else {
        format!(".{:06}", date.nanosecond() / 1000)
    };
    format!(
        "scheduled {deployment_id} {schedule_id} {}{micros}{}",
        date.format("%Y-%m-%d %H:%M:%S"),
        date.format("%:z")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

    fn utc_dates(s: &Schedule, n: usize, start: DateTime<Utc>) -> Vec<String> {
        s.dates(n, start, None)
            .iter()
            .map(|d| d.with_timezone(&Utc).to_rfc3339())
            .collect()
    }

    fn local_dates(s: &Schedule, n: usize, start: DateTime<Utc>) -> Vec<String> {
        s.dates(n, start, None)
            .iter()
            .map(|d| d.to_rfc3339())
            .collect()
    }

    #[test]
    fn interval_aligns_on_the_anchor() {
        let s = Schedule::parse(&json!({"interval": 3600, "anchor_date": "2024-01-01T00:15:00Z"}))
            .unwrap();
        assert_eq!(
            utc_dates(&s, 3, utc(2024, 5, 5, 10, 20, 0)),
            [
                "2024-05-05T11:15:00+00:00",
                "2024-05-05T12:15:00+00:00",
                "2024-05-05T13:15:00+00:00"
            ]
        );
        // The anchor itself is a date; the start is inclusive.
        assert_eq!(
            utc_dates(&s, 1, utc(2024, 1, 1, 0, 15, 0)),
            ["2024-01-01T00:15:00+00:00"]
        );
        // Dates before a future anchor are aligned on it.
        assert_eq!(
            utc_dates(&s, 2, utc(2023, 12, 31, 22, 0, 0)),
            ["2023-12-31T22:15:00+00:00", "2023-12-31T23:15:00+00:00"]
        );
    }

    #[test]
    fn hourly_interval_steps_in_wall_clock_hours_across_dst() {
        // As Prefect's server (pendulum) does: New York falls back on 2024-11-03, and the
        // repeated 01:00 is taken once; it springs forward on 2024-03-10, and 02:00 is
        // skipped. (Dates checked against Prefect 3.9.1's `get_dates`.)
        let s = Schedule::parse(&json!({"interval": 3600, "anchor_date": "2024-11-01T00:00:00-04:00", "timezone": "America/New_York"})).unwrap();
        assert_eq!(
            local_dates(&s, 4, utc(2024, 11, 3, 4, 0, 0)),
            [
                "2024-11-03T00:00:00-04:00",
                "2024-11-03T01:00:00-04:00",
                "2024-11-03T02:00:00-05:00",
                "2024-11-03T03:00:00-05:00"
            ]
        );
        let s = Schedule::parse(&json!({"interval": 3600, "anchor_date": "2024-03-10T00:00:00-05:00", "timezone": "America/New_York"})).unwrap();
        assert_eq!(
            local_dates(&s, 4, utc(2024, 3, 10, 5, 0, 0)),
            [
                "2024-03-10T00:00:00-05:00",
                "2024-03-10T01:00:00-05:00",
                "2024-03-10T03:00:00-04:00",
                "2024-03-10T04:00:00-04:00"
            ]
        );
    }

    #[test]
    fn daily_interval_keeps_the_wall_time_across_dst() {
        let s = Schedule::parse(&json!({"interval": 86400, "anchor_date": "2024-03-01T09:00:00-05:00", "timezone": "America/New_York"})).unwrap();
        // Clocks go forward on 2024-03-10.
        assert_eq!(
            local_dates(&s, 3, utc(2024, 3, 9, 0, 0, 0)),
            [
                "2024-03-09T09:00:00-05:00",
                "2024-03-10T09:00:00-04:00",
                "2024-03-11T09:00:00-04:00"
            ]
        );
        // A wall time in the gap moves forward, and the series keeps the new wall time.
        let s = Schedule::parse(&json!({"interval": 86400, "anchor_date": "2024-03-08T02:30:00-05:00", "timezone": "America/New_York"})).unwrap();
        assert_eq!(
            local_dates(&s, 4, utc(2024, 3, 9, 0, 0, 0)),
            [
                "2024-03-09T02:30:00-05:00",
                "2024-03-10T03:30:00-04:00",
                "2024-03-11T03:30:00-04:00",
                "2024-03-12T03:30:00-04:00"
            ]
        );
        // An anchor years back is sought in chunks with the same result as day by day.
        let s = Schedule::parse(&json!({"interval": 86400, "anchor_date": "2020-01-01T09:00:00+01:00", "timezone": "Europe/Paris"})).unwrap();
        assert_eq!(
            local_dates(&s, 2, utc(2024, 7, 1, 12, 0, 0)),
            ["2024-07-02T09:00:00+02:00", "2024-07-03T09:00:00+02:00"]
        );
    }

    #[test]
    fn interval_accepts_durations_and_refuses_bad_values() {
        let s =
            Schedule::parse(&json!({"interval": "PT1H30M", "anchor_date": "2024-01-01T00:00:00Z"}))
                .unwrap();
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            json!({"interval": 5400.0, "anchor_date": "2024-01-01T00:00:00Z", "timezone": "UTC"})
        );
        // A naive anchor is UTC; an offset is kept (Prefect's `model_dump(mode="json")`).
        let s = Schedule::parse(&json!({"interval": 60, "anchor_date": "2024-03-08T02:30:00", "timezone": "America/New_York"})).unwrap();
        assert_eq!(
            serde_json::to_value(&s).unwrap()["anchor_date"],
            "2024-03-08T02:30:00Z"
        );
        let s =
            Schedule::parse(&json!({"interval": 60, "anchor_date": "2024-03-08T02:30:00-05:00"}))
                .unwrap();
        assert_eq!(
            serde_json::to_value(&s).unwrap()["anchor_date"],
            "2024-03-08T02:30:00-05:00"
        );
        let s = Schedule::parse(&json!({"cron": "0 0 * * *"})).unwrap();
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            json!({"cron": "0 0 * * *", "timezone": null, "day_or": true})
        );
        let s = Schedule::parse(&json!({"rrule": "FREQ=DAILY"})).unwrap();
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            json!({"rrule": "FREQ=DAILY", "timezone": "UTC"})
        );
        let e = Schedule::parse(&json!({"interval": 0})).unwrap_err();
        assert_eq!(
            e.to_string(),
            "schedule.interval: Input should be greater than 0"
        );
        let e = Schedule::parse(&json!({"interval": 60, "timezone": "Mars/Olympus"})).unwrap_err();
        assert_eq!(
            e.to_string(),
            "schedule.timezone: Invalid timezone: \"Mars/Olympus\""
        );
        let e = Schedule::parse(&json!({"interval": 60, "every": 2})).unwrap_err();
        assert_eq!(
            e.to_string(),
            "schedule.every: Extra inputs are not permitted"
        );
    }

    #[test]
    fn cron_day_or_both_ways() {
        // The 13th of the month or a Friday (OR), or Friday the 13th (AND).
        let or = Schedule::parse(&json!({"cron": "0 0 13 * 5"})).unwrap();
        assert_eq!(
            utc_dates(&or, 3, utc(2024, 9, 1, 0, 0, 0)),
            [
                "2024-09-06T00:00:00+00:00",
                "2024-09-13T00:00:00+00:00",
                "2024-09-20T00:00:00+00:00"
            ]
        );
        let and = Schedule::parse(&json!({"cron": "0 0 13 * 5", "day_or": false})).unwrap();
        assert_eq!(
            utc_dates(&and, 2, utc(2024, 9, 1, 0, 0, 0)),
            ["2024-09-13T00:00:00+00:00", "2024-12-13T00:00:00+00:00"]
        );
    }

    #[test]
    fn cron_across_dst_transitions() {
        // Clocks back in New York (2024-11-03): an hourly cron fires the first time 01:00 is
        // reached, then at 02:00 EST, two hours later.
        let s =
            Schedule::parse(&json!({"cron": "0 * * * *", "timezone": "America/New_York"})).unwrap();
        assert_eq!(
            local_dates(&s, 3, utc(2024, 11, 3, 4, 30, 0)),
            [
                "2024-11-03T01:00:00-04:00",
                "2024-11-03T02:00:00-05:00",
                "2024-11-03T03:00:00-05:00"
            ]
        );
        // Clocks forward (2024-03-10): 02:30 does not exist and runs at 03:30 EDT.
        let s = Schedule::parse(&json!({"cron": "30 2 * * *", "timezone": "America/New_York"}))
            .unwrap();
        assert_eq!(
            local_dates(&s, 3, utc(2024, 3, 9, 12, 0, 0)),
            [
                "2024-03-10T03:30:00-04:00",
                "2024-03-11T02:30:00-04:00",
                "2024-03-12T02:30:00-04:00"
            ]
        );
        // ... also when the start is just after the gap.
        assert_eq!(
            local_dates(&s, 1, utc(2024, 3, 10, 7, 10, 0)),
            ["2024-03-10T03:30:00-04:00"]
        );
    }

    #[test]
    fn cron_six_fields_have_seconds_last_and_bad_strings_are_refused() {
        let s = Schedule::parse(&json!({"cron": "* * * * * 30"})).unwrap();
        assert_eq!(
            utc_dates(&s, 2, utc(2024, 1, 1, 0, 0, 0)),
            ["2024-01-01T00:00:30+00:00", "2024-01-01T00:01:30+00:00"]
        );
        let e = Schedule::parse(&json!({"cron": "61 * * * *"})).unwrap_err();
        assert_eq!(e.field, "schedule.cron");
        let s = Schedule::parse(&json!({"cron": "@daily"})).unwrap();
        assert_eq!(
            utc_dates(&s, 1, utc(2024, 1, 1, 0, 0, 1)),
            ["2024-01-02T00:00:00+00:00"]
        );
    }

    #[test]
    fn rrule_dates_in_the_schedule_time_zone() {
        let s = Schedule::parse(&json!({"rrule": "DTSTART:20240101T090000\nRRULE:FREQ=WEEKLY;BYDAY=MO,WE", "timezone": "America/New_York"})).unwrap();
        assert_eq!(
            local_dates(&s, 3, utc(2024, 3, 8, 0, 0, 0)),
            [
                "2024-03-11T09:00:00-04:00",
                "2024-03-13T09:00:00-04:00",
                "2024-03-18T09:00:00-04:00"
            ]
        );
        // A bare rule starts on 2020-01-01 00:00 in the time zone.
        let s = Schedule::parse(&json!({"rrule": "FREQ=DAILY;BYHOUR=6"})).unwrap();
        assert_eq!(
            utc_dates(&s, 1, utc(2024, 1, 1, 7, 0, 0)),
            ["2024-01-02T06:00:00+00:00"]
        );
        let e = Schedule::parse(&json!({"rrule": "FREQ=SOMETIMES"})).unwrap_err();
        assert_eq!(e.field, "schedule.rrule");
    }

    /// `UNTIL` ends where dateutil ends for Prefect (the dates below are what Prefect 3.9.1's
    /// `RRuleSchedule.get_dates` answered for the same rules, from 2019-01-01).
    #[test]
    fn rrule_until_is_a_wall_time_of_the_schedule_time_zone() {
        let dates = |rrule: &str, tz: &str| {
            let s = Schedule::parse(&json!({"rrule": rrule, "timezone": tz})).unwrap();
            utc_dates(&s, 10, utc(2019, 1, 1, 0, 0, 0))
        };
        let days = |first: u32, last: u32, hour: u32| -> Vec<String> {
            (first..=last)
                .map(|d| utc(2024, 1, d, hour, 0, 0).to_rfc3339())
                .collect()
        };
        // Floating UNTIL: 09:00 New York on the 5th is included.
        assert_eq!(
            dates(
                "DTSTART:20240101T090000\nRRULE:FREQ=DAILY;UNTIL=20240105T090000",
                "America/New_York"
            ),
            days(1, 5, 14)
        );
        // UNTIL in UTC with a TZID start: its wall time (08:00) is read in New York.
        assert_eq!(
            dates(
                "DTSTART;TZID=Europe/Paris:20240101T090000\nRRULE:FREQ=DAILY;UNTIL=20240105T080000Z",
                "America/New_York"
            ),
            days(1, 4, 14)
        );
        // Both in UTC, in Tokyo: 09:00 Tokyo on the 5th is included.
        assert_eq!(
            dates(
                "DTSTART:20240101T090000Z\nRRULE:FREQ=DAILY;UNTIL=20240105T090000Z",
                "Asia/Tokyo"
            ),
            days(1, 5, 0)
        );
        // A bare rule (floating anchor) with a floating UNTIL.
        let s = Schedule::parse(
            &json!({"rrule": "FREQ=DAILY;UNTIL=20200105T000000", "timezone": "America/New_York"}),
        )
        .unwrap();
        assert_eq!(
            utc_dates(&s, 10, utc(2019, 1, 1, 0, 0, 0)),
            (1..=5)
                .map(|d| utc(2020, 1, d, 5, 0, 0).to_rfc3339())
                .collect::<Vec<_>>()
        );
        // Mixed awareness is refused, as dateutil refuses it.
        for rrule in [
            "DTSTART:20240101T090000\nRRULE:FREQ=DAILY;UNTIL=20240105T090000Z",
            "FREQ=DAILY;UNTIL=20200105T000000Z",
        ] {
            let e = Schedule::parse(&json!({"rrule": rrule, "timezone": "UTC"})).unwrap_err();
            assert_eq!(e.field, "schedule.rrule");
            assert!(
                e.message.contains(
                    "RRULE UNTIL values must be specified in UTC when DTSTART is timezone-aware"
                ),
                "{}",
                e.message
            );
        }
    }

    #[test]
    fn horizon_is_three_runs_and_an_hour_at_least_and_100_at_most() {
        let now = utc(2024, 1, 1, 0, 0, 30);
        let daily = Schedule::parse(&json!({"cron": "0 0 * * *"})).unwrap();
        assert_eq!(daily.horizon(now).len(), 3);
        let minutely = Schedule::parse(&json!({"cron": "* * * * *"})).unwrap();
        let h = minutely.horizon(now);
        assert_eq!(h.len(), 61);
        assert_eq!(
            h.last().unwrap().with_timezone(&Utc),
            utc(2024, 1, 1, 1, 1, 0)
        );
        let every_second =
            Schedule::parse(&json!({"interval": 1, "anchor_date": "2024-01-01T00:00:00Z"}))
                .unwrap();
        assert_eq!(every_second.horizon(now).len(), 100);
        // Nothing past 100 days: a yearly rule has no date in the horizon.
        let yearly =
            Schedule::parse(&json!({"rrule": "DTSTART:20200601T000000\nRRULE:FREQ=YEARLY"}))
                .unwrap();
        assert!(yearly.horizon(now).is_empty());
    }

    #[test]
    fn schedules_stored_before_they_had_ids_still_read() {
        let legacy = json!({"schedule": {"cron": "0 0 * * *", "timezone": null, "day_or": true},
            "active": true, "max_scheduled_runs": null, "parameters": {}, "slug": null, "replaces": null});
        let a: DeploymentSchedule = serde_json::from_value(legacy.clone()).unwrap();
        let b: DeploymentSchedule = serde_json::from_value(legacy).unwrap();
        assert_eq!(a.id, b.id);
        assert_eq!(a.created, DateTime::UNIX_EPOCH);
        assert_eq!(a.deployment_id, None);
        let written = serde_json::to_value(&a).unwrap();
        let again: DeploymentSchedule = serde_json::from_value(written).unwrap();
        assert_eq!(again, a);
    }

    #[test]
    fn idempotency_key_prints_the_date_as_python() {
        let d = Uuid::nil();
        let s = Uuid::from_u128(1);
        let tz: Tz = "America/New_York".parse().unwrap();
        let date = tz.with_ymd_and_hms(2024, 3, 10, 3, 30, 0).unwrap();
        assert_eq!(
            idempotency_key(d, s, &date),
            "scheduled 00000000-0000-0000-0000-000000000000 00000000-0000-0000-0000-000000000001 2024-03-10 03:30:00-04:00"
        );
        let date =
            Tz::UTC.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap() + Duration::microseconds(5);
        assert!(idempotency_key(d, s, &date).ends_with(" 2024-01-01 00:00:00.000005+00:00"));
    }
}
