//! Settings.

pub(crate) mod client_settings;
pub(crate) mod connect_settings;
pub(crate) mod retry;
