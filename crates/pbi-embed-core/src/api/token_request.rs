//! The request bodies: `GenerateTokenRequest` (single item) and `GenerateTokenRequestV2`
//! (multi-resource), in Power BI's wire format.
//!
//! The fields are public so a body can be read back and compared; the operations in
//! [`crate::generate_token`] build them and validate them against their route.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::api::identity::{DatasourceIdentity, EffectiveIdentity};
use crate::wire::error::ExchangeError;
use crate::wire::ids::{DatasetId, ReportId, WorkspaceId};

/// The most reports, datasets or target workspaces in one multi-resource request.
pub const MAX_ITEMS: usize = 50;

/// `TokenAccessLevel`: what the embed token allows. The spec marks it extensible, so an
/// unknown value is kept as [`TokenAccessLevel::Other`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenAccessLevel {
    /// `View`: view only.
    View,
    /// `Edit`: view and edit (reports only).
    Edit,
    /// `Create`: create a report from a dataset (the create route only).
    Create,
    /// A value this crate does not know, sent as given.
    Other(String),
}

impl TokenAccessLevel {
    /// The wire value: `View`, `Edit`, `Create`, or the unknown value.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Self::View => "View",
            Self::Edit => "Edit",
            Self::Create => "Create",
            Self::Other(other) => other,
        }
    }
}

/// `XmlaPermissions`: access to a dataset's XMLA endpoint. Extensible, like
/// [`TokenAccessLevel`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum XmlaPermissions {
    /// `Off`: no XMLA access.
    Off,
    /// `ReadOnly`: read access, needed for composite models over Power BI datasets and
    /// paginated reports whose source is a Power BI dataset.
    ReadOnly,
    /// A value this crate does not know, sent as given.
    Other(String),
}

impl XmlaPermissions {
    /// The wire value: `Off`, `ReadOnly`, or the unknown value.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Self::Off => "Off",
            Self::ReadOnly => "ReadOnly",
            Self::Other(other) => other,
        }
    }
}

/// Serde for the two extensible string enums.
macro_rules! extensible_enum_serde {
    ($name:ident { $($variant:ident),* }) => {
        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Ok(match s.as_str() {
                    $(stringify!($variant) => Self::$variant,)*
                    _ => Self::Other(s),
                })
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
extensible_enum_serde!(TokenAccessLevel { View, Edit, Create });
extensible_enum_serde!(XmlaPermissions { Off, ReadOnly });

/// `GenerateTokenRequest`: the body of the five single-item GenerateToken routes.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct GenerateTokenRequest {
    /// `accessLevel`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_level: Option<TokenAccessLevel>,
    /// `datasetId`: the dataset a new report is created from (create route only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset_id: Option<DatasetId>,
    /// `allowSaveAs`: whether the embedded report may be saved as a new one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_save_as: Option<bool>,
    /// `identities`: RLS identities (one, except for dashboards).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identities: Vec<EffectiveIdentity>,
    /// `lifetimeInMinutes`: shortens the token's lifetime; it can never lengthen it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifetime_in_minutes: Option<u32>,
}

/// `GenerateTokenRequestV2`: the body of the multi-resource `POST /v1.0/myorg/GenerateToken`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct GenerateTokenRequestV2 {
    /// `datasets`: at most 50.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub datasets: Vec<GenerateTokenRequestV2Dataset>,
    /// `reports`: at most 50.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reports: Vec<GenerateTokenRequestV2Report>,
    /// `targetWorkspaces`: where reports may be created or saved; at most 50.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target_workspaces: Vec<GenerateTokenRequestV2TargetWorkspace>,
    /// `identities`: RLS identities, any number.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identities: Vec<EffectiveIdentity>,
    /// `lifetimeInMinutes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifetime_in_minutes: Option<u32>,
    /// `datasourceIdentities`: SSO identities for DirectQuery data sources.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub datasource_identities: Vec<DatasourceIdentity>,
}

/// A dataset in a [`GenerateTokenRequestV2`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct GenerateTokenRequestV2Dataset {
    /// `id`.
    pub id: DatasetId,
    /// `xmlaPermissions`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xmla_permissions: Option<XmlaPermissions>,
}

/// A report in a [`GenerateTokenRequestV2`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct GenerateTokenRequestV2Report {
    /// `id`.
    pub id: ReportId,
    /// `allowEdit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_edit: Option<bool>,
}

/// A target workspace in a [`GenerateTokenRequestV2`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct GenerateTokenRequestV2TargetWorkspace {
    /// `id`.
    pub id: WorkspaceId,
}

/// Checks `identities` (each, and how many), shared by both bodies. Any `lifetimeInMinutes`
/// passes: zero is Power BI's "the default lifetime".
pub(crate) fn validate_common(
    identities: &[EffectiveIdentity],
    max_identities: Option<usize>,
) -> Result<(), ExchangeError> {
    if let Some(max) = max_identities
        && identities.len() > max
    {
        return Err(ExchangeError::invalid_input(
            "identities",
            format!(
                "has {} identities; this route takes at most {max} (only dashboards and the \
                 multi-resource token take several)",
                identities.len()
            ),
        ));
    }
    for (i, identity) in identities.iter().enumerate() {
        identity.validate_at(i)?;
    }
    Ok(())
}

impl GenerateTokenRequestV2 {
    /// Checks the documented limits: at least one report or dataset, at most 50 of each
    /// and of target workspaces, valid identities.
    ///
    /// # Errors
    /// [`ExchangeError::InvalidInput`] naming the field.
    pub fn validate(&self) -> Result<(), ExchangeError> {
        if self.datasets.is_empty() && self.reports.is_empty() {
            return Err(ExchangeError::invalid_input(
                "reports",
                "name at least one report or dataset",
            ));
        }
        for (field, len) in [
            ("datasets", self.datasets.len()),
            ("reports", self.reports.len()),
            ("targetWorkspaces", self.target_workspaces.len()),
        ] {
            if len > MAX_ITEMS {
                return Err(ExchangeError::invalid_input(
                    field,
                    format!("has {len} items; at most {MAX_ITEMS}"),
                ));
            }
        }
        for (i, identity) in self.datasource_identities.iter().enumerate() {
            if identity.datasources.is_empty() {
                return Err(ExchangeError::invalid_input(
                    format!("datasourceIdentities[{i}].datasources"),
                    "must name at least one data source",
                ));
            }
        }
        validate_common(&self.identities, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_keep_unknown_values() {
        let level: TokenAccessLevel = serde_json::from_str("\"Admin\"").unwrap();
        assert_eq!(level, TokenAccessLevel::Other("Admin".into()));
        assert_eq!(serde_json::to_string(&level).unwrap(), "\"Admin\"");
        assert_eq!(
            serde_json::to_string(&TokenAccessLevel::View).unwrap(),
            "\"View\""
        );
        let x: XmlaPermissions = serde_json::from_str("\"ReadOnly\"").unwrap();
        assert_eq!(x, XmlaPermissions::ReadOnly);
    }

    #[test]
    fn v2_limits() {
        let report = |i: usize| GenerateTokenRequestV2Report {
            id: ReportId::parse(&format!("00000000-0000-0000-0000-{i:012}")).unwrap(),
            allow_edit: None,
        };
        let mut body = GenerateTokenRequestV2::default();
        assert!(body.validate().unwrap_err().to_string().contains("reports"));
        body.reports = (0..50).map(report).collect();
        body.validate().unwrap();
        body.reports.push(report(50));
        let err = body.validate().unwrap_err().to_string();
        assert!(err.contains("reports: has 51 items; at most 50"), "{err}");
        body.reports.truncate(1);
        body.lifetime_in_minutes = Some(0);
        body.validate().unwrap();
    }
}
