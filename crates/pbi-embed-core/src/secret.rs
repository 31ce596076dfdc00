//! Secrets: values that grant access and must never be printed or logged.
//!
//! Each type wraps a `String`, prints `Name([redacted])` under `Debug`, and has no
//! `Display`, `PartialEq` or `Serialize` of its own. Reading the value takes an explicit
//! call to [`secret`](ClientSecret::secret).

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
    /// An Entra ID access token: the bearer token sent to the Power BI REST API.
    AccessToken
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
    }
}
