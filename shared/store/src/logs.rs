//! The log part of the port: what [`crate::Store::create_logs`], [`crate::Store::read_logs`]
//! and [`crate::Store::delete_logs_created_before`] take.

use pushpool_core::logs::{Log, LogFilter, LogSort};

use crate::Page;

/// A log query: Prefect's [`LogFilter`], a [`LogSort`] and a [`Page`]. Adapters answer
/// exactly the lines [`LogQuery::matches`] passes, in [`LogSort::apply`]'s order, paged.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogQuery {
    /// Prefect's criteria.
    pub filter: LogFilter,
    /// Order.
    pub sort: LogSort,
    /// Paging.
    pub page: Page,
}

impl LogQuery {
    /// Whether `log` passes (paging aside): the reference every adapter's answer must equal.
    pub fn matches(&self, log: &Log) -> bool {
        self.filter.matches(log)
    }

    /// Sorts and pages `logs` (all of which pass): the in-memory end of an adapter's read.
    pub fn finish(&self, mut logs: Vec<Log>) -> Vec<Log> {
        self.sort.apply(&mut logs);
        logs.into_iter()
            .skip(self.page.offset)
            .take(self.page.limit.unwrap_or(usize::MAX))
            .collect()
    }
}

/// How long a stored log line is kept by default: 30 days after the server stored it.
pub const DEFAULT_LOG_RETENTION: std::time::Duration =
    std::time::Duration::from_secs(30 * 24 * 60 * 60);
