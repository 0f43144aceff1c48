//! Who a user is when WhatsApp names them two ways: by phone number and by
//! business-scoped user id (BSUID). A user has one conversation, one
//! history, one queue group and one set of records, keyed by one [`UserId`]
//! (the *user*); every other id seen for them is a link to it.
//!
//! Which id becomes the user is decided the first time it is seen:
//! - a number, when the first message carries one: the data kept before
//!   BSUIDs existed is keyed by number, and stays where it is;
//! - the BSUID, for a user who first writes by username only.
//!
//! A link is written once, with a conditional put, and never changes except
//! by Meta's own word (a changed BSUID or number, see [`moved`]). The rules
//! live here, once; the stores only keep the links ([`IdentityLinks`]).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::conversation::UserId;
use crate::error::Result;

/// The ids one webhook gives for one user.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SeenUser {
    pub phone: Option<UserId>,
    pub bsuid: Option<UserId>,
}

impl SeenUser {
    /// From what Meta sent (`from`/`wa_id`, `from_user_id`/`user_id`). Empty
    /// strings count as absent; an id that is present but malformed, or no id
    /// at all, is an error that says which.
    pub fn from_raw(
        phone: Option<&str>,
        bsuid: Option<&str>,
    ) -> std::result::Result<SeenUser, String> {
        fn present(s: Option<&str>) -> Option<&str> {
            s.map(str::trim).filter(|s| !s.is_empty())
        }
        let phone = present(phone).map(UserId::phone).transpose()?;
        let bsuid = present(bsuid).map(UserId::bsuid).transpose()?;
        if phone.is_none() && bsuid.is_none() {
            return Err("no user id: neither a phone number nor a business-scoped user id".into());
        }
        Ok(SeenUser { phone, bsuid })
    }

    /// The id this user is known by when nothing links them yet.
    pub fn first_choice(&self) -> Option<&UserId> {
        self.phone.as_ref().or(self.bsuid.as_ref())
    }
}

/// Where the links live (the conversation store's table or file). Each
/// method is one read or one write; the rules are in this module.
#[async_trait]
pub trait IdentityLinks: Send + Sync {
    /// The user `id` is linked to, if it is.
    async fn link_of(&self, id: &UserId) -> Result<Option<UserId>>;

    /// Links `id` to `user` unless it is linked already (one conditional
    /// write); answers the user it is linked to after the call.
    async fn link_if_absent(&self, id: &UserId, user: &UserId, at_ms: i64) -> Result<UserId>;

    /// Links `id` to `user`, replacing any link (Meta said so).
    async fn relink(&self, id: &UserId, user: &UserId, at_ms: i64) -> Result<()>;

    /// The phone number known for `user` (a user known by BSUID who shared
    /// one), set when it is linked.
    async fn phone_of(&self, user: &UserId) -> Result<Option<UserId>>;

    async fn set_phone(&self, user: &UserId, phone: &UserId, at_ms: i64) -> Result<()>;
}

/// What [`resolve`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The key of the user's conversation and records.
    pub user: UserId,
    /// Two ids of this webhook were linked to two different users (a number
    /// and a BSUID seen apart before): the BSUID's user won, and the other
    /// user's history stays where it is.
    pub conflict: Option<UserId>,
}

/// The user the ids of one webhook belong to, linking the ones not linked
/// yet. The BSUID's link counts first (it is Meta's stable key), then the
/// number's; with neither, the user is new ([`SeenUser::first_choice`]).
///
/// Two webhooks for a new user at once both try `link_if_absent`; the
/// loser adopts the winner's user, so both land in one conversation.
pub async fn resolve(links: &dyn IdentityLinks, seen: &SeenUser, at_ms: i64) -> Result<Resolved> {
    let Some(first) = seen.first_choice() else {
        return Err(crate::Error::Invalid("no user id".into()));
    };
    let by_bsuid = match &seen.bsuid {
        Some(b) => links.link_of(b).await?,
        None => None,
    };
    let by_phone = match &seen.phone {
        Some(p) => links.link_of(p).await?,
        None => None,
    };
    let mut conflict = None;
    let mut user = match (&by_bsuid, &by_phone) {
        (Some(b), Some(p)) if b != p => {
            conflict = Some(p.clone());
            b.clone()
        }
        (Some(u), _) | (None, Some(u)) => u.clone(),
        (None, None) => first.clone(),
    };
    // A BSUID-only user links to itself, so that the number they may share
    // later joins them instead of starting a user of its own.
    if let (Some(b), None) = (&seen.bsuid, &by_bsuid) {
        user = links.link_if_absent(b, &user, at_ms).await?;
    }
    if let Some(p) = &seen.phone {
        if conflict.is_some() {
            links.relink(p, &user, at_ms).await?;
        } else if by_phone.is_none() && p != &user {
            user = links.link_if_absent(p, &user, at_ms).await?;
        }
        if p != &user && by_phone.as_ref() != Some(&user) {
            links.set_phone(&user, p, at_ms).await?;
        }
    }
    Ok(Resolved { user, conflict })
}

/// The user `id` belongs to, without linking anything (lookups by an
/// operator, status reports).
pub async fn user_of(links: &dyn IdentityLinks, id: &UserId) -> Result<UserId> {
    Ok(links.link_of(id).await?.unwrap_or_else(|| id.clone()))
}

/// Meta says `previous` is now `current` (a changed BSUID, or a changed
/// number): `current` becomes a link to the user `previous` belonged to,
/// whose history stays theirs. Answers that user.
pub async fn moved(
    links: &dyn IdentityLinks,
    previous: &UserId,
    current: &UserId,
    at_ms: i64,
) -> Result<UserId> {
    let user = user_of(links, previous).await?;
    if current != &user {
        links.relink(current, &user, at_ms).await?;
        if current.is_phone() {
            links.set_phone(&user, current, at_ms).await?;
        }
    }
    Ok(user)
}

/// The number to call or text by phone: the user's own when they are known
/// by number, else the one they shared.
pub async fn phone_of(links: &dyn IdentityLinks, user: &UserId) -> Result<Option<UserId>> {
    if user.is_phone() {
        return Ok(Some(user.clone()));
    }
    links.phone_of(user).await
}

/// The country a user's id says they are in: a number's calling code is
/// read elsewhere (`agent::timezone`); a BSUID starts with the ISO 3166
/// alpha-2 code of the user's country.
pub fn bsuid_country(user: &UserId) -> Option<&str> {
    if user.is_phone() {
        return None;
    }
    user.as_str().split('.').next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_users_need_one_valid_id() {
        let both = SeenUser::from_raw(Some("5491155551234"), Some("AR.150257")).expect("both");
        assert_eq!(
            both.first_choice().map(UserId::as_str),
            Some("5491155551234")
        );
        let only_bsuid = SeenUser::from_raw(None, Some("AR.150257")).expect("bsuid");
        assert_eq!(
            only_bsuid.first_choice().map(UserId::as_str),
            Some("AR.150257")
        );
        let blank = SeenUser::from_raw(Some(""), Some("AR.150257")).expect("blank");
        assert_eq!(blank.phone, None);
        assert!(SeenUser::from_raw(None, None)
            .expect_err("no id")
            .contains("no user id"));
        assert!(SeenUser::from_raw(Some("AR.150257"), None).is_err());
        assert!(SeenUser::from_raw(None, Some("5491155551234")).is_err());
    }

    #[test]
    fn the_country_of_a_bsuid_is_its_prefix() {
        let b = UserId::parse("AR.1502576394655843").expect("bsuid");
        assert_eq!(bsuid_country(&b), Some("AR"));
        let p = UserId::parse("5491155551234").expect("phone");
        assert_eq!(bsuid_country(&p), None);
    }
}
