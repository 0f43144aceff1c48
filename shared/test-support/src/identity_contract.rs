//! The behaviour every [`IdentityLinks`] must show, and through it the
//! rules of `domain::identity`: the memory double, SQLite and DynamoDB run
//! this same suite. Every check uses fresh ids, so all share one store.

use domain::identity::{self, IdentityLinks, SeenUser};
use domain::UserId;

use crate::store_contract::fresh_user_id;

const AT: i64 = 1_790_000_000_000;

/// Runs every check on `links`.
pub async fn run_all(links: &dyn IdentityLinks) {
    an_unlinked_id_is_its_own_user(links).await;
    a_number_first_stays_the_user_when_a_bsuid_appears(links).await;
    a_username_user_keeps_one_user_when_they_share_a_number(links).await;
    link_if_absent_keeps_the_first_link(links).await;
    concurrent_first_messages_land_on_one_user(links).await;
    a_changed_bsuid_moves_the_identity_not_the_history(links).await;
    a_changed_number_joins_the_same_user(links).await;
    a_number_and_a_bsuid_seen_apart_are_joined_under_the_bsuid(links).await;
}

/// A BSUID no other check (or run) uses.
pub fn fresh_bsuid() -> UserId {
    let n = uuid::Uuid::new_v4().as_u128() % 10_u128.pow(19);
    UserId::bsuid(&format!("AR.{n:019}")).expect("generated BSUID is valid")
}

fn seen(phone: Option<&UserId>, bsuid: Option<&UserId>) -> SeenUser {
    SeenUser {
        phone: phone.cloned(),
        bsuid: bsuid.cloned(),
    }
}

async fn resolve(
    links: &dyn IdentityLinks,
    phone: Option<&UserId>,
    bsuid: Option<&UserId>,
) -> UserId {
    identity::resolve(links, &seen(phone, bsuid), AT)
        .await
        .expect("resolve")
        .user
}

pub async fn an_unlinked_id_is_its_own_user(links: &dyn IdentityLinks) {
    let phone = fresh_user_id();
    assert_eq!(resolve(links, Some(&phone), None).await, phone);
    assert_eq!(
        links.link_of(&phone).await.expect("link_of"),
        None,
        "a number alone writes nothing"
    );
    assert_eq!(
        identity::user_of(links, &phone).await.expect("user_of"),
        phone
    );
    assert_eq!(
        identity::phone_of(links, &phone).await.expect("phone_of"),
        Some(phone)
    );
}

pub async fn a_number_first_stays_the_user_when_a_bsuid_appears(links: &dyn IdentityLinks) {
    let (phone, bsuid) = (fresh_user_id(), fresh_bsuid());
    assert_eq!(resolve(links, Some(&phone), None).await, phone);
    assert_eq!(resolve(links, Some(&phone), Some(&bsuid)).await, phone);
    // The user adopts a username: only the BSUID comes now.
    assert_eq!(resolve(links, None, Some(&bsuid)).await, phone);
    assert_eq!(
        identity::user_of(links, &bsuid).await.expect("user_of"),
        phone
    );
}

pub async fn a_username_user_keeps_one_user_when_they_share_a_number(links: &dyn IdentityLinks) {
    let (phone, bsuid) = (fresh_user_id(), fresh_bsuid());
    assert_eq!(resolve(links, None, Some(&bsuid)).await, bsuid);
    assert_eq!(
        identity::phone_of(links, &bsuid).await.expect("phone_of"),
        None
    );
    assert_eq!(resolve(links, Some(&phone), Some(&bsuid)).await, bsuid);
    assert_eq!(
        identity::phone_of(links, &bsuid).await.expect("phone_of"),
        Some(phone.clone()),
        "the shared number is kept for calls"
    );
    // The number appears alone again (Meta's contact book).
    assert_eq!(resolve(links, Some(&phone), None).await, bsuid);
    assert_eq!(resolve(links, None, Some(&bsuid)).await, bsuid);
}

pub async fn link_if_absent_keeps_the_first_link(links: &dyn IdentityLinks) {
    let (id, first, second) = (fresh_bsuid(), fresh_user_id(), fresh_user_id());
    assert_eq!(
        links.link_if_absent(&id, &first, AT).await.expect("link"),
        first
    );
    assert_eq!(
        links.link_if_absent(&id, &second, AT).await.expect("link"),
        first
    );
    assert_eq!(
        links.link_of(&id).await.expect("link_of"),
        Some(first.clone())
    );
    links.relink(&id, &second, AT).await.expect("relink");
    assert_eq!(links.link_of(&id).await.expect("link_of"), Some(second));
}

pub async fn concurrent_first_messages_land_on_one_user(links: &dyn IdentityLinks) {
    let bsuid = fresh_bsuid();
    let (a, b) = tokio::join!(
        resolve(links, None, Some(&bsuid)),
        resolve(links, None, Some(&bsuid))
    );
    assert_eq!(a, b);
    // Two first messages of a user who shares their number at once.
    let (phone, bsuid) = (fresh_user_id(), fresh_bsuid());
    let (a, b) = tokio::join!(
        resolve(links, Some(&phone), Some(&bsuid)),
        resolve(links, Some(&phone), Some(&bsuid))
    );
    assert_eq!((a.clone(), b), (phone.clone(), phone));
    assert_eq!(resolve(links, None, Some(&bsuid)).await, a);
}

pub async fn a_changed_bsuid_moves_the_identity_not_the_history(links: &dyn IdentityLinks) {
    let (old, new) = (fresh_bsuid(), fresh_bsuid());
    let user = resolve(links, None, Some(&old)).await;
    assert_eq!(
        identity::moved(links, &old, &new, AT).await.expect("moved"),
        user
    );
    assert_eq!(resolve(links, None, Some(&new)).await, user);
}

pub async fn a_changed_number_joins_the_same_user(links: &dyn IdentityLinks) {
    let (old, new) = (fresh_user_id(), fresh_user_id());
    assert_eq!(resolve(links, Some(&old), None).await, old);
    assert_eq!(
        identity::moved(links, &old, &new, AT).await.expect("moved"),
        old
    );
    assert_eq!(resolve(links, Some(&new), None).await, old);
}

pub async fn a_number_and_a_bsuid_seen_apart_are_joined_under_the_bsuid(links: &dyn IdentityLinks) {
    // Each was linked to a user of its own before (say, a number that
    // changed to another user's, then a username).
    let (phone, bsuid, other) = (fresh_user_id(), fresh_bsuid(), fresh_user_id());
    assert_eq!(resolve(links, None, Some(&bsuid)).await, bsuid);
    links.relink(&phone, &other, AT).await.expect("relink");
    let resolved = identity::resolve(links, &seen(Some(&phone), Some(&bsuid)), AT)
        .await
        .expect("resolve");
    assert_eq!(resolved.user, bsuid);
    assert_eq!(resolved.conflict, Some(other));
    assert_eq!(resolve(links, Some(&phone), None).await, bsuid);
}
