//! AWS::SecretsManager::Secret, with GenerateSecretString done here.

use std::collections::BTreeMap;

use serde_json::Value;

use super::names::suffix;
use super::props::{only, s, text, truthy};
use crate::aws::{err_text, Aws};
use crate::bail;
use crate::error::{Context, Result};

/// Secrets Manager's GenerateSecretString, done here.
fn generate_secret(g: &Value) -> Result<String> {
    only(
        g,
        &[
            "PasswordLength",
            "ExcludePunctuation",
            "ExcludeCharacters",
            "ExcludeUppercase",
            "ExcludeLowercase",
            "ExcludeNumbers",
            "IncludeSpace",
            "SecretStringTemplate",
            "GenerateStringKey",
        ],
        &["RequireEachIncludedType"],
    )?;
    let len: usize = g
        .get("PasswordLength")
        .and_then(text)
        .and_then(|t| t.parse().ok())
        .unwrap_or(32);
    let mut alphabet = String::new();
    if !truthy(g.get("ExcludeLowercase")) {
        alphabet.push_str("abcdefghijklmnopqrstuvwxyz");
    }
    if !truthy(g.get("ExcludeUppercase")) {
        alphabet.push_str("ABCDEFGHIJKLMNOPQRSTUVWXYZ");
    }
    if !truthy(g.get("ExcludeNumbers")) {
        alphabet.push_str("0123456789");
    }
    if !truthy(g.get("ExcludePunctuation")) {
        alphabet.push_str("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~");
    }
    if truthy(g.get("IncludeSpace")) {
        alphabet.push(' ');
    }
    let exclude = s(g, "ExcludeCharacters").unwrap_or_default();
    let chars: Vec<char> = alphabet.chars().filter(|c| !exclude.contains(*c)).collect();
    if chars.is_empty() {
        bail!("GenerateSecretString leaves no characters");
    }
    let mut out = String::new();
    while out.chars().count() < len {
        for b in uuid::Uuid::new_v4().as_bytes() {
            if out.chars().count() < len {
                out.push(chars[*b as usize % chars.len()]);
            }
        }
    }
    match (s(g, "SecretStringTemplate"), s(g, "GenerateStringKey")) {
        (Some(tpl), Some(key)) => {
            let mut v: Value =
                serde_json::from_str(tpl).context(|| "SecretStringTemplate".to_string())?;
            v[key] = Value::String(out);
            Ok(v.to_string())
        }
        _ => Ok(out),
    }
}

pub(super) async fn create_secret(
    aws: &Aws,
    id: &str,
    p: &Value,
    attrs: &mut BTreeMap<String, String>,
) -> Result<String> {
    only(
        p,
        &[
            "Name",
            "Description",
            "SecretString",
            "GenerateSecretString",
        ],
        &["KmsKeyId", "Tags"],
    )?;
    // CloudFormation names a secret `{LogicalId}-{random}`.
    let name = s(p, "Name")
        .map(str::to_string)
        .unwrap_or_else(|| format!("{id}-{}", suffix(12, false)));
    let value = match (s(p, "SecretString"), p.get("GenerateSecretString")) {
        (Some(v), None) => v.to_string(),
        (None, Some(g)) => generate_secret(g)?,
        _ => bail!("a secret needs exactly one of SecretString and GenerateSecretString"),
    };
    let out = aws
        .secrets
        .create_secret()
        .name(&name)
        .set_description(s(p, "Description").map(str::to_string))
        .secret_string(value)
        .send()
        .await
        .map_err(|e| crate::error::Error(format!("CreateSecret {name}: {}", err_text(&e))))?;
    let secret_arn = out
        .arn()
        .context(|| "CreateSecret: no ARN".to_string())?
        .to_string();
    attrs.insert("Id".into(), secret_arn.clone());
    Ok(secret_arn)
}
