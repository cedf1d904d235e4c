//! The gateway's own user identity towards an upstream that requires one
//! (`upstream_identity` of a route): the sender's identity item is never forwarded, so
//! an archive that wants to know who connects is told the gateway's name, from the
//! configuration, and a passcode read from a file when the gateway binds or reloads (the
//! configuration holds no secret, and a changed passcode file is taken by a reload).

use std::io::Read as _;
use std::path::Path;

use crate::config::UpstreamIdentity;
use crate::identity::{MAX_PASSCODE_BYTES, Request, kind};
use crate::pdu::SubItem;
use crate::tls::{FileError, error};

/// The user identity item (58H) the gateway sends its upstream for `identity`: type 2
/// with the passcode of `passcode_file`, or type 1 (username only) without one. No
/// positive response is asked: the gateway has nothing to do with one (PS3.7
/// D.3.3.7.2 gives none for types 1 and 2 any content).
pub fn upstream_item(identity: &UpstreamIdentity) -> Result<SubItem, FileError> {
    let (kind, secondary) = match &identity.passcode_file {
        None => (kind::USERNAME, Vec::new()),
        Some(path) => (kind::USERNAME_AND_PASSCODE, passcode(path)?),
    };
    Ok(Request {
        kind,
        positive_response_requested: false,
        primary: identity.username.as_bytes().to_vec(),
        secondary,
    }
    .encode())
}

/// The first line of `path` (its line ending taken off): a regular file, not empty, at
/// most [`MAX_PASSCODE_BYTES`], nothing after the line.
fn passcode(path: &Path) -> Result<Vec<u8>, FileError> {
    let file = crate::lockout_file::open_without_waiting(path).map_err(|e| error(path, e))?;
    let meta = file.metadata().map_err(|e| error(path, e))?;
    if !meta.is_file() {
        return Err(error(path, "not a regular file"));
    }
    let mut bytes = Vec::new();
    // The line, its ending (two bytes at most), and one byte more to know it is too long.
    file.take(MAX_PASSCODE_BYTES as u64 + 3)
        .read_to_end(&mut bytes)
        .map_err(|e| error(path, e))?;
    let line = bytes
        .strip_suffix(b"\n")
        .map_or(bytes.as_slice(), |l| l.strip_suffix(b"\r").unwrap_or(l));
    if line.contains(&b'\n') {
        return Err(error(
            path,
            "holds more than one line (the passcode is its only line)",
        ));
    }
    if line.len() > MAX_PASSCODE_BYTES {
        return Err(error(
            path,
            format!(
                "a passcode longer than {MAX_PASSCODE_BYTES} bytes (identity::MAX_PASSCODE_BYTES)"
            ),
        ));
    }
    if line.is_empty() {
        return Err(error(path, "empty: no passcode"));
    }
    Ok(line.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(file: Option<&Path>) -> UpstreamIdentity {
        UpstreamIdentity {
            username: "gateway".into(),
            passcode_file: file.map(Path::to_path_buf),
        }
    }

    fn dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "pacsguard-credential-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).expect("mkdir");
        dir
    }

    #[test]
    fn the_passcode_file_gives_a_type_2_item_and_none_a_type_1() {
        let d = dir();
        let file = d.join("pass");
        std::fs::write(&file, "s3cret\r\n").expect("write");
        let item = upstream_item(&identity(Some(&file))).expect("read");
        let request = Request::decode(&item.value).expect("decode");
        assert_eq!(request.kind, kind::USERNAME_AND_PASSCODE);
        assert_eq!(request.primary, b"gateway");
        assert_eq!(request.secondary, b"s3cret");
        assert!(!request.positive_response_requested);
        let item = upstream_item(&identity(None)).expect("no file");
        let request = Request::decode(&item.value).expect("decode");
        assert_eq!((request.kind, request.secondary.len()), (kind::USERNAME, 0));
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn a_passcode_at_the_limit_is_read_and_a_bad_file_is_named_with_its_reason() {
        let d = dir();
        let file = d.join("pass");
        std::fs::write(&file, "p".repeat(MAX_PASSCODE_BYTES) + "\n").expect("write");
        assert!(
            upstream_item(&identity(Some(&file))).is_ok(),
            "at the limit"
        );
        let cases: [(Vec<u8>, &str); 3] = [
            (
                "p".repeat(MAX_PASSCODE_BYTES + 1).into_bytes(),
                "longer than",
            ),
            (b"\n".to_vec(), "empty"),
            (b"one\ntwo\n".to_vec(), "more than one line"),
        ];
        for (bytes, why) in cases {
            std::fs::write(&file, bytes).expect("write");
            let e = upstream_item(&identity(Some(&file))).expect_err(why);
            assert_eq!(e.path, file);
            assert!(e.reason.contains(why), "{why}: {e}");
        }
        let e = upstream_item(&identity(Some(&d.join("missing")))).expect_err("missing");
        assert!(e.to_string().contains("missing"), "{e}");
        let e = upstream_item(&identity(Some(&d))).expect_err("a directory");
        assert!(e.reason.contains("not a regular file"), "{e}");
        // A FIFO is refused at once: opening one waited for a writer, holding the
        // start or the reload (review s11-r16).
        let fifo = d.join("fifo");
        crate::lockout_file::tests::make_fifo(&fifo);
        let (tx, rx) = std::sync::mpsc::channel();
        let id = identity(Some(&fifo));
        std::thread::spawn(move || tx.send(upstream_item(&id).map(|_| ())));
        let e = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("answered, not waiting for a writer")
            .expect_err("a FIFO");
        assert!(e.reason.contains("not a regular file"), "{e}");
        let _ = std::fs::remove_dir_all(d);
    }
}
