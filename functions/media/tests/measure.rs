//! A timed run, not a test of speed: the `download` step end to end
//! (Graph metadata, streamed download with limit, sha256 and type sniffing,
//! then the file store) for a ~100 MB document from a bare local server that
//! streams it in chunks, with the process's resident memory before and
//! after. Run it on its own:
//! `cargo test -p media --test measure -- --ignored --nocapture`.
#![cfg(target_os = "linux")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use domain::media::MediaKeySalt;
use domain::ports::SystemClock;
use embedded::{
    FileMediaStore, LocalDocuments, LocalImages, NoSpeech, Outbox, QueueSettings, SqliteMediaNotes,
    SqliteQueue, SqliteStore,
};
use media::{handle, Deps, Settings};
use secrecy::SecretString;
use serde_json::json;
use sha2::{Digest, Sha256};
use test_support::memory::MemoryQueue;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use whatsapp_graph::{GraphMedia, GraphSettings};

const TOTAL: usize = 100_000_000;
const CHUNK: usize = 64 * 1024;

fn chunk(i: usize) -> Vec<u8> {
    let mut c = if i == 0 {
        b"%PDF-1.7\n".to_vec()
    } else {
        Vec::new()
    };
    c.resize(CHUNK, b'x');
    c
}

fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Answers the metadata call with JSON and the file call with the chunks.
async fn serve(listener: TcpListener, base: String, sha: String) {
    loop {
        let Ok((mut sock, _)) = listener.accept().await else {
            return;
        };
        let (base, sha) = (base.clone(), sha.clone());
        tokio::spawn(async move {
            let mut buf = vec![0u8; 8192];
            let n = sock.read(&mut buf).await.unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]).to_string();
            if head.starts_with("GET /files/") {
                let _ = sock
                    .write_all(
                        format!("HTTP/1.1 200 OK\r\ncontent-type: application/pdf\r\ncontent-length: {TOTAL}\r\nconnection: close\r\n\r\n")
                            .as_bytes(),
                    )
                    .await;
                let mut sent = 0;
                let mut i = 0;
                while sent < TOTAL {
                    let c = chunk(i);
                    let n = c.len().min(TOTAL - sent);
                    if sock.write_all(&c[..n]).await.is_err() {
                        return;
                    }
                    sent += n;
                    i += 1;
                }
            } else {
                let body = json!({
                    "url": format!("{base}/files/4001"), "mime_type": "application/pdf",
                    "sha256": sha, "file_size": TOTAL, "id": "4001",
                })
                .to_string();
                let _ = sock
                    .write_all(
                        format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len())
                            .as_bytes(),
                    )
                    .await;
            }
        });
    }
}

#[tokio::test]
#[ignore = "a timed run; see the module docs"]
async fn download_hash_store_of_100_mb() {
    let mut hasher = Sha256::new();
    let mut left = TOTAL;
    let mut i = 0;
    while left > 0 {
        let c = chunk(i);
        let n = c.len().min(left);
        hasher.update(&c[..n]);
        left -= n;
        i += 1;
    }
    let sha = hex::encode(hasher.finalize());
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(serve(listener, base.clone(), sha.clone()));

    let dir = tempfile::tempdir().expect("dir");
    let files = FileMediaStore::open(&dir.path().join("media")).expect("files");
    let store = Arc::new(SqliteStore::open_in_memory().expect("store"));
    let deps = Deps {
        source: Arc::new(
            GraphMedia::new(
                base,
                SecretString::from("t"),
                GraphSettings::default(),
                Duration::from_secs(120),
            )
            .expect("graph"),
        ),
        store: Arc::new(files.clone()),
        images: Arc::new(LocalImages::new(files.clone())),
        documents: Arc::new(LocalDocuments::new(files)),
        speech: Arc::new(NoSpeech),
        notes: Arc::new(SqliteMediaNotes::open_in_memory().expect("notes")),
        conversations: store.clone(),
        records: store,
        sender: Arc::new(Outbox::open(dir.path()).expect("outbox")),
        escalation_queue: Arc::new(MemoryQueue::default()),
        text_queue: Arc::new(
            SqliteQueue::open_in_memory(QueueSettings {
                name: "text".into(),
                delay_ms: 0,
                visibility_timeout_ms: 60_000,
                max_receives: 5,
            })
            .expect("queue"),
        ),
        usage: Arc::new(test_support::memory::MemoryUsage::default()),
        clock: Arc::new(SystemClock),
        salt: MediaKeySalt::parse(SecretString::from("measure-salt-0123456789")).expect("salt"),
        settings: Settings {
            languages: vec!["es".into()],
            notice_language: "es".into(),
            work_dir: dir.path().join("tmp"),
        },
    };
    let event = json!({"step": "download", "job": {
        "media": {"media_id": "4001", "kind": "document", "mime_type": "application/pdf",
            "sha256": sha, "caption": null, "filename": "big.pdf", "voice": false, "animated": false,
            "wamid": "wamid.MEASURE", "wa_id": "5491100000501",
            "timestamp": jiff::Timestamp::now().as_second()},
        "phone_number_id": "1"}});
    let (rss_before, hwm_before) = (status_kb("VmRSS:"), status_kb("VmHWM:"));
    let started = Instant::now();
    let job = handle(&deps, event).await.expect("downloaded");
    let elapsed = started.elapsed();
    let (rss_after, hwm_after) = (status_kb("VmRSS:"), status_kb("VmHWM:"));
    let stored = job.stored.expect("stored");
    assert_eq!(stored.bytes, TOTAL as u64);
    println!(
        "download-hash-store (debug build): {TOTAL} bytes in {elapsed:.2?} = {:.0} MB/s; VmRSS {rss_before} -> {rss_after} kB, VmHWM {hwm_before} -> {hwm_after} kB",
        TOTAL as f64 / 1e6 / elapsed.as_secs_f64()
    );
}
