//! Roles, ordered: each one may do everything the roles before it may.

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Sees the overview, findings and the trail.
    Viewer,
    /// Also acknowledges alerts, starts checks and scans.
    Operator,
    /// Also accepts differences into the signed profile.
    Approver,
    /// Also manages accounts and settings.
    Administrator,
}

impl Role {
    pub const ALL: [Role; 4] = [
        Role::Viewer,
        Role::Operator,
        Role::Approver,
        Role::Administrator,
    ];

    /// The stable name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Approver => "approver",
            Role::Administrator => "administrator",
        }
    }

    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_order_is_privilege() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert!(Role::Viewer < Role::Operator && Role::Approver < Role::Administrator);
        assert_eq!(Role::parse("root"), None);
    }
}
