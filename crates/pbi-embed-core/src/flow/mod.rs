//! The call as machines.

pub(crate) mod cache;
pub(crate) mod call;
pub(crate) mod error;
pub(crate) mod plan;
pub(crate) mod session;
pub(crate) mod shared;
pub(crate) mod store;
