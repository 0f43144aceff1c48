//! The template model and the resources it creates in moto (no function
//! binaries needed): what CloudFormation would create, with the settings
//! the template gives, and the environment each function would start with.

use std::collections::BTreeMap;
use std::path::Path;

use as_deployed::template::{Pseudo, Resolver, Template};
use as_deployed::{function_spec_of, provision, Options};
use serde_json::{json, Value};

fn options() -> Options {
    Options::default()
        .parameter("WhatsAppAppSecret", "s3cret")
        .parameter("WhatsAppVerifyToken", "verify")
        .parameter("WhatsAppAccessToken", "token")
        .parameter("AdminKeyHashes", format!("{}:admin:read", "a".repeat(64)))
}

/// The template and its parameters' values (the defaults and
/// [`options`]) for a stack `st` in us-east-1.
fn template_and_parameters() -> (Template, Pseudo, BTreeMap<String, String>) {
    let t = Template::load(&as_deployed::template_path()).expect("template");
    let pseudo = Pseudo {
        region: "us-east-1".into(),
        account_id: "123456789012".into(),
        stack_name: "st".into(),
        stack_id: "arn:aws:cloudformation:us-east-1:123456789012:stack/st/x".into(),
        partition: "aws".into(),
        url_suffix: "amazonaws.com".into(),
    };
    let mut params = BTreeMap::new();
    for (k, v) in &options().parameters {
        params.insert(k.clone(), v.clone());
    }
    let params = t.parameter_values(&params).expect("parameters");
    (t, pseudo, params)
}

#[test]
fn intrinsics_resolve_as_cloudformation_does() {
    let (t, pseudo, params) = template_and_parameters();
    assert_eq!(params["DebounceMs"], "1500", "defaults apply");
    let r = Resolver::new(&t, pseudo, params).expect("resolver");
    assert!(!r.conditions["HasAlarmEmail"]);
    let v = r
        .resolve(
            &json!({"Fn::Join": ["-", {"Fn::Split": [",", "a,b"]}]}),
            "t",
        )
        .expect("join")
        .expect("value");
    assert_eq!(v, "a-b");
    let v = r
        .resolve(
            &json!({"Fn::Sub": ["${AWS::StackName}/${X}/${!Literal}", {"X": {"Fn::Select": [1, ["p", "q"]]}}]}),
            "t",
        )
        .expect("sub")
        .expect("value");
    assert_eq!(v, "st/q/${Literal}");
    let none = r
        .resolve(
            &json!({"Fn::If": ["HasAlarmEmail", "x", {"Ref": "AWS::NoValue"}]}),
            "t",
        )
        .expect("if");
    assert_eq!(none, None);
    let err = r
        .resolve(&json!({"Fn::GetAZs": ""}), "Resources.X")
        .expect_err("unknown intrinsic");
    assert!(err.0.contains("Fn::GetAZs"), "{err}");
    // Globals are merged into each function.
    let f = &t.resources["Ingestion"].properties;
    assert_eq!(f["Runtime"], "provided.al2023");
    assert_eq!(t.resources["TextAi"].properties["Timeout"], 60);
    // Overrides are checked against the parameter's constraints.
    let mut bad = BTreeMap::new();
    bad.insert("WhatsAppApiBase".to_string(), "http://x/".to_string());
    assert!(t.parameter_values(&bad).is_err());
    bad.clear();
    bad.insert("NoSuchParameter".to_string(), "1".to_string());
    assert!(t.parameter_values(&bad).is_err());
}

#[tokio::test]
async fn the_resources_are_created_in_moto_as_the_template_says() {
    let p = provision(&options()).await.expect("provision");
    let r = &p.resolver;
    let aws = &p.aws;

    // The FIFO text queue with its dead-letter queue.
    let url = r.physical["TextQueue"].id.clone();
    assert!(url.ends_with(&format!("/{}-text.fifo", p.name)), "{url}");
    let attrs = aws
        .sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await
        .expect("attributes")
        .attributes
        .unwrap_or_default();
    let get = |k: &str| {
        attrs
            .iter()
            .find(|(n, _)| n.as_str() == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert_eq!(get("FifoQueue"), "true");
    assert_eq!(get("VisibilityTimeout"), "360");
    let redrive: Value = serde_json::from_str(&get("RedrivePolicy")).expect("redrive");
    assert_eq!(
        redrive["deadLetterTargetArn"],
        r.physical["TextDeadLetterQueue"].attrs["Arn"].as_str()
    );

    // The table with its index and TTL.
    let table = r.physical["Table"].id.clone();
    assert!(table.starts_with(&format!("{}-Table-", p.name)), "{table}");
    let d = aws
        .dynamodb
        .describe_table()
        .table_name(&table)
        .send()
        .await
        .expect("table")
        .table
        .expect("description");
    assert_eq!(d.global_secondary_indexes()[0].index_name(), Some("gsi1"));
    let ttl = aws
        .dynamodb
        .describe_time_to_live()
        .table_name(&table)
        .send()
        .await
        .expect("ttl");
    assert_eq!(
        ttl.time_to_live_description()
            .and_then(|t| t.attribute_name()),
        Some("expires_at")
    );

    // Secrets: the parameters' JSON, and a generated salt.
    let s = aws
        .secrets
        .get_secret_value()
        .secret_id(&r.physical["WhatsAppSecret"].id)
        .send()
        .await
        .expect("secret");
    let v: Value = serde_json::from_str(s.secret_string().unwrap_or("")).expect("json");
    assert_eq!(v["app_secret"], "s3cret");
    let salt = aws
        .secrets
        .get_secret_value()
        .secret_id(&r.physical["MediaKeySalt"].id)
        .send()
        .await
        .expect("salt");
    let salt = salt.secret_string().unwrap_or("");
    assert_eq!(salt.len(), 48);
    assert!(salt.chars().all(|c| c.is_ascii_alphanumeric()), "{salt}");

    // The state machine, with the media function's ARN substituted.
    let sm = aws
        .sfn
        .describe_state_machine()
        .state_machine_arn(&r.physical["MediaStateMachine"].id)
        .send()
        .await
        .expect("state machine");
    assert!(sm.definition().contains(&r.physical["Media"].attrs["Arn"]));

    // Skipped types still resolve; the alarm topic's condition is false.
    assert!(r.physical["IngestionRole"].attrs["Arn"].starts_with("arn:aws:iam::"));
    assert!(p.created.inactive.contains("AlarmEmailSubscription"));

    // A function's environment: the template's variables, resolved; /opt
    // is the profile layer's folder; nothing from the parent environment.
    let logs = tempfile::tempdir().expect("tempdir");
    let spec =
        function_spec_of(&p, "TextAi", Path::new("/bin"), &options(), logs.path()).expect("spec");
    assert_eq!(spec.env["CHARLA_TABLE"], table);
    assert_eq!(
        spec.env["CHARLA_CALL_QUEUE_URL"],
        r.physical["CallQueue"].id
    );
    assert!(
        spec.env["CHARLA_AGENT"].ends_with("profiles/demo/agent.toml"),
        "{}",
        spec.env["CHARLA_AGENT"]
    );
    assert!(Path::new(&spec.env["CHARLA_AGENT"]).is_file());
    assert_eq!(spec.env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], "512");
    assert_eq!(spec.env["AWS_LAMBDA_LOG_FORMAT"], "JSON");
    assert_eq!(spec.timeout.as_secs(), 60);
    assert!(!spec.env.contains_key("HOME"));
    assert!(spec.binary.ends_with("text-ai"));
}

/// The Charla metrics a dashboard body or alarm shows: the names in its
/// metric arrays (`["Charla", name, ...]`) and in its SEARCH expressions
/// (`MetricName="name"`).
fn charla_metrics(v: &Value, out: &mut std::collections::BTreeSet<String>) {
    match v {
        Value::Array(items) => {
            if let (Some("Charla"), Some(Value::String(name))) =
                (items.first().and_then(Value::as_str), items.get(1))
            {
                out.insert(name.clone());
            }
            for i in items {
                charla_metrics(i, out);
            }
        }
        Value::Object(map) => {
            if let Some(Value::String(e)) = map.get("expression") {
                if e.contains("{Charla,") {
                    for part in e.split("MetricName=\"").skip(1) {
                        if let Some(name) = part.split('"').next() {
                            out.insert(name.to_string());
                        }
                    }
                }
            }
            for v in map.values() {
                charla_metrics(v, out);
            }
        }
        _ => {}
    }
}

/// The dashboard shows every metric the code emits and none it does not;
/// every alarm on a Charla metric names one the code emits, under the
/// `Function` dimension the code gives every metric.
#[test]
fn the_dashboard_shows_exactly_the_metrics_the_code_emits() {
    let (t, pseudo, params) = template_and_parameters();
    let mut r = Resolver::new(&t, pseudo, params).expect("resolver");
    // Every resource as if created: its name for !Ref and !GetAtt.
    for id in t.resources.keys() {
        let mut physical = as_deployed::template::Physical {
            id: format!("st-{id}"),
            ..Default::default()
        };
        physical
            .attrs
            .insert("QueueName".into(), format!("st-{id}"));
        physical
            .attrs
            .insert("Arn".into(), format!("arn:aws:x:::st-{id}"));
        r.physical.insert(id.clone(), physical);
    }
    let dashboards: Vec<_> = t
        .resources
        .values()
        .filter(|res| res.kind == "AWS::CloudWatch::Dashboard")
        .collect();
    assert_eq!(dashboards.len(), 1, "one dashboard");
    let body = r
        .resolve_string(&dashboards[0].properties["DashboardBody"], "DashboardBody")
        .expect("the body resolves");
    let body: Value = serde_json::from_str(&body).expect("the body is JSON");
    assert!(
        body["widgets"].as_array().is_some_and(|w| w.len() >= 10),
        "widgets"
    );
    // CloudWatch's own shape: each widget's metrics an array of arrays,
    // expression ids unique within the widget.
    for w in body["widgets"].as_array().into_iter().flatten() {
        let title = &w["properties"]["title"];
        let metrics = w["properties"]["metrics"].as_array().expect("metrics");
        assert!(
            metrics.iter().all(Value::is_array),
            "{title}: each metric is an array"
        );
        let ids: Vec<&str> = metrics
            .iter()
            .flat_map(|m| m.as_array().into_iter().flatten())
            .filter_map(|e| e["id"].as_str())
            .collect();
        let unique: std::collections::BTreeSet<_> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len(), "{title}: expression ids repeat");
    }
    let mut shown = std::collections::BTreeSet::new();
    charla_metrics(&body, &mut shown);
    let emitted: std::collections::BTreeSet<String> = runtime::observability::Metric::ALL
        .iter()
        .map(|m| m.name().to_string())
        .collect();
    let missing: Vec<_> = emitted.difference(&shown).collect();
    let unknown: Vec<_> = shown.difference(&emitted).collect();
    assert!(
        missing.is_empty(),
        "emitted, not on the dashboard: {missing:?}"
    );
    assert!(
        unknown.is_empty(),
        "on the dashboard, never emitted: {unknown:?}"
    );

    for res in t
        .resources
        .values()
        .filter(|res| res.kind == "AWS::CloudWatch::Alarm")
    {
        let p = &res.properties;
        if p["Namespace"] != "Charla" {
            continue;
        }
        let name = p["MetricName"].as_str().expect("metric name");
        assert!(
            emitted.contains(name),
            "{}: {name} is never emitted",
            res.id
        );
        let dims = p["Dimensions"].as_array().cloned().unwrap_or_default();
        assert!(
            dims.iter().any(|d| d["Name"] == "Function"),
            "{}: the code emits {name} under Function",
            res.id
        );
    }
}
