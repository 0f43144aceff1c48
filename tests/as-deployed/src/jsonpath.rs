//! The JSONPath subset Amazon States Language paths use: `$`, `$.a.b`,
//! `$.a[0]`, `$['a']`, and `$$.` for the context object. Reference paths
//! (ResultPath) are set with [`set`].

use serde_json::{Map, Value};

use crate::bail;
use crate::error::Result;

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

fn parse(path: &str) -> Result<Vec<Step>> {
    let rest = path
        .strip_prefix('$')
        .ok_or_else(|| crate::error::Error(format!("path {path:?} does not start with $")))?;
    let mut steps = Vec::new();
    let b = rest.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'.' => {
                let start = i + 1;
                let mut end = start;
                while end < b.len() && b[end] != b'.' && b[end] != b'[' {
                    end += 1;
                }
                if end == start {
                    bail!("path {path:?}: empty name");
                }
                let key = &rest[start..end];
                if key == "*" {
                    bail!("path {path:?}: wildcards are not supported by the harness");
                }
                steps.push(Step::Key(key.to_string()));
                i = end;
            }
            b'[' => {
                let end = rest[i..]
                    .find(']')
                    .map(|e| e + i)
                    .ok_or_else(|| crate::error::Error(format!("path {path:?}: unclosed [")))?;
                let inner = rest[i + 1..end].trim();
                if let Some(q) = inner.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
                    steps.push(Step::Key(q.to_string()));
                } else if let Ok(n) = inner.parse::<usize>() {
                    steps.push(Step::Index(n));
                } else {
                    bail!("path {path:?}: [{inner}] is not supported by the harness");
                }
                i = end + 1;
            }
            _ => bail!("path {path:?}: unexpected character at {i}"),
        }
    }
    Ok(steps)
}

/// The value at `path` in `doc`, `None` when absent.
pub fn get(doc: &Value, path: &str) -> Result<Option<Value>> {
    let mut cur = doc;
    for step in parse(path)? {
        let next = match (&step, cur) {
            (Step::Key(k), Value::Object(m)) => m.get(k),
            (Step::Index(n), Value::Array(a)) => a.get(*n),
            _ => None,
        };
        match next {
            Some(v) => cur = v,
            None => return Ok(None),
        }
    }
    Ok(Some(cur.clone()))
}

/// `doc` with `value` put at `path` (objects created on the way).
pub fn set(doc: &Value, path: &str, value: Value) -> Result<Value> {
    let steps = parse(path)?;
    if steps.is_empty() {
        return Ok(value);
    }
    let mut out = doc.clone();
    if !out.is_object() {
        out = Value::Object(Map::new());
    }
    let mut cur = &mut out;
    for (i, step) in steps.iter().enumerate() {
        let last = i + 1 == steps.len();
        match step {
            Step::Key(k) => {
                if !cur.is_object() {
                    *cur = Value::Object(Map::new());
                }
                let Some(m) = cur.as_object_mut() else {
                    bail!("path {path:?}: cannot set")
                };
                if last {
                    m.insert(k.clone(), value);
                    return Ok(out);
                }
                cur = m
                    .entry(k.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
            }
            Step::Index(_) => bail!("path {path:?}: ResultPath with an index is not supported"),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_get_and_set() {
        let doc = json!({"a": {"b": [1, {"c": 2}]}, "x y": 3});
        assert_eq!(get(&doc, "$").expect("ok"), Some(doc.clone()));
        assert_eq!(get(&doc, "$.a.b[1].c").expect("ok"), Some(json!(2)));
        assert_eq!(get(&doc, "$['x y']").expect("ok"), Some(json!(3)));
        assert_eq!(get(&doc, "$.nope").expect("ok"), None);
        let set_doc = set(&doc, "$.error", json!({"Error": "E"})).expect("set");
        assert_eq!(set_doc["error"]["Error"], "E");
        assert_eq!(set_doc["a"], doc["a"]);
        assert_eq!(set(&doc, "$", json!(1)).expect("set"), json!(1));
        assert!(get(&doc, "a.b").is_err());
    }
}
