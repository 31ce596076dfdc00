//! `EmbedToken`: what every GenerateToken call returns.

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::wire::lifetime::Freshness;
use crate::wire::response;
use crate::wire::secret::EmbedTokenSecret;

/// `EmbedToken`: an embed token, its id and its expiry.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct EmbedToken {
    /// `token`: give it to the browser's `powerbi-client` as `accessToken`.
    pub token: EmbedTokenSecret,
    /// `tokenId`: correlates the token's use with the GenerateToken call in audit logs.
    pub token_id: String,
    /// `expiration`: when the token stops working (UTC).
    pub expiration: SystemTime,
}

impl EmbedToken {
    /// An embed token from its parts (for tests, and tokens kept elsewhere).
    #[must_use]
    pub fn new(token: EmbedTokenSecret, token_id: impl Into<String>, expiration: SystemTime) -> Self {
        Self {
            token,
            token_id: token_id.into(),
            expiration,
        }
    }

    /// Parses the JSON body of a successful GenerateToken response. Unknown fields are
    /// ignored; `token`, `tokenId` and an RFC 3339 `expiration` are required.
    ///
    /// # Errors
    /// What is missing or malformed. The reason never quotes the body.
    pub fn from_json(body: &[u8]) -> Result<Self, String> {
        // The usual case reads the three fields straight off the bytes; anything unusual
        // (a missing field, a wrong type, bad JSON) is read again slowly, field by field,
        // to say exactly what is wrong without quoting the body.
        let (token, token_id, expiration) = match serde_json::from_slice::<Wire<'_>>(body) {
            Ok(Wire {
                token: Some(token),
                token_id: Some(token_id),
                expiration: Some(expiration),
            }) if !token.is_empty() && !token_id.is_empty() && !expiration.is_empty() => {
                (token.to_owned(), token_id.to_owned(), Cow::Borrowed(expiration))
            }
            _ => {
                let object = response::json_object(body)?;
                let token = response::required_str(&object, "token")?.to_owned();
                let token_id = response::required_str(&object, "tokenId")?.to_owned();
                let expiration = response::required_str(&object, "expiration")?.to_owned();
                (token, token_id, Cow::Owned(expiration))
            }
        };
        if token_id.len() > 128 || !token_id.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("the field `tokenId` is not an id".to_owned());
        }
        Ok(Self {
            token: EmbedTokenSecret::new(token),
            token_id,
            expiration: parse_rfc3339(&expiration)
                .ok_or_else(|| "the field `expiration` is not an RFC 3339 date-time".to_owned())?,
        })
    }

    /// The expiration as RFC 3339 text, as Power BI writes it: `2028-07-29T17:58:19Z`.
    #[must_use]
    pub fn expiration_rfc3339(&self) -> String {
        format_rfc3339(self.expiration)
    }

    /// How usable the token is at `now`, refreshed `margin` ahead of its expiry.
    #[must_use]
    pub fn freshness(&self, now: SystemTime, margin: Duration) -> Freshness {
        Freshness::at(self.expiration, now, margin)
    }
}

/// The three fields of a successful body, borrowed straight from it. A field with an
/// escape cannot be borrowed and fails this reading; the slow reader then takes over.
/// Unknown fields are ignored, as the spec allows.
#[derive(Deserialize)]
struct Wire<'a> {
    #[serde(borrow, default)]
    token: Option<&'a str>,
    #[serde(borrow, default, rename = "tokenId")]
    token_id: Option<&'a str>,
    #[serde(borrow, default)]
    expiration: Option<&'a str>,
}

/// Parses an RFC 3339 date-time (any offset, optional fractional seconds).
#[must_use]
pub(crate) fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let at = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    let seconds = at.unix_timestamp();
    let nanos = Duration::from_nanos(u64::from(at.nanosecond()));
    let whole = Duration::from_secs(seconds.unsigned_abs());
    if seconds >= 0 {
        SystemTime::UNIX_EPOCH.checked_add(whole)?.checked_add(nanos)
    } else {
        SystemTime::UNIX_EPOCH.checked_sub(whole)?.checked_add(nanos)
    }
}

/// Formats an instant as RFC 3339 in UTC, with fractional seconds only when present.
/// Instants outside the years 0000 to 9999 are clamped to that range.
#[must_use]
pub(crate) fn format_rfc3339(at: SystemTime) -> String {
    let nanos = match at.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(after) => i128::try_from(after.as_nanos()).unwrap_or(i128::MAX),
        Err(before) => i128::try_from(before.duration().as_nanos()).map_or(i128::MIN, |n| -n),
    };
    // 0000-01-01T00:00:00Z and 9999-12-31T23:59:59.999999999Z, the RFC 3339 range.
    const FIRST: i128 = -62_167_219_200 * 1_000_000_000;
    const LAST: i128 = 253_402_300_800 * 1_000_000_000 - 1;
    let clamped = nanos.clamp(FIRST, LAST);
    OffsetDateTime::from_unix_timestamp_nanos(clamped)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn official_example_parses() {
        let t = EmbedToken::from_json(
            br#"{"token":"H4sI....AAA=","tokenId":"49ae3742-54c0-4c29-af52-619ff93b5c80","expiration":"2018-07-29T17:58:19Z","extra":1}"#,
        )
        .unwrap();
        assert_eq!(t.token.secret(), "H4sI....AAA=");
        assert_eq!(t.token_id, "49ae3742-54c0-4c29-af52-619ff93b5c80");
        assert_eq!(t.expiration_rfc3339(), "2018-07-29T17:58:19Z");
        assert!(format!("{t:?}").contains("EmbedTokenSecret([redacted])"));
    }

    #[test]
    fn escaped_fields_are_read_by_the_slow_reader() {
        let t = EmbedToken::from_json(
            br#"{"token":"H4sI\u002Fx","tokenId":"49ae3742-54c0-4c29-af52-619ff93b5c80","expiration":"2018-07-29T17:58:19Z"}"#,
        )
        .unwrap();
        assert_eq!(t.token.secret(), "H4sI/x");
    }

    #[test]
    fn expiration_forms() {
        let base = parse_rfc3339("2018-07-29T17:58:19Z").unwrap();
        assert_eq!(parse_rfc3339("2018-07-29T19:58:19+02:00"), Some(base));
        assert_eq!(
            parse_rfc3339("2018-07-29T17:58:19.25Z"),
            Some(base + Duration::from_millis(250))
        );
        assert_eq!(
            format_rfc3339(base + Duration::from_millis(250)),
            "2018-07-29T17:58:19.25Z"
        );
        assert!(parse_rfc3339("1969-12-31T23:59:59Z").is_some());
        for bad in [
            "",
            "2018-07-29",
            "2018-07-29T17:58:19",
            "2018-13-29T17:58:19Z",
            "tomorrow",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn missing_and_malformed_fields() {
        let cases: [(&[u8], &str); 6] = [
            (
                br#"{"tokenId":"a","expiration":"2018-07-29T17:58:19Z"}"#,
                "`token` is missing",
            ),
            (
                br#"{"token":"t","expiration":"2018-07-29T17:58:19Z"}"#,
                "`tokenId` is missing",
            ),
            (br#"{"token":"t","tokenId":"a"}"#, "`expiration` is missing"),
            (
                br#"{"token":"t","tokenId":"a","expiration":"soon"}"#,
                "not an RFC 3339",
            ),
            (
                br#"{"token":7,"tokenId":"a","expiration":"2018-07-29T17:58:19Z"}"#,
                "`token` is not a string",
            ),
            (b"<html>", "not JSON"),
        ];
        for (body, want) in cases {
            let err = EmbedToken::from_json(body).unwrap_err();
            assert!(err.contains(want), "{err}");
        }
    }
}
