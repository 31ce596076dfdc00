//! Wire basics.

pub(crate) mod cloud;
pub(crate) mod error;
pub(crate) mod ids;
pub(crate) mod lifetime;
pub(crate) mod operation;
pub(crate) mod redact;
pub(crate) mod response;
pub(crate) mod secret;
