//! Entra ID and every credential: each credential's wire format and its sign-in as a
//! small machine behind one interface ([`sign_in::SignIn`]), the bearer token a session
//! holds and when it is renewed ([`bearer`]), and the token sources callers bring.
//!
//! A new credential is one new file here (its wire format and its machine), one
//! [`Credential`](credential::Credential) variant, a builder method and, if the
//! environment names it, a case in the environment reader.

#[cfg(feature = "azure")]
pub mod azure;
pub(crate) mod azure_cli;
pub(crate) mod bearer;
#[cfg(feature = "certificate")]
pub(crate) mod certificate;
pub(crate) mod client_credentials;
pub(crate) mod credential;
pub(crate) mod entra;
pub(crate) mod managed_identity;
pub(crate) mod sign_in;
pub(crate) mod token_source;
