//! A repository's cached state against writers it does not see: two repositories (two
//! replicas, or a job and an API) act on the same aggregate; neither decides on a stale state.

use tenantry_eventstore::{
    Aggregate, AggregateAddress, CommandMeta, EventMeta, ExecuteError, Repository, event_table,
};
use tenantry_proto::events::v1 as pb;
use tenantry_testkit::TestEnv;

/// An account that must be opened before it is used, and is opened once.
#[derive(Debug, Clone, Default)]
struct Account {
    open: bool,
    deposits: u32,
}

#[derive(Debug, Clone, PartialEq)]
enum AccountEvent {
    Opened(pb::TenantReactivated),
    Deposited(pb::TenantSuspended),
}

event_table!(AccountEvent in "account" {
    Opened => "account.opened.v1": pb::TenantReactivated,
    Deposited => "account.deposited.v1": pb::TenantSuspended,
});

#[derive(Debug, Clone)]
enum Command {
    Open,
    Deposit,
}

impl Aggregate for Account {
    type Command = Command;
    type Event = AccountEvent;
    type Error = &'static str;

    fn decide(&self, command: &Command) -> Result<Vec<AccountEvent>, &'static str> {
        match (command, self.open) {
            (Command::Open, true) => Ok(vec![]),
            (Command::Open, false) => Ok(vec![AccountEvent::Opened(pb::TenantReactivated {})]),
            (Command::Deposit, false) => Err("not open"),
            (Command::Deposit, true) => {
                Ok(vec![
                    AccountEvent::Deposited(pb::TenantSuspended::default()),
                ])
            }
        }
    }

    fn evolve(&mut self, event: &AccountEvent, _: &EventMeta) {
        match event {
            AccountEvent::Opened(_) => self.open = true,
            AccountEvent::Deposited(_) => self.deposits += 1,
        }
    }
}

fn meta(id: &str) -> CommandMeta {
    CommandMeta {
        command_id: format!("{id}-{}", uuid::Uuid::new_v4()),
        actor: "test".into(),
        correlation_id: id.into(),
        occurred_at: chrono::Utc::now(),
        traceparent: None,
        fingerprint: None,
    }
}

#[tokio::test]
async fn a_refusal_or_a_no_op_is_never_decided_on_a_stale_cached_state() {
    let env = TestEnv::new().await;
    let store = env.event_store().await;
    let api: Repository<Account> = Repository::new(store.clone(), 100);
    let job: Repository<Account> = Repository::new(store, 100);
    let address = AggregateAddress::of::<Account>("t1", "a1").unwrap();

    // The API caches the account as not open (its command is refused)...
    let refused = api
        .execute(&address, &Command::Deposit, &meta("early"))
        .await;
    assert!(matches!(refused, Err(ExecuteError::Rejected("not open"))));
    // ...then a job opens it through its own repository.
    job.execute(&address, &Command::Open, &meta("open"))
        .await
        .unwrap();
    // The API's next command sees the account open.
    let deposited = api
        .execute(&address, &Command::Deposit, &meta("deposit"))
        .await
        .unwrap();
    assert_eq!(deposited.state.deposits, 1);

    // The same for a no-op decided on the cache: the job deposits, the API's cached state
    // does not know, and a no-op must report the state the log holds.
    job.execute(&address, &Command::Deposit, &meta("job-deposit"))
        .await
        .unwrap();
    let noop = api
        .execute(&address, &Command::Open, &meta("reopen"))
        .await
        .unwrap();
    assert_eq!(
        noop.state.deposits, 2,
        "the no-op was decided on the log's state"
    );
}
