//! [`Secret`]: a string that never shows itself.

use std::fmt;
use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What a secret prints as, everywhere.
pub const REDACTED: &str = "<redacted>";

/// A secret (the agent's password): `Debug`, `Display` and `Serialize` print
/// [`REDACTED`], never the value; only [`Secret::expose`] gives it out.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret value, for the one place that must send it (the backend's `connect`).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(REDACTED)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret)
    }
}

/// The largest `password-file` read: a password is short, and a bound keeps
/// a wrong path (a log, a device) from being read into memory.
pub const MAX_PASSWORD_FILE: u64 = 64 * 1024;

/// Reads a password file: a regular file (not a FIFO, device or directory),
/// not readable by group or others, at most [`MAX_PASSWORD_FILE`] bytes, one
/// trailing newline dropped. The error names the file and what was expected.
pub(crate) fn read_password_file(path: &Path) -> Result<Secret, String> {
    read_secret(path, |_, mode| {
        if mode & 0o044 != 0 {
            let shown = path.display();
            return Err(format!(
                "{shown} is readable by group or others (mode {:o}): \
                 expected mode 0600 or 0400 (chmod 600 {shown})",
                mode & 0o777
            ));
        }
        Ok(())
    })
}

/// The environment variable systemd sets to the service's credentials
/// directory (`LoadCredential=`).
pub const CREDENTIALS_DIRECTORY: &str = "CREDENTIALS_DIRECTORY";

/// Reads the systemd credential `name` from `$CREDENTIALS_DIRECTORY`.
///
/// systemd writes a credential 0400, owned by root, and lets a service of
/// another user read it through an ACL entry, whose mask `stat` shows as the
/// group bits (mode 0440): so group read is allowed here, unlike for a
/// `password-file`; no bits for others, no write bits but the owner's, and
/// the owner is root or this process's user. Same size bounds as a file.
pub(crate) fn read_credential(name: &str) -> Result<Secret, String> {
    read_credential_in(std::env::var_os(CREDENTIALS_DIRECTORY), name)
}

/// [`read_credential`] with `$CREDENTIALS_DIRECTORY` given.
fn read_credential_in(dir: Option<std::ffi::OsString>, name: &str) -> Result<Secret, String> {
    let dir = dir.filter(|d| !d.is_empty()).ok_or_else(|| {
        format!(
            "${CREDENTIALS_DIRECTORY} is not set: the credential {name:?} is handed over \
                 by systemd (LoadCredential={name}:/etc/drctl/password in the unit); outside \
                 systemd use agent.password-file or agent.password-env"
        )
    })?;
    let path = Path::new(&dir).join(name);
    read_secret(&path, |uid, mode| {
        let shown = path.display();
        if mode & 0o027 != 0 {
            return Err(format!(
                "{shown} is accessible to others (mode {:o}): expected a systemd credential \
                 (mode 0400, or 0440 with an ACL)",
                mode & 0o777
            ));
        }
        #[cfg(unix)]
        {
            // SAFETY: geteuid has no preconditions and cannot fail.
            let me = unsafe { libc::geteuid() };
            if uid != 0 && uid != me {
                return Err(format!(
                    "{shown} belongs to uid {uid}: expected a systemd credential, owned by \
                     root or by this service's user (uid {me})"
                ));
            }
        }
        Ok(())
    })
}

/// Reads a secret from a regular file that passes `allowed(owner uid,
/// mode)`, at most [`MAX_PASSWORD_FILE`] bytes, one trailing newline dropped.
fn read_secret(
    path: &Path,
    allowed: impl FnOnce(u32, u32) -> Result<(), String>,
) -> Result<Secret, String> {
    let shown = path.display();
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    // Opening a FIFO for reading blocks until a writer comes: O_NONBLOCK
    // returns at once, and the fstat below refuses it.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    let file = options
        .open(path)
        .map_err(|e| format!("cannot open {shown}: {e}"))?;
    // The opened file itself, so that nothing can swap the path in between.
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot stat {shown}: {e}"))?;
    if !meta.is_file() {
        return Err(format!(
            "{shown} is not a regular file ({}): expected a file holding the password",
            file_type_name(&meta.file_type())
        ));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        allowed(meta.uid(), meta.mode())?;
    }
    #[cfg(not(unix))]
    allowed(0, 0)?;
    if meta.len() > MAX_PASSWORD_FILE {
        return Err(format!(
            "{shown} is {} bytes: expected a password of at most {MAX_PASSWORD_FILE} bytes",
            meta.len()
        ));
    }
    let mut text = String::new();
    // Bounded even if the file grows after the check.
    file.take(MAX_PASSWORD_FILE + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read {shown}: {e}"))?;
    if text.len() as u64 > MAX_PASSWORD_FILE {
        return Err(format!(
            "{shown} is more than {MAX_PASSWORD_FILE} bytes: expected a password"
        ));
    }
    let password = text.strip_suffix('\n').unwrap_or(&text);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if password.is_empty() {
        return Err(format!("{shown} is empty"));
    }
    Ok(Secret::new(password))
}

/// What kind of file this is, for an error message.
fn file_type_name(t: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_socket() {
            return "a socket";
        }
        if t.is_char_device() || t.is_block_device() {
            return "a device";
        }
    }
    if t.is_dir() {
        "a directory"
    } else {
        "a special file"
    }
}

/// Whether a free-form key (in a backend's table) holds a secret.
pub(crate) fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    (k.contains("password") && !k.ends_with("-env") && !k.ends_with("-file"))
        || k.contains("secret")
        || k.contains("token")
}

/// Replaces secret-looking values in a free-form table with [`REDACTED`].
pub(crate) fn redact(value: &mut toml::Value) {
    match value {
        toml::Value::Table(t) => {
            for (k, v) in t.iter_mut() {
                if is_secret_key(k) && !v.is_table() {
                    *v = toml::Value::String(REDACTED.to_owned());
                } else {
                    redact(v);
                }
            }
        }
        toml::Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_its_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "<redacted> <redacted>");
        assert_eq!(
            serde_json::to_string(&s).expect("serializes"),
            "\"<redacted>\""
        );
        assert_eq!(s.expose(), "hunter2");
    }

    #[cfg(unix)]
    #[test]
    #[cfg(unix)]
    fn a_credential_may_show_systemds_acl_mask_but_nothing_for_others() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("password");
        std::fs::write(&file, "pw\n").unwrap();
        let read = |mode: u32| {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
            read_credential_in(Some(dir.path().into()), "password").map(|s| s.0)
        };
        // 0440: a root-owned 0400 file with an ACL entry for the service's user.
        for ok in [0o400, 0o440, 0o600] {
            assert_eq!(read(ok), Ok("pw".to_owned()), "{ok:o}");
        }
        for bad in [0o444, 0o404, 0o460, 0o402] {
            let e = read(bad).unwrap_err();
            assert!(e.contains("accessible to others"), "{bad:o}: {e}");
        }
        let e = read_credential_in(None, "password").unwrap_err();
        assert!(
            e.contains("$CREDENTIALS_DIRECTORY is not set")
                && e.contains("LoadCredential=password:"),
            "{e}"
        );
        let e = read_credential_in(Some(dir.path().into()), "other").unwrap_err();
        assert!(e.contains("cannot open"), "{e}");
    }

    #[test]
    fn a_password_file_must_be_a_small_regular_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("a temp dir");
        let e = read_password_file(dir.path()).unwrap_err();
        assert!(e.contains("not a regular file (a directory)"), "{e}");
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'a'; MAX_PASSWORD_FILE as usize + 1]).expect("write");
        std::fs::set_permissions(&big, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let e = read_password_file(&big).unwrap_err();
        assert!(
            e.contains("big is 65537 bytes") && e.contains("at most 65536"),
            "{e}"
        );
        let ok = dir.path().join("ok");
        std::fs::write(&ok, "pw\n").expect("write");
        std::fs::set_permissions(&ok, std::fs::Permissions::from_mode(0o400)).expect("chmod");
        assert_eq!(read_password_file(&ok).map(|s| s.0), Ok("pw".to_owned()));
    }
}
