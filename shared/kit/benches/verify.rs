//! Access-token verification in the interceptor, beside the raw Ed25519 signature check.
//!
//! - `ed25519_raw`: ed25519-dalek verifying a JWT's signature over its signing input: the
//!   floor for any check that looks at the signature.
//! - `verify_full`: the interceptor's full check with a warm JWKS (header, key id, signature,
//!   claims, role, tenant) for a token it has not seen.
//! - `verify_remembered`: the same token again, as a client sends it for its whole life.
//!
//! Run: `cargo bench -p tenantry-kit --bench verify` (one thread: criterion runs serially).

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{Criterion, criterion_group, criterion_main};
use ed25519_dalek::{Signature, Verifier as _, VerifyingKey};
use tenantry_kit::auth::{AccessClaims, JwksSource, SigningKey, Verifier, VerifierConfig, jwks};

fn claims() -> AccessClaims {
    let now = chrono::Utc::now().timestamp();
    AccessClaims {
        iss: "tenantry".into(),
        sub: "0192f0c4-9d1e-7a3b-8c5d-2e4f6a8b0c1d".into(),
        aud: "tenantry".into(),
        tenant_id: Some("0192f0c4-0000-7000-8000-000000000001".into()),
        role: "member".into(),
        jti: "0192f0c4-9d1e-7a3b-8c5d-000000000002".into(),
        iat: now,
        nbf: now,
        exp: now + 900,
    }
}

fn bench(c: &mut Criterion) {
    let key = SigningKey::generate("bench-k1");
    let set = jwks(&[&key]).to_string();
    let verifier = futures::executor::block_on(Verifier::new(VerifierConfig {
        issuer: "tenantry".into(),
        audience: "tenantry".into(),
        jwks: JwksSource::Local(std::sync::Arc::new(move || set.clone())),
        refresh_interval: Duration::from_secs(30),
        max_age: Duration::from_secs(300),
    }))
    .expect("verifier");
    let token = key.sign(&claims()).expect("sign");

    let (input, signature) = token.rsplit_once('.').expect("three parts");
    let signature =
        Signature::from_slice(&URL_SAFE_NO_PAD.decode(signature).expect("b64")).expect("sig");
    let public = VerifyingKey::from_bytes(
        &URL_SAFE_NO_PAD
            .decode(key.public_jwk()["x"].as_str().expect("x"))
            .expect("b64")
            .try_into()
            .expect("32 bytes"),
    )
    .expect("key");

    let mut group = c.benchmark_group("token");
    group.bench_function("ed25519_raw", |b| {
        b.iter(|| {
            public
                .verify(std::hint::black_box(input.as_bytes()), &signature)
                .expect("valid")
        })
    });
    let ring_key =
        ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, public.to_bytes());
    let signature_bytes = signature.to_bytes();
    group.bench_function("ed25519_ring", |b| {
        b.iter(|| {
            ring_key
                .verify(std::hint::black_box(input.as_bytes()), &signature_bytes)
                .expect("valid")
        })
    });
    group.bench_function("verify_full", |b| {
        b.iter(|| {
            futures::executor::block_on(verifier.verify_fresh(std::hint::black_box(&token)))
                .expect("valid")
        })
    });
    group.bench_function("verify_remembered", |b| {
        b.iter(|| {
            futures::executor::block_on(verifier.verify(std::hint::black_box(&token)))
                .expect("valid")
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
