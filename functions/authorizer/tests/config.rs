//! The authorizer's one setting, as Lambda's cold start reads it.

use authorizer::config::Config;
use runtime::config::FromVars;
use runtime::config::Vars;

#[test]
fn without_key_hashes_the_cold_start_stops_and_names_the_variable() {
    match Config::from_vars(&Vars::default()) {
        Err(domain::Error::Config(m)) => assert!(m.contains("CHARLA_ADMIN_KEY_HASHES"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_malformed_hash_is_refused_without_showing_it() {
    let vars = Vars::from_pairs([("CHARLA_ADMIN_KEY_HASHES", "not-a-hash:admin:read")]);
    match Config::from_vars(&vars) {
        Err(domain::Error::Config(m)) => {
            assert!(m.contains("entry 1"), "{m}");
            assert!(!m.contains("not-a-hash"), "{m}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn good_hashes_are_read() {
    let hash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    let vars = Vars::from_pairs([("CHARLA_ADMIN_KEY_HASHES", format!("{hash}:admin:read"))]);
    assert!(Config::from_vars(&vars).is_ok());
}
