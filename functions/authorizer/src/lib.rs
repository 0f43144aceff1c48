//! The admin API's HTTP API Lambda authorizer (payload 2.0, simple responses).
//!
//! Admin keys are configured as SHA-256 hashes with scopes, never in plain
//! text: `CHARLA_ADMIN_KEY_HASHES` = comma-separated
//! `<64 hex>:<scope>[+<scope>...]`, scopes `admin:read`, `admin:write`, or
//! `admin` for both. A request carries `Authorization: Bearer <key>`; the key
//! is hashed and compared with every configured hash in constant time.
//! GET and HEAD need `admin:read`, every other method `admin:write`.
//! Anything else is an explicit deny; nothing here panics on any input.

pub mod config;

use aws_lambda_events::apigw::{
    ApiGatewayV2CustomAuthorizerSimpleResponse, ApiGatewayV2CustomAuthorizerV2Request,
};
use domain::error::{Error, Result};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

/// The variable that holds the configured key hashes.
pub const KEY_HASHES_ENV: &str = "CHARLA_ADMIN_KEY_HASHES";

pub const SCOPE_READ: &str = "admin:read";
pub const SCOPE_WRITE: &str = "admin:write";
/// Both scopes.
pub const SCOPE_ADMIN: &str = "admin";

/// Longest `Authorization` value looked at; longer ones are denied unread.
const MAX_HEADER_LEN: usize = 4096;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scopes {
    pub read: bool,
    pub write: bool,
}

impl Scopes {
    pub const READ: Scopes = Scopes {
        read: true,
        write: false,
    };
    pub const WRITE: Scopes = Scopes {
        read: false,
        write: true,
    };
    pub const ADMIN: Scopes = Scopes {
        read: true,
        write: true,
    };

    /// `admin:read`, `admin:write`, `admin`, joined with `+`.
    pub fn parse(spec: &str) -> std::result::Result<Scopes, String> {
        let mut scopes = Scopes::default();
        for name in spec.split('+').map(str::trim) {
            match name {
                SCOPE_READ => scopes.read = true,
                SCOPE_WRITE => scopes.write = true,
                SCOPE_ADMIN => scopes = Scopes::ADMIN.union(scopes),
                "" => return Err("empty scope".into()),
                other => {
                    return Err(format!(
                        "unknown scope {other:?} (use {SCOPE_READ}, {SCOPE_WRITE} or {SCOPE_ADMIN})"
                    ))
                }
            }
        }
        Ok(scopes)
    }

    fn union(self, other: Scopes) -> Scopes {
        Scopes {
            read: self.read || other.read,
            write: self.write || other.write,
        }
    }

    /// The scope names, e.g. `["admin:read", "admin:write"]`.
    pub fn names(self) -> Vec<String> {
        let mut names = Vec::new();
        if self.read {
            names.push(SCOPE_READ.to_string());
        }
        if self.write {
            names.push(SCOPE_WRITE.to_string());
        }
        names
    }

    /// GET and HEAD read; every other method writes.
    pub fn allow(self, method: &str) -> bool {
        match method {
            "GET" | "HEAD" => self.read,
            _ => self.write,
        }
    }
}

#[derive(Clone)]
struct AdminKey {
    hash: [u8; 32],
    scopes: Scopes,
}

impl AdminKey {
    /// The first 8 hex characters of the hash: names the key in logs.
    fn id(&self) -> String {
        hex::encode(&self.hash[..4])
    }
}

/// The configured admin keys (their hashes) and what each may do.
#[derive(Clone)]
pub struct AdminKeys {
    keys: Vec<AdminKey>,
}

impl std::fmt::Debug for AdminKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<String> = self.keys.iter().map(AdminKey::id).collect();
        f.debug_struct("AdminKeys").field("key_ids", &ids).finish()
    }
}

impl AdminKeys {
    /// Parses `<64 hex>:<scope>[+<scope>...]`, comma-separated. Errors name
    /// the entry's position, never its hash.
    pub fn parse(config: &str) -> Result<Self> {
        let mut keys: Vec<AdminKey> = Vec::new();
        let entries = config.split(',').map(str::trim).enumerate();
        for (i, entry) in entries.filter(|(_, e)| !e.is_empty()) {
            let n = i + 1;
            let bad = |why: &str| Error::Config(format!("{KEY_HASHES_ENV} entry {n}: {why}"));
            let (hash, scopes) = entry
                .split_once(':')
                .ok_or_else(|| bad("expected <sha256 hex>:<scope>[+<scope>...]"))?;
            let hash = hash.trim();
            if hash.len() != 64 {
                return Err(bad("the hash must be 64 hex characters (a SHA-256)"));
            }
            let mut bytes = [0u8; 32];
            hex::decode_to_slice(hash, &mut bytes)
                .map_err(|_| bad("the hash must be 64 hex characters (a SHA-256)"))?;
            let scopes = Scopes::parse(scopes).map_err(|e| bad(&e))?;
            if let Some(j) = keys.iter().position(|k| k.hash == bytes) {
                return Err(bad(&format!("the same hash as entry {}", j + 1)));
            }
            keys.push(AdminKey {
                hash: bytes,
                scopes,
            });
        }
        if keys.is_empty() {
            return Err(Error::Config(format!(
                "{KEY_HASHES_ENV} holds no key hashes"
            )));
        }
        Ok(AdminKeys { keys })
    }

    /// Reads [`KEY_HASHES_ENV`]; missing, empty or malformed stops the start.
    pub fn from_vars(vars: &runtime::config::Vars) -> Result<Self> {
        Self::parse(&vars.required(KEY_HASHES_ENV)?)
    }

    /// One key given in plain text (local development): hashed here, once.
    pub fn from_plain(key: &str, scopes: Scopes) -> Result<Self> {
        if key.trim().is_empty() {
            return Err(Error::Config("the admin key must not be empty".into()));
        }
        Ok(AdminKeys {
            keys: vec![AdminKey {
                hash: Sha256::digest(key.as_bytes()).into(),
                scopes,
            }],
        })
    }

    /// The configured key whose hash matches `presented`'s. Every configured
    /// hash is compared, in constant time, whatever matches.
    fn find(&self, presented: &str) -> Option<&AdminKey> {
        let hash: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = subtle::Choice::from(0);
        let mut index = 0u64;
        for (i, key) in self.keys.iter().enumerate() {
            let eq = key.hash.ct_eq(&hash);
            found |= eq;
            index = u64::conditional_select(&index, &(i as u64), eq);
        }
        if bool::from(found) {
            usize::try_from(index).ok().and_then(|i| self.keys.get(i))
        } else {
            None
        }
    }
}

/// Why a request was allowed or denied (for logs; callers only see allow/deny).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Allowed,
    MissingHeader,
    NotBearer,
    UnknownKey,
    MissingScope,
}

/// The outcome of [`authorize`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// The key's scopes, when a key matched.
    pub scopes: Vec<String>,
    /// The first 8 hex of the matched key's hash.
    pub key_id: Option<String>,
    pub reason: Reason,
}

impl Decision {
    fn deny(reason: Reason) -> Decision {
        Decision {
            allowed: false,
            scopes: Vec::new(),
            key_id: None,
            reason,
        }
    }
}

/// `Bearer <key>` (scheme case-insensitive) with a configured key whose
/// scopes allow `method`; anything else is a deny.
pub fn authorize(keys: &AdminKeys, authorization: Option<&str>, method: &str) -> Decision {
    let Some(header) = authorization.map(str::trim).filter(|h| !h.is_empty()) else {
        return Decision::deny(Reason::MissingHeader);
    };
    if header.len() > MAX_HEADER_LEN {
        return Decision::deny(Reason::NotBearer);
    }
    let Some((scheme, token)) = header.split_once(|c: char| c.is_ascii_whitespace()) else {
        return Decision::deny(Reason::NotBearer);
    };
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Decision::deny(Reason::NotBearer);
    }
    let Some(key) = keys.find(token) else {
        return Decision::deny(Reason::UnknownKey);
    };
    let allowed = key.scopes.allow(method);
    Decision {
        allowed,
        scopes: key.scopes.names(),
        key_id: Some(key.id()),
        reason: if allowed {
            Reason::Allowed
        } else {
            Reason::MissingScope
        },
    }
}

/// The Lambda handler: `context` carries `scopes` (space-separated) and
/// `key_id` to the admin function when the request is allowed.
pub async fn handler(
    keys: &AdminKeys,
    event: ApiGatewayV2CustomAuthorizerV2Request,
) -> ApiGatewayV2CustomAuthorizerSimpleResponse {
    let authorization = event
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let method = event.request_context.http.method.as_str();
    let decision = authorize(keys, authorization, method);
    let route = event.route_key.as_deref().unwrap_or("");
    if decision.allowed {
        tracing::info!(
            key_id = decision.key_id.as_deref(),
            method,
            route,
            "admin request allowed"
        );
    } else {
        tracing::info!(
            key_id = decision.key_id.as_deref(),
            method,
            route,
            reason = ?decision.reason,
            "admin request denied"
        );
    }
    response(&decision)
}

fn response(decision: &Decision) -> ApiGatewayV2CustomAuthorizerSimpleResponse {
    let mut out = ApiGatewayV2CustomAuthorizerSimpleResponse::<Value>::default();
    out.is_authorized = decision.allowed;
    out.context = if decision.allowed {
        json!({
            "scopes": decision.scopes.join(" "),
            "key_id": decision.key_id.as_deref().unwrap_or(""),
        })
    } else {
        json!({})
    };
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const DEV_KEY: &str = "dev-admin-key";

    fn hash(key: &str) -> String {
        domain::signature::sha256_hex(key.as_bytes())
    }

    fn keys() -> AdminKeys {
        AdminKeys::parse(&format!(
            "{}:admin, {}:admin:read",
            hash(DEV_KEY),
            hash("reader-key")
        ))
        .expect("valid")
    }

    fn event(method: &str, authorization: Option<&str>) -> ApiGatewayV2CustomAuthorizerV2Request {
        let mut e = ApiGatewayV2CustomAuthorizerV2Request::default();
        e.version = Some("2.0".into());
        e.type_ = Some("REQUEST".into());
        e.route_key = Some(format!("{method} /admin/conversations"));
        e.raw_path = Some("/admin/conversations".into());
        e.request_context.http.method = method.parse().expect("method");
        e.request_context.http.path = Some("/admin/conversations".into());
        if let Some(a) = authorization {
            e.headers.insert(
                http::header::AUTHORIZATION,
                a.parse().expect("header value"),
            );
        }
        e
    }

    const VALID_KEY: &str = include_str!("../../../events/authorizer/valid_key.json");
    const MISSING_HEADER: &str = include_str!("../../../events/authorizer/missing_header.json");
    const WRONG_SCHEME: &str = include_str!("../../../events/authorizer/wrong_scheme.json");

    fn sample(json: &str) -> ApiGatewayV2CustomAuthorizerV2Request {
        serde_json::from_str(json).expect("sample event parses")
    }

    #[test]
    fn a_valid_key_with_the_scope_is_allowed() {
        let d = authorize(&keys(), Some("Bearer dev-admin-key"), "GET");
        assert!(d.allowed);
        assert_eq!(d.scopes, vec!["admin:read", "admin:write"]);
        assert_eq!(d.key_id.as_deref(), Some(&hash(DEV_KEY)[..8]));
        assert!(authorize(&keys(), Some("Bearer dev-admin-key"), "POST").allowed);
    }

    #[test]
    fn the_scheme_is_case_insensitive() {
        assert!(authorize(&keys(), Some("bearer dev-admin-key"), "GET").allowed);
        assert!(authorize(&keys(), Some("BEARER   dev-admin-key  "), "GET").allowed);
    }

    #[test]
    fn a_read_key_may_read_but_not_write() {
        assert!(authorize(&keys(), Some("Bearer reader-key"), "GET").allowed);
        assert!(authorize(&keys(), Some("Bearer reader-key"), "HEAD").allowed);
        for method in ["POST", "PUT", "PATCH", "DELETE", "OPTIONS", "get"] {
            let d = authorize(&keys(), Some("Bearer reader-key"), method);
            assert!(!d.allowed, "{method}");
            assert_eq!(d.reason, Reason::MissingScope);
        }
    }

    #[test]
    fn a_write_only_key_may_not_read() {
        let keys = AdminKeys::parse(&format!("{}:admin:write", hash("w"))).expect("valid");
        assert!(!authorize(&keys, Some("Bearer w"), "GET").allowed);
        assert!(authorize(&keys, Some("Bearer w"), "DELETE").allowed);
    }

    #[test]
    fn missing_wrong_scheme_and_unknown_keys_are_denied() {
        let k = keys();
        assert_eq!(authorize(&k, None, "GET").reason, Reason::MissingHeader);
        assert_eq!(
            authorize(&k, Some("  "), "GET").reason,
            Reason::MissingHeader
        );
        assert_eq!(
            authorize(&k, Some("Basic ZGV2OmtleQ=="), "GET").reason,
            Reason::NotBearer
        );
        assert_eq!(
            authorize(&k, Some("dev-admin-key"), "GET").reason,
            Reason::NotBearer
        );
        assert_eq!(
            authorize(&k, Some("Bearer"), "GET").reason,
            Reason::NotBearer
        );
        assert_eq!(
            authorize(&k, Some("Bearer "), "GET").reason,
            Reason::NotBearer
        );
        let unknown = authorize(&k, Some("Bearer dev-admin-key2"), "GET");
        assert_eq!(unknown.reason, Reason::UnknownKey);
        assert!(!unknown.allowed && unknown.key_id.is_none() && unknown.scopes.is_empty());
        // The hash itself is not the key.
        let by_hash = format!("Bearer {}", hash(DEV_KEY));
        assert!(!authorize(&k, Some(&by_hash), "GET").allowed);
    }

    #[test]
    fn parse_accepts_uppercase_hex_and_a_trailing_comma() {
        let k = AdminKeys::parse(&format!(
            "{}:admin:read+admin:write,",
            hash(DEV_KEY).to_uppercase()
        ))
        .expect("valid");
        assert!(authorize(&k, Some("Bearer dev-admin-key"), "POST").allowed);
    }

    #[test]
    fn parse_errors_name_the_entry_and_never_echo_the_hash() {
        let good = hash(DEV_KEY);
        let short = &good[..63];
        let cases = [
            (format!("{good}:admin,{short}:admin"), "entry 2"),
            (good.clone(), "entry 1"),
            (format!("{good}:root"), "entry 1"),
            (format!("{good}:"), "entry 1"),
            (format!("{}:admin", "z".repeat(64)), "entry 1"),
            (format!("{good}:admin,{good}:admin:read"), "entry 2"),
        ];
        for (config, entry) in cases {
            let err = AdminKeys::parse(&config).expect_err(&config).to_string();
            assert!(err.contains(entry), "{err}");
            assert!(!err.contains(short), "{err}");
            assert!(!err.contains(&"z".repeat(64)), "{err}");
        }
        assert!(AdminKeys::parse("").is_err());
        assert!(AdminKeys::parse(" , ").is_err());
    }

    #[test]
    fn keys_never_print_their_hashes() {
        let printed = format!("{:?}", keys());
        assert!(!printed.contains(&hash(DEV_KEY)));
        assert!(printed.contains(&hash(DEV_KEY)[..8]));
    }

    #[test]
    fn from_plain_hashes_the_key() {
        let k = AdminKeys::from_plain(DEV_KEY, Scopes::READ).expect("valid");
        assert!(authorize(&k, Some("Bearer dev-admin-key"), "GET").allowed);
        assert!(!authorize(&k, Some("Bearer dev-admin-key"), "POST").allowed);
        assert!(AdminKeys::from_plain(" ", Scopes::ADMIN).is_err());
    }

    #[tokio::test]
    async fn handler_allows_the_valid_key_sample_with_context() {
        let out = handler(&keys(), sample(VALID_KEY)).await;
        assert!(out.is_authorized);
        assert_eq!(out.context["scopes"], "admin:read admin:write");
        assert_eq!(out.context["key_id"], &hash(DEV_KEY)[..8]);
        let wire = serde_json::to_value(&out).expect("serializes");
        assert_eq!(wire["isAuthorized"], true);
    }

    #[tokio::test]
    async fn handler_denies_the_missing_header_sample() {
        let out = handler(&keys(), sample(MISSING_HEADER)).await;
        assert!(!out.is_authorized);
        assert_eq!(out.context, json!({}));
    }

    #[tokio::test]
    async fn handler_denies_the_wrong_scheme_sample() {
        assert!(!handler(&keys(), sample(WRONG_SCHEME)).await.is_authorized);
    }

    #[tokio::test]
    async fn handler_checks_the_method_scope() {
        let k = AdminKeys::from_plain("reader", Scopes::READ).expect("valid");
        assert!(
            handler(&k, event("GET", Some("Bearer reader")))
                .await
                .is_authorized
        );
        assert!(
            !handler(&k, event("POST", Some("Bearer reader")))
                .await
                .is_authorized
        );
    }

    proptest! {
        #[test]
        fn arbitrary_headers_never_panic_and_never_allow(header in "\\PC{0,200}", method in "[A-Za-z]{0,10}") {
            let d = authorize(&keys(), Some(&header), &method);
            // Only the two configured keys can be allowed.
            if d.allowed {
                let token = header.trim().split_once(|c: char| c.is_ascii_whitespace()).map(|(_, t)| t.trim());
                prop_assert!(token == Some(DEV_KEY) || token == Some("reader-key"));
            }
        }

        #[test]
        fn arbitrary_bearer_tokens_are_denied(token in "\\PC{1,100}") {
            prop_assume!(token.trim() != DEV_KEY && token.trim() != "reader-key");
            let header = format!("Bearer {token}");
            prop_assert!(!authorize(&keys(), Some(&header), "GET").allowed);
        }

        #[test]
        fn arbitrary_config_never_panics(config in "\\PC{0,300}") {
            let _ = AdminKeys::parse(&config);
        }
    }
}
