//! The customer directory for one machine: a CSV file with a header row and
//! an `id` column, read once at start.
//!
//! Ids are compared normalised, because people write the same national ID
//! as `12.345.678`, `12 345 678` or `12345678`: surrounding and inner
//! spaces, dots and dashes are dropped and letters compared without case.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use async_trait::async_trait;

use domain::error::{Error, Result};
use domain::ports::CustomerDirectory;
use domain::Customer;

/// The column that holds each customer's id.
const ID_COLUMN: &str = "id";

/// Customers from a CSV file, by id.
#[derive(Clone)]
pub struct CsvCustomers {
    path: PathBuf,
    by_id: HashMap<String, Customer>,
}

impl fmt::Debug for CsvCustomers {
    // Customers' fields are personal data: never in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CsvCustomers")
            .field("path", &self.path)
            .field("customers", &self.by_id.len())
            .finish()
    }
}

impl CsvCustomers {
    /// Reads the whole file. The header row names the columns; one of them
    /// is `id` (any case). Commas separate the fields, or semicolons when the
    /// header has semicolons and no comma (a spreadsheet's export in Spanish).
    /// A file that cannot be read, has no `id` column, a row without an id,
    /// or two rows with the same id is a configuration error.
    pub fn open(path: &Path) -> Result<Self> {
        let config = |problem: String| {
            Error::Config(format!("customers file {}: {problem}", path.display()))
        };
        let bytes = std::fs::read(path).map_err(|e| config(e.to_string()))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| config("is not UTF-8 text (save it as CSV UTF-8)".into()))?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        let header = text.lines().next().unwrap_or_default();
        let delimiter = if header.contains(';') && !header.contains(',') {
            b';'
        } else {
            b','
        };

        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let headers = reader
            .headers()
            .map_err(|e| config(format!("header row: {e}")))?
            .clone();
        if headers.is_empty() || headers.iter().all(str::is_empty) {
            return Err(config("no header row".into()));
        }
        let mut id_column = None;
        let mut names = HashMap::new();
        for (i, name) in headers.iter().enumerate() {
            if name.is_empty() {
                return Err(config(format!("column {} has no name", i + 1)));
            }
            if let Some(first) = names.insert(name.to_lowercase(), i) {
                return Err(config(format!(
                    "columns {} and {} are both named {name:?}",
                    first + 1,
                    i + 1
                )));
            }
            if name.eq_ignore_ascii_case(ID_COLUMN) {
                id_column = Some(i);
            }
        }
        let id_column = id_column.ok_or_else(|| {
            config(format!(
                "no {ID_COLUMN:?} column (the header row has: {})",
                headers.iter().collect::<Vec<_>>().join(", ")
            ))
        })?;

        let mut by_id: HashMap<String, Customer> = HashMap::new();
        for row in reader.records() {
            let row = row.map_err(|e| config(e.to_string()))?;
            let line = row.position().map_or(0, |p| p.line());
            let id = row.get(id_column).unwrap_or_default();
            let key = normalize_id(id);
            if key.is_empty() {
                return Err(config(format!("line {line} has no id")));
            }
            let fields: BTreeMap<String, String> = headers
                .iter()
                .zip(row.iter())
                .enumerate()
                .filter(|(i, _)| *i != id_column)
                .map(|(_, (name, value))| (name.to_string(), value.to_string()))
                .collect();
            let customer = Customer {
                id: id.to_string(),
                fields,
            };
            if let Some(other) = by_id.insert(key, customer) {
                return Err(config(format!(
                    "line {line}: id {id:?} is already on an earlier line (as {:?})",
                    other.id
                )));
            }
        }
        tracing::info!(file = %path.display(), customers = by_id.len(), "customers loaded");
        Ok(CsvCustomers {
            path: path.to_path_buf(),
            by_id,
        })
    }

    /// How many customers the file holds.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

#[async_trait]
impl CustomerDirectory for CsvCustomers {
    /// The customer as the file has it: `id` as written there, the other
    /// columns as fields.
    async fn lookup(&self, id: &str) -> Result<Option<Customer>> {
        Ok(self.by_id.get(&normalize_id(id)).cloned())
    }
}

/// `" 12.345.678 "` -> `"12345678"`, `"ab-12"` -> `"AB12"`.
fn normalize_id(id: &str) -> String {
    id.chars()
        .filter(|c| !(c.is_whitespace() || *c == '.' || *c == '-'))
        .flat_map(char::to_uppercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo() -> CsvCustomers {
        CsvCustomers::open(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../profiles/demo/customers.csv"),
        )
        .expect("demo customers file")
    }

    fn file(contents: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("customers.csv");
        std::fs::write(&path, contents).expect("write");
        (dir, path)
    }

    fn config_error(contents: &str) -> String {
        let (_dir, path) = file(contents);
        match CsvCustomers::open(&path) {
            Err(Error::Config(message)) => {
                assert!(message.contains("customers.csv"), "{message}");
                message
            }
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_customer_is_found_with_every_column_but_the_id() {
        let customers = demo();
        assert_eq!(customers.len(), 5);
        let found = customers
            .lookup("30123456")
            .await
            .expect("lookup")
            .expect("found");
        assert_eq!(found.id, "30123456");
        assert_eq!(
            found.fields.get("name").map(String::as_str),
            Some("Lucía Fernández")
        );
        assert_eq!(found.fields.get("plan").map(String::as_str), Some("Plus"));
        assert!(!found.fields.contains_key("id"));
        assert_eq!(
            found.fields.keys().collect::<Vec<_>>(),
            [
                "balance",
                "due_date",
                "internal_note",
                "name",
                "plan",
                "status"
            ]
        );
    }

    #[tokio::test]
    async fn ids_match_however_they_are_written() {
        let (_dir, path) = file("id,name\n12.345.678,Ana\n 20-111 222 ,Beto\nab-9,Caro\n");
        let customers = CsvCustomers::open(&path).expect("open");
        for (query, name) in [
            ("12345678", "Ana"),
            ("12.345.678", "Ana"),
            (" 12 345 678 ", "Ana"),
            ("12-345-678", "Ana"),
            ("20111222", "Beto"),
            ("20.111.222", "Beto"),
            ("AB9", "Caro"),
        ] {
            let found = customers.lookup(query).await.expect("lookup");
            assert_eq!(
                found
                    .as_ref()
                    .and_then(|c| c.fields.get("name"))
                    .map(String::as_str),
                Some(name),
                "{query:?}"
            );
        }
        let ana = customers
            .lookup("12345678")
            .await
            .expect("lookup")
            .expect("found");
        assert_eq!(ana.id, "12.345.678", "the id as the file writes it");
    }

    #[tokio::test]
    async fn an_unknown_or_empty_id_is_none() {
        let customers = demo();
        for query in ["99999999", "", " . - ", "3012345"] {
            assert_eq!(
                customers.lookup(query).await.expect("lookup"),
                None,
                "{query:?}"
            );
        }
    }

    #[tokio::test]
    async fn semicolons_a_bom_and_an_upper_case_id_column_are_understood() {
        let (_dir, path) = file("\u{feff}ID;nombre;saldo\n1.234;Ana;10,50\n");
        let customers = CsvCustomers::open(&path).expect("open");
        let ana = customers
            .lookup("1234")
            .await
            .expect("lookup")
            .expect("found");
        assert_eq!(ana.fields.get("saldo").map(String::as_str), Some("10,50"));
        assert_eq!(ana.fields.get("nombre").map(String::as_str), Some("Ana"));
    }

    #[tokio::test]
    async fn quoted_fields_may_hold_commas() {
        let (_dir, path) =
            file("id,name,address\n1,\"Pérez, Ana\",\"Av. Corrientes 1234, CABA\"\n");
        let customers = CsvCustomers::open(&path).expect("open");
        let ana = customers.lookup("1").await.expect("lookup").expect("found");
        assert_eq!(
            ana.fields.get("name").map(String::as_str),
            Some("Pérez, Ana")
        );
    }

    #[test]
    fn a_file_without_an_id_column_is_a_configuration_error() {
        let message = config_error("dni,name\n1,Ana\n");
        assert!(message.contains("no \"id\" column"), "{message}");
        assert!(message.contains("dni, name"), "{message}");
    }

    #[test]
    fn duplicate_ids_are_a_configuration_error() {
        let message = config_error("id,name\n12.345.678,Ana\n20111222,Beto\n12345678,Otra\n");
        assert!(message.contains("line 4"), "{message}");
        assert!(message.contains("already"), "{message}");
    }

    #[test]
    fn other_broken_files_are_configuration_errors() {
        let message = config_error("id,name\n1,Ana\n2,Beto,extra\n");
        assert!(
            message.contains("line 3") || message.contains("record"),
            "{message}"
        );
        let message = config_error("id,name\n,Ana\n");
        assert!(message.contains("no id"), "{message}");
        let message = config_error("id,name,\n1,Ana,x\n");
        assert!(message.contains("no name"), "{message}");
        let message = config_error("id,name,Name\n1,Ana,x\n");
        assert!(message.contains("both named"), "{message}");
        config_error("");

        let dir = tempfile::tempdir().expect("tempdir");
        let latin1 = dir.path().join("customers.csv");
        std::fs::write(&latin1, b"id,name\n1,Luc\xeda\n").expect("write");
        match CsvCustomers::open(&latin1) {
            Err(Error::Config(message)) => assert!(message.contains("UTF-8"), "{message}"),
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn a_missing_file_is_a_configuration_error_naming_it() {
        match CsvCustomers::open(Path::new("/no/such/customers.csv")) {
            Err(Error::Config(message)) => {
                assert!(message.contains("/no/such/customers.csv"), "{message}")
            }
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn debug_output_shows_no_personal_data() {
        let printed = format!("{:?}", demo());
        assert!(!printed.contains("Lucía"), "{printed}");
    }
}
