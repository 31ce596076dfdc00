//! API keys of trusted backends: the key in `X-Api-Key`, stored in the configuration as
//! its SHA-256; the backend names the user in `X-PBI-Username` and the roles in
//! `X-PBI-Roles` (comma-separated).

use axum::http::HeaderMap;
use sha2::{Digest, Sha256};

use super::{Caller, MAX_ROLES, Refusal, checked_name};
use crate::config::ApiKey;

/// The header carrying the key.
pub(crate) const KEY_HEADER: &str = "x-api-key";
/// The header naming the user.
pub(crate) const USERNAME_HEADER: &str = "x-pbi-username";
/// The header naming the roles, comma-separated.
pub(crate) const ROLES_HEADER: &str = "x-pbi-roles";

/// The caller whose key is `presented`, with the user and roles its headers name.
pub(crate) fn authenticate(
    keys: &[ApiKey],
    presented: &[u8],
    headers: &HeaderMap,
) -> Result<Caller, Refusal> {
    let digest: [u8; 32] = Sha256::digest(presented).into();
    // Every key compared in full: the time taken does not tell which bytes matched.
    let found = keys.iter().fold(None, |found, key| {
        let same = key
            .sha256
            .iter()
            .zip(&digest)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
        found.or_else(|| same.then_some(key))
    });
    let key = found.ok_or_else(|| Refusal::Unauthenticated("the API key is not valid".into()))?;
    let text = |name: &str| -> Result<Option<&str>, Refusal> {
        match headers.get_all(name).iter().collect::<Vec<_>>().as_slice() {
            [] => Ok(None),
            [value] => value
                .to_str()
                .map(Some)
                .map_err(|_| Refusal::Forbidden(format!("{name} is not text"))),
            _ => Err(Refusal::Forbidden(format!("{name} is given more than once"))),
        }
    };
    let username = text(USERNAME_HEADER)?
        .map(|name| checked_name("username", name.trim()))
        .transpose()?;
    let mut roles = Vec::new();
    if let Some(list) = text(ROLES_HEADER)? {
        for role in list.split(',').map(str::trim).filter(|r| !r.is_empty()) {
            if roles.len() == MAX_ROLES {
                return Err(Refusal::Forbidden(format!("more than {MAX_ROLES} roles")));
            }
            roles.push(checked_name("role", role)?);
        }
    }
    if username.is_none() && !roles.is_empty() {
        return Err(Refusal::Forbidden(format!(
            "{ROLES_HEADER} needs {USERNAME_HEADER}"
        )));
    }
    Ok(Caller {
        id: format!("key:{}", key.name),
        customer: key.customer.clone(),
        username,
        roles,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Vec<ApiKey> {
        vec![ApiKey {
            name: "billing".into(),
            sha256: Sha256::digest(b"right key").into(),
            customer: "contoso".into(),
        }]
    }

    #[test]
    fn the_right_key_names_its_customer_and_the_headers_the_identity() {
        let mut headers = HeaderMap::new();
        headers.insert(USERNAME_HEADER, "alice@contoso.com".parse().unwrap());
        headers.insert(ROLES_HEADER, "Sales, Manager".parse().unwrap());
        let caller = authenticate(&keys(), b"right key", &headers).unwrap();
        assert_eq!(caller.customer, "contoso");
        assert_eq!(caller.username.as_deref(), Some("alice@contoso.com"));
        assert_eq!(caller.roles, ["Sales", "Manager"]);
        assert!(matches!(
            authenticate(&keys(), b"wrong key", &headers),
            Err(Refusal::Unauthenticated(_))
        ));
    }

    #[test]
    fn a_repeated_or_roles_only_header_is_refused() {
        let mut headers = HeaderMap::new();
        headers.append(USERNAME_HEADER, "alice".parse().unwrap());
        headers.append(USERNAME_HEADER, "bob".parse().unwrap());
        assert!(matches!(
            authenticate(&keys(), b"right key", &headers),
            Err(Refusal::Forbidden(m)) if m.contains("more than once")
        ));
        let mut headers = HeaderMap::new();
        headers.insert(ROLES_HEADER, "Sales".parse().unwrap());
        assert!(authenticate(&keys(), b"right key", &headers).is_err());
    }
}
