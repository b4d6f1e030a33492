//! Issue 17, item 20: logging out with a refresh token a thief has already rotated.

use tenantry_proto::auth::v1 as api;
use tonic::Code;
use uuid::Uuid;

use crate::common::start;

#[tokio::test]
async fn attack_logout_with_a_rotated_token_leaves_the_thief_signed_in() {
    let h = start().await;
    let m = h.member(Uuid::now_v7(), api::Role::Member).await;
    // A thief copied the refresh token and used it first: the owner's copy is now spent.
    let thief = h
        .sessions()
        .refresh(api::RefreshRequest {
            refresh_token: m.refresh.clone(),
            tenant_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    // The owner logs out with the token they have.
    let _ = h
        .sessions()
        .logout(api::LogoutRequest {
            refresh_token: m.refresh.clone(),
        })
        .await;
    // Logging out must end the family, the thief's branch of it included.
    let e = h
        .sessions()
        .refresh(api::RefreshRequest {
            refresh_token: thief.refresh_token,
            tenant_id: String::new(),
        })
        .await
        .expect_err("the thief's session outlived the logout");
    assert_eq!(e.code(), Code::Unauthenticated);
}
