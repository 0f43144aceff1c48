//! The streamed media download against a bare local server that sends no
//! Content-Length (the body ends when the connection closes):
//! - ~100 MB grows the process's resident memory by a few MB at most;
//! - an image past its 5 MB limit is cut off: the server gets to write far
//!   less than it meant to.
//!
//! Its own test binary, so that no unrelated test shares the process while
//! memory is measured.
#![cfg(target_os = "linux")]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use domain::media::{MediaKind, MediaProblem, MediaRef};
use domain::ports::MediaSource;
use domain::whatsapp::inbound::Media;
use secrecy::SecretString;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Mutex;
use whatsapp_graph::{GraphMedia, GraphSettings};

const MEDIA_ID: &str = "1037543291543636";
/// What the server sends of the file (at most: it stops when the reader goes).
static TOTAL_TO_SEND: AtomicUsize = AtomicUsize::new(0);
/// What it managed to write before the connection closed.
static SENT: AtomicUsize = AtomicUsize::new(0);
const TOTAL: usize = 100_000_000;
const CHUNK: usize = 64 * 1024;

fn chunk() -> Vec<u8> {
    let mut c = b"%PDF-1.7\n".to_vec();
    c.resize(CHUNK, b'x');
    c
}

fn vm_rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Answers the metadata call with JSON and the download with TOTAL bytes,
/// no Content-Length, body ended by closing the connection; the same 64 KB
/// chunk is written again and again, so the server holds no more than that.
async fn serve(listener: TcpListener) {
    loop {
        let Ok((mut socket, _)) = listener.accept().await else {
            return;
        };
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let head = String::from_utf8_lossy(&request);
            if head.starts_with("GET /v23.0/") {
                let body = format!(
                    r#"{{"url":"http://127.0.0.1:{port}/file","mime_type":"application/pdf","id":"{MEDIA_ID}"}}"#
                );
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
                return;
            }
            let _ = socket
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/pdf\r\nConnection: close\r\n\r\n")
                .await;
            let c = chunk();
            let total = TOTAL_TO_SEND.load(Ordering::SeqCst);
            SENT.store(0, Ordering::SeqCst);
            for _ in 0..total / CHUNK {
                if socket.write_all(&c).await.is_err() {
                    return;
                }
                SENT.fetch_add(CHUNK, Ordering::SeqCst);
            }
            if socket.write_all(&c[..total % CHUNK]).await.is_ok() {
                SENT.fetch_add(total % CHUNK, Ordering::SeqCst);
            }
        });
    }
}

/// The two tests share the server's counters: one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

async fn start_server(total: usize) -> String {
    TOTAL_TO_SEND.store(total, Ordering::SeqCst);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}/v23.0", listener.local_addr().expect("addr"));
    tokio::spawn(serve(listener));
    base
}

fn media(kind: MediaKind, mime: &str, sha256: Option<String>) -> MediaRef {
    let m = Media {
        id: MEDIA_ID.into(),
        mime_type: Some(mime.into()),
        sha256,
        ..Media::default()
    };
    MediaRef::new(
        kind,
        &m,
        "wamid.BIG",
        "5491155551234",
        jiff::Timestamp::now().as_second(),
    )
    .expect("ref")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_past_its_limit_is_cut_off_mid_stream() {
    let _one = ONE_AT_A_TIME.lock().await;
    let total = 50 * 1024 * 1024;
    let base = start_server(total).await;
    let source = GraphMedia::new(
        base,
        SecretString::from("token"),
        GraphSettings::default(),
        Duration::from_secs(60),
    )
    .expect("client");
    let dir = tempfile::tempdir().expect("dir");
    let verdict = source
        .fetch(
            &media(MediaKind::Image, "image/jpeg", None),
            &dir.path().join("img"),
        )
        .await
        .expect("no fault");
    assert!(
        matches!(verdict, Err(MediaProblem::TooLarge { .. })),
        "{verdict:?}"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).expect("list").count(),
        0,
        "temp file left"
    );
    // Let the server notice the closed connection.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent = SENT.load(Ordering::SeqCst);
    println!("image limit: server wrote {sent} of {total} bytes before the reader left");
    assert!(sent < total / 2, "the server wrote {sent} of {total} bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_mb_download_keeps_resident_memory_flat() {
    let _one = ONE_AT_A_TIME.lock().await;
    let base = start_server(TOTAL).await;

    // The expected hash, computed chunk by chunk like the server writes.
    let c = chunk();
    let mut hasher = Sha256::new();
    for _ in 0..TOTAL / CHUNK {
        hasher.update(&c);
    }
    hasher.update(&c[..TOTAL % CHUNK]);
    let expected = hex::encode(hasher.finalize());

    let source = GraphMedia::new(
        base,
        SecretString::from("token"),
        GraphSettings::default(),
        Duration::from_secs(600),
    )
    .expect("client");
    let media = media(
        MediaKind::Document,
        "application/pdf",
        Some(expected.clone()),
    );
    let dir = tempfile::tempdir().expect("dir");
    let dest = dir.path().join("big.pdf");

    // Measured from here: the runtime and the server are up; the client's
    // connection pool and buffers fill during the fetch and are counted.
    let before = vm_rss_kb();
    let started = Instant::now();
    let got = source
        .fetch(&media, &dest)
        .await
        .expect("no fault")
        .expect("accepted");
    let elapsed = started.elapsed();
    let after = vm_rss_kb();

    assert_eq!(got.bytes, TOTAL as u64);
    assert_eq!(got.sha256.to_hex(), expected);
    assert_eq!(std::fs::metadata(&dest).expect("file").len(), TOTAL as u64);
    let grown_kb = after.saturating_sub(before);
    let mb_per_s = TOTAL as f64 / 1e6 / elapsed.as_secs_f64();
    println!(
        "media download: {TOTAL} bytes in {elapsed:?} ({mb_per_s:.0} MB/s); VmRSS {before} kB -> {after} kB (+{grown_kb} kB)"
    );
    assert!(grown_kb < 8 * 1024, "resident memory grew by {grown_kb} kB");
}
