//! Formatting instants as Power BI does.

use std::time::{Duration, SystemTime};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// `at + by`, saturating at a time a century from now rather than overflowing: lifetimes
/// come from requests and control calls, and no answer may panic on them.
pub(crate) fn later(at: SystemTime, by: Duration) -> SystemTime {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);
    at.checked_add(by.min(CENTURY)).unwrap_or(at)
}

/// RFC 3339 in UTC, whole seconds: `2028-07-29T17:58:19Z`.
pub(crate) fn format_rfc3339(at: SystemTime) -> String {
    let seconds = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}
