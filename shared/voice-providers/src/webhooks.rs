//! The voice providers' webhooks as they arrive: Vapi's secret header and
//! Retell's signature, and their messages read into Charla's call events
//! and tool calls (`domain::voice`).

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use domain::signature::{secrets_equal, SignatureError};
use domain::voice::*;

/// Retell refuses (and so do we) a signature whose timestamp is further
/// than this from now: a captured request cannot be replayed later.
pub const RETELL_SIGNATURE_WINDOW_MS: i64 = 5 * 60 * 1000;

// ----------------------------------------------------- authentication

/// Checks Vapi's `x-vapi-secret` header in constant time.
pub fn verify_vapi_secret(expected: &[u8], header: Option<&str>) -> Result<(), SignatureError> {
    let given = header.ok_or(SignatureError::Missing)?;
    if expected.is_empty() {
        // No secret configured: nothing can authenticate.
        return Err(SignatureError::Mismatch);
    }
    if secrets_equal(expected, given.trim().as_bytes()) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

fn retell_mac(api_key: &[u8], body: &[u8], ts: &str) -> [u8; 32] {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(api_key).unwrap_or_else(|_| unreachable!());
    mac.update(body);
    mac.update(ts.as_bytes());
    mac.finalize().into_bytes().into()
}

/// The `X-Retell-Signature` Retell would send for `body` at `ts_ms`.
pub fn retell_signature_header(api_key: &[u8], body: &[u8], ts_ms: i64) -> String {
    let ts = ts_ms.to_string();
    format!("v={ts},d={}", hex::encode(retell_mac(api_key, body, &ts)))
}

/// Checks `X-Retell-Signature: v=<unix ms>,d=<hex>` over the raw body bytes
/// and the timestamp, which must be within 5 minutes of `now_ms`.
pub fn verify_retell_signature(
    api_key: &[u8],
    body: &[u8],
    header: Option<&str>,
    now_ms: i64,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?.trim();
    let (mut ts, mut digest) = (None, None);
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("v", v)) => ts = Some(v),
            Some(("d", d)) => digest = Some(d),
            _ => return Err(SignatureError::Malformed),
        }
    }
    let (Some(ts), Some(digest)) = (ts, digest) else {
        return Err(SignatureError::Malformed);
    };
    let ts_ms: i64 = ts.parse().map_err(|_| SignatureError::Malformed)?;
    let given = hex::decode(digest).map_err(|_| SignatureError::Malformed)?;
    if given.len() != 32 {
        return Err(SignatureError::Malformed);
    }
    if api_key.is_empty() {
        return Err(SignatureError::Mismatch);
    }
    let expected = retell_mac(api_key, body, ts);
    if !bool::from(expected.ct_eq(given.as_slice())) {
        return Err(SignatureError::Mismatch);
    }
    // Checked after the MAC so that an expired but genuine request and a
    // forged one cannot be told apart by timing; both are refused.
    if (now_ms - ts_ms).abs() > RETELL_SIGNATURE_WINDOW_MS {
        return Err(SignatureError::Mismatch);
    }
    Ok(())
}

fn bounded(s: Option<&str>) -> Option<String> {
    s.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.chars().take(CALL_TEXT_MAX).collect())
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.get(k))
}

/// Seconds from a number of seconds or of milliseconds (at most a day).
fn seconds(secs: Option<&Value>, millis: Option<&Value>) -> Option<u32> {
    let s = secs
        .and_then(Value::as_f64)
        .or_else(|| millis.and_then(Value::as_f64).map(|ms| ms / 1000.0))?;
    (s.is_finite() && (0.0..=86_400.0).contains(&s)).then(|| s.round() as u32)
}

/// The voice agent's extracted data: an object, a few KB at most (it goes
/// into the campaign's report).
fn results(v: Option<&Value>) -> Option<Value> {
    v.filter(|r| r.as_object().is_some_and(|o| !o.is_empty()))
        .filter(|r| r.to_string().len() <= 8 * 1024)
        .cloned()
}

/// What came in on the Vapi webhook.
#[derive(Debug, Clone, PartialEq)]
pub enum VapiMessage {
    Event(VoiceEvent),
    ToolCalls {
        call_id: String,
        call_ref: Option<CallRef>,
        calls: Vec<ToolCall>,
    },
    TransferDestinationRequest {
        call_id: String,
        call_ref: Option<CallRef>,
    },
    /// A type Charla does not use (`assistant-request`, `hang`, ...).
    Other(String),
}

/// Reads a Vapi server message `{"message": {"type": ..., "call": {...}}}`.
pub fn parse_vapi(body: &[u8]) -> Result<VapiMessage, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let m = v.get("message").ok_or("no message")?;
    let kind = str_at(m, &["type"]).ok_or("message without a type")?;
    let call_id = str_at(m, &["call", "id"]).unwrap_or_default().to_string();
    let call_ref = m
        .get("call")
        .and_then(|c| c.get("metadata"))
        .and_then(CallRef::from_metadata);
    let need_call = || {
        if call_id.is_empty() {
            Err(format!("{kind} without call.id"))
        } else {
            Ok(())
        }
    };
    let event = |kind: EventKind| {
        VapiMessage::Event(VoiceEvent {
            provider: ProviderKind::Vapi,
            call_id: call_id.clone(),
            call_ref: call_ref.clone(),
            kind,
        })
    };
    Ok(match kind {
        "status-update" => {
            need_call()?;
            let status = str_at(m, &["status"]).ok_or("status-update without status")?;
            match status {
                "ringing" | "queued" => event(EventKind::Status(CallPhase::Ringing)),
                "in-progress" | "forwarding" => event(EventKind::Status(CallPhase::InProgress)),
                // The report carries what the end needs; a bare `ended`
                // status only moves the phase.
                "ended" => event(EventKind::Status(CallPhase::Ended)),
                other => event(EventKind::Ignored(format!("status:{other}"))),
            }
        }
        "end-of-call-report" => {
            need_call()?;
            event(EventKind::Ended {
                reason: str_at(m, &["endedReason"]).unwrap_or("unknown").to_string(),
                transcript: bounded(
                    str_at(m, &["artifact", "transcript"]).or(str_at(m, &["transcript"])),
                ),
                summary: bounded(str_at(m, &["analysis", "summary"]).or(str_at(m, &["summary"]))),
                duration_secs: seconds(m.get("durationSeconds"), m.get("durationMs")),
                results: results(at(m, &["analysis", "structuredData"])),
            })
        }
        "tool-calls" => {
            need_call()?;
            let list = m
                .get("toolCallList")
                .and_then(Value::as_array)
                .ok_or("tool-calls without toolCallList")?;
            let calls = list
                .iter()
                .map(|c| {
                    let id = str_at(c, &["id"]).ok_or("tool call without id")?;
                    // Older messages put name/parameters at the top, newer
                    // ones under `function` with `arguments` (maybe a string).
                    let name = str_at(c, &["name"])
                        .or(str_at(c, &["function", "name"]))
                        .ok_or("tool call without name")?;
                    let args = c
                        .get("parameters")
                        .or(c.get("function").and_then(|f| f.get("arguments")))
                        .cloned()
                        .unwrap_or(Value::Object(Default::default()));
                    let args = match args {
                        Value::String(s) => serde_json::from_str(&s)
                            .map_err(|_| "tool call arguments are not JSON".to_string())?,
                        other => other,
                    };
                    Ok(ToolCall {
                        id: id.to_string(),
                        name: name.to_string(),
                        args,
                    })
                })
                .collect::<Result<Vec<_>, String>>()?;
            VapiMessage::ToolCalls {
                call_id,
                call_ref,
                calls,
            }
        }
        "transfer-destination-request" => {
            VapiMessage::TransferDestinationRequest { call_id, call_ref }
        }
        "transcript" | "conversation-update" | "speech-update" | "hang" | "user-interrupted" => {
            VapiMessage::Other(kind.to_string())
        }
        other => VapiMessage::Other(other.to_string()),
    })
}

/// What came in on the Retell webhook: an event, or a custom function call.
#[derive(Debug, Clone, PartialEq)]
pub enum RetellMessage {
    Event(VoiceEvent),
    Function {
        call_id: String,
        call_ref: Option<CallRef>,
        call: ToolCall,
    },
}

/// Reads a Retell webhook `{event, call}` or function call `{name, call, args}`.
pub fn parse_retell(body: &[u8]) -> Result<RetellMessage, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let call = v.get("call").ok_or("no call")?;
    let call_id = str_at(call, &["call_id"])
        .filter(|s| !s.is_empty())
        .ok_or("call without call_id")?
        .to_string();
    let call_ref = call.get("metadata").and_then(CallRef::from_metadata);
    if let Some(name) = str_at(&v, &["name"]) {
        return Ok(RetellMessage::Function {
            call: ToolCall {
                // Retell retries a function call with the same body: the
                // call id and name make the key.
                id: format!("{call_id}:{name}"),
                name: name.to_string(),
                args: v
                    .get("args")
                    .cloned()
                    .unwrap_or(Value::Object(Default::default())),
            },
            call_id,
            call_ref,
        });
    }
    let event = str_at(&v, &["event"]).ok_or("neither event nor name")?;
    let kind = match event {
        "call_started" => EventKind::Status(CallPhase::InProgress),
        "call_ended" => EventKind::Ended {
            reason: str_at(call, &["disconnection_reason"])
                .unwrap_or("unknown")
                .to_string(),
            transcript: bounded(str_at(call, &["transcript"])),
            summary: bounded(str_at(call, &["call_analysis", "call_summary"])),
            duration_secs: seconds(None, call.get("duration_ms")),
            results: results(at(call, &["call_analysis", "custom_analysis_data"])),
        },
        "call_analyzed" => EventKind::Analysed {
            summary: bounded(str_at(call, &["call_analysis", "call_summary"])),
            results: results(at(call, &["call_analysis", "custom_analysis_data"])),
        },
        other => EventKind::Ignored(other.to_string()),
    };
    Ok(RetellMessage::Event(VoiceEvent {
        provider: ProviderKind::Retell,
        call_id,
        call_ref,
        kind,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const KEY: &[u8] = b"key_test";
    const BODY: &[u8] = br#"{"event":"call_ended","call":{"call_id":"abc"}}"#;
    const TS: i64 = 1_700_000_000_000;
    const VECTOR: &str = "3ff1aecb352d020e0b3c12ec93648c80ba9d1186c8d0c412e8a998291fe35c9c";

    #[test]
    fn retell_signature_matches_the_protocol_vector() {
        let header = retell_signature_header(KEY, BODY, TS);
        assert_eq!(header, format!("v={TS},d={VECTOR}"));
        assert_eq!(
            verify_retell_signature(KEY, BODY, Some(&header), TS + 1000),
            Ok(())
        );
    }

    #[test]
    fn retell_signature_covers_the_raw_bytes_of_accented_bodies() {
        let body = r#"{"event":"call_ended","call":{"call_id":"x","transcript":"¿Podés llamarme mañana? Ação"}}"#;
        let header = retell_signature_header(KEY, body.as_bytes(), TS);
        assert_eq!(
            verify_retell_signature(KEY, body.as_bytes(), Some(&header), TS),
            Ok(())
        );
        // The same JSON re-serialised with escapes is other bytes: refused.
        let reserialised =
            serde_json::to_string(&serde_json::from_str::<Value>(body).expect("json"))
                .expect("json")
                .replace('ñ', "\\u00f1");
        assert_eq!(
            verify_retell_signature(KEY, reserialised.as_bytes(), Some(&header), TS),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn retell_signature_outside_the_five_minute_window_is_refused() {
        let header = retell_signature_header(KEY, BODY, TS);
        let cases = [
            (TS + RETELL_SIGNATURE_WINDOW_MS, Ok(())),
            (TS - RETELL_SIGNATURE_WINDOW_MS, Ok(())),
            (
                TS + RETELL_SIGNATURE_WINDOW_MS + 1,
                Err(SignatureError::Mismatch),
            ),
            (
                TS - RETELL_SIGNATURE_WINDOW_MS - 1,
                Err(SignatureError::Mismatch),
            ),
        ];
        for (now, expected) in cases {
            assert_eq!(
                verify_retell_signature(KEY, BODY, Some(&header), now),
                expected,
                "{now}"
            );
        }
    }

    #[test]
    fn retell_signature_refuses_missing_malformed_and_wrong() {
        let check = |h: Option<&str>| verify_retell_signature(KEY, BODY, h, TS);
        assert_eq!(check(None), Err(SignatureError::Missing));
        for bad in [
            "",
            "v=1",
            "d=00",
            "v=x,d=00",
            &format!("v={TS},d=zz"),
            &format!("v={TS},d=abcd"),
            &format!("v={TS},d={VECTOR},x=1"),
        ] {
            assert_eq!(check(Some(bad)), Err(SignatureError::Malformed), "{bad}");
        }
        let other = retell_signature_header(b"other", BODY, TS);
        assert_eq!(check(Some(&other)), Err(SignatureError::Mismatch));
        let header = retell_signature_header(KEY, BODY, TS);
        assert_eq!(
            verify_retell_signature(KEY, b"{}", Some(&header), TS),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_retell_signature(b"", BODY, Some(&header), TS),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn vapi_secret_is_compared_whole() {
        assert_eq!(verify_vapi_secret(b"s3cret", Some("s3cret")), Ok(()));
        assert_eq!(
            verify_vapi_secret(b"s3cret", None),
            Err(SignatureError::Missing)
        );
        for bad in ["s3cre", "s3cret2", "", "S3CRET"] {
            assert_eq!(
                verify_vapi_secret(b"s3cret", Some(bad)),
                Err(SignatureError::Mismatch)
            );
        }
        assert_eq!(
            verify_vapi_secret(b"", Some("")),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn vapi_messages_are_read() {
        let meta =
            json!({"charla_request_id": "w1:call", "charla_conversation_id": "5491155550001"});
        let tools = json!({"message": {"type": "tool-calls", "call": {"id": "c1", "metadata": meta},
        "toolCallList": [
            {"id": "t1", "name": "kb_search", "parameters": {"query": "precios"}},
            {"id": "t2", "type": "function", "function": {"name": "create_lead", "arguments": "{\"name\":\"Ana\",\"interest\":\"plan\"}"}}
        ]}});
        match parse_vapi(tools.to_string().as_bytes()).expect("parse") {
            VapiMessage::ToolCalls {
                call_id,
                call_ref,
                calls,
            } => {
                assert_eq!(call_id, "c1");
                assert_eq!(call_ref.expect("ref").request_id, "w1:call");
                assert_eq!(calls[1].args["name"], "Ana");
                assert_eq!(calls[0].args["query"], "precios");
            }
            other => panic!("{other:?}"),
        }
        let report = json!({"message": {"type": "end-of-call-report", "call": {"id": "c1"}, "endedReason": "customer-busy",
            "artifact": {"transcript": "AI: Hola"}, "durationSeconds": 42.4,
            "analysis": {"summary": "Ocupado", "structuredData": {"promise_to_pay": true}}}});
        match parse_vapi(report.to_string().as_bytes()).expect("parse") {
            VapiMessage::Event(e) => assert_eq!(
                e.kind,
                EventKind::Ended {
                    reason: "customer-busy".into(),
                    transcript: Some("AI: Hola".into()),
                    summary: Some("Ocupado".into()),
                    duration_secs: Some(42),
                    results: Some(json!({"promise_to_pay": true})),
                }
            ),
            other => panic!("{other:?}"),
        }
        for bad in [
            "",
            "{}",
            "[]",
            r#"{"message":{}}"#,
            r#"{"message":{"type":"status-update"}}"#,
            r#"{"message":{"type":"tool-calls","call":{"id":"c"}}}"#,
        ] {
            assert!(parse_vapi(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn retell_messages_are_read() {
        let fun = br#"{"name":"kb_search","call":{"call_id":"r1"},"args":{"query":"horarios"}}"#;
        match parse_retell(fun).expect("parse") {
            RetellMessage::Function { call, .. } => {
                assert_eq!(call.name, "kb_search");
                assert_eq!(call.id, "r1:kb_search");
            }
            other => panic!("{other:?}"),
        }
        match parse_retell(BODY).expect("parse") {
            RetellMessage::Event(e) => assert!(matches!(e.kind, EventKind::Ended { .. })),
            other => panic!("{other:?}"),
        }
        // Duration and the agent's extracted data, for campaigns' reports.
        let analysed = json!({"event": "call_analyzed", "call": {"call_id": "r2",
            "duration_ms": 61_400,
            "call_analysis": {"call_summary": "Acordó pagar.",
                              "custom_analysis_data": {"promise_to_pay": true}}}});
        match parse_retell(analysed.to_string().as_bytes()).expect("parse") {
            RetellMessage::Event(e) => assert_eq!(
                e.kind,
                EventKind::Analysed {
                    summary: Some("Acordó pagar.".into()),
                    results: Some(json!({"promise_to_pay": true})),
                }
            ),
            other => panic!("{other:?}"),
        }
        let ended = json!({"event": "call_ended", "call": {"call_id": "r2", "duration_ms": 61_400,
            "disconnection_reason": "user_hangup"}});
        match parse_retell(ended.to_string().as_bytes()).expect("parse") {
            RetellMessage::Event(e) => {
                assert!(
                    matches!(
                        e.kind,
                        EventKind::Ended {
                            duration_secs: Some(61),
                            ..
                        }
                    ),
                    "{e:?}"
                )
            }
            other => panic!("{other:?}"),
        }
        for bad in [
            "",
            "{}",
            r#"{"event":"call_ended"}"#,
            r#"{"event":"x","call":{}}"#,
            r#"{"call":{"call_id":"r"}}"#,
        ] {
            assert!(parse_retell(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
