//! What a driver crate builds its client with: the one [`ClientBuilder`](builder::ClientBuilder)
//! every driver shares, the [`Driver`](builder::Driver) plug, and the environment reader
//! that picks a credential the way Azure's identity libraries do.

pub(crate) mod builder;
pub(crate) mod environment;
