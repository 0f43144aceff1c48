//! The decision: a turn's signals weighed against the policy and what the
//! conversation showed before (the streaks), with every reason given.

use serde::{Deserialize, Serialize};

use super::{EscalationPolicy, KeywordMatch, Reason, Sentiment};

/// What one turn showed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signals {
    /// The turn's id (its first wamid): a redelivered turn is decided once.
    pub turn_id: String,
    /// `None` when it could not be told (the analyzer failed): streaks stay
    /// as they are, neither grown nor reset.
    pub sentiment: Option<Sentiment>,
    /// The phrase that asked for a person, if the user asked for one.
    pub person_request: Option<String>,
    /// The bot answered with its fallback (did not understand).
    pub fallback: bool,
    pub keywords: Vec<KeywordMatch>,
    /// The intent the playbook or model recognised, if any.
    pub intent: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub escalate: bool,
    /// Empty exactly when `escalate` is false.
    pub reasons: Vec<Reason>,
}

/// What the policy remembers of a conversation between turns. Kept with the
/// conversation (serde), starts at [`Default`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EscalationState {
    /// Negative turns in a row, up to the last one decided.
    pub negative_streak: u32,
    /// Fallback answers in a row.
    pub fallback_streak: u32,
    /// How many times this conversation was escalated.
    pub escalations: u32,
    /// The last turn decided and its decision: a redelivered turn gets the
    /// same answer and leaves the streaks alone.
    pub last_turn_id: Option<String>,
    pub last_decision: Option<Decision>,
}

/// Weighs a turn's signals. Returns the decision and the state to keep.
///
/// Any one of these escalates: a request for a person, a keyword, a
/// high-value intent, one very negative turn, `negative_streak` negative
/// turns in a row, `fallback_streak` fallbacks in a row. An escalation starts
/// the streaks over, so that after a hand-back to the bot one more bad turn
/// does not send the conversation straight back.
pub fn decide(
    policy: &EscalationPolicy,
    state: &EscalationState,
    signals: &Signals,
) -> (Decision, EscalationState) {
    if state.last_turn_id.as_deref() == Some(signals.turn_id.as_str()) {
        let decision = state.last_decision.clone().unwrap_or_default();
        return (decision, state.clone());
    }
    let mut next = state.clone();
    let mut reasons = Vec::new();

    if let Some(phrase) = &signals.person_request {
        reasons.push(Reason::AskedForPerson {
            phrase: phrase.clone(),
        });
    }
    for k in &signals.keywords {
        reasons.push(Reason::Keyword {
            category: k.category,
            word: k.word.clone(),
            language: k.language.clone(),
        });
    }
    if let Some(intent) = &signals.intent {
        if policy
            .high_value_intents
            .iter()
            .any(|i| i.eq_ignore_ascii_case(intent))
        {
            reasons.push(Reason::HighValueIntent {
                intent: intent.clone(),
            });
        }
    }

    if let Some(s) = &signals.sentiment {
        // NaN (a broken analyzer) is not negative.
        let negative = if s.negative.is_finite() {
            s.negative
        } else {
            0.0
        };
        if negative >= policy.negative_threshold {
            next.negative_streak = next.negative_streak.saturating_add(1);
        } else {
            next.negative_streak = 0;
        }
        if policy
            .very_negative_threshold
            .is_some_and(|t| negative >= t)
        {
            reasons.push(Reason::VeryNegative { negative });
        } else if next.negative_streak >= policy.negative_streak {
            reasons.push(Reason::NegativeSentiment {
                negative,
                streak: next.negative_streak,
            });
        }
    }

    if signals.fallback {
        next.fallback_streak = next.fallback_streak.saturating_add(1);
        if next.fallback_streak >= policy.fallback_streak {
            reasons.push(Reason::RepeatedFallbacks {
                streak: next.fallback_streak,
            });
        }
    } else {
        next.fallback_streak = 0;
    }

    let escalate = !reasons.is_empty();
    if escalate {
        next.negative_streak = 0;
        next.fallback_streak = 0;
        next.escalations = next.escalations.saturating_add(1);
    }
    let decision = Decision { escalate, reasons };
    next.last_turn_id = Some(signals.turn_id.clone());
    next.last_decision = Some(decision.clone());
    (decision, next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::escalation::SentimentLabel;
    use proptest::prelude::*;

    fn sentiment(negative: f32) -> Option<Sentiment> {
        Some(Sentiment {
            label: if negative >= 0.5 {
                SentimentLabel::Negative
            } else {
                SentimentLabel::Neutral
            },
            positive: 0.0,
            negative,
            neutral: 1.0 - negative,
            mixed: 0.0,
        })
    }

    fn quiet(turn: &str) -> Signals {
        Signals {
            turn_id: turn.to_string(),
            sentiment: sentiment(0.1),
            person_request: None,
            fallback: false,
            keywords: Vec::new(),
            intent: None,
        }
    }

    /// A turn in a table: what it showed, and what must come of it.
    struct Turn {
        negative: Option<f32>,
        fallback: bool,
        text: &'static str,
        intent: Option<&'static str>,
        escalate: bool,
        codes: &'static [&'static str],
    }

    const fn turn(negative: Option<f32>, fallback: bool, escalate: bool) -> Turn {
        Turn {
            negative,
            fallback,
            text: "",
            intent: None,
            escalate,
            codes: &[],
        }
    }

    fn run(policy: &EscalationPolicy, name: &str, turns: &[Turn]) -> EscalationState {
        let mut state = EscalationState::default();
        for (i, t) in turns.iter().enumerate() {
            let signals = policy.signals(
                &format!("{name}-{i}"),
                t.text,
                t.negative.and_then(sentiment),
                t.fallback,
                t.intent,
            );
            let (decision, next) = decide(policy, &state, &signals);
            assert_eq!(
                decision.escalate, t.escalate,
                "{name}, turn {i}: {decision:?}"
            );
            assert_eq!(decision.escalate, !decision.reasons.is_empty(), "{name}");
            if !t.codes.is_empty() {
                let codes: Vec<&str> = decision.reasons.iter().map(Reason::code).collect();
                assert_eq!(codes, t.codes, "{name}, turn {i}");
            }
            state = next;
        }
        state
    }

    fn policy() -> EscalationPolicy {
        EscalationPolicy {
            high_value_intents: vec!["enterprise_quote".into()],
            ..EscalationPolicy::default()
        }
    }
    #[test]
    fn decisions_follow_the_table() {
        let p = policy();
        // (name, turns); each turn: negative score, fallback?, escalate?
        let table: Vec<(&str, Vec<Turn>)> = vec![
            (
                "calm conversation",
                vec![turn(Some(0.1), false, false), turn(Some(0.2), false, false)],
            ),
            (
                "one negative turn is venting",
                vec![turn(Some(0.8), false, false), turn(Some(0.1), false, false)],
            ),
            (
                "two negative turns in a row escalate",
                vec![
                    turn(Some(0.8), false, false),
                    Turn {
                        codes: &["negative_sentiment"],
                        ..turn(Some(0.75), false, true)
                    },
                ],
            ),
            (
                "a calm turn resets the negative streak",
                vec![
                    turn(Some(0.8), false, false),
                    turn(Some(0.3), false, false),
                    turn(Some(0.8), false, false),
                ],
            ),
            (
                "below the threshold is not negative",
                vec![
                    turn(Some(0.69), false, false),
                    turn(Some(0.69), false, false),
                ],
            ),
            (
                "exactly the threshold is negative",
                vec![turn(Some(0.7), false, false), turn(Some(0.7), false, true)],
            ),
            (
                "a very negative turn escalates alone",
                vec![Turn {
                    codes: &["very_negative"],
                    ..turn(Some(0.97), false, true)
                }],
            ),
            (
                "no sentiment keeps the streak",
                vec![
                    turn(Some(0.8), false, false),
                    turn(None, false, false),
                    turn(Some(0.8), false, true),
                ],
            ),
            (
                "two fallbacks in a row escalate",
                vec![
                    turn(Some(0.1), true, false),
                    Turn {
                        codes: &["repeated_fallbacks"],
                        ..turn(Some(0.1), true, true)
                    },
                ],
            ),
            (
                "an understood turn resets the fallback streak",
                vec![
                    turn(Some(0.1), true, false),
                    turn(Some(0.1), false, false),
                    turn(Some(0.1), true, false),
                ],
            ),
            (
                "an escalation starts the streaks over",
                vec![
                    turn(Some(0.8), true, false),
                    Turn {
                        codes: &["negative_sentiment", "repeated_fallbacks"],
                        ..turn(Some(0.8), true, true)
                    },
                    turn(Some(0.8), true, false),
                    turn(Some(0.8), true, true),
                ],
            ),
            (
                "asking for a person escalates at once, in Spanish",
                vec![Turn {
                    text: "Quiero HABLAR con una persona, por favor",
                    codes: &["asked_for_person"],
                    ..turn(Some(0.1), false, true)
                }],
            ),
            (
                "asking for a person in Portuguese",
                vec![Turn {
                    text: "posso falar com um atendente?",
                    ..turn(Some(0.1), false, true)
                }],
            ),
            (
                "asking for a person in English",
                vec![Turn {
                    text: "Can I speak to a human?",
                    ..turn(Some(0.1), false, true)
                }],
            ),
            (
                "a complaint keyword, accents folded",
                vec![Turn {
                    text: "Quero fazer uma RECLAMAÇÃO",
                    codes: &["keyword"],
                    ..turn(Some(0.1), false, true)
                }],
            ),
            (
                "a legal keyword",
                vec![Turn {
                    text: "I will call my lawyer",
                    ..turn(Some(0.1), false, true)
                }],
            ),
            (
                "a cancellation phrase",
                vec![Turn {
                    text: "quiero darme de baja ya",
                    ..turn(Some(0.1), false, true)
                }],
            ),
            (
                "words inside other words do not match",
                vec![Turn {
                    text: "the suede jacket, is it sueded?",
                    ..turn(Some(0.1), false, false)
                }],
            ),
            (
                "a high-value intent escalates",
                vec![Turn {
                    intent: Some("enterprise_quote"),
                    codes: &["high_value_intent"],
                    ..turn(Some(0.1), false, true)
                }],
            ),
            (
                "another intent does not",
                vec![Turn {
                    intent: Some("prices"),
                    ..turn(Some(0.1), false, false)
                }],
            ),
            (
                "everything at once: every reason, in order",
                vec![
                    turn(Some(0.8), true, false),
                    Turn {
                        text: "hablar con una persona, voy a poner una queja",
                        intent: Some("enterprise_quote"),
                        codes: &[
                            "asked_for_person",
                            "keyword",
                            "high_value_intent",
                            "negative_sentiment",
                            "repeated_fallbacks",
                        ],
                        ..turn(Some(0.8), true, true)
                    },
                ],
            ),
        ];
        for (name, turns) in &table {
            run(&p, name, turns);
        }
    }

    #[test]
    fn thresholds_and_streaks_are_configurable() {
        let p = EscalationPolicy {
            negative_threshold: 0.5,
            negative_streak: 3,
            very_negative_threshold: None,
            fallback_streak: 1,
            ..EscalationPolicy::default()
        };
        run(
            &p,
            "three at 0.5 and no very-negative",
            &[
                turn(Some(0.99), false, false),
                turn(Some(0.5), false, false),
                turn(Some(0.6), false, true),
            ],
        );
        run(&p, "one fallback", &[turn(Some(0.1), true, true)]);
    }

    #[test]
    fn streaks_are_kept_in_the_state() {
        let p = policy();
        let state = run(&p, "streaks", &[turn(Some(0.8), true, false)]);
        assert_eq!(state.negative_streak, 1);
        assert_eq!(state.fallback_streak, 1);
        assert_eq!(state.escalations, 0);
        let json = serde_json::to_string(&state).expect("json");
        let back: EscalationState = serde_json::from_str(&json).expect("back");
        assert_eq!(back, state);
        // Fields added later default: an old record still reads.
        let old: EscalationState = serde_json::from_str(r#"{"negative_streak":1}"#).expect("old");
        assert_eq!(old.negative_streak, 1);
        assert_eq!(old.last_turn_id, None);
    }

    #[test]
    fn a_redelivered_turn_gets_the_same_decision_and_no_second_count() {
        let p = policy();
        let first = Signals {
            sentiment: sentiment(0.8),
            ..quiet("t1")
        };
        let (_, s1) = decide(&p, &EscalationState::default(), &first);
        let second = Signals {
            sentiment: sentiment(0.8),
            ..quiet("t2")
        };
        let (d2, s2) = decide(&p, &s1, &second);
        assert!(d2.escalate);
        let (again, s3) = decide(&p, &s2, &second);
        assert_eq!(again, d2);
        assert_eq!(s3, s2);
        assert_eq!(s3.escalations, 1);
    }

    #[test]
    fn a_broken_sentiment_score_is_not_negative() {
        let p = policy();
        let s = Signals {
            sentiment: Some(Sentiment {
                negative: f32::NAN,
                ..Sentiment::neutral()
            }),
            ..quiet("nan")
        };
        let (d, state) = decide(&p, &EscalationState::default(), &s);
        assert!(!d.escalate);
        assert_eq!(state.negative_streak, 0);
    }

    proptest! {
        #[test]
        fn decide_never_panics_and_reasons_match_escalate(
            text in "\\PC{0,80}",
            negative in proptest::option::of(any::<f32>()),
            fallback in any::<bool>(),
            neg_streak in 0u32..5,
            fb_streak in 0u32..5,
        ) {
            let p = policy();
            let state = EscalationState { negative_streak: neg_streak, fallback_streak: fb_streak, ..Default::default() };
            let s = p.signals("t", &text, negative.map(|n| Sentiment { negative: n, ..Sentiment::neutral() }), fallback, None);
            let (d, next) = decide(&p, &state, &s);
            prop_assert_eq!(d.escalate, !d.reasons.is_empty());
            if d.escalate {
                prop_assert_eq!(next.negative_streak, 0);
                prop_assert_eq!(next.fallback_streak, 0);
            }
        }
    }
}
