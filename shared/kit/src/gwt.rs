//! Given events, when a command, then events (or an error): how every aggregate is tested.
//!
//! ```ignore
//! given::<Tenant>([created()])
//!     .when(TenantCommand::Suspend { reason: "unpaid".into() })
//!     .then([suspended("unpaid")]);
//! given::<Tenant>([]).when(update()).then_error(DomainError::NotFound("tenant".into()));
//! ```
//!
//! The events a command decides are folded into the state `then` returns, so a test can go on
//! from there (`.when(...)` again on the returned [`Given`]).
//!
//! Events are stamped as the repository stamps them: [`Given::at`] sets their time (an
//! aggregate that counts failures in a window reads it), [`Given::by`] the command that caused
//! them (an aggregate that recognises a retry of its last command reads it), and each gets the
//! next position.

use std::fmt::Debug;

use chrono::{DateTime, TimeZone, Utc};
use tenantry_eventstore::{Aggregate, EventMeta};

/// An aggregate built from past events.
#[derive(Debug, Clone)]
pub struct Given<A> {
    state: A,
    meta: EventMeta,
}

/// The aggregate after `events`, each stamped with the time and ids of [`Given::at`],
/// [`Given::of`] and [`Given::by`] (2026-01-01T12:00Z and fixed ids unless set).
// A constant, valid date: the unwrap cannot fail.
#[allow(clippy::unwrap_used)]
pub fn given<A: Aggregate>(events: impl IntoIterator<Item = A::Event>) -> Given<A> {
    Given {
        state: A::default(),
        meta: EventMeta {
            event_id: String::new(),
            tenant_id: "00000000-0000-7000-8000-000000000001".into(),
            aggregate_id: "00000000-0000-7000-8000-000000000001".into(),
            occurred_at: Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap(),
            actor: "test".into(),
            causation_id: "test".into(),
            correlation_id: "test".into(),
            position: 0,
        },
    }
    .and(events)
}

impl<A: Aggregate> Given<A> {
    /// Later events happen at `time`.
    pub fn at(mut self, time: DateTime<Utc>) -> Self {
        self.meta.occurred_at = time;
        self
    }

    /// Later events belong to `tenant`'s aggregate `aggregate_id`.
    pub fn of(mut self, tenant: impl ToString, aggregate_id: impl ToString) -> Self {
        self.meta.tenant_id = tenant.to_string();
        self.meta.aggregate_id = aggregate_id.to_string();
        self
    }

    /// Later events were caused by the command `command_id` (their `causation_id`).
    pub fn by(mut self, command_id: impl ToString) -> Self {
        self.meta.causation_id = command_id.to_string();
        self
    }

    /// More past events.
    pub fn and(mut self, events: impl IntoIterator<Item = A::Event>) -> Self {
        for event in events {
            self.meta.position += 1;
            self.state.evolve(&event, &self.meta);
        }
        self
    }

    /// The state the events made.
    pub fn state(&self) -> &A {
        &self.state
    }

    /// Decides `command` against the state.
    pub fn when(&self, command: A::Command) -> When<A> {
        When {
            outcome: self.state.decide(&command),
            given: self.clone(),
        }
    }
}

/// What a command decided.
#[must_use = "a decision is checked with then, then_nothing or then_error"]
pub struct When<A: Aggregate> {
    outcome: Result<Vec<A::Event>, A::Error>,
    given: Given<A>,
}

impl<A> When<A>
where
    A: Aggregate,
    A::Event: PartialEq + Debug + Clone,
    A::Error: Debug,
{
    /// The command decided exactly `expected`; returns the aggregate with them applied.
    pub fn then(self, expected: impl IntoIterator<Item = A::Event>) -> Given<A> {
        let expected: Vec<A::Event> = expected.into_iter().collect();
        let events = self.then_events();
        assert_eq!(events, expected, "decided events");
        self.given.and(events)
    }

    /// The command was accepted and changed nothing (a retry, or a state already reached).
    pub fn then_nothing(self) -> Given<A> {
        let given = self.given.clone();
        let events = self.then_events();
        assert!(events.is_empty(), "expected no events, decided {events:?}");
        given
    }

    /// The events the command decided, for a test that checks them itself (fields decided
    /// from the command, such as generated tokens); panics if it was refused.
    pub fn then_events(&self) -> Vec<A::Event> {
        match &self.outcome {
            Ok(events) => events.clone(),
            Err(e) => panic!("expected events, the command was refused: {e:?}"),
        }
    }

    /// The aggregate with the decided events applied (see [`When::then_events`]).
    pub fn then_state(self) -> Given<A> {
        let events = self.then_events();
        self.given.and(events)
    }

    /// The command was refused; returns why.
    pub fn then_rejected(self) -> A::Error {
        match self.outcome {
            Ok(events) => panic!("expected a refusal, decided {events:?}"),
            Err(e) => e,
        }
    }

    /// The command was refused with `expected`.
    pub fn then_error(self, expected: A::Error)
    where
        A::Error: PartialEq,
    {
        assert_eq!(self.then_rejected(), expected);
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;
    use tenantry_eventstore::event_table;
    use tenantry_proto::events::v1 as pb;

    use super::*;

    /// A log of notes that remembers how each was stamped, and refuses an empty note.
    #[derive(Debug, Clone, Default)]
    struct Notes {
        stamps: Vec<(String, DateTime<Utc>, String, u64)>,
    }

    #[derive(Debug, Clone, PartialEq)]
    enum NoteEvent {
        Noted(pb::TenantSuspended),
    }

    event_table!(NoteEvent in "note" {
        Noted => "note.noted.v1": pb::TenantSuspended,
    });

    fn noted(text: &str) -> NoteEvent {
        NoteEvent::Noted(pb::TenantSuspended {
            reason: text.into(),
        })
    }

    impl Aggregate for Notes {
        type Command = String;
        type Event = NoteEvent;
        type Error = String;

        fn decide(&self, text: &String) -> Result<Vec<NoteEvent>, String> {
            match text.as_str() {
                "" => Err("empty".into()),
                // Already noted last: nothing new.
                t if self.stamps.last().is_some_and(|s| s.0 == t) => Ok(vec![]),
                t => Ok(vec![noted(t)]),
            }
        }

        fn evolve(&mut self, NoteEvent::Noted(n): &NoteEvent, meta: &EventMeta) {
            self.stamps.push((
                n.reason.clone(),
                meta.occurred_at,
                meta.causation_id.clone(),
                meta.position,
            ));
        }
    }

    fn start() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap()
    }

    #[test]
    fn given_events_when_a_command_then_its_events_are_stamped_and_applied() {
        let later = start() + Duration::minutes(5);
        let state = given::<Notes>([noted("a")])
            .at(later)
            .by("cmd-2")
            .when("b".into())
            .then([noted("b")]);
        assert_eq!(
            state.state().stamps,
            [
                ("a".into(), start(), "test".into(), 1),
                ("b".into(), later, "cmd-2".into(), 2),
            ]
        );
        state.when("b".into()).then_nothing();
        state.when(String::new()).then_error("empty".into());
    }

    #[test]
    #[should_panic(expected = "decided events")]
    fn given_a_command_when_other_events_are_expected_then_the_test_fails() {
        let _ = given::<Notes>([]).when("a".into()).then([noted("b")]);
    }

    #[test]
    #[should_panic(expected = "expected no events")]
    fn given_a_command_that_decides_events_when_nothing_is_expected_then_the_test_fails() {
        let _ = given::<Notes>([]).when("a".into()).then_nothing();
    }

    #[test]
    #[should_panic(expected = "expected a refusal")]
    fn given_an_accepted_command_when_a_refusal_is_expected_then_the_test_fails() {
        given::<Notes>([])
            .when("a".into())
            .then_error("empty".into());
    }

    #[test]
    #[should_panic(expected = "the command was refused")]
    fn given_a_refused_command_when_events_are_expected_then_the_test_fails() {
        let _ = given::<Notes>([]).when(String::new()).then([]);
    }
}
