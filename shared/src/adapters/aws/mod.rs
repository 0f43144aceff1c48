//! AWS adapters: one file per service.
