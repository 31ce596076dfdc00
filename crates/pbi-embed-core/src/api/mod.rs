//! Power BI's REST API on the wire: typed requests for every GenerateToken route and the
//! item metadata embedding needs, their answers, effective identities, and the
//! configuration `powerbi-client` takes for each embed type.
//!
//! A new operation is one type implementing [`ApiRequest`](request::ApiRequest) here;
//! any driver can then send it with `execute` (or `embed_token` for a GenerateToken).

pub(crate) mod embed_config;
pub(crate) mod embed_request;
pub(crate) mod embed_token;
pub(crate) mod generate_token;
pub(crate) mod identity;
pub(crate) mod metadata;
pub(crate) mod request;
pub(crate) mod token_request;
