//! Secrets: values that grant access and must never be printed or logged.
//!
//! Each type wraps a string, prints `Name([redacted])` under `Debug`, and has no
//! `Display`, `PartialEq` or `Serialize` of its own. Reading the value takes an explicit
//! call to [`secret`](ClientSecret::secret).

use std::sync::Arc;

use http::HeaderValue;

macro_rules! secret_type {
    ($(#[$attr:meta])* $name:ident) => {
        $(#[$attr])*
        #[derive(Clone)]
        pub struct $name(String);

        impl $name {
            #[doc = concat!("Wraps a value as a `", stringify!($name), "`.")]
            pub fn new(secret: impl Into<String>) -> Self {
                Self(secret.into())
            }

            /// Returns the secret value.
            ///
            /// # Security
            /// Anything that prints, logs or stores this value leaks a credential.
            #[must_use]
            pub fn secret(&self) -> &str {
                &self.0
            }

            /// Consumes the wrapper and returns the secret value.
            ///
            /// # Security
            /// Anything that prints, logs or stores this value leaks a credential.
            #[must_use]
            pub fn into_secret(self) -> String {
                self.0
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }
    };
}

secret_type! {
    /// The client secret of a service principal (an Entra ID app registration).
    ClientSecret
}

secret_type! {
    /// An embed token minted by Power BI: what the browser's `powerbi-client` uses.
    EmbedTokenSecret
}

secret_type! {
    /// An identity blob: an OAuth 2.0 access token for Azure SQL, sent inside an
    /// effective identity (`identityBlob.value`) or a datasource identity (`identityBlob`).
    IdentityBlob
}

/// An Entra ID access token: the bearer token sent to the Power BI REST API.
///
/// It is sent with every call, so its `Authorization` header value is built once, when
/// the token is made, and clones share it.
#[derive(Clone)]
pub struct AccessToken(Arc<Bearer>);

/// The token and its header value.
struct Bearer {
    secret: String,
    /// `Bearer {secret}`, marked sensitive; `None` if the token holds characters that no
    /// header may carry (the request then fails as invalid input, before anything is sent).
    authorization: Option<HeaderValue>,
}

impl AccessToken {
    /// Wraps a value as an `AccessToken`.
    pub fn new(secret: impl Into<String>) -> Self {
        let secret = secret.into();
        let authorization = HeaderValue::try_from(format!("Bearer {secret}"))
            .ok()
            .map(|mut value| {
                value.set_sensitive(true);
                value
            });
        Self(Arc::new(Bearer {
            secret,
            authorization,
        }))
    }

    /// Returns the secret value.
    ///
    /// # Security
    /// Anything that prints, logs or stores this value leaks a credential.
    #[must_use]
    pub fn secret(&self) -> &str {
        &self.0.secret
    }

    /// Consumes the wrapper and returns the secret value.
    ///
    /// # Security
    /// Anything that prints, logs or stores this value leaks a credential.
    #[must_use]
    pub fn into_secret(self) -> String {
        Arc::try_unwrap(self.0).map_or_else(|shared| shared.secret.clone(), |bearer| bearer.secret)
    }

    /// The `Authorization` header value, `Bearer {token}`, marked sensitive; `None` if the
    /// token cannot go in a header.
    pub(crate) fn authorization(&self) -> Option<&HeaderValue> {
        self.0.authorization.as_ref()
    }
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessToken([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        assert_eq!(
            format!("{:?}", ClientSecret::new("s3cr3t")),
            "ClientSecret([redacted])"
        );
        assert_eq!(
            format!("{:?}", AccessToken::new("eyJ0")),
            "AccessToken([redacted])"
        );
        assert_eq!(
            format!("{:#?}", EmbedTokenSecret::new("H4sI")),
            "EmbedTokenSecret([redacted])"
        );
        assert_eq!(
            format!("{:?}", IdentityBlob::new("blob")),
            "IdentityBlob([redacted])"
        );
    }

    #[test]
    fn value_is_reachable_on_purpose() {
        let secret = ClientSecret::new("s3cr3t");
        assert_eq!(secret.secret(), "s3cr3t");
        assert_eq!(secret.into_secret(), "s3cr3t");
        let token = AccessToken::new("eyJ0");
        let shared = token.clone();
        assert_eq!(token.into_secret(), "eyJ0");
        assert_eq!(shared.into_secret(), "eyJ0");
    }

    #[test]
    fn access_token_header_is_built_once_and_sensitive() {
        let token = AccessToken::new("eyJ0.a-b_c");
        let header = token.authorization().unwrap();
        assert_eq!(header, "Bearer eyJ0.a-b_c");
        assert!(header.is_sensitive());
        assert!(AccessToken::new("line\nbreak").authorization().is_none());
    }
}
