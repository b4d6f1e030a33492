//! Auth API figures, with the `tenantry-auth` binary started as its own process on the real
//! NATS/Postgres:
//! 1. `Login` one at a time: p50/p99 with the production argon2id parameters, then throughput
//!    with `--login-clients` at once (argon2 is the cost: 19 MiB, 2 passes per verification);
//! 2. `Refresh` (rotate the refresh token with one append, sign a new access token) with
//!    `--clients` sessions in a closed loop: throughput, p50, p99;
//! 3. the baseline in the same run: `ListMembers` (a cached aggregate read, no append, no
//!    signature) with the same clients;
//! 4. login protection: a failed login for an unknown e-mail beside one with a wrong password
//!    (they must cost about the same, so timing does not tell which accounts exist).

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use tenantry_bench::{authed, ms, percentile, spawn_binary, world_env};
use tenantry_proto::auth::v1::{
    self as api, member_service_client::MemberServiceClient,
    session_service_client::SessionServiceClient,
};
use tenantry_testkit::TestEnv;
use tokio::sync::Mutex;
use tonic::transport::Channel;
use uuid::Uuid;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 32)]
    clients: usize,
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Sequential logins for the latency figure.
    #[arg(long, default_value_t = 200)]
    logins: usize,
    #[arg(long, default_value_t = 4)]
    login_clients: usize,
}

const ADMIN: &str = "bench-admin@tenantry.test";
const PASSWORD: &str = "blue-kettle-orbit-42";

fn report(what: &str, mut latencies: Vec<Duration>, errors: usize, elapsed: f64) {
    latencies.sort();
    println!(
        "  {what:<40} {:>7.0} /s   p50 {:>6.2} ms   p99 {:>6.2} ms   ({} ok, {errors} errors)",
        latencies.len() as f64 / elapsed,
        ms(percentile(&latencies, 50.0)),
        ms(percentile(&latencies, 99.0)),
        latencies.len(),
    );
}

async fn login(
    client: &mut SessionServiceClient<Channel>,
    email: &str,
    tenant: Uuid,
) -> anyhow::Result<api::SessionResponse> {
    Ok(client
        .login(api::LoginRequest {
            email: email.into(),
            password: PASSWORD.into(),
            tenant_id: tenant.to_string(),
        })
        .await?
        .into_inner())
}

/// Runs `step` in a closed loop on each of `states` for `seconds`; each call returns its next
/// state (the rotated refresh token, say).
async fn closed_loop<S, F, Fut>(
    states: Vec<S>,
    seconds: u64,
    step: F,
) -> (Vec<Duration>, usize, f64)
where
    S: Send + 'static,
    F: Fn(S) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = anyhow::Result<S>> + Send,
{
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let errors = Arc::new(Mutex::new(0usize));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let workers: Vec<_> = states
        .into_iter()
        .map(|mut state| {
            let (latencies, errors, step) = (latencies.clone(), errors.clone(), step.clone());
            tokio::spawn(async move {
                let mut mine = Vec::new();
                while Instant::now() < deadline {
                    let t = Instant::now();
                    match step(state).await {
                        Ok(next) => {
                            mine.push(t.elapsed());
                            state = next;
                        }
                        Err(e) => {
                            *errors.lock().await += 1;
                            eprintln!("error: {e}");
                            return;
                        }
                    }
                }
                latencies.lock().await.extend(mine);
            })
        })
        .collect();
    for w in workers {
        let _ = w.await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let latencies = std::mem::take(&mut *latencies.lock().await);
    let errors = *errors.lock().await;
    (latencies, errors, elapsed)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let env = TestEnv::new().await;
    let dir = std::env::temp_dir().join(&env.id);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("master.key"),
        "B2kq3G8p0xZl9Yb2gV7m1Q5sR4tU6wXyZaBcDeFgHiI=",
    )?;
    std::fs::write(dir.join("admin.password"), PASSWORD)?;
    let common = env.common();
    let (addr, child) = spawn_binary(
        "tenantry-auth",
        "TENANTRY_AUTH_LISTEN",
        &[
            world_env(&common),
            vec![
                ("TENANTRY_DATABASE_URL", common.database_url.clone()),
                ("TENANTRY_AUTH_DB_SCHEMA", env.schema("auth")),
                (
                    "TENANTRY_AUTH_MASTER_KEY_FILE",
                    dir.join("master.key").display().to_string(),
                ),
                ("TENANTRY_AUTH_BOOTSTRAP_ADMIN_EMAIL", ADMIN.into()),
                (
                    "TENANTRY_AUTH_BOOTSTRAP_ADMIN_PASSWORD_FILE",
                    dir.join("admin.password").display().to_string(),
                ),
                // The benchmark logs in a great deal from one address.
                ("TENANTRY_AUTH_LOGIN_FAILURES_PER_ADDR", "1000000".into()),
                ("TENANTRY_AUTH_SIGNUPS_PER_ADDR", "1000000".into()),
            ],
        ]
        .concat(),
    )
    .await?;
    let channel = Channel::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    let mut sessions = SessionServiceClient::new(channel.clone());
    let admin = sessions
        .login(api::LoginRequest {
            email: ADMIN.into(),
            password: PASSWORD.into(),
            tenant_id: String::new(),
        })
        .await?
        .into_inner()
        .access_token;

    // Users, each a member of one tenant.
    let tenant = Uuid::now_v7();
    let mut emails = Vec::new();
    for i in 0..args.clients {
        let email = format!("bench{i}@example.com");
        let user = sessions
            .sign_up(api::SignUpRequest {
                email: email.clone(),
                password: PASSWORD.into(),
            })
            .await?
            .into_inner();
        MemberServiceClient::new(channel.clone())
            .add_member(authed(
                api::AddMemberRequest {
                    tenant_id: tenant.to_string(),
                    user_id: user.user_id,
                    role: api::Role::Member as i32,
                },
                &admin,
            ))
            .await?;
        emails.push(email);
    }

    println!(
        "auth API, tenantry-auth release binary, {} clients, {} s per figure",
        args.clients, args.seconds
    );
    // 1. Login latency, one at a time, then throughput.
    let mut latencies = Vec::new();
    let started = Instant::now();
    for _ in 0..args.logins {
        let t = Instant::now();
        login(&mut sessions, &emails[0], tenant).await?;
        latencies.push(t.elapsed());
    }
    report(
        "Login, one at a time",
        latencies,
        0,
        started.elapsed().as_secs_f64(),
    );
    let states: Vec<_> = emails[..args.login_clients.min(emails.len())]
        .iter()
        .map(|e| (SessionServiceClient::new(channel.clone()), e.clone()))
        .collect();
    let (l, e, s) = closed_loop(
        states,
        args.seconds,
        move |(mut client, email)| async move {
            login(&mut client, &email, tenant).await?;
            Ok((client, email))
        },
    )
    .await;
    report(&format!("Login, {} at once", args.login_clients), l, e, s);

    // 2. Refresh: each client its own session, rotating.
    let mut states = Vec::new();
    let mut tokens = Vec::new();
    for email in &emails {
        let s = login(&mut sessions, email, tenant).await?;
        tokens.push(s.access_token);
        states.push((SessionServiceClient::new(channel.clone()), s.refresh_token));
    }
    let (l, e, s) = closed_loop(states, args.seconds, |(mut client, refresh)| async move {
        let next = client
            .refresh(api::RefreshRequest {
                refresh_token: refresh,
                tenant_id: String::new(),
            })
            .await?
            .into_inner();
        anyhow::ensure!(!next.access_token.is_empty(), "no access token");
        Ok((client, next.refresh_token))
    })
    .await;
    report("Refresh (rotate + issue)", l, e, s);

    // 3. Baseline: a read on the same server.
    let states: Vec<_> = tokens
        .into_iter()
        .map(|t| (MemberServiceClient::new(channel.clone()), t))
        .collect();
    let (l, e, s) = closed_loop(states, args.seconds, |(mut client, token)| async move {
        client
            .list_members(authed(api::ListMembersRequest {}, &token))
            .await?;
        Ok((client, token))
    })
    .await;
    report("baseline: ListMembers (read)", l, e, s);

    // 4. Failed logins one at a time, the two kinds alternating (and which goes first
    // alternating too, so neither inherits the other's after-effects); four per account stays
    // under the lockout.
    let (mut unknown, mut wrong) = (Vec::new(), Vec::new());
    let started = Instant::now();
    for (i, email) in emails.iter().cycle().take(emails.len() * 4).enumerate() {
        for unknown_turn in [i % 2 == 0, i % 2 == 1] {
            let (address, password) = if unknown_turn {
                (
                    format!("nobody-{}@example.com", Uuid::new_v4().simple()),
                    PASSWORD,
                )
            } else {
                (email.clone(), "not-the-password-at-all")
            };
            let t = Instant::now();
            let refused = sessions
                .login(api::LoginRequest {
                    email: address,
                    password: password.into(),
                    tenant_id: String::new(),
                })
                .await;
            anyhow::ensure!(refused.is_err(), "a bad login was accepted");
            if unknown_turn {
                &mut unknown
            } else {
                &mut wrong
            }
            .push(t.elapsed());
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    report("failed Login: unknown e-mail", unknown, 0, elapsed);
    report("failed Login: wrong password", wrong, 0, elapsed);
    drop(child);
    env.cleanup().await;
    Ok(())
}
