//! Entra ID and every credential.

pub(crate) mod azure_cli;
pub(crate) mod bearer;
pub(crate) mod certificate;
pub(crate) mod entra;
pub(crate) mod managed_identity;
