//! The languages the dashboards, the handover page and alert texts are written in.

use serde::{Deserialize, Serialize};

/// A display language. Japanese first: the clinicians' own; English for visiting staff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// Japanese (default).
    #[default]
    Ja,
    /// English.
    En,
}
