//! `local chat`: you are the WhatsApp user. Each line you type is posted to
//! the server as a signed webhook, exactly as Meta would, and the bot's
//! answers are shown from the local outbox, buttons numbered.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::meta;

#[derive(Debug, clap::Args)]
pub struct ChatArgs {
    /// The running server.
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    pub server: String,
    /// Your WhatsApp id: a phone number (digits only) or a business-scoped
    /// user id (`AR.1502576394655843`) to be a user known only by username.
    #[arg(long, visible_alias = "wa-id", default_value = "5491155551234")]
    pub user_id: String,
    /// Your profile name.
    #[arg(long, default_value = "Ana")]
    pub name: String,
    /// Must match the server's.
    #[arg(long, env = "WHATSAPP_APP_SECRET", default_value = crate::config::DEV_APP_SECRET, hide_env_values = true)]
    pub app_secret: String,
}

pub async fn run(args: ChatArgs) -> Result<(), Box<dyn std::error::Error>> {
    let client = reqwest::Client::new();
    let server = args.server.trim_end_matches('/').to_string();
    // Start after what the outbox already holds for this user.
    let mut seq = fetch(&client, &server, &args.user_id, 0, 0)
        .await?
        .iter()
        .filter_map(|e| e["seq"].as_u64())
        .max()
        .unwrap_or(0);
    println!(
        "Chatting with {server} as {} ({}). Type a message; a number picks a button; /quit ends.",
        domain::UserId::parse(&args.user_id)
            .ok()
            .and_then(|u| u.e164())
            .unwrap_or_else(|| args.user_id.clone()),
        args.name
    );
    let mut buttons: Vec<(String, String)> = Vec::new();
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    // The outbox is long-polled all the time, not only after a line: what
    // people, the call follow-up or the media pipeline send later shows up
    // too. `next_line` is cancel-safe, and a dropped poll loses nothing
    // (the next one starts after the same `seq`).
    loop {
        tokio::select! {
            line = lines.next_line() => {
                let Some(line) = line? else { break };
                let line = line.trim().to_string();
                if line.is_empty() {
                    continue;
                }
                if line == "/quit" {
                    break;
                }
                let wamid = meta::new_wamid();
                let message = match line
                    .parse::<usize>()
                    .ok()
                    .and_then(|n| buttons.get(n.wrapping_sub(1)))
                {
                    Some((id, title)) => meta::button_reply_message(&args.user_id, &wamid, id, title),
                    None => meta::text_message(&args.user_id, &wamid, &line),
                };
                let body =
                    serde_json::to_vec(&meta::message_webhook(&args.user_id, &args.name, message))?;
                let status = meta::post_signed(&client, &server, &args.app_secret, &body).await?;
                if status != 200 {
                    println!("(server answered {status})");
                }
            }
            entries = fetch(&client, &server, &args.user_id, seq, 20_000) => {
                for e in entries? {
                    seq = seq.max(e["seq"].as_u64().unwrap_or(seq));
                    if let Some(b) = show(&e["message"]) {
                        buttons = b;
                    }
                }
            }
        }
    }
    Ok(())
}

async fn fetch(
    client: &reqwest::Client,
    server: &str,
    user_id: &str,
    after: u64,
    wait_ms: u64,
) -> Result<Vec<Value>, Box<dyn std::error::Error>> {
    let resp = client
        .get(format!(
            "{server}/local/outbox?user_id={user_id}&after={after}&wait_ms={wait_ms}"
        ))
        .timeout(Duration::from_millis(wait_ms + 5_000))
        .send()
        .await?;
    if !resp.status().is_success() {
        return Err(format!(
            "the server's outbox answered {}: is it sending to the Graph API?",
            resp.status()
        )
        .into());
    }
    let v: Value = resp.json().await?;
    Ok(v["entries"].as_array().cloned().unwrap_or_default())
}

/// Prints one outbound message; returns its buttons, if any.
fn show(message: &Value) -> Option<Vec<(String, String)>> {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    match message["kind"].as_str() {
        Some("text") => println!("bot: {}", text(&message["body"])),
        Some("buttons") => {
            println!("bot: {}", text(&message["body"]));
            let buttons: Vec<(String, String)> = message["buttons"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|b| (text(&b["id"]), text(&b["title"])))
                .collect();
            for (i, (_, title)) in buttons.iter().enumerate() {
                println!("     [{}] {title}", i + 1);
            }
            return Some(buttons);
        }
        Some("list") => {
            println!(
                "bot: {} ({})",
                text(&message["body"]),
                text(&message["button"])
            );
            let mut rows = Vec::new();
            for s in message["sections"].as_array().into_iter().flatten() {
                for r in s["rows"].as_array().into_iter().flatten() {
                    rows.push((text(&r["id"]), text(&r["title"])));
                    println!("     [{}] {}", rows.len(), text(&r["title"]));
                }
            }
            return Some(rows);
        }
        Some("template") => println!("bot: [template {}]", text(&message["name"])),
        Some("reaction") => println!("bot reacted {}", text(&message["emoji"])),
        _ => {}
    }
    None
}
