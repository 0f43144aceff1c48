//! The behaviour every [`CampaignStore`] must show: SQLite and DynamoDB run
//! this same suite. Each check makes its own campaign (fresh ids), so all
//! share one store.

use std::collections::BTreeMap;

use domain::campaign::*;
use domain::ports::CampaignStore;
use domain::{Error, UserId};
use serde_json::json;

const AT: i64 = 1_795_000_000_000;
const MINUTE: i64 = 60_000;

/// Runs every check on `store`.
pub async fn run_all(store: &dyn CampaignStore) {
    a_campaign_is_created_once_and_listed_newest_first(store).await;
    states_move_only_from_the_given_ones(store).await;
    an_upload_replaces_the_contacts_of_a_draft_only(store).await;
    an_upload_is_written_in_steps_and_switched_at_the_end(store).await;
    an_upload_being_written_is_dropped_when_the_campaign_starts(store).await;
    due_contacts_are_the_waiting_ones_oldest_first(store).await;
    a_contact_moves_once_per_version(store).await;
    concurrent_claims_claim_once(store).await;
    counts_follow_every_move(store).await;
    pages_go_in_row_order(store).await;
    the_do_not_contact_list(store).await;
    the_latest_touch_of_a_number_wins(store).await;
}

fn fresh_id(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

pub fn campaign(id: &str, created_at_ms: i64) -> Campaign {
    Campaign::draft(
        id,
        serde_json::from_value(json!({"name": format!("campaign {id}"), "channel": "call"}))
            .unwrap_or_else(|e| panic!("spec: {e}")),
        created_at_ms,
    )
}

pub fn contact(campaign_id: &str, row: u32, next_at_ms: Option<i64>) -> CampaignContact {
    let mut variables = BTreeMap::new();
    variables.insert("monto".to_string(), format!("{row}00"));
    CampaignContact {
        campaign_id: campaign_id.to_string(),
        row,
        phone: UserId::phone(&format!("5491166{row:06}")).unwrap_or_else(|e| panic!("{e}")),
        name: Some(format!("Cliente {row}")),
        time_zone: "America/Argentina/Buenos_Aires".into(),
        language: Some("es".into()),
        variables,
        state: ContactState::Pending,
        next_at_ms,
        attempts: vec![],
        replies: vec![],
        version: 1,
    }
}

/// A draft campaign with `rows` contacts (rows 2.., due a minute apart).
async fn seeded(store: &dyn CampaignStore, rows: u32) -> (String, Vec<CampaignContact>) {
    let id = fresh_id("camp");
    store
        .create_campaign(&campaign(&id, AT))
        .await
        .expect("create");
    let contacts: Vec<CampaignContact> = (0..rows)
        .map(|i| contact(&id, i + 2, Some(AT + i64::from(i) * MINUTE)))
        .collect();
    assert!(store
        .replace_contacts(&id, &fresh_id("up"), &contacts, AT)
        .await
        .expect("upload"));
    (id, contacts)
}

fn moved(c: &CampaignContact, state: ContactState, next_at_ms: Option<i64>) -> CampaignContact {
    CampaignContact {
        state,
        next_at_ms,
        version: c.version + 1,
        ..c.clone()
    }
}

pub async fn a_campaign_is_created_once_and_listed_newest_first(store: &dyn CampaignStore) {
    let (a, b) = (fresh_id("camp"), fresh_id("camp"));
    store
        .create_campaign(&campaign(&a, AT))
        .await
        .expect("create a");
    store
        .create_campaign(&campaign(&b, AT + 1_000_000))
        .await
        .expect("create b");
    assert!(matches!(
        store.create_campaign(&campaign(&a, AT)).await,
        Err(Error::Conflict(_))
    ));
    assert_eq!(
        store.campaign(&a).await.expect("read"),
        Some(campaign(&a, AT))
    );
    assert_eq!(store.campaign(&fresh_id("none")).await.expect("read"), None);
    let listed: Vec<String> = store
        .campaigns(1000)
        .await
        .expect("list")
        .into_iter()
        .map(|c| c.id)
        .filter(|id| id == &a || id == &b)
        .collect();
    assert_eq!(listed, vec![b, a]);
}

pub async fn states_move_only_from_the_given_ones(store: &dyn CampaignStore) {
    use CampaignState::*;
    let id = fresh_id("camp");
    store
        .create_campaign(&campaign(&id, AT))
        .await
        .expect("create");
    assert!(!store
        .set_campaign_state(&id, &[Running], Paused, AT)
        .await
        .expect("pause a draft"));
    assert!(store
        .set_campaign_state(&id, &[Draft], Running, AT + 1)
        .await
        .expect("start"));
    assert!(!store
        .set_campaign_state(&id, &[Draft], Running, AT + 2)
        .await
        .expect("start again"));
    assert!(store
        .set_campaign_state(&id, &[Draft, Running, Paused], Cancelled, AT + 3)
        .await
        .expect("cancel"));
    let c = store.campaign(&id).await.expect("read").expect("exists");
    assert_eq!((c.state, c.updated_at_ms), (Cancelled, AT + 3));
    assert!(!store
        .set_campaign_state(&fresh_id("none"), &[Draft], Running, AT)
        .await
        .expect("missing"));
}

pub async fn an_upload_replaces_the_contacts_of_a_draft_only(store: &dyn CampaignStore) {
    let (id, first) = seeded(store, 3).await;
    let c = store.campaign(&id).await.expect("read").expect("exists");
    assert_eq!(c.contacts, 3);
    let second: Vec<CampaignContact> = vec![contact(&id, 7, Some(AT)), contact(&id, 9, Some(AT))];
    assert!(store
        .replace_contacts(&id, &fresh_id("up"), &second, AT + 5)
        .await
        .expect("upload again"));
    let page = store.contacts_page(&id, None, 100).await.expect("page");
    assert_eq!(page, second, "the first upload's rows are gone");
    assert_eq!(store.contact(&id, first[0].row).await.expect("read"), None);
    assert_eq!(
        store.campaign(&id).await.expect("read").map(|c| c.contacts),
        Some(2)
    );
    assert_eq!(
        store
            .counts(&id)
            .await
            .expect("counts")
            .get(&ContactState::Pending),
        Some(&2)
    );
    store
        .set_campaign_state(&id, &[CampaignState::Draft], CampaignState::Running, AT)
        .await
        .expect("start");
    assert!(!store
        .replace_contacts(&id, &fresh_id("up"), &first, AT + 6)
        .await
        .expect("upload to a running campaign"));
    assert_eq!(
        store.contacts_page(&id, None, 100).await.expect("page"),
        second
    );
    assert!(!store
        .replace_contacts(&fresh_id("none"), &fresh_id("up"), &first, AT)
        .await
        .expect("no campaign"));
}

pub async fn due_contacts_are_the_waiting_ones_oldest_first(store: &dyn CampaignStore) {
    let (id, contacts) = seeded(store, 5).await;
    // Row 3 calls, row 4 is final, row 5 is due later.
    assert!(store
        .update_contact(&moved(&contacts[1], ContactState::Calling, None))
        .await
        .expect("calling"));
    assert!(store
        .update_contact(&moved(&contacts[2], ContactState::Answered, None))
        .await
        .expect("answered"));
    assert!(store
        .update_contact(&moved(
            &contacts[3],
            ContactState::Scheduled,
            Some(AT + 60 * MINUTE)
        ))
        .await
        .expect("later"));
    let now = AT + 10 * MINUTE;
    let due: Vec<u32> = store
        .due_contacts(&id, now, 10)
        .await
        .expect("due")
        .into_iter()
        .map(|c| c.row)
        .collect();
    assert_eq!(due, vec![2, 6]);
    let first: Vec<u32> = store
        .due_contacts(&id, now, 1)
        .await
        .expect("due")
        .into_iter()
        .map(|c| c.row)
        .collect();
    assert_eq!(first, vec![2]);
    assert!(store
        .due_contacts(&id, AT - 1, 10)
        .await
        .expect("due")
        .is_empty());
    // Only row 3 calls; once its call ends, none.
    let calling = store.calling_contacts(&id, 10).await.expect("calling");
    assert_eq!(calling.iter().map(|c| c.row).collect::<Vec<_>>(), vec![3]);
    assert!(store
        .update_contact(&moved(&calling[0], ContactState::NoAnswer, None))
        .await
        .expect("ended"));
    assert!(store
        .calling_contacts(&id, 10)
        .await
        .expect("calling")
        .is_empty());
}

pub async fn a_contact_moves_once_per_version(store: &dyn CampaignStore) {
    let (id, contacts) = seeded(store, 1).await;
    let c = &contacts[0];
    let calling = moved(c, ContactState::Calling, None);
    assert!(store.update_contact(&calling).await.expect("claim"));
    assert!(!store.update_contact(&calling).await.expect("claim again"));
    let mut done = moved(&calling, ContactState::Answered, None);
    done.attempts.push(Attempt {
        channel: "call".into(),
        at_ms: AT,
        outcome: Some(domain::voice::CallOutcome::Completed),
        duration_secs: Some(95),
        summary: Some("Acordó pagar el viernes".into()),
        results: Some(json!({"promise_to_pay": true, "amount": 1200})),
        reference: Some("call-1".into()),
    });
    done.replies.push(Reply {
        wamid: "wamid.R1".into(),
        at_ms: 2,
        text: "gracias".into(),
    });
    assert!(store.update_contact(&done).await.expect("answered"));
    assert_eq!(store.contact(&id, c.row).await.expect("read"), Some(done));
    let ghost = contact(&id, 99, Some(AT));
    assert!(!store
        .update_contact(&CampaignContact {
            version: 2,
            ..ghost
        })
        .await
        .expect("unknown row"));
}

pub async fn concurrent_claims_claim_once(store: &dyn CampaignStore) {
    let (_, contacts) = seeded(store, 1).await;
    let claim = moved(&contacts[0], ContactState::Calling, None);
    let results = futures::future::join_all((0..8).map(|_| store.update_contact(&claim))).await;
    let won = results
        .into_iter()
        .map(|r| r.expect("update"))
        .filter(|w| *w)
        .count();
    assert_eq!(won, 1);
}

pub async fn counts_follow_every_move(store: &dyn CampaignStore) {
    let (id, contacts) = seeded(store, 4).await;
    let opted = CampaignContact {
        state: ContactState::OptedOut,
        next_at_ms: None,
        ..contact(&id, 20, None)
    };
    assert!(store
        .replace_contacts(
            &id,
            &fresh_id("up"),
            &[contacts.clone(), vec![opted]].concat(),
            AT
        )
        .await
        .expect("upload"));
    assert!(store
        .update_contact(&moved(&contacts[0], ContactState::Calling, None))
        .await
        .expect("claim"));
    let calling = moved(&contacts[0], ContactState::Calling, None);
    assert!(store
        .update_contact(&moved(&calling, ContactState::NoAnswer, None))
        .await
        .expect("no answer"));
    let counts = store.counts(&id).await.expect("counts");
    let expected: BTreeMap<ContactState, u64> = [
        (ContactState::Pending, 3),
        (ContactState::NoAnswer, 1),
        (ContactState::OptedOut, 1),
    ]
    .into();
    assert_eq!(
        counts
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .collect::<BTreeMap<_, _>>(),
        expected
    );
}

pub async fn pages_go_in_row_order(store: &dyn CampaignStore) {
    let (id, contacts) = seeded(store, 7).await;
    let mut rows = Vec::new();
    let mut after = None;
    loop {
        let page = store.contacts_page(&id, after, 3).await.expect("page");
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 3);
        after = page.last().map(|c| c.row);
        rows.extend(page.into_iter().map(|c| c.row));
    }
    assert_eq!(rows, contacts.iter().map(|c| c.row).collect::<Vec<_>>());
}

pub async fn the_do_not_contact_list(store: &dyn CampaignStore) {
    let phone = UserId::phone(&format!(
        "5491177{:06}",
        uuid::Uuid::new_v4().as_u128() % 1_000_000
    ))
    .expect("phone");
    assert_eq!(store.opted_out(&phone).await.expect("read"), None);
    let entry = OptOut {
        phone: phone.clone(),
        reason: "escribió BAJA".into(),
        source: "whatsapp".into(),
        at_ms: AT,
    };
    store.opt_out(&entry).await.expect("opt out");
    let again = OptOut {
        reason: "pidió en la llamada que no lo llamen".into(),
        source: "call".into(),
        at_ms: AT + 1,
        ..entry.clone()
    };
    store.opt_out(&again).await.expect("again");
    assert_eq!(
        store.opted_out(&phone).await.expect("read"),
        Some(again.clone())
    );
    assert!(store.opt_outs(10_000).await.expect("list").contains(&again));
    // Many at once (more than one batch of a batched store), the listed
    // one among them twice.
    let mut many: Vec<UserId> = (0..250u32)
        .map(|i| UserId::phone(&format!("5491188{i:06}")).expect("phone"))
        .collect();
    many.push(phone.clone());
    many.push(phone.clone());
    let found = store.opted_out_among(&many).await.expect("among");
    assert_eq!(found.into_iter().collect::<Vec<_>>(), vec![phone.clone()]);
    assert!(store.opted_out_among(&[]).await.expect("none").is_empty());
    assert!(store.remove_opt_out(&phone).await.expect("remove"));
    assert!(!store.remove_opt_out(&phone).await.expect("remove again"));
    assert_eq!(store.opted_out(&phone).await.expect("read"), None);
}

pub async fn the_latest_touch_of_a_number_wins(store: &dyn CampaignStore) {
    let phone = UserId::phone(&format!(
        "54911{:08}",
        uuid::Uuid::new_v4().as_u128() % 100_000_000
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(store.touch_of(&phone).await.expect("read"), None);
    let touch = |campaign: &str, row: u32, at_ms: i64| Touch {
        phone: phone.clone(),
        campaign_id: campaign.into(),
        row,
        at_ms,
    };
    store.touch(&touch("a", 1, AT)).await.expect("touch");
    store
        .touch(&touch("b", 7, AT + MINUTE))
        .await
        .expect("touch");
    // A late write of an older touch (a slow dispatcher) changes nothing.
    store.touch(&touch("a", 1, AT + 1)).await.expect("touch");
    assert_eq!(
        store.touch_of(&phone).await.expect("read"),
        Some(touch("b", 7, AT + MINUTE))
    );
}

/// Steps until nothing is left (a store may have written everything when
/// staging); answers the steps taken that left something.
async fn import_to_the_end(store: &dyn CampaignStore, id: &str) -> usize {
    let mut steps = 0;
    while store.import_step(id, 1, AT).await.expect("step").is_some() {
        steps += 1;
        assert!(steps < 1000, "an import that never ends");
    }
    steps
}

pub async fn an_upload_is_written_in_steps_and_switched_at_the_end(store: &dyn CampaignStore) {
    let (id, first) = seeded(store, 2).await;
    // More than two chunks of a staged store (1,000 contacts each).
    let rows = 2_300u32;
    let second: Vec<CampaignContact> = (0..rows).map(|i| contact(&id, i + 10, Some(AT))).collect();
    let upload = fresh_id("up");
    assert!(store
        .stage_contacts(&id, &upload, &second, AT + 1)
        .await
        .expect("stage"));
    let c = store.campaign(&id).await.expect("read").expect("exists");
    if let Some(import) = &c.import {
        // Part-way, the campaign is still its earlier upload.
        assert_eq!(
            (import.upload.as_str(), import.total),
            (upload.as_str(), 2_300)
        );
        assert_eq!(c.contacts, 2);
        assert_eq!(
            store.contacts_page(&id, None, 10).await.expect("page"),
            first
        );
        let step = store
            .import_step(&id, 1, AT)
            .await
            .expect("step")
            .expect("more to come");
        assert!(step.written >= 1 && step.written < 2_300, "{step:?}");
        assert_eq!(
            store.campaign(&id).await.expect("read").map(|c| c.contacts),
            Some(2),
            "not switched part-way"
        );
    }
    import_to_the_end(store, &id).await;
    let c = store.campaign(&id).await.expect("read").expect("exists");
    assert_eq!(
        (c.upload.as_deref(), c.contacts, c.import),
        (Some(upload.as_str()), 2_300, None)
    );
    assert_eq!(
        store
            .counts(&id)
            .await
            .expect("counts")
            .get(&ContactState::Pending),
        Some(&2_300)
    );
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = store.contacts_page(&id, after, 1_000).await.expect("page");
        let Some(last) = page.last() else { break };
        after = Some(last.row);
        all.extend(page);
    }
    assert_eq!(all, second, "every contact, in row order");
    assert_eq!(store.contact(&id, first[0].row).await.expect("read"), None);
}

pub async fn an_upload_being_written_is_dropped_when_the_campaign_starts(
    store: &dyn CampaignStore,
) {
    let (id, first) = seeded(store, 2).await;
    let big: Vec<CampaignContact> = (0..2_100u32)
        .map(|i| contact(&id, i + 10, Some(AT)))
        .collect();
    let upload = fresh_id("up");
    assert!(store
        .stage_contacts(&id, &upload, &big, AT + 1)
        .await
        .expect("stage"));
    if store
        .campaign(&id)
        .await
        .expect("read")
        .and_then(|c| c.import)
        .is_none()
    {
        return; // Written at once: nothing to drop.
    }
    // A newer upload replaces the one being written.
    let newer: Vec<CampaignContact> = (0..1_500u32)
        .map(|i| contact(&id, i + 5_000, Some(AT)))
        .collect();
    let newer_upload = fresh_id("up");
    assert!(store
        .stage_contacts(&id, &newer_upload, &newer, AT + 2)
        .await
        .expect("stage again"));
    let import = store
        .campaign(&id)
        .await
        .expect("read")
        .and_then(|c| c.import)
        .expect("being written");
    assert_eq!((import.upload, import.total), (newer_upload, 1_500));
    // Started with its earlier contacts: the upload is never its.
    assert!(store
        .set_campaign_state(&id, &[CampaignState::Draft], CampaignState::Running, AT)
        .await
        .expect("start"));
    assert_eq!(store.import_step(&id, 1, AT).await.expect("step"), None);
    let c = store.campaign(&id).await.expect("read").expect("exists");
    assert_eq!((c.contacts, c.import), (2, None));
    assert_eq!(
        store.contacts_page(&id, None, 10).await.expect("page"),
        first
    );
}
