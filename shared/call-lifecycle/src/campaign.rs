//! A campaign's calls: placed when the dispatcher claimed the contact (the
//! operator's upload is the consent, not a request in a conversation), once
//! per attempt, with no WhatsApp message of their own; their outcome goes
//! back to the campaign's contact, whose retries the campaign's rules decide.

use domain::campaign::{self, CampaignCall, CampaignContact, ContactState};
use domain::voice::*;
use domain::{CallRequest, Error, Result};
use tracing::{info, warn};

use crate::{place, Deps, Outcome};

/// Why a campaign's call is not placed.
fn refused(why: &str) -> Outcome {
    warn!(why, "campaign call refused");
    Outcome::Refused(ConsentRefusal::NotAsked)
}

/// The contact this call is for, while it waits for exactly this call.
async fn claimed_contact(
    deps: &Deps,
    req: &CallRequest,
    call: &CampaignCall,
) -> Result<Option<CampaignContact>> {
    let Some(store) = &deps.campaigns else {
        return Ok(None);
    };
    let contact = store.contact(&call.campaign_id, call.row).await?;
    Ok(contact.filter(|c| {
        c.state == ContactState::Calling && c.calls() == call.attempt && c.phone == req.user_id
    }))
}

/// call-trigger's part: the call is placed now (the dispatcher chose the
/// moment inside the contact's window), once per request id.
pub(crate) async fn handle(deps: &Deps, req: &CallRequest, call: &CampaignCall) -> Result<Outcome> {
    if deps.campaigns.is_none() {
        return Ok(refused("no campaign store here"));
    }
    if let Some(record) = deps.calls.get(&req.id).await? {
        // Placed already. One that ended (or was refused) while its contact
        // still waits for it: the process died between the record's write
        // and the contact's. The contact gets the end now (only while it
        // waits for this call).
        if let (true, Some(outcome)) = (record.phase.is_final(), record.outcome) {
            let report = CallReport {
                summary: record.summary.clone(),
                ..Default::default()
            };
            apply_outcome(deps, &record, outcome, &report).await?;
        }
        return Ok(Outcome::Duplicate);
    }
    if claimed_contact(deps, req, call).await?.is_none() {
        return Ok(refused("the contact is not waiting for this call"));
    }
    let now = deps.clock.now_ms();
    let context = CallContext {
        request_id: req.id.clone(),
        user_id: req.user_id.clone(),
        phone_number_id: req.phone_number_id.clone(),
        customer_name: call.name.clone(),
        language: req.language.clone(),
        summary: String::new(),
        interest: None,
        reason: req.reason.clone(),
        phone: None,
        campaign: Some(call.clone()),
    };
    let record = CallRecord::scheduled(context, deps.provider.kind(), now, now);
    if !deps.calls.create(&record).await? {
        return Ok(Outcome::Duplicate);
    }
    place(deps, record).await
}

/// The person on the call asked not to be called or written to again: the
/// number the call reached goes on the do-not-contact list (any call, a
/// campaign's or one the user asked for). `false`: no campaign store here,
/// or no number.
pub async fn opt_out_on_call(deps: &Deps, record: &CallRecord, reason: &str) -> Result<bool> {
    let Some(store) = &deps.campaigns else {
        return Ok(false);
    };
    let ctx = &record.context;
    let Some(phone) = ctx
        .phone
        .clone()
        .or_else(|| ctx.user_id.is_phone().then(|| ctx.user_id.clone()))
    else {
        return Ok(false);
    };
    store
        .opt_out(&campaign::OptOut {
            phone,
            reason: reason.chars().take(300).collect(),
            source: "call".into(),
            at_ms: deps.clock.now_ms(),
        })
        .await?;
    runtime::observability::count(runtime::observability::Metric::OptOutByCall, 1);
    info!(request = %ctx.request_id, "opted out on a call");
    Ok(true)
}

/// For a campaign's call placed late (a retry, a recovered dial): the first
/// moment at or after `at_ms` inside its campaign's window, in its
/// contact's zone, not the calling hours of the calls users ask for. `None`
/// for a call that is not a campaign's; `at_ms` when the campaign or the
/// contact is gone, or no day of the coming year is allowed.
pub(crate) async fn next_window(
    deps: &Deps,
    record: &CallRecord,
    at_ms: i64,
) -> Result<Option<i64>> {
    let (Some(store), Some(call)) = (&deps.campaigns, &record.context.campaign) else {
        return Ok(None);
    };
    let campaign = store.campaign(&call.campaign_id).await?;
    let contact = store.contact(&call.campaign_id, call.row).await?;
    let (Some(campaign), Some(contact)) = (campaign, contact) else {
        return Ok(Some(at_ms));
    };
    let tz = contact.zone();
    let schedule = campaign.spec.validate().ok();
    Ok(Some(
        schedule
            .and_then(|s| s.next_allowed(at_ms, &tz))
            .unwrap_or(at_ms),
    ))
}

/// The call's structured results say the person asked not to be contacted
/// again: their number goes on the list.
async fn opt_out_if_results_ask(
    deps: &Deps,
    record: &CallRecord,
    report: &CallReport,
) -> Result<()> {
    if report
        .results
        .as_ref()
        .is_some_and(campaign::asks_no_contact)
    {
        opt_out_on_call(deps, record, "asked on the call (structured results)").await?;
    }
    Ok(())
}

/// What a call told about itself, for the campaign's report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallReport {
    pub duration_secs: Option<u32>,
    pub summary: Option<String>,
    pub results: Option<serde_json::Value>,
}

/// The call ended with `outcome`: the contact's last call gets it, and the
/// campaign's rules say what follows (a retry in the window, or a final
/// state). Applied once: a contact that is not waiting for this call any
/// more (a redelivered event) is left alone.
pub async fn apply_outcome(
    deps: &Deps,
    record: &CallRecord,
    outcome: CallOutcome,
    report: &CallReport,
) -> Result<()> {
    let (Some(store), Some(call)) = (&deps.campaigns, &record.context.campaign) else {
        return Ok(());
    };
    opt_out_if_results_ask(deps, record, report).await?;
    for _ in 0..5 {
        let Some(contact) = store.contact(&call.campaign_id, call.row).await? else {
            return Ok(());
        };
        if contact.state != ContactState::Calling || contact.calls() != call.attempt {
            return Ok(());
        }
        let Some(c) = store.campaign(&call.campaign_id).await? else {
            return Ok(());
        };
        let schedule = c.spec.validate().map_err(Error::Invalid)?;
        let tz = contact.zone();
        let mut next = contact.next();
        if let Some(last) = next.attempts.iter_mut().rev().find(|a| a.channel == "call") {
            last.outcome = Some(outcome);
            last.duration_secs = report.duration_secs.or(last.duration_secs);
            last.summary = report.summary.clone().or(last.summary.take());
            last.results = report.results.clone().or(last.results.take());
            last.reference = record.call_id.clone().or(last.reference.take());
        }
        let now = deps.clock.now_ms();
        let (mut state, mut next_at) =
            campaign::after_call(&c.spec, &schedule, &next, outcome, now, &tz);
        // Asked on the call (the tool, the results) or in a message
        // meanwhile: no retry, whatever the outcome.
        if store.opted_out(&contact.phone).await?.is_some() {
            (state, next_at) = (ContactState::OptedOut, None);
        }
        next.state = state;
        next.next_at_ms = next_at;
        if store.update_contact(&next).await? {
            info!(campaign = %call.campaign_id, row = call.row, outcome = outcome.as_str(), state = state.as_str(), "campaign call ended");
            return Ok(());
        }
    }
    Err(Error::Conflict("campaign contact kept changing".into()))
}

/// A summary that came after the end (Retell's analysis): added to the
/// contact's call that has none.
pub async fn add_summary(deps: &Deps, record: &CallRecord, report: &CallReport) -> Result<()> {
    let (Some(store), Some(call)) = (&deps.campaigns, &record.context.campaign) else {
        return Ok(());
    };
    let Some(call_id) = record.call_id.as_deref() else {
        return Ok(());
    };
    opt_out_if_results_ask(deps, record, report).await?;
    for _ in 0..5 {
        let Some(contact) = store.contact(&call.campaign_id, call.row).await? else {
            return Ok(());
        };
        let mut next = contact.next();
        let Some(attempt) = next
            .attempts
            .iter_mut()
            .find(|a| a.reference.as_deref() == Some(call_id))
        else {
            return Ok(());
        };
        if attempt.summary.is_some() && report.results.is_none() {
            return Ok(());
        }
        attempt.summary = report.summary.clone().or(attempt.summary.take());
        attempt.results = report.results.clone().or(attempt.results.take());
        if store.update_contact(&next).await? {
            return Ok(());
        }
    }
    Err(Error::Conflict("campaign contact kept changing".into()))
}
