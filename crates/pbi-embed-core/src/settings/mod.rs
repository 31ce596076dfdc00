//! What a client is configured with, apart from its credential: the client settings
//! (time bounds, caches, refresh-ahead, the shared store's use), the connection settings
//! of the drivers' own HTTP clients, and the retry policy.

pub(crate) mod client_settings;
pub(crate) mod connect_settings;
pub(crate) mod retry;
