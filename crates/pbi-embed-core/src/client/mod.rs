//! The builder and the environment.

pub(crate) mod builder;
pub(crate) mod environment;
