//! template.yaml as CloudFormation reads it: the YAML with its short tags
//! turned into the long forms (`!Ref X` -> `{"Ref": "X"}`, `!Sub s` ->
//! `{"Fn::Sub": s}` ...), Parameters with their defaults and constraints,
//! Conditions, SAM's `Globals: Function:` merged into every function, and
//! the intrinsic functions resolved against the physical ids of one stack.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::bail;
use crate::error::{Context, Error, Result};

/// One resource of the template, as written (intrinsics unresolved).
#[derive(Debug, Clone)]
pub struct Resource {
    pub id: String,
    pub kind: String,
    /// For `AWS::Serverless::Function`, already merged with `Globals: Function:`.
    pub properties: Value,
    pub metadata: Value,
    pub condition: Option<String>,
    pub depends_on: Vec<String>,
}

/// A parameter's declaration.
#[derive(Debug, Clone)]
pub struct ParamDef {
    pub kind: String,
    pub default: Option<String>,
    pub allowed_values: Option<Vec<String>>,
    pub allowed_pattern: Option<String>,
    pub min_length: Option<usize>,
    pub max_length: Option<usize>,
    pub min_value: Option<f64>,
    pub max_value: Option<f64>,
}

#[derive(Debug, Clone)]
pub struct Template {
    pub path: PathBuf,
    /// Where relative paths (CodeUri, ContentUri, DefinitionUri) start.
    pub dir: PathBuf,
    pub parameters: BTreeMap<String, ParamDef>,
    pub conditions: Map<String, Value>,
    pub resources: BTreeMap<String, Resource>,
}

/// The short tags CloudFormation knows, and the long form each stands for.
fn long_form(tag: &str) -> Option<&'static str> {
    Some(match tag {
        "Ref" => "Ref",
        "Condition" => "Condition",
        "GetAtt" => "Fn::GetAtt",
        "Sub" => "Fn::Sub",
        "If" => "Fn::If",
        "Equals" => "Fn::Equals",
        "Not" => "Fn::Not",
        "And" => "Fn::And",
        "Or" => "Fn::Or",
        "Join" => "Fn::Join",
        "Select" => "Fn::Select",
        "Split" => "Fn::Split",
        "FindInMap" => "Fn::FindInMap",
        "Base64" => "Fn::Base64",
        "GetAZs" => "Fn::GetAZs",
        "ImportValue" => "Fn::ImportValue",
        "Cidr" => "Fn::Cidr",
        "Length" => "Fn::Length",
        "ToJsonString" => "Fn::ToJsonString",
        "Transform" => "Fn::Transform",
        _ => return None,
    })
}

/// YAML (with tags) to JSON with the long forms.
pub fn yaml_to_json(v: serde_norway::Value, at: &str) -> Result<Value> {
    use serde_norway::Value as Y;
    Ok(match v {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => serde_json::to_value(&n).context(|| format!("{at}: number {n}"))?,
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, v)| yaml_to_json(v, &format!("{at}[{i}]")))
                .collect::<Result<_>>()?,
        ),
        Y::Mapping(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let key = match k {
                    Y::String(s) => s,
                    Y::Number(n) => n.to_string(),
                    Y::Bool(b) => b.to_string(),
                    other => bail!("{at}: a mapping key that is not a scalar: {other:?}"),
                };
                let value = yaml_to_json(v, &format!("{at}.{key}"))?;
                out.insert(key, value);
            }
            Value::Object(out)
        }
        Y::Tagged(t) => {
            let tag = t.tag.to_string();
            let name = tag.trim_start_matches('!');
            let Some(long) = long_form(name) else {
                bail!("{at}: unknown YAML tag !{name} (not a CloudFormation intrinsic)");
            };
            let inner = yaml_to_json(t.value, at)?;
            let inner = match (long, inner) {
                // `!GetAtt Res.Attr` is the string form of ["Res", "Attr"].
                ("Fn::GetAtt", Value::String(s)) => match s.split_once('.') {
                    Some((r, a)) => Value::Array(vec![r.into(), a.into()]),
                    None => bail!("{at}: !GetAtt {s} has no attribute"),
                },
                (_, v) => v,
            };
            let mut m = Map::new();
            m.insert(long.to_string(), inner);
            Value::Object(m)
        }
    })
}

fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// SAM's Globals merge: maps merge key by key, lists add up, the
/// resource's own scalar wins.
pub fn merge_globals(global: &Value, local: &Value) -> Value {
    match (global, local) {
        (Value::Object(g), Value::Object(l)) => {
            let mut out = g.clone();
            for (k, v) in l {
                let merged = match g.get(k) {
                    Some(gv) => merge_globals(gv, v),
                    None => v.clone(),
                };
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (Value::Array(g), Value::Array(l)) => {
            Value::Array(g.iter().chain(l.iter()).cloned().collect())
        }
        (_, l) => l.clone(),
    }
}

impl Template {
    pub fn load(path: &Path) -> Result<Template> {
        let text = std::fs::read_to_string(path)
            .context(|| format!("reading the template {}", path.display()))?;
        let yaml: serde_norway::Value =
            serde_norway::from_str(&text).context(|| format!("parsing {}", path.display()))?;
        let doc = yaml_to_json(yaml, "template")?;
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));

        let mut parameters = BTreeMap::new();
        if let Some(ps) = doc.get("Parameters").and_then(Value::as_object) {
            for (name, p) in ps {
                let num = |k: &str| {
                    p.get(k)
                        .and_then(scalar_string)
                        .and_then(|s| s.parse().ok())
                };
                parameters.insert(
                    name.clone(),
                    ParamDef {
                        kind: p
                            .get("Type")
                            .and_then(Value::as_str)
                            .context(|| format!("parameter {name} has no Type"))?
                            .to_string(),
                        default: p.get("Default").and_then(scalar_string),
                        allowed_values: p
                            .get("AllowedValues")
                            .and_then(Value::as_array)
                            .map(|a| a.iter().filter_map(scalar_string).collect()),
                        allowed_pattern: p
                            .get("AllowedPattern")
                            .and_then(Value::as_str)
                            .map(str::to_string),
                        min_length: num("MinLength").map(|v: f64| v as usize),
                        max_length: num("MaxLength").map(|v: f64| v as usize),
                        min_value: num("MinValue"),
                        max_value: num("MaxValue"),
                    },
                );
            }
        }
        let conditions = doc
            .get("Conditions")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();

        let globals = doc.get("Globals").cloned().unwrap_or(Value::Null);
        if let Some(g) = globals.as_object() {
            for section in g.keys() {
                if section != "Function" && section != "HttpApi" {
                    bail!("Globals: section {section} is not supported by the harness");
                }
            }
        }
        let mut resources = BTreeMap::new();
        let rs = doc
            .get("Resources")
            .and_then(Value::as_object)
            .context(|| "the template has no Resources".to_string())?;
        for (id, r) in rs {
            let kind = r
                .get("Type")
                .and_then(Value::as_str)
                .context(|| format!("resource {id} has no Type"))?
                .to_string();
            let mut properties = r
                .get("Properties")
                .cloned()
                .unwrap_or(Value::Object(Map::new()));
            let global = match kind.as_str() {
                "AWS::Serverless::Function" => globals.get("Function"),
                "AWS::Serverless::HttpApi" => globals.get("HttpApi"),
                _ => None,
            };
            if let Some(g) = global {
                properties = merge_globals(g, &properties);
            }
            let depends_on = match r.get("DependsOn") {
                Some(Value::String(s)) => vec![s.clone()],
                Some(Value::Array(a)) => a.iter().filter_map(scalar_string).collect(),
                _ => Vec::new(),
            };
            resources.insert(
                id.clone(),
                Resource {
                    id: id.clone(),
                    kind,
                    properties,
                    metadata: r.get("Metadata").cloned().unwrap_or(Value::Null),
                    condition: r
                        .get("Condition")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    depends_on,
                },
            );
        }
        Ok(Template {
            path: path.to_path_buf(),
            dir,
            parameters,
            conditions,
            resources,
        })
    }

    /// The parameters' values: defaults, then `overrides` (like `sam deploy
    /// --parameter-overrides`), each checked against its constraints.
    pub fn parameter_values(
        &self,
        overrides: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>> {
        for name in overrides.keys() {
            if !self.parameters.contains_key(name) {
                bail!("parameter override {name}: the template has no such parameter");
            }
        }
        let mut out = BTreeMap::new();
        for (name, def) in &self.parameters {
            let value = match overrides.get(name).or(def.default.as_ref()) {
                Some(v) => v.clone(),
                None => bail!("parameter {name} has no default: pass it as an override"),
            };
            check_parameter(name, def, &value)?;
            out.insert(name.clone(), value);
        }
        Ok(out)
    }

    /// The file a relative `*Uri` property points to.
    pub fn file(&self, relative: &str) -> PathBuf {
        self.dir.join(relative)
    }
}

fn check_parameter(name: &str, def: &ParamDef, value: &str) -> Result<()> {
    match def.kind.as_str() {
        "String" => {}
        "Number" => {
            let n: f64 = value
                .parse()
                .context(|| format!("parameter {name}: {value:?} is not a Number"))?;
            if def.min_value.is_some_and(|m| n < m) || def.max_value.is_some_and(|m| n > m) {
                bail!(
                    "parameter {name}: {value} is outside [{:?}, {:?}]",
                    def.min_value,
                    def.max_value
                );
            }
        }
        other => bail!("parameter {name}: type {other} is not supported by the harness"),
    }
    if let Some(allowed) = &def.allowed_values {
        if !allowed.iter().any(|a| a == value) {
            bail!("parameter {name}: {value:?} is not one of {allowed:?}");
        }
    }
    let len = value.chars().count();
    if def.min_length.is_some_and(|m| len < m) || def.max_length.is_some_and(|m| len > m) {
        bail!("parameter {name}: length {len} is outside its MinLength/MaxLength");
    }
    if let Some(p) = &def.allowed_pattern {
        // CloudFormation matches the whole value.
        let re = regex::Regex::new(&format!("^(?:{p})$"))
            .context(|| format!("parameter {name}: AllowedPattern {p}"))?;
        if !re.is_match(value) {
            bail!("parameter {name}: {value:?} does not match AllowedPattern {p}");
        }
    }
    Ok(())
}

/// What `!Ref` and `!GetAtt` give for a resource that exists.
#[derive(Debug, Clone, Default)]
pub struct Physical {
    pub id: String,
    pub attrs: BTreeMap<String, String>,
}

/// The pseudo parameters of the stack.
#[derive(Debug, Clone)]
pub struct Pseudo {
    pub region: String,
    pub account_id: String,
    pub stack_name: String,
    pub stack_id: String,
    pub partition: String,
    pub url_suffix: String,
}

/// Resolves intrinsic functions against one stack.
#[derive(Debug, Clone)]
pub struct Resolver {
    pub pseudo: Pseudo,
    pub parameters: BTreeMap<String, String>,
    pub conditions: BTreeMap<String, bool>,
    pub physical: BTreeMap<String, Physical>,
    /// Every logical id of the template (to tell "not created yet" from "unknown").
    pub resource_ids: BTreeSet<String>,
}

impl Resolver {
    pub fn new(
        template: &Template,
        pseudo: Pseudo,
        parameters: BTreeMap<String, String>,
    ) -> Result<Resolver> {
        let mut r = Resolver {
            pseudo,
            parameters,
            conditions: BTreeMap::new(),
            physical: BTreeMap::new(),
            resource_ids: template.resources.keys().cloned().collect(),
        };
        for name in template.conditions.keys() {
            let v = r.condition(template, name, &mut BTreeSet::new())?;
            r.conditions.insert(name.clone(), v);
        }
        Ok(r)
    }

    fn condition(&self, t: &Template, name: &str, seen: &mut BTreeSet<String>) -> Result<bool> {
        if let Some(v) = self.conditions.get(name) {
            return Ok(*v);
        }
        if !seen.insert(name.to_string()) {
            bail!("condition {name} refers to itself");
        }
        let def = t
            .conditions
            .get(name)
            .context(|| format!("unknown condition {name}"))?;
        self.eval_condition(t, def, &format!("Conditions.{name}"), seen)
    }

    fn eval_condition(
        &self,
        t: &Template,
        v: &Value,
        at: &str,
        seen: &mut BTreeSet<String>,
    ) -> Result<bool> {
        let (f, args) = single_key(v).context(|| format!("{at}: not a condition function"))?;
        let list = |args: &Value| -> Result<Vec<Value>> {
            args.as_array()
                .cloned()
                .context(|| format!("{at}: {f} takes a list"))
        };
        match f {
            "Condition" => {
                let n = args
                    .as_str()
                    .context(|| format!("{at}: Condition takes a name"))?;
                self.condition(t, n, seen)
            }
            "Fn::Equals" => {
                let a = list(args)?;
                if a.len() != 2 {
                    bail!("{at}: Fn::Equals takes two values");
                }
                let x = self.resolve(&a[0], at)?.and_then(|v| scalar_string(&v));
                let y = self.resolve(&a[1], at)?.and_then(|v| scalar_string(&v));
                Ok(x == y)
            }
            "Fn::Not" => {
                let a = list(args)?;
                Ok(!self.eval_condition(
                    t,
                    a.first().context(|| format!("{at}: Fn::Not []"))?,
                    at,
                    seen,
                )?)
            }
            "Fn::And" | "Fn::Or" => {
                let mut out = Vec::new();
                for c in list(args)? {
                    out.push(self.eval_condition(t, &c, at, seen)?);
                }
                Ok(if f == "Fn::And" {
                    out.iter().all(|b| *b)
                } else {
                    out.iter().any(|b| *b)
                })
            }
            other => bail!("{at}: {other} is not a condition function"),
        }
    }

    /// The value of `!Ref name`.
    pub fn reference(&self, name: &str, at: &str) -> Result<Option<Value>> {
        let p = &self.pseudo;
        let s = match name {
            "AWS::Region" => p.region.clone(),
            "AWS::AccountId" => p.account_id.clone(),
            "AWS::StackName" => p.stack_name.clone(),
            "AWS::StackId" => p.stack_id.clone(),
            "AWS::Partition" => p.partition.clone(),
            "AWS::URLSuffix" => p.url_suffix.clone(),
            "AWS::NoValue" => return Ok(None),
            "AWS::NotificationARNs" => return Ok(Some(Value::Array(Vec::new()))),
            _ => {
                if let Some(v) = self.parameters.get(name) {
                    v.clone()
                } else if let Some(r) = self.physical.get(name) {
                    r.id.clone()
                } else if self.resource_ids.contains(name) {
                    bail!("{at}: !Ref {name}: that resource is not created (yet, or its condition is false)");
                } else {
                    bail!("{at}: !Ref {name}: no such parameter or resource");
                }
            }
        };
        Ok(Some(Value::String(s)))
    }

    pub fn get_att(&self, resource: &str, attr: &str, at: &str) -> Result<String> {
        let r = self
            .physical
            .get(resource)
            .context(|| format!("{at}: !GetAtt {resource}.{attr}: no such resource created"))?;
        r.attrs.get(attr).cloned().context(|| {
            format!(
                "{at}: !GetAtt {resource}.{attr}: the harness knows only {:?}",
                r.attrs.keys().collect::<Vec<_>>()
            )
        })
    }

    /// Resolves every intrinsic in `v`; `None` is `AWS::NoValue`.
    pub fn resolve(&self, v: &Value, at: &str) -> Result<Option<Value>> {
        match v {
            Value::Array(items) => {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    if let Some(x) = self.resolve(item, &format!("{at}[{i}]"))? {
                        out.push(x);
                    }
                }
                Ok(Some(Value::Array(out)))
            }
            Value::Object(m) => {
                if let Some((f, args)) = single_key(v) {
                    if f == "Ref" || f.starts_with("Fn::") {
                        return self.intrinsic(f, args, at);
                    }
                }
                let mut out = Map::new();
                for (k, x) in m {
                    if let Some(x) = self.resolve(x, &format!("{at}.{k}"))? {
                        out.insert(k.clone(), x);
                    }
                }
                Ok(Some(Value::Object(out)))
            }
            other => Ok(Some(other.clone())),
        }
    }

    /// [`Resolver::resolve`] to a string (numbers and booleans as text).
    pub fn resolve_string(&self, v: &Value, at: &str) -> Result<String> {
        match self.resolve(v, at)? {
            Some(x) => scalar_string(&x).context(|| format!("{at}: {x} is not a string")),
            None => bail!("{at}: AWS::NoValue where a string is needed"),
        }
    }

    fn intrinsic(&self, f: &str, args: &Value, at: &str) -> Result<Option<Value>> {
        let at = &format!("{at}.{f}");
        let list = |n: usize| -> Result<Vec<Value>> {
            match args.as_array() {
                Some(a) if a.len() == n => Ok(a.clone()),
                _ => bail!("{at}: takes a list of {n}"),
            }
        };
        match f {
            "Ref" => {
                let name = args.as_str().context(|| format!("{at}: takes a name"))?;
                self.reference(name, at)
            }
            "Fn::GetAtt" => {
                let a = list(2)?;
                let r = a[0].as_str().context(|| format!("{at}: resource name"))?;
                let attr = self.resolve_string(&a[1], at)?;
                Ok(Some(Value::String(self.get_att(r, &attr, at)?)))
            }
            "Fn::Sub" => {
                let (text, vars) = match args {
                    Value::String(s) => (s.clone(), Map::new()),
                    Value::Array(a) if a.len() == 2 => {
                        let s = a[0].as_str().context(|| format!("{at}: template"))?;
                        let vars = match self.resolve(&a[1], at)? {
                            Some(Value::Object(m)) => m,
                            _ => bail!("{at}: the variables are not a map"),
                        };
                        (s.to_string(), vars)
                    }
                    _ => bail!("{at}: takes a string or [string, map]"),
                };
                Ok(Some(Value::String(self.sub(&text, &vars, at)?)))
            }
            "Fn::If" => {
                let a = list(3)?;
                let name = a[0].as_str().context(|| format!("{at}: condition name"))?;
                let c = *self
                    .conditions
                    .get(name)
                    .context(|| format!("{at}: unknown condition {name}"))?;
                self.resolve(if c { &a[1] } else { &a[2] }, at)
            }
            "Fn::Join" => {
                let a = list(2)?;
                let sep = a[0].as_str().context(|| format!("{at}: delimiter"))?;
                let items = match self.resolve(&a[1], at)? {
                    Some(Value::Array(items)) => items,
                    _ => bail!("{at}: the values are not a list"),
                };
                let parts: Vec<String> = items
                    .iter()
                    .map(|v| scalar_string(v).context(|| format!("{at}: {v} is not a string")))
                    .collect::<Result<_>>()?;
                Ok(Some(Value::String(parts.join(sep))))
            }
            "Fn::Select" => {
                let a = list(2)?;
                let i: usize = self
                    .resolve_string(&a[0], at)?
                    .parse()
                    .context(|| format!("{at}: index"))?;
                match self.resolve(&a[1], at)? {
                    Some(Value::Array(items)) => {
                        Ok(Some(items.get(i).cloned().context(|| {
                            format!("{at}: index {i} out of {}", items.len())
                        })?))
                    }
                    _ => bail!("{at}: the values are not a list"),
                }
            }
            "Fn::Split" => {
                let a = list(2)?;
                let sep = a[0].as_str().context(|| format!("{at}: delimiter"))?;
                let s = self.resolve_string(&a[1], at)?;
                Ok(Some(Value::Array(
                    s.split(sep).map(|p| Value::String(p.to_string())).collect(),
                )))
            }
            "Fn::Base64" => {
                use base64::Engine;
                let s = self.resolve_string(args, at)?;
                Ok(Some(Value::String(
                    base64::engine::general_purpose::STANDARD.encode(s),
                )))
            }
            "Fn::Equals" | "Fn::Not" | "Fn::And" | "Fn::Or" => {
                bail!("{at}: condition functions belong in Conditions or Fn::If")
            }
            other => bail!("{at}: intrinsic function {other} is not supported by the harness"),
        }
    }

    fn sub(&self, text: &str, vars: &Map<String, Value>, at: &str) -> Result<String> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .context(|| format!("{at}: unclosed ${{ in {text:?}"))?;
            let name = &after[..end];
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
            } else if let Some(v) = vars.get(name) {
                out.push_str(
                    &scalar_string(v).context(|| format!("{at}: ${{{name}}} is not a string"))?,
                );
            } else if let Some((r, attr)) = name.split_once('.') {
                if r.starts_with("AWS:") {
                    bail!("{at}: ${{{name}}}: unknown pseudo parameter");
                }
                out.push_str(&self.get_att(r, attr, at)?);
            } else {
                let v = self
                    .reference(name, at)?
                    .context(|| format!("{at}: ${{{name}}} is AWS::NoValue"))?;
                out.push_str(&scalar_string(&v).context(|| format!("{at}: ${{{name}}}"))?);
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

/// `{"Fn::X": args}` -> ("Fn::X", args).
pub fn single_key(v: &Value) -> Option<(&str, &Value)> {
    let m = v.as_object()?;
    if m.len() != 1 {
        return None;
    }
    m.iter().next().map(|(k, v)| (k.as_str(), v))
}

/// The logical ids `v` refers to (Ref, GetAtt, Sub), to order creation.
pub fn references(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Array(a) => a.iter().for_each(|x| references(x, out)),
        Value::Object(m) => {
            if let Some((f, args)) = single_key(v) {
                match f {
                    "Ref" => {
                        if let Some(s) = args.as_str() {
                            out.insert(s.to_string());
                        }
                        return;
                    }
                    "Fn::GetAtt" => {
                        if let Some(s) = args.get(0).and_then(Value::as_str) {
                            out.insert(s.to_string());
                        }
                        return;
                    }
                    "Fn::Sub" => {
                        let (text, vars) = match args {
                            Value::String(s) => (s.as_str(), None),
                            Value::Array(a) => {
                                (a.first().and_then(Value::as_str).unwrap_or(""), a.get(1))
                            }
                            _ => ("", None),
                        };
                        let mut rest = text;
                        while let Some(start) = rest.find("${") {
                            let after = &rest[start + 2..];
                            let Some(end) = after.find('}') else { break };
                            let name = &after[..end];
                            if !name.starts_with('!') {
                                out.insert(name.split('.').next().unwrap_or(name).to_string());
                            }
                            rest = &after[end + 1..];
                        }
                        if let Some(v) = vars {
                            references(v, out);
                        }
                        return;
                    }
                    _ => {}
                }
            }
            m.values().for_each(|x| references(x, out));
        }
        _ => {}
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error(format!("json: {e}"))
    }
}
