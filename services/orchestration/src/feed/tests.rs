use base64::Engine as _;

use super::*;

#[test]
fn a_full_buffer_ends_the_pump_as_too_slow_and_memory_stays_at_the_buffer() {
    let (tx, mut rx) = mpsc::channel(3);
    let texts = |n: usize| (0..n).map(|i| format!("e{i}")).collect::<Vec<_>>();
    assert_eq!(queue(&tx, texts(2), 7), Ok(()));
    // The second message's two events: one fits, the next finds the buffer full.
    assert_eq!(queue(&tx, texts(2), 8), Err(PumpEnd::Overflow));
    let queued: Vec<(u64, bool)> = std::iter::from_fn(|| rx.try_recv().ok())
        .map(|o| (o.position, o.last))
        .collect();
    // Position 7 is whole (its last event is marked); 8 is not, so a client resumes after 7.
    assert_eq!(queued, [(7, false), (7, true), (8, false)]);
    drop(rx);
    assert_eq!(queue(&tx, texts(1), 9), Err(PumpEnd::Closed));
}

#[test]
fn an_access_tokens_expiry_is_its_exp_and_an_api_key_has_none() {
    let claims =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"sub":"u","exp":1900000000}"#);
    let token = format!("eyJhbGciOiJFZERTQSJ9.{claims}.c2ln");
    assert_eq!(
        message::expiry(&token).map(|t| t.timestamp()),
        Some(1_900_000_000)
    );
    assert_eq!(message::expiry("tk_abc_def"), None);
}
