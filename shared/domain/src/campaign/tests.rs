use super::*;
use serde_json::json;

fn tz(name: &str) -> TimeZone {
    TimeZone::get(name).expect("zone")
}

fn at(s: &str) -> i64 {
    s.parse::<Timestamp>().expect("timestamp").as_millisecond()
}

fn spec(v: Value) -> CampaignSpec {
    serde_json::from_value(v).expect("spec")
}

fn call_spec() -> CampaignSpec {
    spec(json!({"name": "Cobranza noviembre", "channel": "call"}))
}

fn contact(row: u32, zone: &str) -> CampaignContact {
    CampaignContact {
        campaign_id: "c1".into(),
        row,
        phone: UserId::phone(&format!("549115555{row:04}")).expect("phone"),
        name: None,
        time_zone: zone.into(),
        language: None,
        variables: BTreeMap::new(),
        state: ContactState::Pending,
        next_at_ms: None,
        attempts: vec![],
        replies: vec![],
        version: 1,
    }
}

#[test]
fn a_minimal_spec_gets_the_defaults() {
    let s = call_spec();
    assert_eq!(s.window, "09:00-20:00");
    assert_eq!(s.days.len(), 5);
    assert_eq!(s.max_concurrent, 5);
    assert_eq!(s.retries, Retries::default());
    assert!(s.validate().is_ok());
}

#[test]
fn every_field_of_a_full_spec_is_read() {
    let s = spec(json!({
        "name": "Recordatorio",
        "channel": "whatsapp_then_call",
        "template": {"name": "recordatorio_pago", "language": "es", "parameters": ["nombre", "monto"]},
        "window": "10:00-18:30",
        "days": ["mon", "wed", "sáb"],
        "holidays": ["2026-12-25"],
        "max_concurrent": 12,
        "retries": {"busy": {"attempts": 5, "retry_after_minutes": 10}},
        "start_at": "2026-12-01T12:00:00Z",
        "call_after_minutes": 90,
        "assistant": "asst_123",
        "time_zone": "America/Mexico_City",
        "default_country": "MX",
    }));
    assert!(s.validate().is_ok(), "{:?}", s.validate());
    assert_eq!(s.retries.busy.attempts, 5);
    assert_eq!(s.retries.no_answer, Retries::default().no_answer);
    assert_eq!(s.template.as_ref().map(|t| t.parameters.len()), Some(2));
}

#[test]
fn problems_name_their_field() {
    let cases = [
        (json!({"name": "", "channel": "call"}), "name"),
        (json!({"name": "x", "channel": "whatsapp"}), "template"),
        (
            json!({"name": "x", "channel": "call", "template": {"name": "t", "language": "es"}}),
            "template",
        ),
        (
            json!({"name": "x", "channel": "call", "window": "9-20"}),
            "window",
        ),
        (
            json!({"name": "x", "channel": "call", "window": "20:00-09:00"}),
            "window",
        ),
        (
            json!({"name": "x", "channel": "call", "days": ["someday"]}),
            "days",
        ),
        (json!({"name": "x", "channel": "call", "days": []}), "days"),
        (
            json!({"name": "x", "channel": "call", "max_concurrent": 0}),
            "max_concurrent",
        ),
        (
            json!({"name": "x", "channel": "call", "retries": {"busy": {"attempts": 0, "retry_after_minutes": 1}}}),
            "retries.busy",
        ),
        (
            json!({"name": "x", "channel": "call", "default_country": "ARG"}),
            "default_country",
        ),
    ];
    for (v, field) in cases {
        let e = spec(v.clone()).validate().expect_err("invalid");
        assert!(e.starts_with(field), "{v}: {e}");
    }
    let unknown: Result<CampaignSpec, _> =
        serde_json::from_value(json!({"name": "x", "channel": "call", "colour": "red"}));
    assert!(unknown.is_err());
    let channel: Result<CampaignSpec, _> =
        serde_json::from_value(json!({"name": "x", "channel": "fax"}));
    assert!(channel.is_err());
}

#[test]
fn the_window_is_local_to_the_contact() {
    let s = call_spec().validate().expect("schedule");
    let ba = tz("America/Argentina/Buenos_Aires");
    let tokyo = tz("Asia/Tokyo");
    // Tuesday 2026-12-01 13:00 UTC: 10:00 in Buenos Aires, 22:00 in Tokyo.
    let now = at("2026-12-01T13:00:00Z");
    assert!(s.allows(now, &ba));
    assert!(!s.allows(now, &tokyo));
    // Tokyo: Wednesday 09:00 local = 00:00 UTC.
    assert_eq!(
        s.next_allowed(now, &tokyo),
        Some(at("2026-12-02T00:00:00Z"))
    );
}

#[test]
fn weekends_and_holidays_are_skipped() {
    let holidays = [Date::new(2026, 12, 7).expect("date")];
    let s = CallingSchedule::new("09:00-20:00", &call_spec().days, &holidays).expect("schedule");
    let ba = tz("America/Argentina/Buenos_Aires");
    // Friday 2026-12-04 21:00 local (00:00 UTC Saturday): after the window;
    // Saturday and Sunday are not days; Monday the 7th is a holiday.
    let friday_night = at("2026-12-05T00:00:00Z");
    assert_eq!(
        s.next_allowed(friday_night, &ba),
        Some(at("2026-12-08T12:00:00Z")),
        "Tuesday 09:00 in Buenos Aires"
    );
}

#[test]
fn daylight_saving_moves_the_utc_time_of_the_window() {
    let s = call_spec().validate().expect("schedule");
    let ny = tz("America/New_York");
    // Before and after 2026-11-01 (end of DST): 09:00 local is 13:00 then 14:00 UTC.
    assert_eq!(
        s.next_allowed(at("2026-10-30T05:00:00Z"), &ny),
        Some(at("2026-10-30T13:00:00Z"))
    );
    assert_eq!(
        s.next_allowed(at("2026-11-03T05:00:00Z"), &ny),
        Some(at("2026-11-03T14:00:00Z"))
    );
}

#[test]
fn a_schedule_with_no_allowed_day_in_a_year_never_calls() {
    let every_monday: Vec<Date> = (0..60)
        .filter_map(|w| {
            Date::new(2026, 11, 30)
                .ok()?
                .checked_add(jiff::Span::new().weeks(w))
                .ok()
        })
        .collect();
    let s =
        CallingSchedule::new("09:00-20:00", &["mon".to_string()], &every_monday).expect("schedule");
    assert_eq!(
        s.next_allowed(at("2026-11-30T00:00:00Z"), &TimeZone::UTC),
        None
    );
}

#[test]
fn retries_follow_the_rule_of_the_outcome() {
    let spec = call_spec();
    let s = spec.validate().expect("schedule");
    let ba = tz("America/Argentina/Buenos_Aires");
    let now = at("2026-12-01T13:00:00Z");
    let mut c = contact(2, "America/Argentina/Buenos_Aires");
    c.attempts.push(Attempt {
        channel: "call".into(),
        at_ms: now,
        outcome: Some(CallOutcome::Busy),
        duration_secs: None,
        summary: None,
        results: None,
        reference: None,
    });
    assert_eq!(
        after_call(&spec, &s, &c, CallOutcome::Busy, now, &ba),
        (ContactState::Scheduled, Some(now + 15 * MINUTE_MS))
    );
    // No answer: two hours later, still inside the window.
    assert_eq!(
        after_call(&spec, &s, &c, CallOutcome::NoAnswer, now, &ba).1,
        Some(now + 120 * MINUTE_MS)
    );
    // Voicemail after 2 calls: used up.
    c.attempts.push(c.attempts[0].clone());
    assert_eq!(
        after_call(&spec, &s, &c, CallOutcome::Voicemail, now, &ba),
        (ContactState::Voicemail, None)
    );
    assert_eq!(
        after_call(&spec, &s, &c, CallOutcome::Completed, now, &ba),
        (ContactState::Answered, None)
    );
    // A retry that falls after the window waits for the next day's opening.
    let evening = at("2026-12-01T22:50:00Z"); // 19:50 local
    let c1 = CampaignContact {
        attempts: vec![c.attempts[0].clone()],
        ..c.clone()
    };
    assert_eq!(
        after_call(&spec, &s, &c1, CallOutcome::Busy, evening, &ba),
        (ContactState::Scheduled, Some(at("2026-12-02T12:00:00Z")))
    );
}

#[test]
fn the_template_comes_first_and_a_reply_brings_the_call_forward() {
    let spec = spec(json!({
        "name": "x", "channel": "whatsapp_then_call",
        "template": {"name": "t", "language": "es"}, "call_after_minutes": 180,
    }));
    let s = spec.validate().expect("schedule");
    let ba = tz("America/Argentina/Buenos_Aires");
    let now = at("2026-12-01T13:00:00Z");
    let c = contact(2, "America/Argentina/Buenos_Aires");
    let plan = plan_tick(
        &spec,
        &s,
        std::slice::from_ref(&c),
        5,
        now,
        |_| false,
        |_| ba.clone(),
    );
    assert_eq!(plan[0].1, Decision::Template);
    let (state, next) = after_template(&spec, &s, now, &ba);
    assert_eq!(
        (state, next),
        (ContactState::Scheduled, Some(now + 180 * MINUTE_MS))
    );
    let mut sent = c.clone();
    sent.state = state;
    sent.next_at_ms = next;
    sent.attempts.push(Attempt {
        channel: "whatsapp".into(),
        at_ms: now,
        outcome: None,
        duration_secs: None,
        summary: None,
        results: None,
        reference: Some("wamid.T".into()),
    });
    let later = now + 10 * MINUTE_MS;
    assert_eq!(
        after_reply(&spec, &s, &sent, later, &ba),
        Some((ContactState::Scheduled, Some(later)))
    );
    let plan = plan_tick(
        &spec,
        &s,
        std::slice::from_ref(&sent),
        5,
        later,
        |_| false,
        |_| ba.clone(),
    );
    assert_eq!(plan[0].1, Decision::Call);
    let whatsapp_only = CampaignSpec {
        channel: Channel::Whatsapp,
        ..spec.clone()
    };
    assert_eq!(
        after_template(&whatsapp_only, &s, now, &ba),
        (ContactState::Done, None)
    );
    // A second reply, with the call already brought forward: nothing moves.
    let mut forward = sent.clone();
    forward.next_at_ms = Some(later);
    assert_eq!(after_reply(&spec, &s, &forward, later + 1000, &ba), None);
    // Once called, a reply changes nothing either.
    let mut called = sent.clone();
    called.attempts.push(Attempt::new("call", later));
    assert_eq!(after_reply(&spec, &s, &called, later, &ba), None);
    // A template-only campaign: the reply is the contact answering.
    let mut done = sent.clone();
    done.state = ContactState::Done;
    done.next_at_ms = None;
    assert_eq!(
        after_reply(&whatsapp_only, &s, &done, later, &ba),
        Some((ContactState::Answered, None))
    );
}

fn reply(wamid: &str, text: &str) -> Reply {
    Reply {
        wamid: wamid.into(),
        at_ms: 5,
        text: text.into(),
    }
}

#[test]
fn replies_are_recorded_once_each_and_bounded() {
    let c = contact(1, "UTC");
    let once = c
        .with_replies(&[reply("w1", "¿Cuánto debo?"), reply("w2", "  ")])
        .expect("a new reply");
    assert_eq!(once.version, c.version + 1);
    assert_eq!(once.replies, vec![reply("w1", "¿Cuánto debo?")]);
    // A retried turn brings the same messages again: nothing to write.
    assert_eq!(once.with_replies(&[reply("w1", "¿Cuánto debo?")]), None);
    let long = "x".repeat(MAX_REPLY_CHARS + 10);
    let mut many = once.clone();
    for i in 0..MAX_REPLIES + 5 {
        many = many
            .with_replies(&[reply(&format!("m{i}"), &long)])
            .expect("new");
    }
    assert_eq!(many.replies.len(), MAX_REPLIES);
    assert_eq!(many.replies[0].wamid, "m5");
    assert!(many
        .replies
        .iter()
        .all(|r| r.text.chars().count() == MAX_REPLY_CHARS));
}

#[test]
fn a_touch_is_a_reply_target_for_thirty_days() {
    let t = Touch {
        phone: UserId::phone("5491155550001").expect("phone"),
        campaign_id: "c1".into(),
        row: 3,
        at_ms: 1_000,
    };
    assert!(t.current(1_000 + REPLY_WINDOW_MS));
    assert!(!t.current(1_001 + REPLY_WINDOW_MS));
}

#[test]
fn the_agent_is_told_the_campaign_and_the_contacts_columns() {
    let spec = spec(json!({
        "name": "Cobranza noviembre", "channel": "whatsapp_then_call",
        "template": {"name": "aviso_deuda", "language": "es", "parameters": ["monto"]}
    }));
    let campaign = Campaign {
        state: CampaignState::Running,
        contacts: 1,
        ..Campaign::draft("c1", spec, 0)
    };
    let mut c = contact(1, "UTC");
    c.name = Some("Ana".into());
    c.variables.insert("monto".into(), "$ 12.500".into());
    let mut call = Attempt::new("call", 0);
    call.summary = Some("Prometió pagar el viernes".into());
    c.attempts.push(call);
    let text = agent_context(&campaign, &c);
    for part in [
        "\"Cobranza noviembre\"",
        "template \"aviso_deuda\"",
        "- name: Ana",
        "- monto: $ 12.500",
        "Prometió pagar el viernes",
    ] {
        assert!(text.contains(part), "{part} in {text}");
    }
}

#[test]
fn a_tick_skips_opted_out_defers_outside_the_window_and_keeps_to_the_room() {
    let spec = call_spec();
    let s = spec.validate().expect("schedule");
    let now = at("2026-12-01T13:00:00Z");
    let due = vec![
        contact(2, "America/Argentina/Buenos_Aires"),
        contact(3, "Asia/Tokyo"),
        contact(4, "America/Argentina/Buenos_Aires"),
        contact(5, "America/Argentina/Buenos_Aires"),
        contact(6, "America/Argentina/Buenos_Aires"),
    ];
    let opted = due[2].phone.clone();
    let plan = plan_tick(&spec, &s, &due, 1, now, |p| p == &opted, tz);
    let decisions: Vec<(u32, Decision)> = plan.iter().map(|(c, d)| (c.row, d.clone())).collect();
    assert_eq!(
        decisions,
        vec![
            (2, Decision::Call),
            (3, Decision::Defer(at("2026-12-02T00:00:00Z"))),
            (4, Decision::OptOut),
        ],
        "rows 5 and 6 wait for room"
    );
    assert_eq!(call_room(&spec, 3, 100), 2);
    assert_eq!(call_room(&spec, 0, 1), 1);
    assert_eq!(call_room(&spec, 9, 100), 0);
}

#[test]
fn campaign_actions_move_only_from_their_states() {
    use CampaignAction::*;
    use CampaignState::*;
    assert_eq!(Start.transition(), (&[Draft][..], Running));
    assert_eq!(Pause.transition().0, &[Running]);
    assert_eq!(Resume.transition(), (&[Paused][..], Running));
    assert!(!Cancel.transition().0.contains(&Completed));
    for s in ["draft", "running", "paused", "cancelled", "completed"] {
        assert_eq!(CampaignState::parse(s).map(CampaignState::as_str), Some(s));
    }
    for c in ContactState::ALL {
        assert_eq!(ContactState::parse(c.as_str()), Some(c));
    }
}

/// A simulated clock over three days: 1,000 contacts in 24 time zones, one
/// tick a minute, calls that last 4 minutes and are answered. Every call
/// goes out inside its contact's window on an allowed day, never more than
/// `max_concurrent` at once, each contact exactly once.
#[test]
fn a_thousand_contacts_in_24_zones_are_each_called_inside_their_window() {
    let zones = [
        "Pacific/Honolulu",
        "America/Anchorage",
        "America/Los_Angeles",
        "America/Denver",
        "America/Mexico_City",
        "America/Bogota",
        "America/New_York",
        "America/Caracas",
        "America/Argentina/Buenos_Aires",
        "America/Sao_Paulo",
        "Atlantic/Azores",
        "Europe/London",
        "Europe/Madrid",
        "Africa/Cairo",
        "Europe/Moscow",
        "Asia/Dubai",
        "Asia/Karachi",
        "Asia/Kolkata",
        "Asia/Dhaka",
        "Asia/Bangkok",
        "Asia/Shanghai",
        "Asia/Tokyo",
        "Australia/Sydney",
        "Pacific/Auckland",
    ];
    let spec = spec(json!({"name": "sim", "channel": "call", "max_concurrent": 20}));
    let schedule = spec.validate().expect("schedule");
    let mut contacts: Vec<CampaignContact> = (0..1000)
        .map(|i| contact(i + 2, zones[i as usize % zones.len()]))
        .collect();
    let start = at("2026-11-30T00:00:00Z"); // a Monday
    for c in &mut contacts {
        c.next_at_ms = first_due(&spec, &schedule, start, &tz(&c.time_zone));
    }
    const CALL_MS: i64 = 4 * MINUTE_MS;
    let mut in_flight: Vec<(u32, i64)> = Vec::new(); // (row, ends at)
    let mut calls: BTreeMap<u32, Vec<i64>> = BTreeMap::new();
    let mut max_seen = 0;
    let mut now = start;
    while now < start + 3 * 24 * 60 * MINUTE_MS {
        // Calls that ended: answered, final.
        in_flight.retain(|(row, ends)| {
            if *ends <= now {
                if let Some(c) = contacts.iter_mut().find(|c| c.row == *row) {
                    c.state = ContactState::Answered;
                }
                false
            } else {
                true
            }
        });
        let mut due: Vec<CampaignContact> = contacts
            .iter()
            .filter(|c| c.state.is_waiting() && c.next_at_ms.is_some_and(|t| t <= now))
            .cloned()
            .collect();
        due.sort_by_key(|c| (c.next_at_ms, c.row));
        let room = call_room(
            &spec,
            u32::try_from(in_flight.len()).expect("small"),
            u32::MAX,
        );
        let plan = plan_tick(&spec, &schedule, &due, room, now, |_| false, tz);
        for (c, decision) in plan {
            let row = c.row;
            let stored = contacts.iter_mut().find(|x| x.row == row).expect("contact");
            match decision {
                Decision::Call => {
                    assert!(schedule.allows(now, &tz(&stored.time_zone)), "row {row}");
                    stored.state = ContactState::Calling;
                    in_flight.push((row, now + CALL_MS));
                    calls.entry(row).or_default().push(now);
                }
                Decision::Defer(t) => stored.next_at_ms = Some(t),
                other => panic!("row {row}: {other:?}"),
            }
        }
        max_seen = max_seen.max(in_flight.len());
        assert!(in_flight.len() <= 20);
        now += MINUTE_MS;
    }
    assert_eq!(max_seen, 20, "the room is used");
    assert_eq!(calls.len(), 1000, "everyone called");
    assert!(calls.values().all(|c| c.len() == 1), "nobody twice");
    for (row, times) in &calls {
        let c = contacts.iter().find(|c| c.row == *row).expect("contact");
        let local = Timestamp::from_millisecond(times[0])
            .expect("ts")
            .to_zoned(tz(&c.time_zone));
        let t = local.time();
        assert!(
            t >= jiff::civil::time(9, 0, 0, 0) && t < jiff::civil::time(20, 0, 0, 0),
            "row {row} at {local}"
        );
        assert!(
            !matches!(local.weekday(), Weekday::Saturday | Weekday::Sunday),
            "row {row} at {local}"
        );
    }
}

#[test]
fn opt_out_requests_are_short_and_in_any_of_the_languages() {
    for (text, lang) in [
        ("STOP", "en"),
        ("Stop.", "en"),
        ("please stop calling me", "en"),
        ("BAJA", "es"),
        ("baja por favor", "es"),
        ("No me llamen más!", "es"),
        ("PARAR", "pt"),
        ("Não me liguem", "pt"),
        ("sair", "pt"),
    ] {
        assert_eq!(opt_out_request(text, &[]), Some(lang), "{text}");
    }
    for text in [
        "no puedo parar de reír con este video, es buenísimo",
        "¿cuándo me llaman para la baja del plan viejo y el alta del nuevo?",
        "stopped by the store yesterday and loved it, thanks",
        "",
        "hola",
    ] {
        assert_eq!(opt_out_request(text, &[]), None, "{text}");
    }
    let own = [
        ("es".to_string(), "cancelar todo".to_string()),
        ("en".to_string(), "leave me alone".to_string()),
    ];
    assert_eq!(opt_out_request("Cancelar todo!", &own), Some("es"));
    assert_eq!(opt_out_request("just leave me alone", &own), Some("en"));
    assert_eq!(
        opt_out_request("cancelar la cita del martes a las diez", &own),
        None
    );
    assert!(opt_out_confirmation("pt").contains("campanhas"));
}

#[test]
fn structured_results_can_ask_for_no_more_contact() {
    for yes in [
        json!({"do_not_contact": true}),
        json!({"opt_out": "Sí"}),
        json!({"do_not_call": "yes", "promise_to_pay": false}),
    ] {
        assert!(asks_no_contact(&yes), "{yes}");
    }
    for no in [
        json!({"do_not_contact": false}),
        json!({"opt_out": "no"}),
        json!({"promise_to_pay": true}),
        json!("do_not_contact"),
        json!(null),
    ] {
        assert!(!asks_no_contact(&no), "{no}");
    }
}
