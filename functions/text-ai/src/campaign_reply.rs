//! A message from a number a campaign reached (within
//! [`campaign::REPLY_WINDOW_MS`]) is a reply to it: recorded on the
//! campaign's contact for the report, once per message; it brings a
//! `whatsapp_then_call` call forward; and the agent is told which campaign
//! reached the user and what the business's list says about them.

use domain::campaign::{self, Reply};
use domain::ports::{CampaignStore, Clock};
use domain::{Error, Result, StoredMessage, UserId};
use runtime::observability;
use tracing::info;

/// Conflicting writers (the dispatcher, a call's outcome) retried this often.
const TRIES: usize = 5;

/// Records `messages` as replies when `phone` was reached by a campaign;
/// answers the campaign's context for the agent (`None`: not a campaign's
/// contact, or not any more).
pub async fn note(
    store: &dyn CampaignStore,
    clock: &dyn Clock,
    phone: Option<&UserId>,
    messages: &[StoredMessage],
) -> Result<Option<String>> {
    let Some(phone) = phone else {
        return Ok(None);
    };
    let now = clock.now_ms();
    let Some(touch) = store.touch_of(phone).await?.filter(|t| t.current(now)) else {
        return Ok(None);
    };
    let Some(c) = store.campaign(&touch.campaign_id).await? else {
        return Ok(None);
    };
    let replies: Vec<Reply> = messages
        .iter()
        .map(|m| Reply {
            wamid: m.wamid.clone(),
            at_ms: m.at_ms,
            text: m.text.clone(),
        })
        .collect();
    for _ in 0..TRIES {
        // The contact of the campaign's current upload, for this number.
        let Some(contact) = store
            .contact(&touch.campaign_id, touch.row)
            .await?
            .filter(|k| &k.phone == phone)
        else {
            return Ok(None);
        };
        let Some(mut next) = contact.with_replies(&replies) else {
            return Ok(Some(campaign::agent_context(&c, &contact)));
        };
        if let Ok(schedule) = c.spec.validate() {
            let tz = contact.zone();
            if let Some((state, at)) = campaign::after_reply(&c.spec, &schedule, &contact, now, &tz)
            {
                next.state = state;
                next.next_at_ms = at;
            }
        }
        if store.update_contact(&next).await? {
            observability::count(observability::Metric::CampaignReply, 1);
            info!(campaign = %c.id, row = contact.row, state = next.state.as_str(), "campaign contact replied");
            return Ok(Some(campaign::agent_context(&c, &next)));
        }
    }
    Err(Error::Conflict("campaign contact kept changing".into()))
}
