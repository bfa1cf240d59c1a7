//! Signed outgoing webhooks, so a phone-call or pager service can be attached.
//!
//! Each request carries `X-Mimamori-Timestamp` (Unix seconds), `X-Mimamori-Signature:
//! v1=<hex HMAC-SHA256(secret, "{timestamp}.{body}")>` and an `Idempotency-Key` naming the alert
//! transition, so a retried request is recognisably the same notification. A delivery counts
//! only when the receiver answers 2xx with a JSON body whose `id` echoes the idempotency key; other
//! answers and transport errors are retried with exponential backoff, up to a limit.

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::lifecycle::Alert;
use super::service::AlertEvent;

/// Header carrying the signing time.
pub const TIMESTAMP_HEADER: &str = "x-mimamori-timestamp";
/// Header carrying the signature.
pub const SIGNATURE_HEADER: &str = "x-mimamori-signature";
/// Header carrying the idempotency key.
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// Where and how to deliver.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// URL we POST to.
    pub endpoint: String,
    /// Shared secret for the signature (from the environment in deployment, never logged).
    #[serde(default)]
    pub secret: String,
    /// Attempts before the delivery is declared failed.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Wait before the first retry, ms; doubled each retry.
    #[serde(default = "default_first_backoff_ms")]
    pub first_backoff_ms: u64,
    /// Per-request timeout, ms.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

/// 5 attempts.
pub const fn default_max_attempts() -> u32 {
    5
}
/// 1 s.
pub const fn default_first_backoff_ms() -> u64 {
    1_000
}
/// 10 s.
pub const fn default_timeout_ms() -> u64 {
    10_000
}

/// What is posted: identifiers and the alert's clinical facts, never names.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WebhookBody {
    /// The idempotency key, to be echoed back.
    pub id: String,
    /// The alert.
    pub alert: Alert,
    /// The state the transition led to.
    pub state: String,
}

/// What the receiver answers.
#[derive(Clone, Debug, Deserialize)]
struct Receipt {
    id: String,
}

/// Why a delivery failed.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// Every attempt failed; the last reason is kept.
    #[error("webhook delivery failed after {attempts} attempts: {last}")]
    Exhausted {
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        last: String,
    },
    /// The request could not be built.
    #[error("webhook client could not be built: {0}")]
    Client(#[from] reqwest::Error),
}

/// The idempotency key of one notification: the alert and the transition that caused it.
pub fn idempotency_key(event: &AlertEvent) -> String {
    format!("{}:{}", event.alert.id, event.transition.seq)
}

/// `v1=<hex HMAC-SHA256(secret, "{timestamp}.{body}")>`.
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("hmac takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Largest receipt read, bytes.
const MAX_RECEIPT_BYTES: usize = 16 * 1024;

/// A webhook sender.
#[derive(Clone, Debug)]
pub struct Webhook {
    config: WebhookConfig,
    client: reqwest::Client,
}

impl Webhook {
    /// A sender for `config`.
    pub fn new(config: WebhookConfig) -> Result<Self, DeliveryError> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.timeout_ms))
            .build()?;
        Ok(Self { config, client })
    }

    /// Delivers one alert event; returns the number of attempts once the receiver confirmed.
    pub async fn deliver(&self, event: &AlertEvent) -> Result<u32, DeliveryError> {
        let key = idempotency_key(event);
        let body = WebhookBody {
            id: key.clone(),
            alert: event.alert.clone(),
            state: event.transition.to.as_str().to_owned(),
        };
        self.send(&key, &body).await
    }

    /// Posts any JSON body under `key`, signed, retried with backoff until the receiver echoes
    /// `key`; returns the number of attempts.
    pub async fn send(&self, key: &str, body: &impl Serialize) -> Result<u32, DeliveryError> {
        let body = serde_json::to_vec(body).map_err(|e| DeliveryError::Exhausted {
            attempts: 0,
            last: e.to_string(),
        })?;
        let mut backoff = Duration::from_millis(self.config.first_backoff_ms);
        let mut last = String::new();
        for attempt in 1..=self.config.max_attempts.max(1) {
            match self.attempt(key, &body).await {
                Ok(()) => return Ok(attempt),
                Err(reason) => {
                    tracing::warn!(idempotency_key = key, attempt, error = %reason, "Webhook delivery attempt failed.");
                    last = reason;
                }
            }
            if attempt < self.config.max_attempts {
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
        }
        Err(DeliveryError::Exhausted {
            attempts: self.config.max_attempts.max(1),
            last,
        })
    }

    async fn attempt(&self, key: &str, body: &[u8]) -> Result<(), String> {
        // Signed at each attempt: a receiver may refuse stale timestamps (replay protection).
        let timestamp = chrono::Utc::now().timestamp();
        let response = self
            .client
            .post(&self.config.endpoint)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(TIMESTAMP_HEADER, timestamp)
            .header(
                SIGNATURE_HEADER,
                signature(self.config.secret.as_bytes(), timestamp, body),
            )
            .header(IDEMPOTENCY_HEADER, key)
            .body(body.to_vec())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("status {status}"));
        }
        // Bounded read: a receipt is tiny, and a receiver is not trusted to say so.
        let mut response = response;
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
            if bytes.len() + chunk.len() > MAX_RECEIPT_BYTES {
                return Err("receipt too large".into());
            }
            bytes.extend_from_slice(&chunk);
        }
        match serde_json::from_slice::<Receipt>(&bytes) {
            Ok(r) if r.id == key => Ok(()),
            Ok(r) => Err(format!("receipt names {} instead of {key}", r.id)),
            Err(e) => Err(format!("no receipt: {e}")),
        }
    }
}
