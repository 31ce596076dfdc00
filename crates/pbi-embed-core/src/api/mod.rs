//! Power BI REST: requests, responses, ids, identities, embed configurations.

pub(crate) mod embed_config;
pub(crate) mod embed_token;
pub(crate) mod generate_token;
pub(crate) mod identity;
pub(crate) mod metadata;
pub(crate) mod token_request;
