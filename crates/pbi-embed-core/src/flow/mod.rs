//! The call as small machines.
//!
//! - [`session`]: the coordinator a driver steps, over the parts below.
//! - [`call`]: one call and the [`Action`](call::Action)s it asks of its driver; [`io`]:
//!   the requests for IO, each carrying how it is answered; [`branch`]: steps run side by
//!   side, each a call of its own.
//! - [`plan`]: what each kind of call needs, in order (an embed configuration's steps).
//! - [`job`]: one need fetched: cache, single flight, the shared store, Power BI;
//!   [`fetch`]: the bearer token, sending, retries; [`lease`]: the shared store's lock and
//!   records; [`retry`]: one request's attempts.
//! - [`scheduler`]: who runs, who leads, who is parked, what is refreshed ahead.
//! - [`cache`], [`store`], [`answer`]: what is kept, shared and handed back.
//! - [`error`]: how a whole call fails; [`shared`]: the session behind its lock;
//!   [`stats`]: what the session did, counted.

pub(crate) mod answer;
pub(crate) mod branch;
pub(crate) mod cache;
pub(crate) mod call;
pub(crate) mod error;
pub(crate) mod fetch;
pub(crate) mod io;
pub(crate) mod job;
pub(crate) mod lease;
pub(crate) mod plan;
pub(crate) mod retry;
pub(crate) mod scheduler;
pub(crate) mod session;
pub(crate) mod shared;
pub(crate) mod stats;
pub(crate) mod store;
