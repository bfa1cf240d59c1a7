//! Care-team scoping: the ONE place that decides whether a user may see a patient.
//!
//! Every patient route reaches patient data only through the
//! [`ScopedPatient`](super::api::scope::ScopedPatient) extractor, which calls
//! [`decide`] and writes the audit record; lists filter through [`decide`] too.
//! The policy itself is a pure function so it can be tested exhaustively.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::data::{AlertId, CareTeamId, PatientId, UserId};

/// What a user does in the clinic; decides what they may do, not which patients they see.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Visiting nurse.
    Nurse,
    /// Attending doctor.
    Doctor,
    /// Doctor on the night / weekend rota; reaches patients through alerts routed to them.
    OnCallDoctor,
    /// Night reception: sees and routes alerts of their care teams.
    Coordinator,
    /// Manages accounts and reads the audit log; sees no patient data by role alone.
    Administrator,
}

impl Role {
    /// Clinical roles may use break-glass; administrators may not (they are not treating anyone).
    pub fn is_clinical(self) -> bool {
        !matches!(self, Role::Administrator)
    }
}

/// The authenticated user as the access policy sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Stable user id.
    pub user_id: UserId,
    /// Roles held.
    pub roles: BTreeSet<Role>,
    /// Care teams the user belongs to.
    pub care_teams: BTreeSet<CareTeamId>,
}

impl Principal {
    /// Does the user hold `role`?
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

/// An alert currently routed to a user (open: not yet resolved).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutedAlert {
    /// The alert.
    pub alert_id: AlertId,
    /// Its patient.
    pub patient_id: PatientId,
    /// The user it is routed to.
    pub routed_to: UserId,
}

/// A break-glass grant: access to one patient for a limited time, with a reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakGlassGrant {
    /// Who broke the glass.
    pub user_id: UserId,
    /// For which patient.
    pub patient_id: PatientId,
    /// The reason they gave (recorded in every audit row the grant allows).
    pub reason: String,
    /// When the grant lapses.
    pub expires_at: DateTime<Utc>,
}

/// Everything besides the user that the decision depends on.
#[derive(Debug, Clone, Copy)]
pub struct AccessFacts<'a> {
    /// The patient asked for.
    pub patient_id: &'a PatientId,
    /// The patient's care teams.
    pub patient_care_teams: &'a BTreeSet<CareTeamId>,
    /// Open alerts routed to anyone (the policy picks the user's own).
    pub routed_alerts: &'a [RoutedAlert],
    /// Live break-glass grants.
    pub break_glass: &'a [BreakGlassGrant],
    /// Now.
    pub now: DateTime<Utc>,
}

/// Why access was allowed; recorded in the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessBasis {
    /// The user is on one of the patient's care teams.
    CareTeam(CareTeamId),
    /// An open alert for the patient is routed to this on-call doctor.
    OnCallAlert(AlertId),
    /// Break-glass, with the stated reason.
    BreakGlass {
        /// The user's stated reason.
        reason: String,
    },
}

impl AccessBasis {
    /// Stable name for the audit log.
    pub fn as_str(&self) -> &'static str {
        match self {
            AccessBasis::CareTeam(_) => "care_team",
            AccessBasis::OnCallAlert(_) => "on_call_alert",
            AccessBasis::BreakGlass { .. } => "break_glass",
        }
    }

    /// The break-glass reason, if this is break-glass access.
    pub fn break_glass_reason(&self) -> Option<&str> {
        match self {
            AccessBasis::BreakGlass { reason } => Some(reason),
            _ => None,
        }
    }
}

/// Decides whether `user` may see the patient in `facts`; `None` means refused.
///
/// Order matters only for what the audit log says: the care team is the normal
/// basis, an on-call alert the next, break-glass the last resort.
pub fn decide(user: &Principal, facts: &AccessFacts<'_>) -> Option<AccessBasis> {
    if let Some(team) = user
        .care_teams
        .intersection(facts.patient_care_teams)
        .next()
    {
        return Some(AccessBasis::CareTeam(team.clone()));
    }
    if user.has(Role::OnCallDoctor)
        && let Some(alert) = facts
            .routed_alerts
            .iter()
            .find(|a| &a.patient_id == facts.patient_id && a.routed_to == user.user_id)
    {
        return Some(AccessBasis::OnCallAlert(alert.alert_id.clone()));
    }
    if user.roles.iter().any(|r| r.is_clinical())
        && let Some(grant) = facts.break_glass.iter().find(|g| {
            g.user_id == user.user_id
                && &g.patient_id == facts.patient_id
                && g.expires_at > facts.now
        })
    {
        return Some(AccessBasis::BreakGlass {
            reason: grant.reason.clone(),
        });
    }
    None
}

/// Shortest break-glass reason accepted: long enough that "x" is not a reason.
pub const MIN_BREAK_GLASS_REASON_CHARS: usize = 10;

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn user(id: &str, roles: &[Role], teams: &[&str]) -> Principal {
        Principal {
            user_id: UserId(id.into()),
            roles: roles.iter().copied().collect(),
            care_teams: teams.iter().map(|t| CareTeamId((*t).into())).collect(),
        }
    }

    fn teams(t: &[&str]) -> BTreeSet<CareTeamId> {
        t.iter().map(|t| CareTeamId((*t).into())).collect()
    }

    struct World {
        patient: PatientId,
        patient_teams: BTreeSet<CareTeamId>,
        routed: Vec<RoutedAlert>,
        grants: Vec<BreakGlassGrant>,
        now: DateTime<Utc>,
    }

    impl World {
        fn new() -> Self {
            Self {
                patient: PatientId("p1".into()),
                patient_teams: teams(&["setagaya-a"]),
                routed: vec![],
                grants: vec![],
                now: Utc::now(),
            }
        }
        fn facts(&self) -> AccessFacts<'_> {
            AccessFacts {
                patient_id: &self.patient,
                patient_care_teams: &self.patient_teams,
                routed_alerts: &self.routed,
                break_glass: &self.grants,
                now: self.now,
            }
        }
    }

    #[test]
    fn care_team_member_is_allowed_and_outsider_refused() {
        let w = World::new();
        let nurse = user("n1", &[Role::Nurse], &["setagaya-a", "tamagawa-b"]);
        assert_eq!(
            decide(&nurse, &w.facts()),
            Some(AccessBasis::CareTeam(CareTeamId("setagaya-a".into())))
        );
        let other = user(
            "n2",
            &[Role::Nurse, Role::Doctor, Role::Coordinator],
            &["tamagawa-b"],
        );
        assert_eq!(decide(&other, &w.facts()), None);
    }

    #[test]
    fn administrator_sees_no_patient_by_role_alone() {
        let w = World::new();
        let admin = user("a1", &[Role::Administrator], &[]);
        assert_eq!(decide(&admin, &w.facts()), None);
    }

    #[test]
    fn on_call_doctor_is_allowed_only_while_an_alert_for_that_patient_is_routed_to_them() {
        let mut w = World::new();
        let oncall = user("d9", &[Role::OnCallDoctor], &["tamagawa-b"]);
        assert_eq!(decide(&oncall, &w.facts()), None);
        // Routed to someone else, or for another patient: still refused.
        w.routed.push(RoutedAlert {
            alert_id: AlertId("a1".into()),
            patient_id: w.patient.clone(),
            routed_to: UserId("d8".into()),
        });
        w.routed.push(RoutedAlert {
            alert_id: AlertId("a2".into()),
            patient_id: PatientId("p2".into()),
            routed_to: UserId("d9".into()),
        });
        assert_eq!(decide(&oncall, &w.facts()), None);
        w.routed.push(RoutedAlert {
            alert_id: AlertId("a3".into()),
            patient_id: w.patient.clone(),
            routed_to: UserId("d9".into()),
        });
        assert_eq!(
            decide(&oncall, &w.facts()),
            Some(AccessBasis::OnCallAlert(AlertId("a3".into())))
        );
        // A plain doctor with an alert routed to them does not get the on-call path.
        let doctor = user("d9", &[Role::Doctor], &[]);
        assert_eq!(decide(&doctor, &w.facts()), None);
    }

    #[test]
    fn break_glass_allows_until_expiry_and_only_for_clinical_roles() {
        let mut w = World::new();
        let grant = |who: &str, p: &str, mins: i64, now: DateTime<Utc>| BreakGlassGrant {
            user_id: UserId(who.into()),
            patient_id: PatientId(p.into()),
            reason: "patient called the night line".into(),
            expires_at: now + Duration::minutes(mins),
        };
        w.grants.push(grant("n2", "p1", -1, w.now)); // expired
        w.grants.push(grant("n2", "p2", 30, w.now)); // other patient
        w.grants.push(grant("a1", "p1", 30, w.now)); // administrator
        let nurse = user("n2", &[Role::Nurse], &["tamagawa-b"]);
        let admin = user("a1", &[Role::Administrator], &[]);
        assert_eq!(decide(&nurse, &w.facts()), None);
        assert_eq!(decide(&admin, &w.facts()), None);
        w.grants.push(grant("n2", "p1", 30, w.now));
        assert_eq!(
            decide(&nurse, &w.facts())
                .as_ref()
                .and_then(AccessBasis::break_glass_reason),
            Some("patient called the night line")
        );
    }
}
