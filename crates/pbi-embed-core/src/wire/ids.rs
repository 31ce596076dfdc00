//! Validated identifiers: nothing unvalidated reaches a URL path or a request body.
//!
//! Workspace, report, dashboard, tile, profile and client ids are GUIDs (the spec's
//! `format: uuid`), kept in lower case so that equal ids compare equal. A dataset id is a
//! plain string in the spec, so [`DatasetId`] accepts any short string without control
//! characters and is percent-encoded when it goes into a path.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::wire::error::ExchangeError;

/// The longest dataset id accepted. The spec sets no bound; GUIDs are 36 characters.
pub const MAX_DATASET_ID_LEN: usize = 256;

/// Returns whether `s` is a GUID in its hyphenated form (`8-4-4-4-12` hex digits).
fn is_guid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// Characters escaped in a path segment: all but RFC 3986 unreserved ones.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

macro_rules! guid_type {
    ($(#[$attr:meta])* $name:ident, $field:literal) => {
        $(#[$attr])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            #[doc = concat!("Parses a `", stringify!($name), "` from a hyphenated GUID.")]
            ///
            /// # Errors
            /// [`ExchangeError::InvalidInput`] naming the field when `s` is not a GUID.
            pub fn parse(s: &str) -> Result<Self, ExchangeError> {
                if is_guid(s) {
                    Ok(Self(s.to_ascii_lowercase()))
                } else {
                    Err(ExchangeError::invalid_input($field, format!("{:?} is not a GUID", truncate(s))))
                }
            }

            /// The id as a lower-case hyphenated GUID.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.0)
            }
        }

        impl FromStr for $name {
            type Err = ExchangeError;
            fn from_str(s: &str) -> Result<Self, ExchangeError> {
                Self::parse(s)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = <Cow<'de, str>>::deserialize(deserializer)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

guid_type! {
    /// A workspace id (the `groupId` of the REST paths; a "group" is a workspace).
    WorkspaceId, "groupId"
}
guid_type! {
    /// A report id.
    ReportId, "reportId"
}
guid_type! {
    /// A dashboard id.
    DashboardId, "dashboardId"
}
guid_type! {
    /// A tile id (a tile lives on a dashboard).
    TileId, "tileId"
}
guid_type! {
    /// A service principal profile id, sent as the `X-PowerBI-Profile-Id` header.
    ProfileId, "profileId"
}
guid_type! {
    /// The application (client) id of an Entra ID app registration.
    ClientId, "clientId"
}

/// A dataset id. The spec types it as a plain string (V1 path and V2 body alike).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DatasetId(String);

impl WorkspaceId {
    /// A REST path below this workspace: `/v1.0/myorg/groups/{id}` followed by
    /// `segments`, in one allocation (it runs for every request).
    pub(crate) fn path(&self, segments: &[&str]) -> String {
        const GROUPS: &str = "/v1.0/myorg/groups/";
        let len = GROUPS.len() + self.0.len() + segments.iter().map(|s| s.len()).sum::<usize>();
        let mut path = String::with_capacity(len);
        path.push_str(GROUPS);
        path.push_str(&self.0);
        segments.iter().for_each(|segment| path.push_str(segment));
        path
    }
}

impl DatasetId {
    /// The id as one path segment: percent-encoded, since the spec allows any string.
    pub(crate) fn path_segment(&self) -> Cow<'_, str> {
        utf8_percent_encode(&self.0, PATH_SEGMENT).into()
    }

    /// Parses a dataset id: 1 to [`MAX_DATASET_ID_LEN`] characters, no control characters.
    ///
    /// # Errors
    /// [`ExchangeError::InvalidInput`] naming `datasetId`.
    pub fn parse(s: &str) -> Result<Self, ExchangeError> {
        let reason = if s.is_empty() {
            "must not be empty".to_owned()
        } else if s.chars().count() > MAX_DATASET_ID_LEN {
            format!("is longer than {MAX_DATASET_ID_LEN} characters")
        } else if s.chars().any(char::is_control) {
            format!("{:?} contains a control character", truncate(s))
        } else if s.trim() != s {
            format!("{:?} has leading or trailing white space", truncate(s))
        } else if s == "." || s == ".." {
            // A relative path segment would change which route the request names.
            format!("{s:?} is not an id")
        } else {
            return Ok(Self(s.to_owned()));
        };
        Err(ExchangeError::invalid_input("datasetId", reason))
    }

    /// The id as given.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DatasetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for DatasetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatasetId({:?})", self.0)
    }
}

impl FromStr for DatasetId {
    type Err = ExchangeError;
    fn from_str(s: &str) -> Result<Self, ExchangeError> {
        Self::parse(s)
    }
}

impl serde::Serialize for DatasetId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for DatasetId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <Cow<'de, str>>::deserialize(deserializer)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// An Entra ID tenant: its GUID, or one of its verified domain names
/// (`contoso.onmicrosoft.com`).
///
/// The multi-tenant aliases `common`, `organizations` and `consumers` are refused: a
/// service principal must sign in to its own tenant, or Power BI answers 401.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TenantId(String);

impl TenantId {
    /// Parses a tenant GUID or domain name.
    ///
    /// # Errors
    /// [`ExchangeError::InvalidInput`] naming `tenantId`.
    pub fn parse(s: &str) -> Result<Self, ExchangeError> {
        if is_guid(s) {
            return Ok(Self(s.to_ascii_lowercase()));
        }
        let lower = s.to_ascii_lowercase();
        if matches!(lower.as_str(), "common" | "organizations" | "consumers") {
            return Err(ExchangeError::invalid_input(
                "tenantId",
                format!(
                    "{lower:?} is a multi-tenant alias; a service principal must use its tenant's \
                     GUID or domain, or Power BI answers 401"
                ),
            ));
        }
        let is_label = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        if s.len() <= 253 && s.contains('.') && s.split('.').all(is_label) {
            Ok(Self(lower))
        } else {
            Err(ExchangeError::invalid_input(
                "tenantId",
                format!("{:?} is neither a GUID nor a domain name", truncate(s)),
            ))
        }
    }

    /// The tenant as a lower-case GUID or domain.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TenantId({})", self.0)
    }
}

impl FromStr for TenantId {
    type Err = ExchangeError;
    fn from_str(s: &str) -> Result<Self, ExchangeError> {
        Self::parse(s)
    }
}

/// Shortens user input quoted in an error message.
pub(crate) fn truncate(s: &str) -> String {
    const MAX: usize = 64;
    if s.chars().count() <= MAX {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(MAX).collect();
        out.push('…');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_are_validated_and_lowercased() {
        let id = ReportId::parse("5B218778-E7A5-4D73-8187-F10824047715").unwrap();
        assert_eq!(id.as_str(), "5b218778-e7a5-4d73-8187-f10824047715");
        for bad in [
            "",
            "5b218778e7a54d738187f10824047715",
            "{5b218778-e7a5-4d73-8187-f10824047715}",
            "5b218778-e7a5-4d73-8187-f1082404771",
            "5b218778-e7a5-4d73-8187-f108240477155",
            "5b218778-e7a5-4d73-8187-f10824047715-",
            "zb218778-e7a5-4d73-8187-f10824047715",
            "5b218778e-7a5-4d73-8187-f10824047715",
            "5b218778-e7a5-4d73-8187--10824047715",
            "5b218778-e7a5-4d73-8187-f108240477\u{e9}",
            "../../../admin",
        ] {
            let err = ReportId::parse(bad).unwrap_err();
            assert!(err.to_string().contains("reportId"), "{err}");
        }
    }

    #[test]
    fn dataset_ids_are_plain_strings() {
        assert_eq!(
            DatasetId::parse("cfafbeb1-8037").unwrap().as_str(),
            "cfafbeb1-8037"
        );
        assert!(DatasetId::parse("a/b").is_ok(), "encoded in paths, so allowed");
        assert!(DatasetId::parse("").is_err());
        assert!(DatasetId::parse("a\nb").is_err());
        assert!(DatasetId::parse(" a").is_err());
        assert!(DatasetId::parse(&"x".repeat(257)).is_err());
        for dot in [".", ".."] {
            let err = DatasetId::parse(dot).unwrap_err().to_string();
            assert!(err.contains("datasetId") && err.contains("is not an id"), "{err}");
        }
        assert!(
            DatasetId::parse("...").is_ok(),
            "not a dot-segment, and encoded in paths"
        );
    }

    #[test]
    fn tenants() {
        assert!(TenantId::parse("contoso.onmicrosoft.com").is_ok());
        assert!(TenantId::parse("f089354e-8366-4e18-aea3-4cb4a3a50b48").is_ok());
        let err = TenantId::parse("organizations").unwrap_err().to_string();
        assert!(err.contains("multi-tenant alias"), "{err}");
        assert!(TenantId::parse("a/b").is_err());
        assert!(TenantId::parse("nodot").is_err());
        assert!(TenantId::parse("-bad.com").is_err());
    }

    #[test]
    fn serde_validates() {
        let id: ReportId = serde_json::from_str("\"5b218778-e7a5-4d73-8187-f10824047715\"").unwrap();
        assert_eq!(
            serde_json::to_string(&id).unwrap(),
            "\"5b218778-e7a5-4d73-8187-f10824047715\""
        );
        assert!(serde_json::from_str::<ReportId>("\"nope\"").is_err());
    }
}
