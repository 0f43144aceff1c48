//! `local eval`: scripted conversations (YAML suites) run against the whole
//! pipeline in this process, each case on a fresh data dir, with the local
//! responder or the model in `CHARLA_MODEL`; a table, JUnit XML and the
//! exit code say how it went.

mod check;
mod harness;
mod judge;
mod report;
mod suite;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use domain::ports::ChatModel;
use domain::UserId;
use runtime::config::{Vars, WhatsAppSecrets};

pub use suite::Suite;

use harness::{CaseSetup, Pipeline};
use report::{CaseFigures, TurnResult};
use suite::{Action, Case, Only};

#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// Suite files or folders of them (`*.yaml`, `*.yml`); default: the
    /// profile folder's `evals/`.
    pub suites: Vec<PathBuf>,
    /// The agent profile (default `CHARLA_AGENT`, else the demo's).
    #[arg(long)]
    pub profile: Option<PathBuf>,
    /// Also write the results as JUnit XML here (for CI).
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Only the cases whose name contains this.
    #[arg(long)]
    pub case: Option<String>,
}

pub async fn run(args: EvalArgs) -> Result<(), Box<dyn std::error::Error>> {
    quiet_logs();
    let vars = Vars::from_process();
    let profile = args
        .profile
        .clone()
        .or_else(|| vars.optional("CHARLA_AGENT").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(crate::config::DEMO_PROFILE));
    let profile = std::fs::canonicalize(&profile)
        .map_err(|e| format!("--profile {}: {e}", profile.display()))?;
    let loaded = agent::Profile::load(&profile)?;
    let files = suite_files(&args.suites, &profile)?;
    let suites = files
        .iter()
        .map(|f| Suite::load(f))
        .collect::<Result<Vec<_>, _>>()?;
    let env = agent_setup::AgentEnv::from_vars(&vars)?;
    let secrets = WhatsAppSecrets::new("eval".into(), "eval".into(), None)?
        .with_agent_keys(None, vars.optional("CHARLA_MODEL_API_KEY"));
    let model: Option<Arc<dyn ChatModel>> = agent_setup::build_model(&env, &secrets, None).await?;
    let with_model = model.is_some();
    println!(
        "Evaluating {} with {} ({} suite{})",
        profile.display(),
        match &env.model {
            agent_setup::ModelChoice::Local => "the local responder (no model)".to_string(),
            agent_setup::ModelChoice::Bedrock(m) => format!("Bedrock {m}"),
            agent_setup::ModelChoice::OpenAi(m) => format!("the model {m}"),
        },
        suites.len(),
        if suites.len() == 1 { "" } else { "s" }
    );

    let mut all = Vec::new();
    for (si, suite) in suites.iter().enumerate() {
        let name = suite.suite.clone().unwrap_or_default();
        let mut results = Vec::new();
        let mut figures = Vec::new();
        for (ci, case) in suite.cases.iter().enumerate() {
            if args
                .case
                .as_ref()
                .is_some_and(|c| !case.name.contains(c.as_str()))
            {
                continue;
            }
            match (case.only, with_model) {
                (Some(Only::Local), true) | (Some(Only::Model), false) => continue,
                _ => {}
            }
            let (r, f) = run_case(
                suite,
                case,
                si * 100 + ci,
                &profile,
                &loaded,
                model.as_deref(),
            )
            .await;
            results.extend(r);
            figures.push(f);
        }
        if results.is_empty() {
            println!(
                "\n{name}: skipped ({})",
                if with_model {
                    "its cases run without a model only"
                } else {
                    "its cases need a model: set CHARLA_MODEL"
                }
            );
            continue;
        }
        report::print_suite(&name, &results, &figures);
        all.push((name, results, figures));
    }
    if let Some(path) = &args.junit {
        std::fs::write(path, report::junit(&all))
            .map_err(|e| format!("--junit {}: {e}", path.display()))?;
    }
    let (turns, failed) = all
        .iter()
        .flat_map(|s| &s.1)
        .fold((0, 0), |(t, f), r| (t + 1, f + usize::from(!r.pass)));
    let every: Vec<report::CaseFigures> = all.iter().flat_map(|s| s.2.clone()).collect();
    println!("\nAll suites: {}", report::summary(&every));
    println!("{} passed, {} failed", turns - failed, failed);
    if failed > 0 {
        return Err(format!("{failed} of {turns} turns failed").into());
    }
    if turns == 0 {
        return Err("no turn ran (every case was filtered out or skipped)".into());
    }
    Ok(())
}

/// The suites named, folders expanded; none named: `evals/` beside the profile.
fn suite_files(
    named: &[PathBuf],
    profile: &Path,
) -> Result<Vec<PathBuf>, Box<dyn std::error::Error>> {
    let named = if named.is_empty() {
        vec![profile.parent().unwrap_or(Path::new(".")).join("evals")]
    } else {
        named.to_vec()
    };
    let mut files = Vec::new();
    for p in named {
        if p.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(&p)
                .map_err(|e| format!("{}: {e}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "yaml" || x == "yml"))
                .collect();
            found.sort();
            if found.is_empty() {
                return Err(format!("{}: no .yaml suites in this folder", p.display()).into());
            }
            files.extend(found);
        } else if p.is_file() {
            files.push(p);
        } else {
            return Err(format!("{}: no such suite file or folder", p.display()).into());
        }
    }
    Ok(files)
}

/// A WhatsApp number for a case's user: the one given, or one made up in
/// the user's country, different for each case.
fn user_number(case: &Case, n: usize) -> Result<UserId, String> {
    let number = match &case.user.number {
        // As people write it: "+54 9 11 5555-1234".
        Some(n) => n.chars().filter(char::is_ascii_digit).collect(),
        None => {
            // A mobile number's prefix and length per country.
            let country = case.user.country.as_deref().map(str::to_uppercase);
            let (prefix, len) = match country.as_deref() {
                None | Some("AR") => ("5491150", 13),
                Some("US") => ("1202555", 11),
                Some("BR") => ("551198", 13),
                Some("MX") => ("5215512", 13),
                Some("ES") => ("346123", 11),
                Some("PT") => ("3519123", 12),
                Some("GB" | "UK") => ("447700", 12),
                Some(other) => {
                    return Err(format!(
                        "user.country {other:?}: one of AR, US, BR, MX, ES, PT, GB, \
                         or give the user's number"
                    ))
                }
            };
            let width = len - prefix.len();
            // Different for every case of the run.
            format!("{prefix}{:0width$}", n % 10usize.pow(width as u32))
        }
    };
    UserId::parse(&number).map_err(|e| format!("user.number {number:?}: {e}"))
}

async fn run_case(
    suite: &Suite,
    case: &Case,
    n: usize,
    profile: &Path,
    loaded: &agent::Profile,
    model: Option<&dyn ChatModel>,
) -> (Vec<TurnResult>, CaseFigures) {
    let mut results = Vec::new();
    let mut figures = CaseFigures::default();
    let fail_case = |why: String| TurnResult {
        case: case.name.clone(),
        turn: 0,
        did: "(start)".into(),
        pass: false,
        diffs: vec![why],
        ..TurnResult::default()
    };
    let user = match user_number(case, n) {
        Ok(u) => u,
        Err(e) => return (vec![fail_case(e)], figures),
    };
    let start_ms = match case
        .at
        .as_deref()
        .map(|a| suite::parse_at(a, loaded.hours.time_zone.clone()))
    {
        Some(Ok(t)) => Some(t.as_millisecond()),
        Some(Err(e)) => return (vec![fail_case(e)], figures),
        None => None,
    };
    let setup = CaseSetup {
        profile,
        env: &case.env,
        user,
        name: case.user.name.clone().unwrap_or_else(|| "Eval".into()),
        start_ms,
    };
    let mut pipeline = match Pipeline::start(setup).await {
        Ok(p) => p,
        Err(e) => return (vec![fail_case(format!("could not start: {e}"))], figures),
    };
    let languages = loaded.agent.languages.clone();
    for (i, turn) in case.turns.iter().enumerate() {
        let action = turn.action(&suite.dir);
        let did = turn_label(turn);
        let mut result = TurnResult {
            case: case.name.clone(),
            turn: i + 1,
            did,
            ..TurnResult::default()
        };
        let message = match action.clone().and_then(|a| pipeline.message(&a)) {
            Ok(m) => m,
            Err(e) => {
                result.diffs.push(e);
                results.push(result);
                continue;
            }
        };
        let waited = matches!(action, Ok(Action::Wait(_)));
        let seen = match pipeline
            .turn(message, !turn.expect.transcript.0.is_empty())
            .await
        {
            Ok(s) => s,
            Err(e) => {
                result.diffs.push(e.to_string());
                results.push(result);
                continue;
            }
        };
        result.diffs = check::check(&turn.expect, &seen, &languages);
        let replies: Vec<String> = seen.replies.iter().map(check::reply_text).collect();
        if let Some(rubric) = &turn.expect.rubric {
            match model {
                Some(m) => {
                    match judge::grade_turn(m, &result.did, &replies.join("\n"), rubric).await {
                        Ok((g, usage)) => {
                            figures.judge_tokens += usage.input_tokens + usage.output_tokens;
                            if !g.pass {
                                result.diffs.push(format!("rubric: {}", g.why));
                            }
                        }
                        Err(e) => result.diffs.push(format!("rubric: the grader failed: {e}")),
                    }
                }
                None => result.notes.push("rubric not graded (no model)".into()),
            }
        }
        if !waited {
            figures.add(&seen);
            result.elapsed = Some(seen.elapsed);
        }
        result.via = seen.reports.iter().map(|r| r.via()).collect();
        result.replies = replies;
        result.pass = result.diffs.is_empty();
        results.push(result);
    }
    if let Some(sim) = &case.simulated_user {
        results.push(simulate(&mut pipeline, case, sim, model, &mut figures).await);
    }
    pipeline.stop().await;
    (results, figures)
}

/// The model plays the user until they are done, then grades the goal.
async fn simulate(
    pipeline: &mut Pipeline,
    case: &Case,
    sim: &suite::SimulatedUser,
    model: Option<&dyn ChatModel>,
    figures: &mut CaseFigures,
) -> TurnResult {
    let mut result = TurnResult {
        case: case.name.clone(),
        turn: case.turns.len() + 1,
        did: format!("simulated user: {}", check::shorten(&sim.goal, 60)),
        ..TurnResult::default()
    };
    let Some(model) = model else {
        result
            .notes
            .push("simulated user skipped (no model)".into());
        result.pass = true;
        return result;
    };
    let mut turns: Vec<(String, String)> = Vec::new();
    for _ in 0..sim.max_turns.unwrap_or(6) {
        let next = judge::next_user_message(model, &sim.goal, sim.persona.as_deref(), &turns).await;
        let said = match next {
            Ok((Some(s), usage)) => {
                figures.judge_tokens += usage.input_tokens + usage.output_tokens;
                s
            }
            Ok((None, _)) => break,
            Err(e) => {
                result.diffs.push(format!("the simulated user failed: {e}"));
                return result;
            }
        };
        let message = pipeline.message(&Action::Say(said.clone())).ok().flatten();
        match pipeline.turn(message, false).await {
            Ok(seen) => {
                figures.add(&seen);
                let answer: Vec<String> = seen.replies.iter().map(check::reply_text).collect();
                turns.push((said, answer.join("\n")));
            }
            Err(e) => {
                result.diffs.push(e.to_string());
                return result;
            }
        }
    }
    let transcript: String = turns
        .iter()
        .map(|(u, b)| format!("Customer: {u}\nBot: {b}\n"))
        .collect();
    result.replies = vec![transcript.clone()];
    match judge::grade_goal(model, &transcript, &sim.goal).await {
        Ok((g, usage)) => {
            figures.judge_tokens += usage.input_tokens + usage.output_tokens;
            if !g.pass {
                result.diffs.push(format!("goal not met: {}", g.why));
            }
        }
        Err(e) => result.diffs.push(format!("the grader failed: {e}")),
    }
    if turns.is_empty() {
        result.diffs.push("the simulated user said nothing".into());
    }
    result.pass = result.diffs.is_empty();
    result
}

fn turn_label(t: &suite::Turn) -> String {
    let s =
        |p: &str, v: &Option<String>| v.as_ref().map(|v| format!("{p}{}", check::shorten(v, 48)));
    s("", &t.say)
        .or_else(|| s("[tap] ", &t.tap))
        .or_else(|| s("[choose] ", &t.choose))
        .or_else(|| s("[photo] ", &t.photo))
        .or_else(|| s("[document] ", &t.document))
        .or_else(|| s("[voice] ", &t.voice))
        .or_else(|| s("[call permission] ", &t.call_permission))
        .or_else(|| s("[wait] ", &t.wait))
        .or_else(|| t.duplicate.map(|_| "[the same message again]".to_string()))
        .or_else(|| s("[status] ", &t.status))
        .unwrap_or_default()
}

/// The pipeline's own logs would bury the table: warnings only, unless
/// RUST_LOG says otherwise.
fn quiet_logs() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("error"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .compact()
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(user: &str) -> Case {
        let text =
            format!("cases:\n  - name: a\n    user: {user}\n    turns:\n      - say: hola\n");
        Suite::parse(&text).expect("suite").cases.remove(0)
    }

    #[test]
    fn users_get_a_number_of_their_country_different_per_case() {
        let a = user_number(&case("{country: BR}"), 7).expect("number");
        let b = user_number(&case("{country: BR}"), 8).expect("number");
        assert!(
            a.as_str().starts_with("55") && a.as_str().len() == 13,
            "{a:?}"
        );
        assert_ne!(a, b);
        let given = user_number(&case("{number: \"+54 9 11 5555-1234\"}"), 1).expect("given");
        assert_eq!(given.as_str(), "5491155551234");
        let e = user_number(&case("{country: XX}"), 1).expect_err("unknown country");
        assert!(e.contains("XX"), "{e}");
    }
}
