//! The contract suites of test-support, run on the embedded adapters as a
//! library (as the runner links them).

use embedded::SqliteStore;
use test_support::records_contract;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_memory_store_keeps_the_records_contract() {
    let store = SqliteStore::open_in_memory().expect("open");
    records_contract::run_all(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_store_keeps_the_records_contract() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("charla.db")).expect("open");
    records_contract::run_all(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_usage_keeps_the_usage_contract() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ledger = embedded::SqliteUsage::open(&dir.path().join("charla.db")).expect("open");
    test_support::usage_contract::run_all(&ledger).await;
}
