//! `local eval` as a business runs it: the binary on the shipped suites,
//! with the local responder and with the scripted test model over HTTP,
//! and on suites that must fail, with what it says.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;
#[path = "common/scripted_model.rs"]
mod scripted_model;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `local eval ARGS`, with `env`, off the async runtime (the scripted
/// model serves on it meanwhile).
async fn eval(args: Vec<String>, env: Vec<(&'static str, String)>) -> Output {
    tokio::task::spawn_blocking(move || {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_local"));
        cmd.arg("eval").args(&args).env("RUST_LOG", "error");
        for var in [
            "CHARLA_MODEL",
            "CHARLA_MODEL_URL",
            "CHARLA_AGENT",
            "CHARLA_CALLING_HOURS",
        ] {
            cmd.env_remove(var);
        }
        cmd.envs(env);
        cmd.output().expect("run local eval")
    })
    .await
    .expect("join")
}

fn text(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn junit_counts(xml: &str) -> (usize, usize) {
    let tests = xml.matches("<testcase ").count();
    let failures = xml.matches("<failure ").count();
    (tests, failures)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_suites_pass_with_the_local_responder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let junit = dir.path().join("junit.xml");
    let out = eval(vec!["--junit".into(), junit.display().to_string()], vec![]).await;
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    let xml = std::fs::read_to_string(&junit).expect("junit written");
    let (tests, failures) = junit_counts(&xml);
    assert!(tests >= 40, "at least 40 turns: {tests}");
    assert_eq!(failures, 0, "{xml}");
    for suite in [
        "en español",
        "in English",
        "em português",
        "hostiles",
        "Issue 16",
    ] {
        assert!(said.contains(suite), "{suite} ran: {said}");
    }
    assert!(said.contains("playbook answered"), "{said}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_business_profile_other_than_the_demo_passes_its_suites() {
    let profile = repo().join("profiles/vistamar/agent.toml");
    let out = eval(
        vec!["--profile".into(), profile.display().to_string()],
        vec![],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("Club Vista Mar"), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_suites_pass_with_the_scripted_model_over_http() {
    let model = scripted_model::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let junit = dir.path().join("junit.xml");
    let out = eval(
        vec!["--junit".into(), junit.display().to_string()],
        vec![
            ("CHARLA_MODEL", "openai:scripted".into()),
            ("CHARLA_MODEL_URL", format!("{}/v1", model.uri())),
        ],
    )
    .await;
    let said = text(&out);
    // The figures, for `--nocapture`.
    for line in said
        .lines()
        .filter(|l| l.contains("passed") || l.contains("playbook answered"))
    {
        println!("{line}");
    }
    assert!(out.status.success(), "{said}");
    assert!(said.contains("the model scripted"), "{said}");
    let asked = model.received_requests().await.unwrap_or_default();
    let prompts: Vec<String> = asked
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect();
    assert!(
        prompts.iter().any(|p| p.contains("You grade")),
        "a rubric was graded"
    );
    assert!(
        prompts.iter().any(|p| p.contains("You play a customer")),
        "a user was simulated"
    );
    assert!(
        prompts.iter().any(|p| p.contains("kb_search")),
        "the agent used the model"
    );
    let xml = std::fs::read_to_string(&junit).expect("junit written");
    assert_eq!(junit_counts(&xml).1, 0, "{xml}");
    // Model calls and tokens are counted per conversation.
    assert!(
        said.lines()
            .any(|l| l.contains("model calls") && !l.contains(" 0.0 model calls")),
        "{said}"
    );
}

fn suite(dir: &Path, name: &str, yaml: &str) -> String {
    let f = dir.join(name);
    std::fs::write(&f, yaml).expect("write suite");
    f.display().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_turn_exits_non_zero_and_says_what_differed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = suite(
        dir.path(),
        "wrong.yaml",
        "suite: wrong on purpose\ncases:\n  - name: horarios\n    turns:\n      - say: hola\n        expect:\n          language: en\n          contains: \"domingo abierto\"\n",
    );
    let junit = dir.path().join("j.xml");
    let out = eval(
        vec![f, "--junit".into(), junit.display().to_string()],
        vec![],
    )
    .await;
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("FAIL"), "{said}");
    assert!(
        said.contains("language: expected en, a reply is in es"),
        "{said}"
    );
    assert!(
        said.contains("contains \"domingo abierto\": not in"),
        "{said}"
    );
    assert!(said.contains("0 passed, 1 failed"), "{said}");
    let xml = std::fs::read_to_string(&junit).expect("junit");
    assert_eq!(junit_counts(&xml), (1, 1), "{xml}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rubric_the_model_fails_fails_the_turn() {
    let model = scripted_model::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let f = suite(
        dir.path(),
        "rubric.yaml",
        "cases:\n  - name: precio inventado\n    turns:\n      - say: \"¿Cuánto cuesta el envío?\"\n        expect:\n          rubric: 'says the shipping costs \"$99\"'\n",
    );
    let out = eval(
        vec![f],
        vec![
            ("CHARLA_MODEL", "openai:scripted".into()),
            ("CHARLA_MODEL_URL", format!("{}/v1", model.uri())),
        ],
    )
    .await;
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("rubric: \"$99\" is missing"), "{said}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_suites_are_refused_naming_the_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    let typo = suite(
        dir.path(),
        "typo.yaml",
        "cases:\n  - name: a\n    turns:\n      - say: hola\n        expect:\n          langauge: es\n",
    );
    let out = eval(vec![typo.clone()], vec![]).await;
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("typo.yaml") && said.contains("langauge") && said.contains("line 6"),
        "{said}"
    );

    let broken = suite(dir.path(), "broken.yaml", "cases: [\n  - name: a\n");
    let out = eval(vec![broken], vec![]).await;
    assert!(text(&out).contains("broken.yaml"), "{}", text(&out));
    assert_eq!(out.status.code(), Some(1));

    let missing = dir.path().join("nowhere.yaml").display().to_string();
    let out = eval(vec![missing], vec![]).await;
    assert!(
        text(&out).contains("nowhere.yaml: no such suite file or folder"),
        "{}",
        text(&out)
    );

    let no_file = suite(
        dir.path(),
        "photo.yaml",
        "cases:\n  - name: foto\n    turns:\n      - photo: missing.png\n",
    );
    let out = eval(vec![no_file], vec![]).await;
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("missing.png"), "{said}");
}
