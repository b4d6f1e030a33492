//! Password hashing (argon2id) and the password policy.
//!
//! Parameters: argon2id v1.3, 19 MiB of memory, 2 passes, 1 lane: the first of OWASP's
//! recommended configurations (Password Storage Cheat Sheet), about 30 ms per hash on one core
//! of our 2-core machine. They are stored in each PHC string, so raising them later only
//! affects new hashes. Hashing runs on the blocking pool, never on the async workers, and at
//! most one per core at a time: a burst of logins queues instead of holding 19 MiB each.
//!
//! The hashes are sealed under the master key before they enter the log ([`seal_hash`]): a
//! reader of the log gets nothing to brute-force offline.

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use tenantry_kit::ApiError;
use uuid::Uuid;

use super::seal::Sealer;
use crate::domain::credential::StoredPassword;

pub const MIN_LENGTH: usize = 12;
pub const MAX_LENGTH: usize = 128;

/// Memory in KiB, passes, lanes.
pub const PARAMS: (u32, u32, u32) = (19 * 1024, 2, 1);

/// Passwords seen most often in breach corpora (a short excerpt: the policy's length floor
/// already rules out most of the rest).
const COMMON: &[&str] = &[
    "123456789012",
    "1234567890123",
    "12345678910",
    "password1234",
    "password12345",
    "passwordpassword",
    "qwertyuiop12",
    "qwerty123456",
    "1q2w3e4r5t6y",
    "iloveyou1234",
    "111111111111",
    "000000000000",
    "abc123456789",
    "letmein12345",
    "welcome12345",
    "administrator",
    "adminadmin12",
    "changeme1234",
    "football1234",
    "baseball1234",
    "superman1234",
    "trustno1trustno1",
    "monkey123456",
    "dragon123456",
    "sunshine1234",
    "princess1234",
    "qazwsxedcrfv",
    "1qaz2wsx3edc",
    "zaq12wsxcde3",
    "aaaaaaaaaaaa",
    "asdfghjkl123",
    "correcthorsebatterystaple",
    "passw0rd1234",
    "p@ssw0rd1234",
];

/// One argon2 computation per core at a time.
static SLOTS: std::sync::LazyLock<tokio::sync::Semaphore> = std::sync::LazyLock::new(|| {
    tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, usize::from))
});

/// Runs `work` on the blocking pool once a slot is free.
async fn limited<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    let _slot = SLOTS
        .acquire()
        .await
        .map_err(|e| ApiError::Internal(format!("argon2 slots: {e}")))?;
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::Internal(format!("argon2 task: {e}")))
}

fn hasher() -> Argon2<'static> {
    let (m, t, p) = PARAMS;
    // Constant, valid parameters.
    #[allow(clippy::expect_used)]
    let params = Params::new(m, t, p, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Checks `password` against the policy; the error names the field and says why.
pub fn check_policy(password: &str, email: &str) -> Result<(), ApiError> {
    let length = password.chars().count();
    if length < MIN_LENGTH {
        return Err(ApiError::invalid(
            "password",
            format!("must be at least {MIN_LENGTH} characters"),
        ));
    }
    if length > MAX_LENGTH {
        return Err(ApiError::invalid(
            "password",
            format!("must be at most {MAX_LENGTH} characters"),
        ));
    }
    let lower = password.to_lowercase();
    if COMMON.contains(&lower.as_str()) {
        return Err(ApiError::invalid(
            "password",
            "is one of the most common passwords in breach lists; choose another",
        ));
    }
    if lower.chars().all(|c| lower.starts_with(c)) {
        return Err(ApiError::invalid(
            "password",
            "must not repeat one character",
        ));
    }
    let local = email.split('@').next().unwrap_or_default().to_lowercase();
    if local.len() >= 4 && lower.contains(&local) {
        return Err(ApiError::invalid(
            "password",
            "must not contain your e-mail name",
        ));
    }
    Ok(())
}

/// The PHC string of `password` with a fresh random salt.
pub async fn hash(password: String) -> Result<String, ApiError> {
    limited(move || {
        hasher()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| ApiError::Internal(format!("argon2: {e}")))
    })
    .await?
}

/// A hash of nothing anyone knows, checked when the account does not exist, so an unknown
/// e-mail costs the same time as a wrong password.
static DECOY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    hasher()
        .hash_password(super::random::secret().as_bytes())
        .map(|h| h.to_string())
        .unwrap_or_default()
});

/// Whether `password` matches `phc`; `None` checks against the decoy (and is always false).
pub async fn verify(password: String, phc: Option<String>) -> bool {
    limited(move || {
        let decoy = phc.is_none();
        let phc = phc.unwrap_or_else(|| DECOY.clone());
        let Ok(parsed) = PasswordHash::new(&phc) else {
            return false;
        };
        let ok = hasher()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        ok && !decoy
    })
    .await
    .unwrap_or(false)
}

/// Associated data of a user's sealed hash: a sealed hash copied onto another account does
/// not open there.
fn seal_purpose(user_id: Uuid) -> String {
    format!("password-hash:{user_id}")
}

/// `phc` sealed under the master key, as the credential event carries it.
pub fn seal_hash(sealer: &Sealer, user_id: Uuid, phc: &str) -> Vec<u8> {
    sealer.seal(&seal_purpose(user_id), phc.as_bytes())
}

/// The PHC string of `user_id`'s stored password (`None` when there is none).
pub fn open_hash(
    sealer: &Sealer,
    user_id: Uuid,
    stored: &StoredPassword,
) -> Result<Option<String>, ApiError> {
    match stored {
        StoredPassword::None => Ok(None),
        StoredPassword::Clear(phc) => Ok(Some(phc.clone())),
        StoredPassword::Sealed(sealed) => {
            let plain = sealer
                .open(&seal_purpose(user_id), sealed)
                .map_err(|e| ApiError::Internal(format!("password hash of {user_id}: {e}")))?;
            String::from_utf8(plain)
                .map(Some)
                .map_err(|_| ApiError::Internal(format!("password hash of {user_id}: not UTF-8")))
        }
    }
}

/// Warms the decoy so the first unknown-user login is not slower than the rest.
pub fn warm_up() {
    std::sync::LazyLock::force(&DECOY);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_names_the_field_and_the_reason() {
        for bad in [
            "short",
            "password1234",
            "aaaaaaaaaaaaaaa",
            "alice-rules-2026",
        ] {
            let err = check_policy(bad, "alice@example.com").unwrap_err();
            assert!(err.to_string().contains("password"), "{bad}: {err}");
        }
        check_policy("blue-kettle-orbit-42", "alice@example.com").unwrap();
    }

    #[tokio::test]
    async fn hashes_verify_and_decoys_never_match() {
        let phc = hash("blue-kettle-orbit-42".into()).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify("blue-kettle-orbit-42".into(), Some(phc.clone())).await);
        assert!(!verify("blue-kettle-orbit-43".into(), Some(phc)).await);
        assert!(!verify("anything".into(), None).await);
    }

    #[test]
    fn sealed_hashes_open_for_their_user_only() {
        let sealer = Sealer::new([3; 32]);
        let (alice, bob) = (Uuid::now_v7(), Uuid::now_v7());
        let sealed = seal_hash(&sealer, alice, "$argon2id$v=19$m=1,t=1,p=1$c2FsdA$aGFzaA");
        assert!(!String::from_utf8_lossy(&sealed).contains("argon2"));
        let stored = StoredPassword::Sealed(sealed);
        assert_eq!(
            open_hash(&sealer, alice, &stored).unwrap().as_deref(),
            Some("$argon2id$v=19$m=1,t=1,p=1$c2FsdA$aGFzaA")
        );
        assert!(open_hash(&sealer, bob, &stored).is_err());
        let legacy = StoredPassword::Clear("$argon2id$legacy".into());
        assert_eq!(
            open_hash(&sealer, bob, &legacy).unwrap().as_deref(),
            Some("$argon2id$legacy")
        );
    }
}
