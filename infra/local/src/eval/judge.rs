//! The model as a grader and as a user: a rubric graded PASS or FAIL on a
//! turn's replies, and a simulated user who holds a conversation towards a
//! goal. The prompts are fixed here so that a scripted test model (and a
//! reader) knows what it is asked.

use domain::chat::{ChatMessage, ModelRequest};
use domain::ports::ChatModel;
use domain::Result;

/// The start of the grader's system prompt.
pub const GRADER: &str = "You grade the replies of a customer-service WhatsApp bot.";
/// The start of the simulated user's system prompt.
pub const PLAYER: &str = "You play a customer writing to a business on WhatsApp.";
/// What the simulated user writes when they are done.
pub const DONE: &str = "[DONE]";

/// A grade: passed, and the model's reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grade {
    pub pass: bool,
    pub why: String,
}

fn request(system: String, messages: Vec<ChatMessage>) -> ModelRequest {
    ModelRequest {
        system,
        messages,
        tools: Vec::new(),
        max_tokens: 300,
        temperature: Some(0.0),
        guardrail: None,
    }
}

/// The answer's first word decides: PASS or FAIL; anything else fails and
/// says what came.
pub fn parse_grade(answer: &str) -> Grade {
    let answer = answer.trim();
    let first = answer
        .split(|c: char| !c.is_ascii_alphabetic())
        .find(|w| !w.is_empty())
        .unwrap_or_default()
        .to_uppercase();
    let why = answer
        .split_once(['\n', ':', '-'])
        .map(|(_, r)| r.trim().to_string())
        .unwrap_or_default();
    match first.as_str() {
        "PASS" => Grade { pass: true, why },
        "FAIL" => Grade { pass: false, why },
        _ => Grade {
            pass: false,
            why: format!("the grader did not answer PASS or FAIL: {answer:?}"),
        },
    }
}

/// Grades `replies` to the user's `said` against `rubric`.
pub async fn grade_turn(
    model: &dyn ChatModel,
    said: &str,
    replies: &str,
    rubric: &str,
) -> Result<(Grade, domain::Usage)> {
    let system = format!(
        "{GRADER} Read the customer's message, the bot's replies and the rubric. \
         Answer PASS or FAIL on the first line, then one short sentence why."
    );
    let user =
        format!("Customer's message:\n{said}\n\nBot's replies:\n{replies}\n\nRubric:\n{rubric}");
    let reply = model
        .converse(&request(system, vec![ChatMessage::user(user)]))
        .await?;
    Ok((parse_grade(&reply.message.text()), reply.usage))
}

/// Grades a whole conversation on whether the user's goal was met.
pub async fn grade_goal(
    model: &dyn ChatModel,
    transcript: &str,
    goal: &str,
) -> Result<(Grade, domain::Usage)> {
    let system = format!(
        "{GRADER} Read the conversation and the customer's goal. Answer PASS if the \
         bot met the goal, FAIL if not, on the first line, then one short sentence why."
    );
    let user = format!("Conversation:\n{transcript}\n\nCustomer's goal:\n{goal}");
    let reply = model
        .converse(&request(system, vec![ChatMessage::user(user)]))
        .await?;
    Ok((parse_grade(&reply.message.text()), reply.usage))
}

/// The simulated user's next message, or `None` when they are done.
/// `turns` is the conversation so far as (user, bot) pairs.
pub async fn next_user_message(
    model: &dyn ChatModel,
    goal: &str,
    persona: Option<&str>,
    turns: &[(String, String)],
) -> Result<(Option<String>, domain::Usage)> {
    let system = format!(
        "{PLAYER} Your goal: {goal}\nWho you are: {}\nWrite only your next message, \
         short, as a person types on a phone. When your goal is met or you give up, \
         write only {DONE}.",
        persona.unwrap_or("an ordinary customer")
    );
    // The player's own messages are the assistant's; the bot's are the user's.
    let mut messages = vec![ChatMessage::user(
        "(the chat opens; write your first message)",
    )];
    for (said, answered) in turns {
        messages.push(ChatMessage::assistant(said.clone()));
        messages.push(ChatMessage::user(answered.clone()));
    }
    let reply = model.converse(&request(system, messages)).await?;
    let text = reply.message.text().trim().to_string();
    let next = (!text.is_empty() && !text.contains(DONE)).then_some(text);
    Ok((next, reply.usage))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grades_read_the_first_word() {
        assert!(parse_grade("PASS\nit gives the price").pass);
        assert_eq!(parse_grade("FAIL: invents a price").why, "invents a price");
        assert!(!parse_grade("**FAIL** no").pass);
        let g = parse_grade("I think it is fine");
        assert!(!g.pass && g.why.contains("did not answer"), "{g:?}");
    }
}
