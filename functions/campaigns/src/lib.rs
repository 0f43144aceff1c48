//! campaigns: the operators' API for campaigns and the do-not-contact list,
//! behind the admin authorizer (GET needs `admin:read`, the rest
//! `admin:write`).
//!
//! - `POST /admin/campaigns` with the [`CampaignSpec`] as JSON: a draft;
//! - `GET /admin/campaigns`, `GET /admin/campaigns/{id}`: state, counts per
//!   contact state, next dial time;
//! - `PUT /admin/campaigns/{id}/contacts` with the file as the body (CSV or
//!   XLSX): the validation report; a draft's contacts are replaced (`200`),
//!   or are still being written when the request's time budget ran out
//!   (`202`: the dispatcher's ticks finish it);
//! - `POST /admin/campaigns/{id}/start|pause|resume|cancel`;
//! - `GET /admin/campaigns/{id}/report`: XLSX, or CSV with `Accept: text/csv`
//!   (a report too large for an answer: `303 See Other` to a download link);
//! - `GET /admin/opt-outs`, `POST /admin/opt-outs` (`{"phone", "reason"}`),
//!   `DELETE /admin/opt-outs/{phone}`.
//!
//! Framework-neutral like the other functions: [`handle`] takes and returns
//! `http` types; Lambda and the one-process runner call the same code.

#[cfg(feature = "aws")]
pub mod aws;
pub mod config;
pub mod dispatch;
mod report;

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use contact_sheets::{read_contacts, SheetError, SheetKind, SheetOptions};
use domain::campaign::{
    Campaign, CampaignAction, CampaignContact, CampaignSpec, CampaignState, ContactState,
    ImportState, OptOut,
};
use domain::error::{Error, Result};
use domain::ports::{CampaignStore, Clock, Downloads};
use domain::UserId;
use http::{header, Method, Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

/// A spec is a few KB; anything this big is not one.
const MAX_SPEC_BYTES: usize = 64 * 1024;
/// Campaigns listed at once.
const LIST_LIMIT: usize = 100;
/// Contacts read per page for a report.
const REPORT_PAGE: usize = 1_000;

pub struct Deps {
    pub campaigns: Arc<dyn CampaignStore>,
    /// Reports too large for an answer go by link (S3 on AWS); `None`:
    /// every report in the answer (the one-process runner).
    pub downloads: Option<Arc<dyn Downloads>>,
    pub clock: Arc<dyn Clock>,
    pub settings: config::Settings,
}

/// Answers one request. Never fails: errors become responses.
pub async fn handle(deps: &Deps, req: Request<Bytes>) -> Response<Bytes> {
    let route = route(req.method(), req.uri().path());
    let name = route.as_ref().map_or("unknown", Route::name);
    match route {
        None => error_response(&Error::NotFound("no such route".into()), name),
        Some(route) => match serve(deps, route, &req).await {
            Ok(response) => response,
            Err(e) => error_response(&e, name),
        },
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Route<'a> {
    Create,
    List,
    Get(&'a str),
    Upload(&'a str),
    Act(&'a str, CampaignAction),
    Report(&'a str),
    OptOuts,
    AddOptOut,
    RemoveOptOut(&'a str),
}

impl Route<'_> {
    fn name(&self) -> &'static str {
        match self {
            Route::Create => "create campaign",
            Route::List => "list campaigns",
            Route::Get(_) => "read campaign",
            Route::Upload(_) => "upload contacts",
            Route::Act(..) => "campaign action",
            Route::Report(_) => "campaign report",
            Route::OptOuts => "list opt-outs",
            Route::AddOptOut => "add opt-out",
            Route::RemoveOptOut(_) => "remove opt-out",
        }
    }
}

fn route<'a>(method: &Method, path: &'a str) -> Option<Route<'a>> {
    let path = path.strip_suffix('/').unwrap_or(path);
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let get = method == Method::GET || method == Method::HEAD;
    Some(match parts.as_slice() {
        ["admin", "campaigns"] if method == Method::POST => Route::Create,
        ["admin", "campaigns"] if get => Route::List,
        ["admin", "campaigns", id] if get => Route::Get(id),
        ["admin", "campaigns", id, "contacts"] if method == Method::PUT => Route::Upload(id),
        ["admin", "campaigns", id, "report"] if get => Route::Report(id),
        ["admin", "campaigns", id, action] if method == Method::POST => {
            Route::Act(id, CampaignAction::parse(action)?)
        }
        ["admin", "opt-outs"] if get => Route::OptOuts,
        ["admin", "opt-outs"] if method == Method::POST => Route::AddOptOut,
        ["admin", "opt-outs", phone] if method == Method::DELETE => Route::RemoveOptOut(phone),
        _ => return None,
    })
}

async fn serve(deps: &Deps, route: Route<'_>, req: &Request<Bytes>) -> Result<Response<Bytes>> {
    let now = deps.clock.now_ms();
    match route {
        Route::Create => {
            let campaign = create(deps, req.body(), now).await?;
            Ok(json_response(
                StatusCode::CREATED,
                &campaign_view(&campaign, &BTreeMap::new(), None),
            ))
        }
        Route::List => {
            let campaigns = deps.campaigns.campaigns(LIST_LIMIT).await?;
            let views: Vec<Value> = campaigns
                .iter()
                .map(|c| {
                    json!({"id": c.id, "name": c.spec.name, "state": c.state.as_str(),
                                "channel": c.spec.channel, "contacts": c.contacts,
                                "created_at": iso(c.created_at_ms)})
                })
                .collect();
            Ok(json_response(
                StatusCode::OK,
                &json!({ "campaigns": views }),
            ))
        }
        Route::Get(id) => {
            let campaign = found(deps, id).await?;
            let counts = deps.campaigns.counts(id).await?;
            let next = next_dial(deps, &campaign).await?;
            Ok(json_response(
                StatusCode::OK,
                &campaign_view(&campaign, &counts, next),
            ))
        }
        Route::Upload(id) => {
            let content_type = req
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok());
            let (report, done) = upload(deps, id, content_type, req.body(), now).await?;
            let status = if done {
                StatusCode::OK
            } else {
                StatusCode::ACCEPTED
            };
            Ok(json_response(status, &report))
        }
        Route::Act(id, action) => {
            let campaign = act(deps, id, action, now).await?;
            let counts = deps.campaigns.counts(id).await?;
            Ok(json_response(
                StatusCode::OK,
                &campaign_view(&campaign, &counts, None),
            ))
        }
        Route::Report(id) => {
            let campaign = found(deps, id).await?;
            let csv = req
                .headers()
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|a| a.contains("text/csv"));
            report::serve(deps, &campaign, csv).await
        }
        Route::OptOuts => {
            let list = deps.campaigns.opt_outs(10_000).await?;
            let items: Vec<Value> = list.iter().map(opt_out_view).collect();
            Ok(json_response(StatusCode::OK, &json!({ "opt_outs": items })))
        }
        Route::AddOptOut => {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Body {
                phone: String,
                #[serde(default)]
                reason: String,
            }
            let body: Body = serde_json::from_slice(req.body()).map_err(|e| {
                Error::Invalid(format!(
                    "expected {{\"phone\": \"+...\", \"reason\": \"...\"}}: {e}"
                ))
            })?;
            let entry = OptOut {
                phone: phone_of(&body.phone)?,
                reason: body.reason.chars().take(500).collect(),
                source: "operator".into(),
                at_ms: now,
            };
            deps.campaigns.opt_out(&entry).await?;
            Ok(json_response(StatusCode::OK, &opt_out_view(&entry)))
        }
        Route::RemoveOptOut(raw) => {
            let phone = phone_of(&percent_decode(raw))?;
            if !deps.campaigns.remove_opt_out(&phone).await? {
                return Err(Error::NotFound("that number is not on the list".into()));
            }
            Ok(json_response(
                StatusCode::OK,
                &json!({ "removed": phone.e164() }),
            ))
        }
    }
}

/// A number as an operator writes it: `+5491155551234`, with or without
/// the `+`, spaces and dashes.
fn phone_of(raw: &str) -> Result<UserId> {
    let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
    let plausible = raw
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '(' | ')' | '.'));
    if !plausible {
        return Err(Error::Invalid(format!("not a phone number: {raw:?}")));
    }
    UserId::phone(&digits).map_err(Error::Invalid)
}

/// `%2B549...` in a path is `+549...`.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                let v = hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0);
                out.push(u8::try_from(v).unwrap_or(b'?'));
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn found(deps: &Deps, id: &str) -> Result<Campaign> {
    deps.campaigns
        .campaign(id)
        .await?
        .ok_or_else(|| Error::NotFound("campaign".into()))
}

async fn create(deps: &Deps, body: &[u8], now: i64) -> Result<Campaign> {
    if body.len() > MAX_SPEC_BYTES {
        return Err(Error::TooLarge {
            limit: MAX_SPEC_BYTES,
        });
    }
    let spec: CampaignSpec =
        serde_json::from_slice(body).map_err(|e| Error::Invalid(format!("not a campaign: {e}")))?;
    spec.validate().map_err(Error::Invalid)?;
    if let Some(zone) = &spec.time_zone {
        jiff::tz::TimeZone::get(zone)
            .map_err(|_| Error::Invalid(format!("time_zone: unknown zone {zone:?}")))?;
    }
    let campaign = Campaign::draft(
        format!("cmp_{}", &uuid::Uuid::new_v4().simple().to_string()[..16]),
        spec,
        now,
    );
    deps.campaigns.create_campaign(&campaign).await?;
    tracing::info!(campaign = %campaign.id, "campaign created");
    Ok(campaign)
}

/// Reads the file, checks each row (and the do-not-contact list), and
/// replaces the draft's contacts with the accepted ones.
async fn upload(
    deps: &Deps,
    id: &str,
    content_type: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(Value, bool)> {
    let campaign = found(deps, id).await?;
    if campaign.state != CampaignState::Draft {
        return Err(Error::Conflict(format!(
            "the campaign is {}: contacts can only be replaced in a draft",
            campaign.state.as_str()
        )));
    }
    let kind = content_type
        .and_then(SheetKind::from_content_type)
        .or_else(|| SheetKind::sniff(body))
        .ok_or_else(|| {
            Error::Invalid("not a spreadsheet: send a CSV (text/csv) or an XLSX file".into())
        })?;
    let options = SheetOptions {
        default_country: campaign
            .spec
            .default_country
            .clone()
            .unwrap_or_else(|| deps.settings.default_country.clone()),
        max_bytes: deps.settings.max_upload_bytes,
        required: campaign
            .spec
            .template
            .as_ref()
            .map(|t| t.parameters.clone())
            .unwrap_or_default(),
        ..SheetOptions::default()
    };
    let import = read_contacts(body, kind, &options).map_err(|e| match e {
        SheetError::TooLarge { limit } => Error::TooLarge { limit },
        other => Error::Invalid(other.to_string()),
    })?;
    let zone = campaign
        .spec
        .time_zone
        .clone()
        .unwrap_or_else(|| deps.settings.default_time_zone.clone());
    let mut rejected: Vec<Value> = import
        .rejected
        .iter()
        .map(|r| json!({"row": r.row, "reason": r.reason}))
        .collect();
    let phones: Vec<UserId> = import.contacts.iter().map(|c| c.phone.clone()).collect();
    let opted = deps.campaigns.opted_out_among(&phones).await?;
    drop(phones);
    let mut contacts = Vec::with_capacity(import.contacts.len());
    for c in import.contacts {
        if opted.contains(&c.phone) {
            rejected.push(json!({"row": c.row, "reason": "opted out"}));
            continue;
        }
        contacts.push(CampaignContact {
            campaign_id: campaign.id.clone(),
            row: u32::try_from(c.row).unwrap_or(u32::MAX),
            phone: c.phone,
            name: c.name,
            time_zone: c.time_zone.unwrap_or_else(|| zone.clone()),
            language: c.language,
            variables: c.variables,
            state: ContactState::Pending,
            // Due as soon as the campaign runs; the dispatcher moves each
            // one into its own window.
            next_at_ms: Some(0),
            attempts: Vec::new(),
            replies: Vec::new(),
            version: 1,
        });
    }
    rejected.sort_by_key(|r| r["row"].as_u64());
    let upload_id = format!("up_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    if !deps
        .campaigns
        .stage_contacts(&campaign.id, &upload_id, &contacts, now)
        .await?
    {
        return Err(Error::Conflict(
            "the campaign left the draft state during the upload".into(),
        ));
    }
    let left = import_within(
        deps.campaigns.as_ref(),
        &campaign.id,
        deps.settings.import_budget,
        now,
    )
    .await?;
    tracing::info!(campaign = %campaign.id, accepted = contacts.len(), rejected = rejected.len(), done = left.is_none(), "contacts uploaded");
    Ok((
        json!({
            "accepted": contacts.len(),
            "rejected": rejected,
            "columns": import.columns,
            "import": import_view(left.as_ref(), contacts.len() as u64),
        }),
        left.is_none(),
    ))
}

/// Contacts written per import step (DynamoDB: 40 batches of 25).
pub const IMPORT_STEP: usize = 1_000;

/// Writes the campaign's staged upload for at most `budget` (at least one
/// step); answers what is left (`None`: done, the campaign switched).
pub async fn import_within(
    store: &dyn CampaignStore,
    id: &str,
    budget: std::time::Duration,
    now: i64,
) -> Result<Option<ImportState>> {
    let started = std::time::Instant::now();
    loop {
        let left = store.import_step(id, IMPORT_STEP, now).await?;
        if left.is_none() || started.elapsed() >= budget {
            return Ok(left);
        }
    }
}

fn import_view(left: Option<&ImportState>, total: u64) -> Value {
    match left {
        Some(i) => json!({"done": false, "written": i.written, "total": i.total}),
        None => json!({"done": true, "written": total, "total": total}),
    }
}

async fn act(deps: &Deps, id: &str, action: CampaignAction, now: i64) -> Result<Campaign> {
    let campaign = found(deps, id).await?;
    if let (CampaignAction::Start, Some(i)) = (action, &campaign.import) {
        return Err(Error::Conflict(format!(
            "the contacts are still being written ({} of {}): start when the upload is done",
            i.written, i.total
        )));
    }
    if action == CampaignAction::Start && campaign.contacts == 0 {
        return Err(Error::Invalid(
            "no contacts: upload a spreadsheet before starting".into(),
        ));
    }
    let (from, to) = action.transition();
    if !deps.campaigns.set_campaign_state(id, from, to, now).await? {
        let now_state = found(deps, id).await?.state;
        return Err(Error::Conflict(format!(
            "the campaign is {}; that needs it {}",
            now_state.as_str(),
            from.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(" or ")
        )));
    }
    tracing::info!(campaign = %id, state = to.as_str(), "campaign moved");
    found(deps, id).await
}

/// The earliest time a waiting contact is due, for a running campaign.
async fn next_dial(deps: &Deps, campaign: &Campaign) -> Result<Option<i64>> {
    if campaign.state != CampaignState::Running {
        return Ok(None);
    }
    let first = deps
        .campaigns
        .due_contacts(&campaign.id, i64::MAX, 1)
        .await?;
    Ok(first.first().and_then(|c| c.next_at_ms))
}

fn iso(ms: i64) -> Option<String> {
    jiff::Timestamp::from_millisecond(ms)
        .ok()
        .map(|t| t.to_string())
}

fn campaign_view(
    c: &Campaign,
    counts: &BTreeMap<ContactState, u64>,
    next_dial_ms: Option<i64>,
) -> Value {
    let counts: serde_json::Map<String, Value> = ContactState::ALL
        .into_iter()
        .map(|s| {
            (
                s.as_str().to_string(),
                json!(counts.get(&s).copied().unwrap_or(0)),
            )
        })
        .collect();
    json!({
        "id": c.id,
        "state": c.state.as_str(),
        "spec": c.spec,
        "contacts": c.contacts,
        "counts": counts,
        // A contact due before now is dialled at the next tick.
        "next_dial_at": next_dial_ms.map(|t| t.max(0)).and_then(iso),
        "import": c.import.as_ref().map(|i| import_view(Some(i), i.total)),
        "created_at": iso(c.created_at_ms),
        "updated_at": iso(c.updated_at_ms),
    })
}

fn opt_out_view(o: &OptOut) -> Value {
    json!({
        "phone": o.phone.e164(),
        "reason": o.reason,
        "source": o.source,
        "at": iso(o.at_ms),
    })
}

fn json_response(status: StatusCode, body: &Value) -> Response<Bytes> {
    runtime::http_answer::no_store(runtime::http_answer::json(status, body))
}

fn error_response(e: &Error, route: &'static str) -> Response<Bytes> {
    runtime::http_answer::no_store(runtime::http_answer::error(e, route))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_read_by_method_and_path() {
        assert_eq!(
            route(&Method::POST, "/admin/campaigns"),
            Some(Route::Create)
        );
        assert_eq!(route(&Method::GET, "/admin/campaigns/"), Some(Route::List));
        assert_eq!(
            route(&Method::GET, "/admin/campaigns/c1"),
            Some(Route::Get("c1"))
        );
        assert_eq!(
            route(&Method::PUT, "/admin/campaigns/c1/contacts"),
            Some(Route::Upload("c1"))
        );
        assert_eq!(
            route(&Method::POST, "/admin/campaigns/c1/pause"),
            Some(Route::Act("c1", CampaignAction::Pause))
        );
        assert_eq!(route(&Method::POST, "/admin/campaigns/c1/explode"), None);
        assert_eq!(route(&Method::DELETE, "/admin/campaigns/c1"), None);
        assert_eq!(
            route(&Method::DELETE, "/admin/opt-outs/%2B5491155551234"),
            Some(Route::RemoveOptOut("%2B5491155551234"))
        );
    }

    #[test]
    fn numbers_are_read_as_operators_write_them() {
        assert_eq!(
            phone_of(&percent_decode("%2B54 9 11 5555-1234"))
                .ok()
                .map(|p| p.to_string()),
            Some("5491155551234".to_string())
        );
        assert!(phone_of("call me").is_err());
        assert!(phone_of("+12").is_err());
    }
}
