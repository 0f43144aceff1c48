//! The escalation adapters against moto's server: Comprehend (canned
//! DetectSentiment answers), SNS (read back through an SQS queue subscribed
//! to the topic) and SES v2 (read back from moto's `/moto-api/data.json`).
//! scripts/test starts moto and sets `MOTO_ENDPOINT`; without it these tests
//! fail, they never pass silently.

use aws_adapters::{ComprehendSentiment, SesNotifier, SnsNotifier};
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use aws_sdk_sqs::types::QueueAttributeName;
use domain::escalation::{
    EscalationNotice, KeywordCategory, Reason, SentimentLabel, TranscriptLine,
};
use domain::ports::{Notifier, SentimentAnalyzer};
use domain::UserId;
use serde_json::Value;

fn moto_endpoint() -> String {
    match std::env::var("MOTO_ENDPOINT") {
        Ok(v) if !v.trim().is_empty() => v.trim().trim_end_matches('/').to_string(),
        _ => panic!("MOTO_ENDPOINT not set: run scripts/test, which starts moto"),
    }
}

async fn moto_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(moto_endpoint())
        .region("us-east-1")
        .credentials_provider(Credentials::new("test", "test", None, None, "moto"))
        .load()
        .await
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

fn notice(id: &str) -> EscalationNotice {
    EscalationNotice {
        id: id.to_string(),
        user_id: UserId::parse("5491155551234").expect("wa id"),
        phone_number_id: "106540352242922".into(),
        contact_name: Some("Lucía".into()),
        reasons: vec![
            Reason::AskedForPerson {
                phrase: "hablar con una persona".into(),
            },
            Reason::Keyword {
                category: KeywordCategory::Legal,
                word: "abogado".into(),
                language: "es".into(),
            },
        ],
        summary: Some("Doble cobro en la factura de octubre.".into()),
        excerpt: vec![TranscriptLine {
            from: "user".into(),
            text: "quiero hablar con una persona, voy a llamar a mi abogado".into(),
            at_ms: 1_763_888_000_000,
        }],
        desk_url: Some("https://desk.example.com/app/accounts/3/conversations/57".into()),
        admin_url: None,
        created_at_ms: 1_763_888_000_000,
    }
}

// -------------------------------------------------------------- Comprehend

#[tokio::test]
async fn comprehend_sentiment_reads_moto_s_canned_answer() {
    let analyzer = ComprehendSentiment::new(aws_sdk_comprehend::Client::new(&moto_config().await));
    // moto answers every DetectSentiment with the same NEUTRAL scores.
    let s = analyzer
        .sentiment("¡Esto es un desastre, quiero hablar con alguien!", "es-AR")
        .await
        .expect("sentiment");
    assert_eq!(s.label, SentimentLabel::Neutral);
    assert!((s.neutral - 0.9916).abs() < 1e-3, "{s:?}");
    assert!(s.negative < 0.001, "{s:?}");
    let sum = s.positive + s.negative + s.neutral + s.mixed;
    assert!((sum - 1.0).abs() < 1e-3, "{s:?}");
}

#[tokio::test]
async fn comprehend_text_over_the_limit_is_cut_rather_than_refused() {
    let client = aws_sdk_comprehend::Client::new(&moto_config().await);
    let long = "ã".repeat(6000);
    // Sent whole, moto refuses it as Comprehend does...
    let refused = client
        .detect_sentiment()
        .text(&long)
        .language_code(aws_sdk_comprehend::types::LanguageCode::Pt)
        .send()
        .await;
    assert!(refused.is_err(), "moto accepted 6000 characters");
    // ...the adapter cuts it to 5000 bytes at a char boundary.
    let s = ComprehendSentiment::new(client)
        .sentiment(&long, "pt-BR")
        .await
        .expect("cut and read");
    assert_eq!(s.label, SentimentLabel::Neutral);
}

#[tokio::test]
async fn comprehend_unreadable_languages_and_empty_text_are_neutral_without_a_call() {
    // An endpoint where nothing listens: a call would fail.
    let config = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url("http://127.0.0.1:9")
        .region("us-east-1")
        .credentials_provider(Credentials::new("test", "test", None, None, "none"))
        .load()
        .await;
    let analyzer = ComprehendSentiment::new(aws_sdk_comprehend::Client::new(&config));
    for (text, lang) in [("Это ужасно", "ru"), ("   ", "es"), ("", "en")] {
        let s = analyzer.sentiment(text, lang).await.expect("neutral");
        assert_eq!(s.label, SentimentLabel::Neutral, "{lang}");
    }
    let err = analyzer
        .sentiment("hola", "es")
        .await
        .expect_err("no server");
    assert!(err.is_retryable(), "{err:?}");
}

// -------------------------------------------------------------------- SNS

#[tokio::test]
async fn sns_notifier_publishes_a_masked_subject_and_the_notice_as_json() {
    let config = moto_config().await;
    let sns = aws_sdk_sns::Client::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);
    let topic_arn = sns
        .create_topic()
        .name(unique("charla-escalations"))
        .send()
        .await
        .expect("topic")
        .topic_arn
        .expect("topic arn");
    let queue_url = sqs
        .create_queue()
        .queue_name(unique("charla-escalation-inbox"))
        .send()
        .await
        .expect("queue")
        .queue_url
        .expect("queue url");
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("attributes")
        .attributes
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .expect("queue arn");
    sns.subscribe()
        .topic_arn(&topic_arn)
        .protocol("sqs")
        .endpoint(&queue_arn)
        .send()
        .await
        .expect("subscribe");

    let n = notice(&unique("wamid.sns:handoff"));
    SnsNotifier::new(sns, &topic_arn)
        .notify(&n)
        .await
        .expect("published");

    let received = sqs
        .receive_message()
        .queue_url(&queue_url)
        .wait_time_seconds(5)
        .max_number_of_messages(10)
        .send()
        .await
        .expect("receive");
    let messages = received.messages.unwrap_or_default();
    assert_eq!(messages.len(), 1, "{messages:?}");
    let envelope: Value =
        serde_json::from_str(messages[0].body().expect("body")).expect("SNS envelope");
    let subject = envelope["Subject"].as_str().expect("subject");
    assert_eq!(subject, n.subject());
    assert!(subject.chars().count() <= 100);
    assert!(subject.contains("*********1234"), "{subject}");
    assert!(!subject.contains("5491155551234"), "{subject}");
    let message: Value =
        serde_json::from_str(envelope["Message"].as_str().expect("message")).expect("notice JSON");
    assert_eq!(message["id"], n.id.as_str());
    assert_eq!(message["reasons"][0]["kind"], "asked_for_person");
    assert_eq!(message["reasons"][1]["word"], "abogado");
    assert!(message["text"]
        .as_str()
        .expect("text")
        .contains("Desk: https://desk.example.com"));
}

#[tokio::test]
async fn sns_to_a_missing_topic_is_an_error() {
    let sns = aws_sdk_sns::Client::new(&moto_config().await);
    let err = SnsNotifier::new(sns, "arn:aws:sns:us-east-1:123456789012:no-such-topic")
        .notify(&notice("x"))
        .await
        .expect_err("no topic");
    assert!(!err.is_retryable(), "{err:?}");
}

// -------------------------------------------------------------------- SES

#[tokio::test]
async fn ses_notifier_sends_a_plain_text_email_without_the_raw_number() {
    let config = moto_config().await;
    let ses = aws_sdk_sesv2::Client::new(&config);
    let from = format!("{}@charla.example.com", unique("escalations"));
    ses.create_email_identity()
        .email_identity(&from)
        .send()
        .await
        .expect("identity");
    let n = notice(&unique("wamid.ses:handoff"));
    SesNotifier::new(
        ses,
        &from,
        vec!["support@example.com".into(), " ops@example.com ".into()],
    )
    .expect("notifier")
    .notify(&n)
    .await
    .expect("sent");

    // moto keeps sent messages; its model dump shows them.
    let dump: Value = reqwest::get(format!("{}/moto-api/data.json", moto_endpoint()))
        .await
        .expect("moto api")
        .json()
        .await
        .expect("json");
    let sent: Vec<&Value> = dump["ses"]["Message"]
        .as_array()
        .expect("ses messages in moto's dump")
        .iter()
        .filter(|m| m["source"] == from.as_str())
        .collect();
    assert_eq!(sent.len(), 1, "{sent:?}");
    let m = sent[0];
    assert_eq!(m["subject"], n.subject().as_str());
    let body = m["body"].as_str().expect("body");
    assert!(body.contains("legal keyword \"abogado\""), "{body}");
    assert!(body.contains("*********1234"), "{body}");
    assert!(!body.contains("5491155551234"), "{body}");
    let to = m["destinations"]["ToAddresses"].as_array().expect("to");
    assert_eq!(to.len(), 2, "{m}");
    assert_eq!(to[1], "ops@example.com");
}

#[tokio::test]
async fn ses_from_an_unverified_sender_is_refused_for_good() {
    let ses = aws_sdk_sesv2::Client::new(&moto_config().await);
    let err = SesNotifier::new(
        ses,
        format!("{}@unverified.example.com", unique("x")),
        vec!["support@example.com".into()],
    )
    .expect("notifier")
    .notify(&notice("y"))
    .await
    .expect_err("not verified");
    assert!(!err.is_retryable(), "{err:?}");
}

#[test]
fn ses_notifier_needs_addresses() {
    let config = aws_sdk_sesv2::Config::builder()
        .behavior_version(aws_sdk_sesv2::config::BehaviorVersion::latest())
        .region(aws_sdk_sesv2::config::Region::new("us-east-1"))
        .build();
    let client = aws_sdk_sesv2::Client::from_conf(config);
    assert!(SesNotifier::new(client.clone(), "not-an-address", vec!["a@b.c".into()]).is_err());
    assert!(SesNotifier::new(client.clone(), "a@b.c", vec![]).is_err());
    assert!(SesNotifier::new(client.clone(), "a@b.c", vec![" ".into()]).is_err());
    assert!(SesNotifier::new(client, "a@b.c", vec!["x@y.z".into()]).is_ok());
}
