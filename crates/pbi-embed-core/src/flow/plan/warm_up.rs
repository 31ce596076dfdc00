//! Warm-up: sign in, and read ahead what the configurations of some embed requests will
//! need (each item's metadata and its datasets' flags), so that the first user's
//! configuration costs only its token.

use super::embed::prepare;
use super::{Answer, Need, Next, Plan, Side, failed_or_unexpected};
use crate::api::embed_request::EmbedRequest;
use crate::flow::call::Call;
use crate::flow::error::Error;

/// Signs in, then prepares every request side by side.
struct WarmUp {
    state: State,
}

enum State {
    /// Signing in.
    SignIn(Vec<Side>),
    /// Reading ahead for each request.
    Items,
}

impl Plan for WarmUp {
    type Output = ();

    fn next(&mut self, answer: Option<Answer>) -> Result<Next<()>, Error> {
        match (std::mem::replace(&mut self.state, State::Items), answer) {
            (State::SignIn(items), None) => {
                self.state = State::SignIn(items);
                Ok(Next::Need(Need::Bearer))
            }
            (State::SignIn(items), Some(Answer::Bearer(_))) => Ok(Next::All(items)),
            // Every item was tried; the first failure is the call's.
            (State::Items, Some(answer)) => answer
                .into_list()
                .into_iter()
                .find_map(|answer| match answer {
                    Answer::Failed(error) => Some(error),
                    _ => None,
                })
                .map_or(Ok(Next::Done(())), Err),
            (_, other) => Err(failed_or_unexpected(other)),
        }
    }
}

impl Call<'static, ()> {
    /// Warm-up: signs in (renewing a token inside its renewal margin), then reads what
    /// each request's configuration will need — its item's metadata and its datasets'
    /// RLS flags — side by side, fetching what the caches do not hold fresh. Afterwards
    /// the first configuration of each costs one round trip (its token). Run it at start
    /// and again every [`Session::warm_up_interval`](crate::driver::Session::warm_up_interval)
    /// to keep it so; fails with the first item that could not be read, after trying all.
    pub fn warm_up(requests: &[EmbedRequest]) -> Self {
        Self::new(WarmUp {
            state: State::SignIn(requests.iter().map(|r| Side::Plan(prepare(r))).collect()),
        })
    }
}
