//! Flow run logs: Prefect 3.9.1's `Log` (`server/schemas/core.py`), `LogFilter` and its
//! criteria (`server/schemas/filters.py`), `LogSort` (`server/schemas/sorting.py`) and the
//! text search syntax of `LogFilterTextSearch` (`server/utilities/text_search_parser.py`).
//!
//! [`LogFilter::matches`] is the reference every store's answer must equal: both adapters
//! narrow their reads with the criteria they can index and then apply it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::filter::Operator;

/// One stored log line (Prefect's `Log`): what the engine's `APILogHandler` sends
/// (`LogCreate`) plus the server's `id`, `created` and `updated` (equal: a log is never
/// updated).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Log {
    /// The log's id (a UUIDv7 made by the server, in batch order).
    pub id: Uuid,
    /// When the server stored it.
    pub created: DateTime<Utc>,
    /// Same as `created`.
    pub updated: DateTime<Utc>,
    /// The logger name (`prefect.flow_runs`, `prefect.task_runs`, ...).
    pub name: String,
    /// The level, as Python's `logging` numbers it (10 DEBUG, 20 INFO, 30 WARNING, 40
    /// ERROR, 50 CRITICAL).
    pub level: i64,
    /// The message.
    pub message: String,
    /// When the line was logged (the client's clock).
    pub timestamp: DateTime<Utc>,
    /// The flow run it belongs to.
    pub flow_run_id: Option<Uuid>,
    /// The task run it belongs to.
    pub task_run_id: Option<Uuid>,
}

/// `LogFilterLevel`: `level >= ge_` and `level <= le_`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LevelFilter {
    /// Lowest level included.
    #[serde(default)]
    pub ge_: Option<i64>,
    /// Highest level included.
    #[serde(default)]
    pub le_: Option<i64>,
}

/// `LogFilterTimestamp`: `timestamp <= before_` and `timestamp >= after_` (both inclusive).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimestampFilter {
    /// Latest timestamp included.
    #[serde(default)]
    pub before_: Option<DateTime<Utc>>,
    /// Earliest timestamp included.
    #[serde(default)]
    pub after_: Option<DateTime<Utc>>,
}

/// `LogFilterFlowRunId`: `flow_run_id IN any_`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowRunIdFilter {
    /// Flow run ids included.
    #[serde(default)]
    pub any_: Option<Vec<Uuid>>,
}

/// `LogFilterTaskRunId`: `task_run_id IN any_`, and `task_run_id IS [NOT] NULL` by `is_null_`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskRunIdFilter {
    /// Task run ids included.
    #[serde(default)]
    pub any_: Option<Vec<Uuid>>,
    /// `true`: only lines without a task run; `false`: only lines with one.
    #[serde(default)]
    pub is_null_: Option<bool>,
}

/// `LogFilterTextSearch`: a query over `"<message> <name>"`, case-insensitive substrings.
/// Space-separated terms: any must match; `-term`/`!term`: none may match; `+term`: all
/// must match; `"quoted phrases"` are one term (`\"` and `\\` escaped). At most 200
/// characters (Prefect's `max_length`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextFilter {
    /// The query.
    pub query: String,
}

/// The longest text search query Prefect accepts, in characters.
pub const MAX_TEXT_QUERY_CHARS: usize = 200;

/// The terms of a text search query (Prefect's `TextSearchQuery`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextQuery {
    /// Terms of which one must match.
    pub include: Vec<String>,
    /// Terms none of which may match.
    pub exclude: Vec<String>,
    /// Terms all of which must match.
    pub required: Vec<String>,
}

impl TextQuery {
    /// Parses `query` as Prefect's `parse_text_search_query` does.
    pub fn parse(query: &str) -> Self {
        let chars: Vec<char> = query.chars().collect();
        let mut out = Self::default();
        let mut i = 0;
        while i < chars.len() {
            if chars[i].is_whitespace() {
                i += 1;
                continue;
            }
            let mut prefix = None;
            if matches!(chars[i], '-' | '!' | '+') {
                let at = i;
                i += 1;
                if i < chars.len() && !chars[i].is_whitespace() {
                    prefix = Some(chars[at]);
                } else {
                    // A prefix followed by a space is ignored.
                    i = at + 1;
                    continue;
                }
            }
            let term = if i < chars.len() && chars[i] == '"' {
                i += 1;
                let start = i;
                while i < chars.len() {
                    if chars[i] == '\\' && i + 1 < chars.len() {
                        i += 2;
                    } else if chars[i] == '"' {
                        break;
                    } else {
                        i += 1;
                    }
                }
                let phrase = unescape(&chars[start..i.min(chars.len())]);
                if i < chars.len() {
                    i += 1;
                }
                if phrase.trim().is_empty() {
                    continue;
                }
                phrase
            } else {
                let start = i;
                while i < chars.len() && !chars[i].is_whitespace() && chars[i] != '"' {
                    i += 1;
                }
                let term: String = chars[start..i].iter().collect();
                if term.is_empty() {
                    continue;
                }
                term
            };
            match prefix {
                Some('-' | '!') => out.exclude.push(term),
                Some('+') => out.required.push(term),
                _ => out.include.push(term),
            }
        }
        out
    }

    /// The criteria this query adds to its filter (Prefect extends the filter's list with
    /// up to three: any include term, no exclude term, every required term), each on
    /// `"<message> <name>"` lowercased.
    fn criteria(&self, log: &Log) -> Vec<bool> {
        let text = format!("{} {}", log.message, log.name).to_lowercase();
        let has = |t: &String| text.contains(&t.to_lowercase());
        let mut out = Vec::new();
        if !self.include.is_empty() {
            out.push(self.include.iter().any(has));
        }
        if !self.exclude.is_empty() {
            out.push(!self.exclude.iter().any(has));
        }
        if !self.required.is_empty() {
            out.push(self.required.iter().all(has));
        }
        out
    }
}

fn unescape(phrase: &[char]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < phrase.len() {
        if phrase[i] == '\\' && i + 1 < phrase.len() && matches!(phrase[i + 1], '"' | '\\') {
            out.push(phrase[i + 1]);
            i += 2;
        } else {
            out.push(phrase[i]);
            i += 1;
        }
    }
    out
}

/// Prefect's `LogFilter`: `level`, `timestamp`, `flow_run_id`, `task_run_id`, `text`,
/// combined by `operator`. Unknown keys are refused (Prefect's filter models forbid extras).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogFilter {
    /// How the criteria combine.
    #[serde(default)]
    pub operator: Operator,
    /// `level`.
    #[serde(default)]
    pub level: Option<LevelFilter>,
    /// `timestamp`.
    #[serde(default)]
    pub timestamp: Option<TimestampFilter>,
    /// `flow_run_id`.
    #[serde(default)]
    pub flow_run_id: Option<FlowRunIdFilter>,
    /// `task_run_id`.
    #[serde(default)]
    pub task_run_id: Option<TaskRunIdFilter>,
    /// `text`.
    #[serde(default)]
    pub text: Option<TextFilter>,
}

/// `AND` of the set criteria of a sub-model; `true` when none is set (SQL `TRUE`).
fn all(values: &[Option<bool>]) -> bool {
    values.iter().flatten().all(|v| *v)
}

impl LogFilter {
    /// Whether `log` passes, as Prefect's SQL does: each present sub-model is one criterion
    /// (`TRUE` when empty), the text search adds its own criteria, and `operator` combines
    /// them; no criterion at all passes everything.
    pub fn matches(&self, log: &Log) -> bool {
        let mut c: Vec<bool> = Vec::new();
        if let Some(f) = &self.level {
            c.push(all(&[
                f.ge_.map(|g| log.level >= g),
                f.le_.map(|l| log.level <= l),
            ]));
        }
        if let Some(f) = &self.timestamp {
            c.push(all(&[
                f.before_.map(|b| log.timestamp <= b),
                f.after_.map(|a| log.timestamp >= a),
            ]));
        }
        if let Some(f) = &self.flow_run_id {
            c.push(all(&[f
                .any_
                .as_ref()
                .map(|l| log.flow_run_id.is_some_and(|id| l.contains(&id)))]));
        }
        if let Some(f) = &self.task_run_id {
            c.push(all(&[
                f.any_
                    .as_ref()
                    .map(|l| log.task_run_id.is_some_and(|id| l.contains(&id))),
                f.is_null_.map(|null| log.task_run_id.is_none() == null),
            ]));
        }
        if let Some(t) = &self.text
            && !t.query.trim().is_empty()
        {
            c.extend(TextQuery::parse(&t.query).criteria(log));
        }
        if c.is_empty() {
            return true;
        }
        match self.operator {
            Operator::And => c.iter().all(|v| *v),
            Operator::Or => c.iter().any(|v| *v),
        }
    }

    /// The flow runs every passing line belongs to, when the filter says so (`and_` with
    /// `flow_run_id.any_`): what stores narrow their reads by. `None`: any line may pass.
    pub fn flow_run_ids(&self) -> Option<&[Uuid]> {
        if self.operator != Operator::And {
            return None;
        }
        self.flow_run_id.as_ref()?.any_.as_deref()
    }
}

/// Prefect's `LogSort`; the default is `TIMESTAMP_ASC`. Lines of one timestamp are ordered
/// by id (the order they were stored in; reversed for `TIMESTAMP_DESC`): Prefect leaves
/// that order to the database, pushpool fixes it so that pages never overlap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LogSort {
    /// Oldest first.
    #[default]
    TimestampAsc,
    /// Newest first.
    TimestampDesc,
}

impl LogSort {
    /// Orders `logs` by this sort (timestamp, then id; both reversed for `TIMESTAMP_DESC`).
    pub fn apply(self, logs: &mut [Log]) {
        logs.sort_by(|a, b| {
            let o = (a.timestamp, a.id).cmp(&(b.timestamp, b.id));
            match self {
                Self::TimestampAsc => o,
                Self::TimestampDesc => o.reverse(),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(message: &str, level: i64, task_run: Option<Uuid>) -> Log {
        let t = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        Log {
            id: Uuid::nil(),
            created: t,
            updated: t,
            name: "prefect.flow_runs".into(),
            level,
            message: message.into(),
            timestamp: t,
            flow_run_id: None,
            task_run_id: task_run,
        }
    }

    #[test]
    fn text_queries_parse_as_prefect_does() {
        let q = TextQuery::parse(r#"error -debug !trace +must "connection \"x\" timeout" - lone"#);
        assert_eq!(q.include, vec!["error", "connection \"x\" timeout", "lone"]);
        assert_eq!(q.exclude, vec!["debug", "trace"]);
        assert_eq!(q.required, vec!["must"]);
        assert_eq!(TextQuery::parse("   "), TextQuery::default());
        assert_eq!(
            TextQuery::parse(r#""unclosed phrase"#).include,
            vec!["unclosed phrase"]
        );
    }

    #[test]
    fn criteria_combine_by_operator() {
        let a = log("Connection ERROR here", 40, None);
        let text = |q: &str| LogFilter {
            text: Some(TextFilter { query: q.into() }),
            ..LogFilter::default()
        };
        assert!(text("error").matches(&a));
        assert!(
            text("flow_runs").matches(&a),
            "the logger name is searched too"
        );
        assert!(!text("error -here").matches(&a));
        assert!(!text("+error +missing").matches(&a));
        let level = LogFilter {
            level: Some(LevelFilter {
                ge_: Some(50),
                le_: None,
            }),
            ..text("error")
        };
        assert!(!level.matches(&a));
        let or = LogFilter {
            operator: Operator::Or,
            ..level.clone()
        };
        assert!(or.matches(&a));
        let null = LogFilter {
            task_run_id: Some(TaskRunIdFilter {
                any_: None,
                is_null_: Some(false),
            }),
            ..LogFilter::default()
        };
        assert!(!null.matches(&a));
        assert!(null.matches(&log("x", 20, Some(Uuid::nil()))));
        assert!(LogFilter::default().matches(&a));
    }
}
