//! Who is running this command, for the evidence.

use pacsguard_events::Actor;

/// The effective OS user, and the `sudo` user behind it if any.
pub fn current_actor() -> Actor {
    let uid = nix::unistd::geteuid();
    let user = nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map_or_else(|| format!("uid {}", uid.as_raw()), |u| u.name);
    // SUDO_USER is set by sudo for the process it starts; recorded as a claim beside the
    // real uid, never instead of it.
    let sudo_user = std::env::var("SUDO_USER").ok().filter(|s| !s.is_empty());
    Actor {
        user,
        uid: uid.as_raw(),
        sudo_user,
    }
}
