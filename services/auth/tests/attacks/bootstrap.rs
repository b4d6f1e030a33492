//! Issue 17, item 6: the bootstrap admin's e-mail, taken first by a stranger.

use tenantry_proto::auth::v1 as api;

use crate::common::{ADMIN_EMAIL, admin_password_file, start_with};

const STRANGERS_PASSWORD: &str = "strangers-own-passphrase";

#[tokio::test]
async fn attack_stranger_signs_up_with_the_admin_email_and_is_made_platform_admin() {
    // An installation whose operator has not configured the bootstrap admin yet...
    let h = start_with(|c| {
        c.bootstrap_admin_email = None;
        c.bootstrap_admin_password_file = None;
    })
    .await;
    // ...where a stranger signs up with the address the operator will configure.
    h.sessions()
        .sign_up(api::SignUpRequest {
            email: ADMIN_EMAIL.into(),
            password: STRANGERS_PASSWORD.into(),
        })
        .await
        .unwrap();

    let password_file = admin_password_file(&h.env);
    let refused = h
        .start_replica(|c| {
            c.bootstrap_admin_email = Some(ADMIN_EMAIL.into());
            c.bootstrap_admin_password_file = Some(password_file.clone());
        })
        .await;
    let Err(e) = refused else {
        panic!("started and promoted the stranger's account");
    };
    let message = e.to_string();
    assert!(
        message.contains("auth-bootstrap-admin-email") && message.contains(ADMIN_EMAIL),
        "{message}"
    );
    let stranger = h
        .login(ADMIN_EMAIL, STRANGERS_PASSWORD, None)
        .await
        .unwrap();
    assert!(
        !stranger.platform_admin,
        "the stranger was made platform admin"
    );

    // The account is promoted once the configured password is the account's own.
    // In the world's directory, deleted with it.
    let dir = std::env::temp_dir().join(&h.env.id);
    std::fs::create_dir_all(&dir).unwrap();
    let own = dir.join("own.password");
    std::fs::write(&own, STRANGERS_PASSWORD).unwrap();
    h.start_replica(|c| {
        c.bootstrap_admin_email = Some(ADMIN_EMAIL.into());
        c.bootstrap_admin_password_file = Some(own.clone());
    })
    .await
    .expect("a credential that verifies is promoted");
    let admin = h
        .login(ADMIN_EMAIL, STRANGERS_PASSWORD, None)
        .await
        .unwrap();
    assert!(admin.platform_admin);
}
