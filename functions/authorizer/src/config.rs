//! Every variable the authorizer reads, read once at start.

use domain::Result;
use runtime::config::{FromVars, Vars};

use crate::AdminKeys;

/// The authorizer as Lambda runs it.
#[derive(Debug, Clone)]
pub struct Config {
    /// `CHARLA_ADMIN_KEY_HASHES`: the admin keys' hashes and scopes.
    pub keys: AdminKeys,
}

impl FromVars for Config {
    fn from_vars(vars: &Vars) -> Result<Config> {
        Ok(Config {
            keys: AdminKeys::from_vars(vars)?,
        })
    }
}
