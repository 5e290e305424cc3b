//! Where drctl keeps files by default: systemd's per-service directories
//! when the unit sets them (`StateDirectory=` gives `$STATE_DIRECTORY`,
//! `RuntimeDirectory=` `$RUNTIME_DIRECTORY`, `CacheDirectory=`
//! `$CACHE_DIRECTORY`), else the XDG base directories (`~/.local/state/drctl`, …).

use std::path::{Path, PathBuf};

/// The first absolute path of a systemd directory variable (it may list
/// several, separated by `:`).
fn systemd_dir(var: &str) -> Option<PathBuf> {
    let value = std::env::var_os(var)?;
    let value = value.to_str()?;
    value
        .split(':')
        .map(Path::new)
        .find(|p| p.is_absolute())
        .map(Path::to_path_buf)
}

/// An environment variable holding one absolute path.
fn absolute_var(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
}

/// The state directory: `$STATE_DIRECTORY`, else `$XDG_STATE_HOME/drctl`
/// (`~/.local/state/drctl`). `None` when neither can be found (no home).
pub fn state_dir() -> Option<PathBuf> {
    systemd_dir("STATE_DIRECTORY").or_else(|| dirs::state_dir().map(|d| d.join("drctl")))
}

/// The runtime directory (the control socket's): `$RUNTIME_DIRECTORY`, else
/// `$XDG_RUNTIME_DIR/drctl`, else `/run/drctl` for root. `None` for a user
/// without a runtime dir (a shell over ssh, `sudo -u`).
pub fn runtime_dir() -> Option<PathBuf> {
    systemd_dir("RUNTIME_DIRECTORY")
        .or_else(|| absolute_var("XDG_RUNTIME_DIR").map(|d| d.join("drctl")))
        .or_else(|| is_root().then(|| PathBuf::from(SYSTEM_RUNTIME_DIR)))
}

/// The runtime directory of the shipped unit (`RuntimeDirectory=drctl`), and root's default.
pub const SYSTEM_RUNTIME_DIR: &str = "/run/drctl";

/// The cache directory: `$CACHE_DIRECTORY`, else `$XDG_CACHE_HOME/drctl`
/// (`~/.cache/drctl`). `None` when neither can be found (no home).
pub fn cache_dir() -> Option<PathBuf> {
    systemd_dir("CACHE_DIRECTORY").or_else(|| dirs::cache_dir().map(|d| d.join("drctl")))
}

/// Whether this process runs as root (effective uid 0).
fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Creates `dir` and its missing parents, private (0700) for drctl's own files.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// `name` as a file name's part: anything but letters, digits, `-`, `_` and
/// `.` becomes `_` (an agent's name in a socket's or a recording's name).
pub fn file_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systemd_dirs_take_the_first_absolute_entry() {
        // SAFETY: this test alone reads or writes this variable.
        unsafe { std::env::set_var("DRCTL_TEST_DIR_VAR", "rel:/var/lib/drctl:/other") };
        assert_eq!(
            systemd_dir("DRCTL_TEST_DIR_VAR"),
            Some(PathBuf::from("/var/lib/drctl"))
        );
        unsafe { std::env::set_var("DRCTL_TEST_DIR_VAR", "relative") };
        assert_eq!(systemd_dir("DRCTL_TEST_DIR_VAR"), None);
    }

    #[test]
    fn a_name_keeps_letters_digits_dash_underscore_dot_and_nothing_else() {
        assert_eq!(super::file_safe("ann-1_b.c"), "ann-1_b.c");
        // No separator survives: the name stays one path component.
        assert_eq!(super::file_safe("../x y/é"), ".._x_y__");
    }
}
