//! Where drctl keeps files by default: systemd's per-service directories
//! when the unit sets them (`StateDirectory=` gives `$STATE_DIRECTORY`),
//! else the XDG base directories (`~/.local/state/drctl`, …).

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

/// The state directory: `$STATE_DIRECTORY`, else `$XDG_STATE_HOME/drctl`
/// (`~/.local/state/drctl`). `None` when neither can be found (no home).
pub fn state_dir() -> Option<PathBuf> {
    systemd_dir("STATE_DIRECTORY").or_else(|| dirs::state_dir().map(|d| d.join("drctl")))
}

/// Creates `dir` and its missing parents, private (0700) for drctl's own files.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
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
}
