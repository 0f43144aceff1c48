//! The scripted test model over real HTTP: an OpenAI-compatible
//! chat-completions server (wiremock) whose answers follow fixed rules, so
//! that `local eval` can be run with a model and its results known:
//!
//! - as the agent: a user message gets a `kb_search` for its words; the
//!   tool's passages get an answer of the first one's first sentences (in
//!   the user's language's section when there is one), or "no sé";
//! - as the grader (`local eval`'s rubric and goal prompts): PASS when every
//!   "quoted" phrase of the rubric or goal is in the replies or the
//!   conversation, FAIL naming the first that is not;
//! - as the simulated user: the goal's first "quoted" phrase, then `[DONE]`.

use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

pub struct ScriptedModel;

/// The phrases in double quotes.
fn quoted(s: &str) -> Vec<String> {
    s.split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .filter(|q| !q.is_empty())
        .collect()
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> &'a str {
    let from = s.find(start).map_or(0, |i| i + start.len());
    let rest = &s[from..];
    rest.find(end).map_or(rest, |i| &rest[..i])
}

fn answer(text: &str) -> Value {
    json!({
        "choices": [{"index": 0, "finish_reason": "stop",
            "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": 120, "completion_tokens": 30}
    })
}

fn grade(subject: &str, phrases: &[String]) -> Value {
    let lower = subject.to_lowercase();
    match phrases.iter().find(|p| !lower.contains(&p.to_lowercase())) {
        None => answer("PASS\nEvery required phrase is there."),
        Some(missing) => answer(&format!("FAIL\n{missing:?} is missing.")),
    }
}

/// The language a user message looks like, crudely.
fn looks(text: &str) -> &'static str {
    let t = format!(" {} ", text.to_lowercase());
    if [" the ", " you", " how ", " what ", " do ", " is "]
        .iter()
        .any(|w| t.contains(w))
    {
        "English"
    } else if [
        " você", " qual ", " quais ", " frete", " quero ", " não ", " posso ", " um ",
    ]
    .iter()
    .any(|w| t.contains(w))
    {
        "Português"
    } else {
        "es"
    }
}

impl Respond for ScriptedModel {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        let messages = body["messages"].as_array().cloned().unwrap_or_default();
        let system = messages
            .first()
            .filter(|m| m["role"] == "system")
            .and_then(|m| m["content"].as_str())
            .unwrap_or_default()
            .to_string();
        let last_user = messages
            .iter()
            .rev()
            .find(|m| m["role"] == "user")
            .and_then(|m| m["content"].as_str())
            .unwrap_or_default()
            .to_string();
        let reply = if system.starts_with("You grade") {
            if last_user.contains("Rubric:") {
                let replies = between(&last_user, "Bot's replies:\n", "\n\nRubric:");
                grade(replies, &quoted(between(&last_user, "Rubric:\n", "\u{0}")))
            } else {
                let conversation = between(&last_user, "Conversation:\n", "\n\nCustomer's goal:");
                grade(
                    conversation,
                    &quoted(between(&last_user, "Customer's goal:\n", "\u{0}")),
                )
            }
        } else if system.starts_with("You play a customer") {
            let goal = between(&system, "Your goal: ", "\n");
            let said = messages.iter().filter(|m| m["role"] == "assistant").count();
            match (said, quoted(goal).first()) {
                (0, Some(first)) => answer(first),
                _ => answer("[DONE]"),
            }
        } else if messages.last().is_some_and(|m| m["role"] == "tool") {
            let result: Value = messages
                .last()
                .and_then(|m| m["content"].as_str())
                .and_then(|c| serde_json::from_str(c).ok())
                .unwrap_or(Value::Null);
            let passages = result["passages"].as_array().cloned().unwrap_or_default();
            let lang = looks(&last_user);
            let source = |p: &Value| p["source"].as_str().unwrap_or_default().to_string();
            // The passage in the user's language sharing the most of their
            // words (an extractive answerer, not a clever one).
            let words: Vec<String> = last_user
                .to_lowercase()
                .split(|c: char| !c.is_alphabetic())
                .filter(|w| w.chars().count() >= 4)
                .map(str::to_string)
                .collect();
            let overlap = |p: &Value| {
                let text = p["text"].as_str().unwrap_or_default().to_lowercase();
                words.iter().filter(|w| text.contains(w.as_str())).count()
            };
            let mut fitting: Vec<&Value> = passages
                .iter()
                .filter(|p| match lang {
                    "es" => !source(p).contains("(English)") && !source(p).contains("(Português)"),
                    other => source(p).contains(other),
                })
                .collect();
            // Best first; the search's order among equals.
            fitting.sort_by_key(|p| std::cmp::Reverse(overlap(p)));
            let pick = fitting.first().copied().or(passages.first());
            match pick.and_then(|p| p["text"].as_str()) {
                Some(text) => {
                    let body: Vec<&str> = text
                        .lines()
                        .skip(1)
                        .filter(|l| !l.trim().is_empty())
                        .collect();
                    let joined = body.join(" ");
                    let sentences: Vec<&str> = joined.split_inclusive(". ").collect();
                    // The sentences with the user's words, else the first two.
                    let with_words: Vec<&str> = sentences
                        .iter()
                        .copied()
                        .filter(|s| {
                            let s = s.to_lowercase();
                            words.iter().any(|w| s.contains(w.as_str()))
                        })
                        .collect();
                    let chosen = if with_words.is_empty() {
                        sentences.into_iter().take(2).collect::<Vec<_>>()
                    } else {
                        with_words
                    };
                    answer(chosen.concat().trim())
                }
                None => answer("No sé eso, perdón. ¿Querés hablar con una persona?"),
            }
        } else {
            let n = messages.len();
            json!({
                "choices": [{"index": 0, "finish_reason": "tool_calls",
                    "message": {"role": "assistant", "content": null, "tool_calls": [{
                        "id": format!("call_{n}"), "type": "function",
                        "function": {"name": "kb_search",
                            "arguments": json!({"query": last_user}).to_string()}}]}}],
                "usage": {"prompt_tokens": 100, "completion_tokens": 12}
            })
        };
        ResponseTemplate::new(200).set_body_json(reply)
    }
}

/// The scripted model at `{uri}/v1`.
pub async fn start() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ScriptedModel)
        .mount(&server)
        .await;
    server
}
