//! Reading a resource's resolved properties, and refusing the ones the
//! harness does not honour.

use serde_json::Value;

use crate::bail;
use crate::error::Result;

pub(super) fn s<'a>(props: &'a Value, key: &str) -> Option<&'a str> {
    props.get(key).and_then(Value::as_str)
}

pub(super) fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub(super) fn truthy(v: Option<&Value>) -> bool {
    v.and_then(text).is_some_and(|t| t == "true")
}

/// Refuses properties the harness would silently not honour.
pub(super) fn only(props: &Value, known: &[&str], ignored: &[&str]) -> Result<()> {
    if let Some(m) = props.as_object() {
        for k in m.keys() {
            if !known.contains(&k.as_str()) && !ignored.contains(&k.as_str()) {
                bail!("property {k} is not supported by the harness (add it to its file in resources/)");
            }
        }
    }
    Ok(())
}
