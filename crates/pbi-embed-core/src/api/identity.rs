//! Row-level security identities: [`EffectiveIdentity`] and [`DatasourceIdentity`].
//!
//! An effective identity tells Power BI whose rows the embed token may see: a username
//! with roles, custom data for Analysis Services, or an identity blob (an Azure SQL token).
//! [`EffectiveIdentity::validate`] checks the documented limits before anything is sent.

use serde::{Deserialize, Serialize};

use crate::wire::error::ExchangeError;
use crate::wire::ids::{DatasetId, ReportId, truncate};
use crate::wire::secret::IdentityBlob;

/// The most roles an identity may carry.
pub const MAX_ROLES: usize = 50;
/// The longest role name, in characters.
pub const MAX_ROLE_LEN: usize = 50;
/// The longest username, in characters.
pub const MAX_USERNAME_LEN: usize = 256;

/// `EffectiveIdentity`: the user identity and roles that row-level security applies.
///
/// ```
/// use pbi_embed_core::{DatasetId, EffectiveIdentity};
///
/// let sales = DatasetId::parse("cfafbeb1-8037-4d0c-896e-a46fb27ff229")?;
/// let identity = EffectiveIdentity::new("john@contoso.com").role("sales").dataset(sales);
/// identity.validate()?;
/// # Ok::<(), pbi_embed_core::ExchangeError>(())
/// ```
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
#[must_use]
pub struct EffectiveIdentity {
    /// `username`: the effective username that RLS rules see (at most 256 characters).
    /// Required, except with an identity blob.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// `roles`: at most 50 RLS roles of at most 50 characters, none containing a comma.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// `datasets`: the datasets this identity applies to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub datasets: Vec<DatasetId>,
    /// `reports`: the paginated reports this identity applies to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reports: Vec<ReportId>,
    /// `customData`: passed to the model's `CUSTOMDATA()` (Analysis Services and cloud models).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_data: Option<String>,
    /// `identityBlob.value`: an OAuth 2.0 access token for Azure SQL (DirectQuery SSO).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "blob_object")]
    pub identity_blob: Option<IdentityBlob>,
    /// `auditableContext`: when non-empty, audited as the username of the GenerateToken record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auditable_context: Option<String>,
}

impl EffectiveIdentity {
    /// An identity for `username`.
    pub fn new(username: impl Into<String>) -> Self {
        Self {
            username: Some(username.into()),
            ..Self::default()
        }
    }

    /// An identity that is an identity blob alone (token-based identity for Azure SQL).
    pub fn from_identity_blob(blob: IdentityBlob) -> Self {
        Self {
            identity_blob: Some(blob),
            ..Self::default()
        }
    }

    /// Adds an RLS role.
    pub fn role(mut self, role: impl Into<String>) -> Self {
        self.roles.push(role.into());
        self
    }

    /// Adds RLS roles.
    pub fn roles<I: IntoIterator<Item = S>, S: Into<String>>(mut self, roles: I) -> Self {
        self.roles.extend(roles.into_iter().map(Into::into));
        self
    }

    /// Adds a dataset this identity applies to.
    pub fn dataset(mut self, dataset: DatasetId) -> Self {
        self.datasets.push(dataset);
        self
    }

    /// Adds a (paginated) report this identity applies to.
    pub fn report(mut self, report: ReportId) -> Self {
        self.reports.push(report);
        self
    }

    /// Sets the custom data.
    pub fn custom_data(mut self, data: impl Into<String>) -> Self {
        self.custom_data = Some(data.into());
        self
    }

    /// Sets the identity blob.
    pub fn identity_blob(mut self, blob: IdentityBlob) -> Self {
        self.identity_blob = Some(blob);
        self
    }

    /// Sets the auditable context.
    pub fn auditable_context(mut self, context: impl Into<String>) -> Self {
        self.auditable_context = Some(context.into());
        self
    }

    /// Checks the documented limits.
    ///
    /// # Errors
    /// [`ExchangeError::InvalidInput`] naming the field: a missing or empty username (without an
    /// identity blob), a username over 256 characters, more than 50 roles, a role that is
    /// empty, over 50 characters or contains a comma, or no dataset and no report.
    pub fn validate(&self) -> Result<(), ExchangeError> {
        self.validate_at(0)
    }

    /// [`Self::validate`], naming fields under `identities[{index}]`. The names are only
    /// formatted for an error.
    pub(crate) fn validate_at(&self, index: usize) -> Result<(), ExchangeError> {
        let field = |name: &str| format!("identities[{index}].{name}");
        match &self.username {
            None if self.identity_blob.is_none() => {
                return Err(ExchangeError::invalid_input(
                    field("username"),
                    "is required unless the identity has an identity blob",
                ));
            }
            Some(name) if name.is_empty() => {
                return Err(ExchangeError::invalid_input(
                    field("username"),
                    "must not be empty",
                ));
            }
            Some(name) if name.chars().count() > MAX_USERNAME_LEN => {
                return Err(ExchangeError::invalid_input(
                    field("username"),
                    format!(
                        "is {} characters long; at most {MAX_USERNAME_LEN}",
                        name.chars().count()
                    ),
                ));
            }
            _ => {}
        }
        if self.roles.len() > MAX_ROLES {
            return Err(ExchangeError::invalid_input(
                field("roles"),
                format!("has {} roles; at most {MAX_ROLES}", self.roles.len()),
            ));
        }
        for (i, role) in self.roles.iter().enumerate() {
            let reason = if role.is_empty() {
                "must not be empty".to_owned()
            } else if role.chars().count() > MAX_ROLE_LEN {
                format!("{:?} is longer than {MAX_ROLE_LEN} characters", truncate(role))
            } else if role.contains(',') {
                format!("{:?} contains a comma", truncate(role))
            } else {
                continue;
            };
            return Err(ExchangeError::invalid_input(
                field(&format!("roles[{i}]")),
                reason,
            ));
        }
        if self.datasets.is_empty() && self.reports.is_empty() {
            return Err(ExchangeError::invalid_input(
                field("datasets"),
                "must name the dataset (or paginated report) the identity applies to",
            ));
        }
        Ok(())
    }
}

/// `DatasourceIdentity`: an SSO identity for DirectQuery data sources (multi-resource
/// token only).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct DatasourceIdentity {
    /// `identityBlob`: a plain string here, unlike [`EffectiveIdentity::identity_blob`].
    #[serde(with = "blob_string")]
    pub identity_blob: IdentityBlob,
    /// `datasources`: the data sources the blob signs in to.
    pub datasources: Vec<DatasourceSelector>,
}

impl DatasourceIdentity {
    /// An identity blob for the given data sources.
    pub fn new(identity_blob: IdentityBlob, datasources: Vec<DatasourceSelector>) -> Self {
        Self {
            identity_blob,
            datasources,
        }
    }
}

/// `DatasourceSelector`: which data source a [`DatasourceIdentity`] applies to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct DatasourceSelector {
    /// `datasourceType`, for example `Sql`, `MySql`, `AnalysisServices`.
    pub datasource_type: String,
    /// `connectionDetails`.
    pub connection_details: DatasourceConnectionDetails,
}

impl DatasourceSelector {
    /// A data source of `datasource_type` with these connection details.
    pub fn new(datasource_type: impl Into<String>, connection_details: DatasourceConnectionDetails) -> Self {
        Self {
            datasource_type: datasource_type.into(),
            connection_details,
        }
    }
}

/// `DatasourceConnectionDetails`: the fields that identify a data source; set those that
/// apply to its type.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct DatasourceConnectionDetails {
    /// `server`: the server name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// `database`: the database name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// `url`: the connection URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// `path`: the file or folder path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// `kind`: the connection kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// `account`: the account name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// `domain`: the domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// `emailAddress`: the email address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_address: Option<String>,
    /// `loginServer`: the login server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_server: Option<String>,
    /// `classInfo`: the class information.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_info: Option<String>,
}

impl DatasourceConnectionDetails {
    /// Details naming a server and a database (SQL-like sources).
    pub fn server_database(server: impl Into<String>, database: impl Into<String>) -> Self {
        Self {
            server: Some(server.into()),
            database: Some(database.into()),
            ..Self::default()
        }
    }
}

/// `identityBlob` as `{"value": "..."}` (in an effective identity).
mod blob_object {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::wire::secret::IdentityBlob;

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Wire<'a> {
        value: std::borrow::Cow<'a, str>,
    }

    pub(super) fn serialize<S: Serializer>(blob: &Option<IdentityBlob>, s: S) -> Result<S::Ok, S::Error> {
        match blob {
            Some(blob) => Wire {
                value: blob.secret().into(),
            }
            .serialize(s),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<IdentityBlob>, D::Error> {
        Ok(Option::<Wire<'de>>::deserialize(d)?.map(|w| IdentityBlob::new(w.value)))
    }
}

/// `identityBlob` as a plain string (in a datasource identity).
mod blob_string {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::wire::secret::IdentityBlob;

    pub(super) fn serialize<S: Serializer>(blob: &IdentityBlob, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(blob.secret())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<IdentityBlob, D::Error> {
        String::deserialize(d).map(IdentityBlob::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ds() -> DatasetId {
        DatasetId::parse("cfafbeb1-8037-4d0c-896e-a46fb27ff229").unwrap()
    }

    #[test]
    fn limits_name_the_field() {
        let ok = EffectiveIdentity::new("john").role("sales").dataset(ds());
        ok.validate().unwrap();

        let cases = [
            (
                EffectiveIdentity::default().dataset(ds()),
                "identities[0].username",
            ),
            (EffectiveIdentity::new("").dataset(ds()), "identities[0].username"),
            (
                EffectiveIdentity::new("u".repeat(257)).dataset(ds()),
                "identities[0].username",
            ),
            (
                EffectiveIdentity::new("u")
                    .roles((0..51).map(|i| format!("r{i}")))
                    .dataset(ds()),
                "identities[0].roles",
            ),
            (
                EffectiveIdentity::new("u").role("a,b").dataset(ds()),
                "identities[0].roles[0]",
            ),
            (
                EffectiveIdentity::new("u")
                    .role("ok")
                    .role("r".repeat(51))
                    .dataset(ds()),
                "identities[0].roles[1]",
            ),
            (EffectiveIdentity::new("u").role(""), "identities[0].roles[0]"),
            (EffectiveIdentity::new("u"), "identities[0].datasets"),
        ];
        for (identity, field) in cases {
            let err = identity.validate().unwrap_err();
            assert!(
                matches!(&err, ExchangeError::InvalidInput { field: f, .. } if f == field),
                "{field}: {err}"
            );
        }
        // Exactly at the limits is fine; spaces are not checked (an official example has one).
        EffectiveIdentity::new("John Smith".to_owned() + &"u".repeat(246))
            .roles((0..50).map(|_| "r".repeat(50)))
            .dataset(ds())
            .validate()
            .unwrap();
        EffectiveIdentity::from_identity_blob(IdentityBlob::new("b"))
            .dataset(ds())
            .validate()
            .unwrap();
    }

    #[test]
    fn wire_shape() {
        let identity = EffectiveIdentity::new("john")
            .dataset(ds())
            .identity_blob(IdentityBlob::new("eyJ0"))
            .custom_data("cd")
            .auditable_context("audit");
        let json = serde_json::to_value(&identity).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "username": "john",
                "datasets": ["cfafbeb1-8037-4d0c-896e-a46fb27ff229"],
                "customData": "cd",
                "identityBlob": {"value": "eyJ0"},
                "auditableContext": "audit"
            })
        );
        let back: EffectiveIdentity = serde_json::from_value(json).unwrap();
        assert_eq!(back.identity_blob.unwrap().secret(), "eyJ0");
        assert!(serde_json::from_str::<EffectiveIdentity>(r#"{"usename":"typo"}"#).is_err());
    }
}
