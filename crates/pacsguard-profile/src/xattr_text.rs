//! Extended attribute values shown the way administrators read them: file capabilities as
//! `getcap` prints them (`cap_net_raw=ep`), POSIX ACLs as `getfacl` does
//! (`user:alice:r--`). Decoding is total: a value that does not parse (a truncated or
//! hostile one) is shown escaped, byte for byte, never a panic.

use pacsguard_events::escape_bytes;

/// The value of extended attribute `name` as text.
pub fn show_xattr(name: &[u8], value: &[u8]) -> String {
    let decoded = match name {
        b"security.capability" => capabilities(value),
        b"system.posix_acl_access" | b"system.posix_acl_default" => acl(value),
        _ => None,
    };
    decoded.unwrap_or_else(|| escape_bytes(value))
}

/// Capability names by number (linux/capability.h); later ones are shown as `cap_N`.
const CAPABILITY_NAMES: [&str; 41] = [
    "cap_chown",
    "cap_dac_override",
    "cap_dac_read_search",
    "cap_fowner",
    "cap_fsetid",
    "cap_kill",
    "cap_setgid",
    "cap_setuid",
    "cap_setpcap",
    "cap_linux_immutable",
    "cap_net_bind_service",
    "cap_net_broadcast",
    "cap_net_admin",
    "cap_net_raw",
    "cap_ipc_lock",
    "cap_ipc_owner",
    "cap_sys_module",
    "cap_sys_rawio",
    "cap_sys_chroot",
    "cap_sys_ptrace",
    "cap_sys_pacct",
    "cap_sys_admin",
    "cap_sys_boot",
    "cap_sys_nice",
    "cap_sys_resource",
    "cap_sys_time",
    "cap_sys_tty_config",
    "cap_mknod",
    "cap_lease",
    "cap_audit_write",
    "cap_audit_control",
    "cap_setfcap",
    "cap_mac_override",
    "cap_mac_admin",
    "cap_syslog",
    "cap_wake_alarm",
    "cap_block_suspend",
    "cap_audit_read",
    "cap_perfmon",
    "cap_bpf",
    "cap_checkpoint_restore",
];

fn le32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// `struct vfs_cap_data` (revisions 1 to 3): `magic_etc`, then permitted/inheritable words.
fn capabilities(value: &[u8]) -> Option<String> {
    const REVISION_MASK: u32 = 0xff00_0000;
    const EFFECTIVE: u32 = 0x0000_0001;
    let magic = le32(value, 0)?;
    let (words, rootid) = match (magic & REVISION_MASK, value.len()) {
        (0x0100_0000, 12) => (1, None),
        (0x0200_0000, 20) => (2, None),
        (0x0300_0000, 24) => (2, Some(le32(value, 20)?)),
        _ => return None,
    };
    let effective = magic & EFFECTIVE != 0;
    let mut permitted = 0u64;
    let mut inheritable = 0u64;
    for word in 0..words {
        permitted |= u64::from(le32(value, 4 + 8 * word)?) << (32 * word);
        inheritable |= u64::from(le32(value, 8 + 8 * word)?) << (32 * word);
    }
    // Capabilities with the same flags are listed together, as getcap does.
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for bit in 0..64 {
        let (p, i) = (permitted >> bit & 1 == 1, inheritable >> bit & 1 == 1);
        if !p && !i {
            continue;
        }
        let flags = format!(
            "{}{}{}",
            if effective && p { "e" } else { "" },
            if i { "i" } else { "" },
            if p { "p" } else { "" }
        );
        let name = CAPABILITY_NAMES
            .get(bit)
            .map_or_else(|| format!("cap_{bit}"), |n| (*n).to_string());
        match groups.iter_mut().find(|(f, _)| *f == flags) {
            Some((_, names)) => names.push(name),
            None => groups.push((flags, vec![name])),
        }
    }
    let mut text: Vec<String> = groups
        .into_iter()
        .map(|(flags, names)| format!("{}={flags}", names.join(",")))
        .collect();
    if text.is_empty() {
        text.push("(no capabilities)".into());
    }
    if let Some(rootid) = rootid {
        text.push(format!("[rootid={rootid}]"));
    }
    Some(text.join(" "))
}

/// `posix_acl_xattr`: version 2, then 8-byte entries (tag, permissions, id).
fn acl(value: &[u8]) -> Option<String> {
    const VERSION: u32 = 2;
    if le32(value, 0)? != VERSION || !(value.len() - 4).is_multiple_of(8) {
        return None;
    }
    let mut entries = Vec::new();
    for entry in value[4..].chunks_exact(8) {
        let tag = u16::from_le_bytes([entry[0], entry[1]]);
        let perm = u16::from_le_bytes([entry[2], entry[3]]);
        let id = u32::from_le_bytes([entry[4], entry[5], entry[6], entry[7]]);
        let who = match tag {
            0x01 => "user:".to_string(),
            0x02 => format!("user:{}", user_name(id)),
            0x04 => "group:".to_string(),
            0x08 => format!("group:{}", group_name(id)),
            0x10 => "mask:".to_string(),
            0x20 => "other:".to_string(),
            _ => return None,
        };
        if perm & !7 != 0 {
            return None;
        }
        let bit = |mask: u16, c: char| if perm & mask != 0 { c } else { '-' };
        entries.push(format!(
            "{who}:{}{}{}",
            bit(4, 'r'),
            bit(2, 'w'),
            bit(1, 'x')
        ));
    }
    Some(entries.join(","))
}

/// The user's name where this host knows the uid, else the number (as getfacl does).
fn user_name(uid: u32) -> String {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map_or_else(|| uid.to_string(), |u| escape_bytes(u.name.as_bytes()))
}

fn group_name(gid: u32) -> String {
    nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid))
        .ok()
        .flatten()
        .map_or_else(|| gid.to_string(), |g| escape_bytes(g.name.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_as_getcap_prints_them() {
        // cap_net_raw=ep, revision 2 (what `setcap cap_net_raw=ep` writes)
        let mut v = vec![0x01, 0, 0, 0x02];
        v.extend_from_slice(&(1u32 << 13).to_le_bytes());
        v.extend_from_slice(&[0; 12]);
        assert_eq!(show_xattr(b"security.capability", &v), "cap_net_raw=ep");
        // Truncated: shown raw, not guessed.
        assert_eq!(
            show_xattr(b"security.capability", &v[..7]),
            escape_bytes(&v[..7])
        );
    }

    #[test]
    fn acls_as_getfacl_prints_them() {
        let mut v = 2u32.to_le_bytes().to_vec();
        for (tag, perm, id) in [
            (1u16, 6u16, u32::MAX),
            (2, 4, 0),
            (4, 4, u32::MAX),
            (0x20, 0, u32::MAX),
        ] {
            v.extend_from_slice(&tag.to_le_bytes());
            v.extend_from_slice(&perm.to_le_bytes());
            v.extend_from_slice(&id.to_le_bytes());
        }
        assert_eq!(
            show_xattr(b"system.posix_acl_access", &v),
            "user::rw-,user:root:r--,group::r--,other::---"
        );
        assert_eq!(
            show_xattr(b"system.posix_acl_access", &v[..9]),
            escape_bytes(&v[..9])
        );
    }
}
