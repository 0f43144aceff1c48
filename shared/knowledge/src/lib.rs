//! The agent profile's own data, read at start from the profile folder (the
//! Lambda layer at `/opt`, or `profiles/<name>` on one machine):
//! - [`LocalKnowledgeBase`]: the Markdown knowledge folder, indexed in RAM;
//! - [`CsvCustomers`]: the customer directory as one CSV file.

mod customers;
mod knowledge_base;

pub use customers::CsvCustomers;
pub use knowledge_base::{LocalKnowledgeBase, MAX_PASSAGE_CHARS};
