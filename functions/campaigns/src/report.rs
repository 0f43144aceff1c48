//! A campaign's report: one row per contact, in spreadsheet row order, with
//! every attempt, the last call's summary and results, the WhatsApp
//! replies, and the next step. XLSX, or CSV when asked.

use std::collections::BTreeSet;

use bytes::Bytes;
use contact_sheets::{write_csv_rows, write_xlsx_rows, Cell};
use domain::campaign::{Attempt, Campaign, CampaignContact};
use domain::error::{Error, Result};
use http::{header, HeaderValue, Response, StatusCode};

use crate::{iso, Deps, REPORT_PAGE};

const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

pub(crate) async fn serve(deps: &Deps, campaign: &Campaign, csv: bool) -> Result<Response<Bytes>> {
    let mut contacts = Vec::new();
    let mut after = None;
    loop {
        let page = deps
            .campaigns
            .contacts_page(&campaign.id, after, REPORT_PAGE)
            .await?;
        let Some(last) = page.last() else { break };
        after = Some(last.row);
        contacts.extend(page);
    }
    // Rows made as they are written: the contacts are held, their cells
    // never all at once (and the XLSX worksheet keeps one row).
    let (headers, variables) = columns(&contacts);
    let rows = contacts.iter().map(|c| row(c, &variables));
    let (body, content_type, ext) = if csv {
        (
            write_csv_rows(&headers, headers.len(), rows),
            "text/csv; charset=utf-8",
            "csv",
        )
    } else {
        let bytes = write_xlsx_rows(&headers, rows, "Report")
            .map_err(|e| Error::dependency("xlsx", "writing the report", false, e))?;
        (bytes, XLSX, "xlsx")
    };
    let file_name = format!("{}-report.{ext}", campaign.id);
    if let (Some(downloads), true) = (
        &deps.downloads,
        body.len() > deps.settings.report_inline_bytes,
    ) {
        // Too large for an answer through the API: kept, and a link to it.
        let link = downloads.publish(&file_name, content_type, body).await?;
        let mut response = Response::new(Bytes::from(
            serde_json::json!({ "download": link }).to_string(),
        ));
        *response.status_mut() = StatusCode::SEE_OTHER;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Ok(v) = HeaderValue::from_str(&link) {
            headers.insert(header::LOCATION, v);
        }
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return Ok(response);
    }
    let mut response = Response::new(Bytes::from(body));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{file_name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

fn text(s: impl Into<String>) -> Cell {
    let s = s.into();
    if s.is_empty() {
        Cell::Empty
    } else {
        Cell::Text(s)
    }
}

fn attempt_line(a: &Attempt) -> String {
    let mut line = format!("{} {}", iso(a.at_ms).unwrap_or_default(), a.channel);
    if let Some(o) = a.outcome {
        line.push_str(&format!(
            " {}",
            serde_json::to_value(o)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        ));
    }
    if let Some(d) = a.duration_secs {
        line.push_str(&format!(" {d}s"));
    }
    line
}

/// The report's columns: fixed ones, then the contacts' own variables
/// (every name any contact has); answers the headers and the variables.
fn columns(contacts: &[CampaignContact]) -> (Vec<String>, Vec<&String>) {
    let variables: BTreeSet<&String> = contacts.iter().flat_map(|c| c.variables.keys()).collect();
    let mut headers: Vec<String> = [
        "row",
        "phone",
        "name",
        "time zone",
        "language",
        "state",
        "attempts",
        "every attempt",
        "last attempt",
        "last outcome",
        "last duration (s)",
        "call summary",
        "call results",
        "whatsapp replies",
        "next step",
    ]
    .map(String::from)
    .to_vec();
    headers.extend(variables.iter().map(|v| v.to_string()));
    (headers, variables.into_iter().collect())
}

/// One contact's row, its variables in the order of `variables`.
fn row(c: &CampaignContact, variables: &[&String]) -> Vec<Cell> {
    let last_call = c.attempts.iter().rev().find(|a| a.channel == "call");
    let last = c.attempts.last();
    let mut row = vec![
        Cell::Number(f64::from(c.row)),
        text(c.phone.e164().unwrap_or_default()),
        text(c.name.clone().unwrap_or_default()),
        text(c.time_zone.clone()),
        text(c.language.clone().unwrap_or_default()),
        text(c.state.as_str()),
        Cell::Number(c.attempts.len() as f64),
        text(
            c.attempts
                .iter()
                .map(attempt_line)
                .collect::<Vec<_>>()
                .join("; "),
        ),
        text(last.and_then(|a| iso(a.at_ms)).unwrap_or_default()),
        text(
            last.and_then(|a| a.outcome)
                .and_then(|o| serde_json::to_value(o).ok())
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
        ),
        last_call
            .and_then(|a| a.duration_secs)
            .map_or(Cell::Empty, |d| Cell::Number(f64::from(d))),
        text(
            last_call
                .and_then(|a| a.summary.clone())
                .unwrap_or_default(),
        ),
        text(
            last_call
                .and_then(|a| a.results.as_ref())
                .map(|r| r.to_string())
                .unwrap_or_default(),
        ),
        text(
            c.replies
                .iter()
                .map(|r| r.text.as_str())
                .collect::<Vec<_>>()
                .join(" | "),
        ),
        text(c.next_step()),
    ];
    row.extend(
        variables
            .iter()
            .map(|v| text(c.variables.get(*v).cloned().unwrap_or_default())),
    );
    row
}
