//! Which credential the environment names, read as Azure's identity libraries read it.
//! The caller supplies the lookup ([`EnvReader`]); the core reads no variable itself.
//!
//! [`credential_from`] says the order.

use std::ffi::OsString;

use crate::auth::azure_cli::AzureCli;
#[cfg(feature = "certificate")]
use crate::auth::certificate::CertificateFile;
use crate::auth::client_credentials::ClientCredentials;
use crate::auth::credential::Credential;
use crate::auth::managed_identity::{ManagedIdentity, UserAssignedId};
use crate::client::builder::EnvReader;
use crate::wire::error::ExchangeError;
use crate::wire::ids::{ClientId, TenantId};
use crate::wire::secret::ClientSecret;

/// The credential `env` names. It tries, in this order, and stops at the first that
/// is set (a set but incomplete one is an error naming what is missing, never a
/// fall-through):
///
/// 1. `AZURE_CLIENT_SECRET`: a service principal with a client secret;
/// 2. `AZURE_CLIENT_CERTIFICATE_PATH`: with a certificate (PEM or PKCS#12), with
///    `AZURE_CLIENT_CERTIFICATE_PASSWORD` and `AZURE_CLIENT_SEND_CERTIFICATE_CHAIN`;
/// 3. `AZURE_FEDERATED_TOKEN_FILE`: a workload identity;
/// 4. `IDENTITY_ENDPOINT` with `IDENTITY_HEADER`: App Service's managed identity.
///
/// The first three also need `AZURE_TENANT_ID` and `AZURE_CLIENT_ID`. The instance
/// metadata service ([`managed_identity_from`]) and the Azure CLI ([`azure_cli_from`])
/// are never chosen by themselves: only when asked for.
///
/// # Errors
/// [`ExchangeError::InvalidInput`] naming a missing or malformed variable (never quoting a
/// secret), or (`credential`) saying what to set when nothing is.
pub(crate) fn credential_from(env: EnvReader) -> Result<Credential, ExchangeError> {
    let set = |name: &'static str| env_text(env, name).map(|v| v.is_some());
    if set("AZURE_CLIENT_SECRET")? {
        let (tenant, client_id, secret) = service_principal_from(env)?;
        return Ok(Credential::ServicePrincipal(ClientCredentials::new(
            tenant, client_id, secret,
        )));
    }
    if set("AZURE_CLIENT_CERTIFICATE_PATH")? {
        return certificate_from(env);
    }
    if set("AZURE_FEDERATED_TOKEN_FILE")? {
        return workload_identity_from(env);
    }
    if set("IDENTITY_ENDPOINT")? {
        return managed_identity_from(env).map(Credential::ManagedIdentity);
    }
    Err(ExchangeError::invalid_input(
        "credential",
        "the environment names none: set AZURE_TENANT_ID and AZURE_CLIENT_ID with AZURE_CLIENT_SECRET, \
         AZURE_CLIENT_CERTIFICATE_PATH or AZURE_FEDERATED_TOKEN_FILE, or run where IDENTITY_ENDPOINT and \
         IDENTITY_HEADER are set (a VM's managed identity and the Azure CLI are used only when asked for)",
    ))
}

/// A variable that must be set.
fn required(env: EnvReader, name: &'static str) -> Result<String, ExchangeError> {
    env_text(env, name)?.ok_or_else(|| ExchangeError::invalid_input(name, "is not set"))
}

fn tenant_and_client(env: EnvReader) -> Result<(TenantId, ClientId), ExchangeError> {
    Ok((
        TenantId::parse(&required(env, "AZURE_TENANT_ID")?)?,
        ClientId::parse(&required(env, "AZURE_CLIENT_ID")?)?,
    ))
}

/// Without certificate support, a certificate named by the environment is refused by
/// name rather than passed over.
#[cfg(not(feature = "certificate"))]
pub(crate) fn certificate_from(_: EnvReader) -> Result<Credential, ExchangeError> {
    Err(ExchangeError::invalid_input(
        "AZURE_CLIENT_CERTIFICATE_PATH",
        "names a certificate, but this build has no certificate support (pbi-embed-core's feature `certificate`)",
    ))
}

/// The service principal with the certificate file `AZURE_CLIENT_CERTIFICATE_PATH`
/// names, its password `AZURE_CLIENT_CERTIFICATE_PASSWORD`, and `x5c` sent when
/// `AZURE_CLIENT_SEND_CERTIFICATE_CHAIN` is `1` or `true`.
///
/// # Errors
/// [`ExchangeError::InvalidInput`] naming a missing or malformed variable.
#[cfg(feature = "certificate")]
pub(crate) fn certificate_from(env: EnvReader) -> Result<Credential, ExchangeError> {
    let (tenant, client_id) = tenant_and_client(env)?;
    let mut file = CertificateFile::new(required(env, "AZURE_CLIENT_CERTIFICATE_PATH")?);
    if let Some(password) = env_text(env, "AZURE_CLIENT_CERTIFICATE_PASSWORD")? {
        file = file.password(ClientSecret::new(password));
    }
    let send_chain = env_text(env, "AZURE_CLIENT_SEND_CERTIFICATE_CHAIN")?
        .is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
    Ok(Credential::ServicePrincipal(
        ClientCredentials::with_certificate_file(tenant, client_id, file.send_chain(send_chain)),
    ))
}

/// The workload identity of `AZURE_TENANT_ID`, `AZURE_CLIENT_ID` and
/// `AZURE_FEDERATED_TOKEN_FILE` (what AKS workload identity sets).
///
/// # Errors
/// [`ExchangeError::InvalidInput`] naming a missing or malformed variable.
pub(crate) fn workload_identity_from(env: EnvReader) -> Result<Credential, ExchangeError> {
    let (tenant, client_id) = tenant_and_client(env)?;
    let file = std::path::PathBuf::from(required(env, "AZURE_FEDERATED_TOKEN_FILE")?);
    Ok(Credential::ServicePrincipal(
        ClientCredentials::with_federated_token_file(tenant, client_id, file),
    ))
}

/// The managed identity `env` describes: `IDENTITY_ENDPOINT` and `IDENTITY_HEADER` (App
/// Service, Functions, Container Apps), else the instance metadata service at
/// `AZURE_POD_IDENTITY_AUTHORITY_HOST` or `http://169.254.169.254`; `AZURE_CLIENT_ID`
/// picks a user-assigned identity by client id.
///
/// # Errors
/// [`ExchangeError::InvalidInput`] naming a malformed variable, never quoting `IDENTITY_HEADER`.
pub(crate) fn managed_identity_from(env: EnvReader) -> Result<ManagedIdentity, ExchangeError> {
    let var = |name: &'static str| env_text(env, name);
    let identity = match (var("IDENTITY_ENDPOINT")?, var("IDENTITY_HEADER")?) {
        (Some(endpoint), Some(header)) => ManagedIdentity::app_service(&endpoint, header)?,
        (Some(_), None) => {
            return Err(ExchangeError::invalid_input(
                "IDENTITY_HEADER",
                "is not set, though IDENTITY_ENDPOINT is (both come from the App Service host)",
            ));
        }
        (None, _) => match var("AZURE_POD_IDENTITY_AUTHORITY_HOST")? {
            Some(host) => ManagedIdentity::imds_at(&host)?,
            None => ManagedIdentity::imds(),
        },
    };
    Ok(match var("AZURE_CLIENT_ID")? {
        Some(client_id) => identity.user_assigned(UserAssignedId::ClientId(client_id)),
        None => identity,
    })
}

/// The Azure CLI, in the tenant `AZURE_TENANT_ID` names (else the CLI's own).
///
/// # Errors
/// [`ExchangeError::InvalidInput`] when `AZURE_TENANT_ID` is malformed.
pub(crate) fn azure_cli_from(env: EnvReader) -> Result<AzureCli, ExchangeError> {
    Ok(match env_text(env, "AZURE_TENANT_ID")? {
        Some(tenant) => AzureCli::new().tenant(TenantId::parse(&tenant)?),
        None => AzureCli::new(),
    })
}

/// A variable from `lookup` (usually over the process environment), as text: `None` when
/// it is unset or empty.
///
/// # Errors
/// [`ExchangeError::InvalidInput`] naming the variable when its value is not UTF-8 (never quoting it).
pub(crate) fn env_text(
    lookup: impl Fn(&str) -> Option<OsString>,
    name: &'static str,
) -> Result<Option<String>, ExchangeError> {
    match lookup(name) {
        None => Ok(None),
        Some(value) => match value.into_string() {
            Ok(text) if text.is_empty() => Ok(None),
            Ok(text) => Ok(Some(text)),
            Err(_) => Err(ExchangeError::invalid_input(
                name,
                "is set but is not valid UTF-8",
            )),
        },
    }
}

/// A service principal's credentials from variables named as Azure tools name them:
/// `AZURE_TENANT_ID`, `AZURE_CLIENT_ID` and `AZURE_CLIENT_SECRET`. The caller supplies
/// the lookup (usually over the process environment), so the core reads none itself.
///
/// # Errors
/// [`ExchangeError::InvalidInput`] naming a variable that is missing or malformed, never its value.
pub(crate) fn service_principal_from(
    lookup: impl Fn(&str) -> Option<OsString>,
) -> Result<(TenantId, ClientId, ClientSecret), ExchangeError> {
    let var = |name: &'static str| {
        env_text(&lookup, name)?.ok_or_else(|| ExchangeError::invalid_input(name, "is not set"))
    };
    Ok((
        TenantId::parse(&var("AZURE_TENANT_ID")?)?,
        ClientId::parse(&var("AZURE_CLIENT_ID")?)?,
        ClientSecret::new(var("AZURE_CLIENT_SECRET")?),
    ))
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;

    use super::*;

    /// An environment of fixed variables, for one test at a time (`EnvReader` is a plain
    /// function, so the table lives in a thread-local).
    fn with_env<T>(vars: &[(&str, &str)], f: impl FnOnce(EnvReader) -> T) -> T {
        thread_local!(static VARS: std::cell::RefCell<Vec<(String, String)>> = const { std::cell::RefCell::new(Vec::new()) });
        VARS.with(|v| {
            *v.borrow_mut() = vars
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        });
        fn lookup(name: &str) -> Option<OsString> {
            VARS.with(|v| {
                v.borrow()
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| OsString::from(v))
            })
        }
        f(lookup)
    }

    const TENANT: (&str, &str) = ("AZURE_TENANT_ID", "contoso.onmicrosoft.com");
    const CLIENT: (&str, &str) = ("AZURE_CLIENT_ID", "00000000-0000-0000-0000-000000000001");

    fn chosen(vars: &[(&str, &str)]) -> Result<String, String> {
        with_env(vars, |env| {
            credential_from(env)
                .map(|c| format!("{c:?}"))
                .map_err(|e| e.to_string())
        })
    }

    #[test]
    fn the_first_credential_set_is_chosen_in_the_documented_order() {
        let secret = ("AZURE_CLIENT_SECRET", "s3cr3t-value");
        let cert = ("AZURE_CLIENT_CERTIFICATE_PATH", "/etc/app/cert.pfx");
        let token = ("AZURE_FEDERATED_TOKEN_FILE", "/var/run/token");
        let endpoint = ("IDENTITY_ENDPOINT", "http://127.0.0.1:41741/msi/token");
        let header = ("IDENTITY_HEADER", "header-secret");
        let all = [TENANT, CLIENT, secret, cert, token, endpoint, header];
        let debug = chosen(&all).unwrap();
        assert!(debug.contains("Secret"), "{debug}");
        assert!(!debug.contains("s3cr3t-value"), "{debug}");
        let certificate = chosen(&[TENANT, CLIENT, cert, token, endpoint, header]);
        #[cfg(feature = "certificate")]
        assert!(certificate.unwrap().contains("CertificateFile"));
        // Without certificate support, a certificate is refused by name, never passed over.
        #[cfg(not(feature = "certificate"))]
        assert!(certificate.unwrap_err().contains("feature `certificate`"));
        assert!(
            chosen(&[TENANT, CLIENT, token, endpoint, header])
                .unwrap()
                .contains("FederatedTokenFile")
        );
        let debug = chosen(&[endpoint, header]).unwrap();
        assert!(
            debug.contains("AppService") && !debug.contains("header-secret"),
            "{debug}"
        );
        let none = chosen(&[TENANT, CLIENT]).unwrap_err();
        assert!(
            none.contains("AZURE_CLIENT_SECRET") && none.contains("IDENTITY_ENDPOINT"),
            "{none}"
        );
        // A VM's IMDS is never chosen by itself.
        let none = chosen(&[("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://127.0.0.1:1")]).unwrap_err();
        assert!(none.contains("asked for"), "{none}");
    }

    #[test]
    fn an_incomplete_credential_is_an_error_not_a_fall_through() {
        let error = chosen(&[
            ("AZURE_CLIENT_SECRET", "s"),
            CLIENT,
            ("IDENTITY_ENDPOINT", "http://127.0.0.1:1/msi"),
            ("IDENTITY_HEADER", "h"),
        ])
        .unwrap_err();
        assert!(
            error.contains("AZURE_TENANT_ID") && error.contains("not set"),
            "{error}"
        );
        let error = chosen(&[TENANT, ("AZURE_CLIENT_CERTIFICATE_PATH", "/c.pem")]).unwrap_err();
        #[cfg(feature = "certificate")]
        assert!(error.contains("AZURE_CLIENT_ID"), "{error}");
        #[cfg(not(feature = "certificate"))]
        assert!(error.contains("AZURE_CLIENT_CERTIFICATE_PATH"), "{error}");
        let error = chosen(&[("IDENTITY_ENDPOINT", "http://127.0.0.1:1/msi")]).unwrap_err();
        assert!(error.contains("IDENTITY_HEADER"), "{error}");
    }

    #[test]
    fn the_azure_cli_takes_the_tenant() {
        let cli = with_env(&[TENANT], |env| azure_cli_from(env).unwrap());
        assert_eq!(cli, AzureCli::new().tenant(TenantId::parse(TENANT.1).unwrap()));
    }

    #[cfg(feature = "certificate")]
    #[test]
    fn the_certificate_variables_are_read_as_azures_libraries_read_them() {
        let vars = [
            TENANT,
            CLIENT,
            ("AZURE_CLIENT_CERTIFICATE_PATH", "/etc/app/cert.pfx"),
            ("AZURE_CLIENT_CERTIFICATE_PASSWORD", "pfx-password"),
            ("AZURE_CLIENT_SEND_CERTIFICATE_CHAIN", "True"),
        ];
        let debug = chosen(&vars).unwrap();
        assert!(
            debug.contains("password: true") && debug.contains("send_chain: true"),
            "{debug}"
        );
        assert!(!debug.contains("pfx-password"), "{debug}");
        let mut off = vars;
        off[4].1 = "false";
        assert!(chosen(&off).unwrap().contains("send_chain: false"));
    }

    #[test]
    fn credentials_from_a_lookup() {
        let vars = |name: &str| match name {
            "AZURE_TENANT_ID" => Some(OsString::from("contoso.onmicrosoft.com")),
            "AZURE_CLIENT_ID" => Some(OsString::from("00000000-0000-0000-0000-000000000001")),
            _ => None,
        };
        let err = service_principal_from(vars).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid AZURE_CLIENT_SECRET: is not set (nothing was sent)"
        );
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStringExt as _;
            let bad = |name: &str| match name {
                "AZURE_TENANT_ID" => Some(OsString::from_vec(vec![0xff, b's', b'3'])),
                _ => None,
            };
            let err = service_principal_from(bad).unwrap_err().to_string();
            assert_eq!(
                err,
                "invalid AZURE_TENANT_ID: is set but is not valid UTF-8 (nothing was sent)"
            );
        }
    }
}
