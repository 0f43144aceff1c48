//! Reading a 100,000-contact sheet, as XLSX and as CSV. Run with
//! `cargo bench -p contact-sheets`.
//!
//! The sheets are built once, outside the timed loop: phone, name, time
//! zone and two variables, numbers written several ways (one in four typed
//! as a number cell in the XLSX), and one row in ten bad (a bad number, a
//! duplicate or an unknown time zone, in turn). Before timing, one import
//! of each prints the report's counts, and a child process the peak memory
//! of one import.

use std::time::{Duration, Instant};

use contact_sheets::{read_contacts, write_csv, Cell, Import, SheetKind, SheetOptions, Table};
use criterion::{criterion_group, Criterion, Throughput};
use rust_xlsxwriter::Workbook;

const CONTACTS: usize = 100_000;
const ZONES: [&str; 4] = [
    "America/Argentina/Buenos_Aires",
    "America/Argentina/Cordoba",
    "America/Montevideo",
    "",
];

/// One Buenos Aires mobile number per row, written in one of three ways.
fn phone(i: usize) -> String {
    let n = 50_000_000 + i;
    let (a, b) = (n / 10_000, n % 10_000);
    match i % 3 {
        0 => format!("+54 9 11 {a}-{b:04}"),
        1 => format!("011 15 {a}-{b:04}"),
        _ => format!("54911{n}"),
    }
}

/// The sheet's rows as text; one in ten is bad.
fn rows() -> Vec<[String; 5]> {
    (0..CONTACTS)
        .map(|i| {
            let mut phone = phone(i);
            let mut zone = ZONES[i % ZONES.len()].to_string();
            if i % 10 == 9 {
                match (i / 10) % 3 {
                    0 => phone = format!("11 {}", i % 10_000),
                    1 => phone = self::phone(i - 9),
                    _ => zone = "America/Atlantis".into(),
                }
            }
            [
                phone,
                format!("Contacto {i}"),
                zone,
                format!("{}.{:02}", 1000 + i % 9000, i % 100),
                format!("2024-{:02}-{:02}", 1 + i % 12, 1 + i % 28),
            ]
        })
        .collect()
}

const HEADERS: [&str; 5] = ["Celular", "Nombre", "Zona horaria", "Monto", "Vencimiento"];

fn xlsx(rows: &[[String; 5]]) -> Vec<u8> {
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet
        .write_string(0, 0, "Campaña de cobranzas")
        .expect("title");
    for (c, h) in HEADERS.iter().enumerate() {
        sheet.write_string(2, c as u16, *h).expect("header");
    }
    for (r, row) in rows.iter().enumerate() {
        let r = r as u32 + 3;
        for (c, text) in row.iter().enumerate() {
            // A number typed in a cell, as many sheets have them.
            let as_number =
                c == 0 && r.is_multiple_of(4) && text.bytes().all(|b| b.is_ascii_digit());
            if as_number {
                let n: f64 = text.parse().expect("digits");
                sheet.write_number(r, 0, n).expect("number");
            } else if !text.is_empty() {
                sheet.write_string(r, c as u16, text).expect("cell");
            }
        }
    }
    workbook.save_to_buffer().expect("xlsx")
}

fn csv(rows: &[[String; 5]]) -> Vec<u8> {
    let table = Table {
        headers: HEADERS.iter().map(|h| h.to_string()).collect(),
        rows: rows
            .iter()
            .map(|row| row.iter().map(|t| Cell::Text(t.clone())).collect())
            .collect(),
    };
    write_csv(&table)
}

fn opts() -> SheetOptions {
    SheetOptions {
        default_country: "AR".into(),
        required: vec!["monto".into()],
        ..SheetOptions::default()
    }
}

/// A line of /proc/self/status in KiB (Linux only; None elsewhere).
fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Set, in a child process of this bench, to `xlsx:PATH` or `csv:PATH`.
const PEAK_JOB: &str = "CONTACT_SHEETS_PEAK_JOB";

/// In the child: one import of the file, and how far the resident set grew
/// above what it was with the file read. A fresh process, because in this
/// one the allocator reuses the memory that building the sheets took and
/// the peak would not move.
fn peak_child(job: &str) {
    let (kind, path) = job.split_once(':').expect("kind:path");
    let kind = if kind == "xlsx" {
        SheetKind::Xlsx
    } else {
        SheetKind::Csv
    };
    let bytes = std::fs::read(path).expect("the sheet");
    let before = status_kib("VmRSS:");
    let import = read_contacts(&bytes, kind, &opts()).expect("an import");
    let peak = status_kib("VmHWM:");
    match (before, peak) {
        (Some(before), Some(peak)) => println!(
            "peak RSS {:.1} MiB above the {:.1} MiB before the import (file included), {} contacts",
            peak.saturating_sub(before) as f64 / 1024.0,
            before as f64 / 1024.0,
            import.contacts.len(),
        ),
        _ => println!("peak memory not measurable here"),
    }
}

/// Prints the counts of one import, its time, and its peak memory (from a
/// child process over the same bytes, written to a temporary directory).
fn report(label: &str, bytes: &[u8], kind: SheetKind) {
    let started = Instant::now();
    let import: Import = read_contacts(bytes, kind, &opts()).expect("an import");
    let took = started.elapsed();
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join(format!("contacts.{label}"));
    std::fs::write(&path, bytes).expect("write the sheet");
    let memory = std::env::current_exe()
        .and_then(|exe| {
            std::process::Command::new(exe)
                .env(PEAK_JOB, format!("{label}:{}", path.display()))
                .output()
        })
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .unwrap_or_else(|e| format!("peak memory not measured: {e}"));
    println!(
        "{label}: {:.1} MiB file, {} accepted, {} rejected, one import {:.2?}; {memory}",
        bytes.len() as f64 / (1024.0 * 1024.0),
        import.contacts.len(),
        import.rejected.len(),
        took,
    );
}

fn bench(c: &mut Criterion) {
    let rows = rows();
    let xlsx = xlsx(&rows);
    let csv = csv(&rows);
    drop(rows);
    report("xlsx", &xlsx, SheetKind::Xlsx);
    report("csv", &csv, SheetKind::Csv);

    let mut group = c.benchmark_group("read_contacts_100k");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(20))
        .throughput(Throughput::Elements(CONTACTS as u64));
    group.bench_function("xlsx", |b| {
        b.iter(|| read_contacts(&xlsx, SheetKind::Xlsx, &opts()).expect("an import"))
    });
    group.bench_function("csv", |b| {
        b.iter(|| read_contacts(&csv, SheetKind::Csv, &opts()).expect("an import"))
    });
    group.finish();
}

criterion_group!(benches, bench);

// `criterion_main!`, with the peak-memory child's entry first.
fn main() {
    if let Ok(job) = std::env::var(PEAK_JOB) {
        peak_child(&job);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
