//! How a client gets bearer tokens: one [`Credential`], and its sign-in as a machine.

use super::azure_cli::{AzureCli, AzureCliSignIn};
use super::client_credentials::ClientCredentials;
use super::managed_identity::{ManagedIdentity, ManagedIdentitySignIn};
use super::sign_in::{Attempt, SignIn, SignInError, SignInInput, SignInStep, unasked};
use crate::wire::cloud::Cloud;
use crate::wire::secret::AccessToken;

/// How a client gets bearer tokens for the Power BI REST API.
///
/// The builder's methods make one ([`service_principal`](crate::ClientBuilder::service_principal),
/// [`managed_identity`](crate::ClientBuilder::managed_identity), [`from_env`](crate::ClientBuilder::from_env)…);
/// a driver's own code passes one to [`Session::new`](crate::driver::Session::new).
///
/// ```
/// use pbi_embed_core::{ClientCredentials, ClientId, ClientSecret, Credential, TenantId};
///
/// let credential = Credential::ServicePrincipal(ClientCredentials::new(
///     TenantId::parse("contoso.onmicrosoft.com")?,
///     ClientId::parse("00000000-0000-0000-0000-000000000001")?,
///     ClientSecret::new("s3cr3t"),
/// ));
/// assert_eq!(credential.describe(), "a service principal with a client secret");
/// assert!(credential.is_renewable());
/// # Ok::<(), pbi_embed_core::ExchangeError>(())
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Credential {
    /// An app registration signing in with the OAuth client-credentials grant: a client
    /// secret, a client certificate, or a workload identity's federated token.
    ServicePrincipal(ClientCredentials),
    /// A bearer token used as is. It cannot be renewed: once Power BI says it expired,
    /// calls fail with `TokenExpired`.
    BearerToken(AccessToken),
    /// The Azure host's managed identity (App Service, Functions, Container Apps, or the
    /// instance metadata service of a VM or AKS node).
    ManagedIdentity(ManagedIdentity),
    /// Whoever is signed in to the Azure CLI (developer machines): the flow runs `az`
    /// with [`Action::RunProgram`](crate::driver::Action::RunProgram).
    AzureCli(AzureCli),
    /// Tokens from the driver's token source (given to the builder with
    /// [`token_source`](crate::ClientBuilder::token_source)): the flow asks for one with
    /// [`Action::FetchToken`](crate::driver::Action::FetchToken).
    TokenSource,
}

impl Credential {
    /// What it is, in a few words for logs (never a secret).
    #[must_use]
    pub fn describe(&self) -> &'static str {
        match self {
            Self::ServicePrincipal(op) => op.describe(),
            Self::BearerToken(_) => "a fixed bearer token",
            Self::ManagedIdentity(_) => "the host's managed identity",
            Self::AzureCli(_) => "the Azure CLI",
            Self::TokenSource => "the client's token source",
        }
    }

    /// Whether a new token can be had after Power BI says the current one expired.
    #[must_use]
    pub fn is_renewable(&self) -> bool {
        !matches!(self, Self::BearerToken(_))
    }

    /// This credential signing in to `cloud`'s authority host.
    pub(crate) fn for_cloud(self, cloud: &Cloud) -> Self {
        match self {
            Self::ServicePrincipal(op) => Self::ServicePrincipal(op.cloud(cloud.clone())),
            other => other,
        }
    }

    /// Its sign-in, as a machine.
    pub(crate) fn sign_in(&self) -> Box<dyn SignIn> {
        match self {
            Self::ServicePrincipal(op) => op.sign_in(),
            Self::ManagedIdentity(identity) => Box::new(ManagedIdentitySignIn::new(identity.clone())),
            Self::AzureCli(cli) => Box::new(AzureCliSignIn(cli.clone())),
            Self::TokenSource => Box::new(FromTokenSource),
            Self::BearerToken(_) => Box::new(Fixed),
        }
    }
}

/// A token source signing in: ask it.
#[derive(Debug)]
struct FromTokenSource;

impl SignIn for FromTokenSource {
    fn start(&mut self, _: &Attempt<'_>) -> SignInStep {
        SignInStep::FetchToken
    }

    fn resume(&mut self, input: SignInInput, _: &Attempt<'_>) -> SignInStep {
        match input {
            SignInInput::Token(token) => SignInStep::Done(token),
            _ => unasked(),
        }
    }
}

/// A fixed bearer token: there is nothing to sign in with.
#[derive(Debug)]
struct Fixed;

impl SignIn for Fixed {
    fn start(&mut self, _: &Attempt<'_>) -> SignInStep {
        SignInStep::Failed(SignInError::CannotRenew)
    }

    fn resume(&mut self, _: SignInInput, _: &Attempt<'_>) -> SignInStep {
        unasked()
    }
}
