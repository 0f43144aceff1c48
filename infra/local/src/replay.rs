//! `local replay`: posts the payloads kept in quarantine to a running server
//! again, signed as Meta would, after a fix made them understandable. Safe to
//! run twice: every message is deduplicated on its wamid.

use std::path::PathBuf;

use domain::ports::ArchiveKind;
use embedded::FileArchive;

use crate::meta;

#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// The running server.
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    pub server: String,
    /// Must match the server's.
    #[arg(long, env = "WHATSAPP_APP_SECRET", default_value = crate::config::DEV_APP_SECRET, hide_env_values = true)]
    pub app_secret: String,
}

pub async fn run(args: ReplayArgs, data_dir: PathBuf) -> Result<(), Box<dyn std::error::Error>> {
    let archive = FileArchive::open(&data_dir)?;
    let keys = archive.list(ArchiveKind::Quarantine).await?;
    if keys.is_empty() {
        println!("nothing in {}", data_dir.join("quarantine").display());
        return Ok(());
    }
    let client = reqwest::Client::new();
    let mut failed = 0;
    for key in &keys {
        let (body, reason) = archive.get(key).await?;
        let status = meta::post_signed(&client, &args.server, &args.app_secret, &body).await?;
        println!("{key}: {status} (quarantined for: {})", reason.trim());
        if status != 200 {
            failed += 1;
        }
    }
    println!("replayed {} payloads, {failed} refused", keys.len());
    if failed > 0 {
        return Err(format!("{failed} payloads were refused").into());
    }
    Ok(())
}
