//! What both services speak on the wire, and what the rest of the crate builds on: typed
//! ids, secrets, clouds, the [`Operation`](operation::Operation) boundary between a typed
//! request and `http`, the errors Power BI and Entra ID answer with, `Retry-After`, and
//! token freshness.

pub(crate) mod cloud;
pub(crate) mod error;
pub(crate) mod ids;
pub(crate) mod lifetime;
pub(crate) mod operation;
pub(crate) mod parsed_urls;
pub(crate) mod redact;
pub(crate) mod response;
pub(crate) mod retry_after;
pub(crate) mod secret;
pub(crate) mod service_error;
