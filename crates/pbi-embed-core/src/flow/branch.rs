//! Steps of a call that do not depend on each other, run side by side: each is a call of
//! its own (a *branch*: cache, single flight, sign-in and retries as any call), which the
//! driver runs concurrently and hands back together ([`Action::Join`]).
//!
//! [`Action::Join`]: crate::driver::Action::Join

use std::fmt;
use std::time::Instant;

use crate::flow::answer::Answer;
use crate::flow::call::{Call, CallState};
use crate::flow::error::Error;
use crate::flow::io::{Event, Reply, Slot};
use crate::flow::plan::{BranchPlan, Next, Plan};

/// Calls a call needs run side by side before it goes on: run each to its end as any
/// call (concurrently, as the driver can: a blocking driver on a few threads, an async
/// one as futures polled together), then answer with [`Joiner::respond`], their results
/// in the order given.
#[must_use]
pub struct Join {
    pub(crate) branches: Vec<Call<'static, Branch>>,
    pub(crate) slot: Slot,
}

impl Join {
    /// How many calls there are.
    #[must_use]
    pub fn len(&self) -> usize {
        self.branches.len()
    }

    /// Whether there are none (never, as the flow asks).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.branches.is_empty()
    }

    /// The calls to run, and how their results go back.
    pub fn into_branches(self) -> (Vec<Call<'static, Branch>>, Joiner) {
        let joiner = Joiner {
            slot: self.slot,
            count: self.branches.len(),
        };
        (self.branches, joiner)
    }
}

impl fmt::Debug for Join {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Join")
            .field("branches", &self.branches.len())
            .finish_non_exhaustive()
    }
}

/// Answers a [`Join`] with its calls' results.
#[derive(Debug)]
#[must_use]
pub struct Joiner {
    slot: Slot,
    count: usize,
}

impl Joiner {
    /// The results of the calls, in the order [`Join::into_branches`] gave them. A
    /// result missing from the end counts as a failure of the driver's.
    pub fn respond(self, results: Vec<Result<Branch, Error>>) -> Event {
        let mut answers: Vec<Answer> = results
            .into_iter()
            .take(self.count)
            .map(|result| result.map_or_else(Answer::Failed, |branch| branch.0))
            .collect();
        while answers.len() < self.count {
            let missing = Error::driver("a call run side by side was not answered".into(), None);
            answers.push(Answer::Failed(missing));
        }
        Event::reply(self.slot, Reply::Joined(answers))
    }
}

/// What a branch gave, to hand back through its [`Joiner`]. Opaque.
pub struct Branch(Answer);

impl fmt::Debug for Branch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Branch")
    }
}

/// A branch's plan, its answer as the call's output (a failure as the call's error).
struct BranchOut(BranchPlan);

impl Plan for BranchOut {
    type Output = Branch;

    fn next(&mut self, answer: Option<Answer>) -> Result<Next<Branch>, Error> {
        match self.0.next(answer)? {
            Next::Done(Answer::Failed(error)) => Err(error),
            Next::Done(answer) => Ok(Next::Done(Branch(answer))),
            Next::Need(need) => Ok(Next::Need(need)),
            Next::All(sides) => Ok(Next::All(sides)),
        }
    }
}

impl Call<'static, Branch> {
    /// A branch of a call whose deadline is `deadline`: it ends by then too.
    pub(crate) fn branch(plan: BranchPlan, deadline: Option<Instant>) -> Self {
        Self {
            plan: Box::new(BranchOut(plan)),
            state: CallState::New { inherited: deadline },
        }
    }
}
