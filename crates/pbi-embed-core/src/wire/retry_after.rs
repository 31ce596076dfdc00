//! The `Retry-After` response header, as Power BI and Entra ID send it.

use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderValue};

/// The `Retry-After` response header: a delay, or an instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RetryAfter {
    /// `Retry-After: 120` (delta-seconds).
    Delay(Duration),
    /// `Retry-After: Wed, 21 Oct 2015 07:28:00 GMT` (HTTP-date).
    At(SystemTime),
}

impl RetryAfter {
    /// The longest delay read from a header; larger values are clamped to it.
    pub const MAX_SECONDS: u64 = 366 * 24 * 60 * 60;

    /// Parses one header value: delta-seconds or an HTTP-date. Anything else (`soon`,
    /// `-5`, an empty value) is `None`. Huge numbers are clamped to [`Self::MAX_SECONDS`].
    #[must_use]
    pub fn parse(value: &HeaderValue) -> Option<Self> {
        let text = value.to_str().ok()?.trim();
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            // All digits: delta-seconds. Too many digits to fit still means "very long".
            let seconds = text.parse::<u64>().unwrap_or(u64::MAX).min(Self::MAX_SECONDS);
            return Some(Self::Delay(Duration::from_secs(seconds)));
        }
        httpdate::parse_http_date(text).ok().map(Self::At)
    }

    /// Reads `Retry-After` from response headers. With several values, none is trusted.
    #[must_use]
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        let mut values = headers.get_all(http::header::RETRY_AFTER).iter();
        let first = values.next()?;
        if values.next().is_some() {
            return None;
        }
        Self::parse(first)
    }

    /// How long to wait, counted from `now`. An instant in the past means no wait.
    #[must_use]
    pub fn delay_from(self, now: SystemTime) -> Duration {
        match self {
            Self::Delay(delay) => delay,
            Self::At(at) => at.duration_since(now).unwrap_or(Duration::ZERO),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hv(s: &str) -> HeaderValue {
        HeaderValue::from_str(s).unwrap()
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(
            RetryAfter::parse(&hv("120")),
            Some(RetryAfter::Delay(Duration::from_secs(120)))
        );
        assert_eq!(
            RetryAfter::parse(&hv(" 0 ")),
            Some(RetryAfter::Delay(Duration::ZERO))
        );
        assert_eq!(
            RetryAfter::parse(&hv("1000000000000000000000000")),
            Some(RetryAfter::Delay(Duration::from_secs(RetryAfter::MAX_SECONDS)))
        );
        for bad in ["soon", "-5", "", "1.5", "+3", "Wed, 99 Oct 2015 07:28:00 GMT"] {
            assert_eq!(RetryAfter::parse(&hv(bad)), None, "{bad}");
        }
        let at = RetryAfter::parse(&hv("Wed, 21 Oct 2015 07:28:00 GMT")).unwrap();
        let RetryAfter::At(t) = at else { panic!("{at:?}") };
        assert_eq!(
            t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs(),
            1_445_412_480
        );
        assert_eq!(at.delay_from(t + Duration::from_secs(5)), Duration::ZERO);
        assert_eq!(at.delay_from(t - Duration::from_secs(5)), Duration::from_secs(5));
    }

    #[test]
    fn duplicate_retry_after_is_ignored() {
        let mut headers = HeaderMap::new();
        headers.append(http::header::RETRY_AFTER, hv("1"));
        assert!(RetryAfter::from_headers(&headers).is_some());
        headers.append(http::header::RETRY_AFTER, hv("2"));
        assert_eq!(RetryAfter::from_headers(&headers), None);
    }
}
