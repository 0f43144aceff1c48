//! The user's contact in Chatwoot and its contact inbox in ours, found or
//! made: a contact is found by its `identifier` (the user id: number or
//! BSUID) or its `phone_number` (`+{number}`, for a user known by number)
//! before one is created, and a 422 on create (another worker created it a
//! moment ago) finds it again. A user known only by username has no phone
//! number in Chatwoot: the BSUID is the identifier.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::api::{id_of, status_error, unexpected};
use crate::ChatwootDesk;
use domain::error::Result;
use domain::{mask, Conversation};

impl ChatwootDesk {
    /// The contact of `wa_id` and its source id in our inbox, found or made.
    pub(crate) async fn contact(&self, conversation: &Conversation) -> Result<(u64, String)> {
        let user_id = conversation.user_id.as_str();
        let phone = conversation.user_id.e164();
        if let Some(found) = self.find_contact(user_id, phone.as_deref()).await? {
            return self.with_source_id(found).await;
        }
        let name = conversation
            .contact_name
            .clone()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| format!("WhatsApp {}", mask(user_id)));
        let mut body = json!({
            "inbox_id": self.inbox_id,
            "name": name,
            "identifier": user_id,
        });
        if let Some(phone) = &phone {
            body["phone_number"] = json!(phone);
        }
        let (status, value) = self
            .api
            .call(
                "create contact",
                Method::POST,
                self.api.url(&["contacts"]),
                Some(&body),
            )
            .await?;
        if status == StatusCode::UNPROCESSABLE_ENTITY {
            // Taken: created by a concurrent hand-off. Find it again.
            let found = self
                .find_contact(user_id, phone.as_deref())
                .await?
                .ok_or_else(|| status_error("create contact", status))?;
            return self.with_source_id(found).await;
        }
        if !status.is_success() {
            return Err(status_error("create contact", status));
        }
        let payload = &value["payload"];
        let contact_id = id_of(&payload["contact"]["id"])
            .ok_or_else(|| unexpected("create contact", "no contact id"))?;
        match payload["contact_inbox"]["source_id"].as_str() {
            Some(source) if !source.is_empty() => Ok((contact_id, source.to_string())),
            _ => self.with_source_id(payload["contact"].clone()).await,
        }
    }

    /// The contact (as JSON) whose identifier is `user_id` or whose phone
    /// number is `phone`.
    async fn find_contact(&self, user_id: &str, phone: Option<&str>) -> Result<Option<Value>> {
        let mut url = self.api.url(&["contacts", "search"]);
        url.query_pairs_mut().append_pair("q", user_id);
        let value = self
            .api
            .call_ok("search contacts", Method::GET, url, None)
            .await?;
        let found = value["payload"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| {
                c["identifier"].as_str() == Some(user_id)
                    || (phone.is_some() && c["phone_number"].as_str() == phone)
            })
            .cloned();
        Ok(found)
    }

    /// The contact's id and its source id in our inbox, creating the contact
    /// inbox when the contact has none there.
    async fn with_source_id(&self, contact: Value) -> Result<(u64, String)> {
        let contact_id =
            id_of(&contact["id"]).ok_or_else(|| unexpected("search contacts", "no contact id"))?;
        let existing = contact["contact_inboxes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|ci| id_of(&ci["inbox"]["id"]) == Some(self.inbox_id))
            .and_then(|ci| ci["source_id"].as_str())
            .filter(|s| !s.is_empty());
        if let Some(source) = existing {
            return Ok((contact_id, source.to_string()));
        }
        let body = json!({ "inbox_id": self.inbox_id });
        let value = self
            .api
            .call_ok(
                "create contact inbox",
                Method::POST,
                self.api
                    .url(&["contacts", &contact_id.to_string(), "contact_inboxes"]),
                Some(&body),
            )
            .await?;
        let source = value["source_id"]
            .as_str()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| unexpected("create contact inbox", "no source_id"))?;
        Ok((contact_id, source.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::*;
    use domain::ports::HumanDesk;
    use serde_json::json;
    use wiremock::matchers::{body_json, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    #[tokio::test]
    async fn a_known_contact_with_an_open_conversation_is_reused() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(p("/contacts/search")))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({ "payload": [
                { "id": 30, "identifier": "999", "phone_number": "+5491155559999" },
                { "id": 31, "identifier": null, "phone_number": "+5491155551234",
                  "contact_inboxes": [ { "source_id": "src-31", "inbox": { "id": 2 } } ] }
            ] })),
            )
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(p("/contacts/31/conversations")))
            .respond_with(ResponseTemplate::new(200).set_body_json(
                json!({ "payload": [ { "id": 57, "inbox_id": 2, "status": "pending" } ] }),
            ))
            .expect(1)
            .mount(&server)
            .await;
        mount_note_and_open(&server, 57).await;
        let desk_ref = desk(&server)
            .open_handoff(&conversation(), &transcript(), &reasons())
            .await
            .expect("hand-off");
        assert_eq!(desk_ref.conversation_id, 57);
        let requests = server.received_requests().await.expect("recorded");
        assert!(
            !requests
                .iter()
                .any(|r| r.url.path() == p("/contacts") || r.url.path() == p("/conversations")),
            "nothing created"
        );
    }

    #[tokio::test]
    async fn a_contact_without_our_inbox_gets_a_contact_inbox() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(p("/contacts/search")))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({ "payload": [
                { "id": 31, "identifier": "5491155551234",
                  "contact_inboxes": [ { "source_id": "other", "inbox": { "id": 9 } } ] }
            ] })),
            )
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path(p("/contacts/31/contact_inboxes")))
            .and(body_json(json!({ "inbox_id": 2 })))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({ "source_id": "src-new", "inbox": { "id": 2 } })),
            )
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(p("/contacts/31/conversations")))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "payload": [] })))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path(p("/conversations")))
            .and(body_json(json!({ "source_id": "src-new", "inbox_id": 2, "contact_id": 31, "status": "open" })))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "id": 58 })))
            .expect(1)
            .mount(&server)
            .await;
        mount_note_and_open(&server, 58).await;
        let desk_ref = desk(&server)
            .open_handoff(&conversation(), &transcript(), &reasons())
            .await
            .expect("hand-off");
        assert_eq!(desk_ref.conversation_id, 58);
    }

    #[tokio::test]
    async fn a_contact_created_meanwhile_is_found_again_after_a_422() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(p("/contacts/search")))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "payload": [] })))
            .up_to_n_times(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(p("/contacts/search")))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({ "payload": [
                { "id": 31, "identifier": "5491155551234",
                  "contact_inboxes": [ { "source_id": "src-31", "inbox": { "id": 2 } } ] }
            ] })),
            )
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path(p("/contacts")))
            .respond_with(
                ResponseTemplate::new(422)
                    .set_body_json(json!({ "message": "Phone number has already been taken" })),
            )
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(p("/contacts/31/conversations")))
            .respond_with(ResponseTemplate::new(200).set_body_json(
                json!({ "payload": [ { "id": 57, "inbox_id": 2, "status": "open" } ] }),
            ))
            .mount(&server)
            .await;
        mount_note_and_open(&server, 57).await;
        let desk_ref = desk(&server)
            .open_handoff(&conversation(), &transcript(), &reasons())
            .await
            .expect("hand-off");
        assert_eq!(desk_ref.contact_id, 31);
    }

    #[tokio::test]
    async fn a_user_known_by_username_is_a_contact_by_bsuid_without_a_phone() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(p("/contacts/search")))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({ "payload": [
                // Same digits in a phone number: not this user.
                { "id": 30, "identifier": null, "phone_number": "+1502576394655843" }
            ] })),
            )
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path(p("/contacts")))
            .and(body_json(json!({
                "inbox_id": 2,
                "name": "Ana",
                "identifier": "AR.1502576394655843",
            })))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({ "payload": {
                "contact": { "id": 32 },
                "contact_inbox": { "source_id": "src-32" },
            } })),
            )
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(p("/contacts/32/conversations")))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "payload": [] })))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path(p("/conversations")))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "id": 59 })))
            .mount(&server)
            .await;
        mount_note_and_open(&server, 59).await;
        let mut c = conversation();
        c.user_id = domain::UserId::parse("AR.1502576394655843").expect("bsuid");
        c.contact_name = Some("Ana".into());
        let desk_ref = desk(&server)
            .open_handoff(&c, &transcript(), &reasons())
            .await
            .expect("hand-off");
        assert_eq!(desk_ref.contact_id, 32);
    }
}
