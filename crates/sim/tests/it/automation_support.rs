//! Helpers for the bureau-automation tests: an Outbound Messaging listener whose answers a test scripts, a
//! namespace-agnostic parse of the envelopes it received, and request creation through the real REST API.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use creditlink_sim::SimHandle;
use quick_xml::events::Event;
use serde_json::{Value, json};

use creditlink_sim::testkit::{BANK_A, api, client, send};

pub const ACK_TRUE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>
<notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound"><Ack>true</Ack></notificationsResponse>
</soapenv:Body></soapenv:Envelope>"#;
pub const ACK_FALSE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>
<notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound"><Ack>false</Ack></notificationsResponse>
</soapenv:Body></soapenv:Envelope>"#;

/// One received POST.
#[derive(Debug, Clone)]
pub struct Received {
    pub content_type: String,
    pub soap_action: Option<String>,
    pub body: String,
}

#[derive(Default)]
struct ListenerState {
    /// Scripted answers, used first to last; afterwards every POST gets 200 with `Ack` true.
    script: VecDeque<(u16, &'static str)>,
    received: Vec<Received>,
}

/// A tiny listener on 127.0.0.1:0; stops when dropped.
pub struct Listener {
    pub url: String,
    state: Arc<parking_lot::Mutex<ListenerState>>,
    _task: tokio::task::JoinHandle<()>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self._task.abort();
    }
}

impl Listener {
    pub async fn start(script: &[(u16, &'static str)]) -> Listener {
        let state = Arc::new(parking_lot::Mutex::new(ListenerState {
            script: script.iter().copied().collect(),
            received: Vec::new(),
        }));
        let app = Router::new()
            .route("/om", post(receive))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind listener");
        let url = format!("http://{}/om", listener.local_addr().expect("addr"));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Listener {
            url,
            state,
            _task: task,
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().received.clone()
    }

    /// Every notification received so far, in arrival order.
    pub fn notifications(&self) -> Vec<Notification> {
        self.received()
            .iter()
            .flat_map(|r| parse_envelope(&r.body).notifications)
            .collect()
    }
}

async fn receive(
    State(state): State<Arc<parking_lot::Mutex<ListenerState>>>,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, &'static str) {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let mut st = state.lock();
    st.received.push(Received {
        content_type: header("content-type").unwrap_or_default(),
        soap_action: header("soapaction"),
        body,
    });
    let (status, answer) = st.script.pop_front().unwrap_or((200, ACK_TRUE));
    (
        StatusCode::from_u16(status).expect("scripted status"),
        answer,
    )
}

/// One `Notification` element: its id and the `sObject` fields by local name.
#[derive(Debug, Clone)]
pub struct Notification {
    pub id: String,
    pub fields: serde_json::Map<String, Value>,
}

/// The parts of an Outbound Message envelope the tests look at.
#[derive(Debug, Default)]
pub struct Envelope {
    pub organization_id: String,
    pub action_id: String,
    pub session_nil: bool,
    pub notifications: Vec<Notification>,
}

/// Parse by local names (any prefix), panicking on malformed XML: the sim must send well-formed envelopes.
pub fn parse_envelope(xml: &str) -> Envelope {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut path: Vec<String> = Vec::new();
    let mut env = Envelope::default();
    loop {
        let event = reader.read_event().expect("well-formed envelope");
        match event {
            Event::Start(e) => {
                let name = e.local_name().as_ref().to_string();
                if name == "Notification" {
                    env.notifications.push(Notification {
                        id: String::new(),
                        fields: serde_json::Map::new(),
                    });
                }
                path.push(name);
            }
            Event::Empty(e) if e.local_name().as_ref() == "SessionId" => {
                env.session_nil = e
                    .attributes()
                    .flatten()
                    .any(|a| a.key.local_name().as_ref() == "nil" && a.value.as_ref() == "true");
            }
            Event::End(_) => {
                path.pop();
            }
            Event::Text(t) => {
                let text = t.to_string();
                let names: Vec<&str> = path.iter().map(String::as_str).collect();
                match names.as_slice() {
                    [.., "notifications", "OrganizationId"] => env.organization_id = text,
                    [.., "notifications", "ActionId"] => env.action_id = text,
                    [.., "Notification", "Id"] => {
                        if let Some(n) = env.notifications.last_mut() {
                            n.id = text;
                        }
                    }
                    [.., "sObject", field] => {
                        if let Some(n) = env.notifications.last_mut() {
                            n.fields.insert((*field).to_string(), text.into());
                        }
                    }
                    _ => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    env
}

/// Create a credit report request as creditlink's integration user; returns its id.
pub async fn create_request(sim: &SimHandle, token: &str, key: &str) -> String {
    let body = json!({
        "Request_Key__c": key, "Bank__c": BANK_A, "Subject_Type__c": "Person",
        "National_Id__c": "CW-1980013101", "First_Name__c": "Maria", "Last_Name__c": "Martina",
        "Purpose__c": "Loan Application",
    });
    let (status, _, created) = send(
        client()
            .post(api(sim, "/sobjects/Credit_Report_Request__c"))
            .json(&body),
        token,
    )
    .await;
    assert_eq!(status, 201, "{created}");
    created["id"].as_str().expect("id").to_string()
}

/// The stored request, as `/__sim/records` shows it.
pub fn request(sim: &SimHandle, id: &str) -> serde_json::Map<String, Value> {
    sim.records("Credit_Report_Request__c")
        .into_iter()
        .find(|r| r["Id"] == id)
        .expect("request stored")
}

/// Poll `check` until it yields a value or `limit` passes.
pub async fn wait_for<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
