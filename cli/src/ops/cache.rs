//! S5: the preferred-site cache. Written once S2 has read the agent's Person
//! object, read at the next start to pick the first site to try; S2–S4 run
//! all the same. Off by default (`startup.cache-preferred`) and never with
//! hot seating (the config refuses both together).
//!
//! The file (`startup.cache-file`, default `<state dir>/preferred-<agent>.json`)
//! is one small JSON object, `{"agent":"ann","preferred":"site2"}`. A
//! missing, unreadable, corrupt or foreign one (another agent's, another
//! user's, not a regular file) is ignored with a warning: the cache only
//! saves a connect, it never decides.

use crate::host::observe::Observer;
use crate::paths;
use drctl_config::Config;
use drctl_policy::{Engine, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The largest cache file read (it holds two short names).
const MAX_CACHE: u64 = 64 * 1024;

/// The file's content.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
struct Cached {
    /// The agent (username) whose Person object named the site.
    agent: String,
    /// The preferred site, a `[[sites]]` name.
    preferred: String,
}

/// Where `username`'s cache lives: `startup.cache-file` for the one
/// `[agent]`; in a fleet (`fleet`), `preferred-<username>.json` beside it.
/// `None` when no state directory can be found (no home, no
/// `$STATE_DIRECTORY`): the cache is then off, with a warning.
pub fn path(cfg: &Config, username: &str, fleet: bool) -> Option<PathBuf> {
    let name = format!("preferred-{}.json", paths::file_safe(username));
    match &cfg.startup.cache_file {
        Some(file) if !fleet => Some(file.clone()),
        Some(file) => Some(file.parent().unwrap_or(Path::new(".")).join(name)),
        None => paths::state_dir().map(|d| d.join(name)),
    }
}

/// The cached preferred site of `username` at `path`, if it is one of
/// `sites`; `None` (with a warning naming the file and why) otherwise.
pub fn read(path: &Path, username: &str, sites: &[&str]) -> Option<String> {
    match read_checked(path, username, sites) {
        Ok(site) => {
            tracing::info!(
                "S5: {username}'s preferred site {site} (cached in {}) is tried first",
                path.display()
            );
            Some(site)
        }
        Err(why) => {
            tracing::warn!(
                "S5: preferred-site cache {} ignored: {why}; starting at the configured first site",
                path.display()
            );
            None
        }
    }
}

fn read_checked(path: &Path, username: &str, sites: &[&str]) -> Result<String, String> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => "not written yet".to_owned(),
            _ => e.to_string(),
        })?;
    let meta = file.metadata().map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".to_owned());
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me && meta.uid() != 0 {
        return Err(format!("owned by uid {}, not by this user", meta.uid()));
    }
    let mut text = String::new();
    file.take(MAX_CACHE + 1)
        .read_to_string(&mut text)
        .map_err(|e| e.to_string())?;
    if text.len() as u64 > MAX_CACHE {
        return Err(format!("larger than {MAX_CACHE} bytes"));
    }
    let cached: Cached =
        serde_json::from_str(&text).map_err(|e| format!("not a drctl cache ({e})"))?;
    if cached.agent != username {
        return Err(format!(
            "it is agent {:?}'s, not {username:?}'s",
            cached.agent
        ));
    }
    if !sites.contains(&cached.preferred.as_str()) {
        return Err(format!(
            "site {:?} is not one of the configured sites ({})",
            cached.preferred,
            sites.join(", ")
        ));
    }
    Ok(cached.preferred)
}

/// Writes `username`'s preferred `site` to `path` atomically (a private
/// temporary file in the same directory, renamed over it).
pub fn write(path: &Path, username: &str, site: &str) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    paths::create_private_dir(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    let body = serde_json::to_string(&Cached {
        agent: username.to_owned(),
        preferred: site.to_owned(),
    })
    .map_err(std::io::Error::other)?;
    tmp.write_all(body.as_bytes())?;
    tmp.write_all(b"\n")?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// One agent's cache as the writer keeps it.
struct Entry {
    username: String,
    path: PathBuf,
    /// The site last written (or read): written again only on a change.
    written: Option<String>,
}

/// The observer that writes each agent's cache once S2 has named its
/// preferred site, and again whenever that changes.
pub struct PreferredCache {
    /// Session id -> the agent's cache.
    agents: HashMap<String, Entry>,
}

impl PreferredCache {
    /// A writer for `(session, username, path, site read at start)` of each agent.
    pub fn new(agents: Vec<(String, String, PathBuf, Option<String>)>) -> PreferredCache {
        PreferredCache {
            agents: agents
                .into_iter()
                .map(|(session, username, path, written)| {
                    (
                        session,
                        Entry {
                            username,
                            path,
                            written,
                        },
                    )
                })
                .collect(),
        }
    }
}

impl Observer for PreferredCache {
    fn settled(&mut self, _t: Timestamp, agent: &str, engine: &Engine) {
        let Some(entry) = self.agents.get_mut(agent) else {
            return;
        };
        let Some(site) = engine.view().preferred_site else {
            return;
        };
        if entry.written.as_deref() == Some(&*site) {
            return;
        }
        match write(&entry.path, &entry.username, &site) {
            Ok(()) => tracing::debug!(
                "S5: {}'s preferred site {site} cached in {}",
                entry.username,
                entry.path.display()
            ),
            Err(e) => tracing::warn!(
                "S5: cannot write the preferred-site cache {}: {e}",
                entry.path.display()
            ),
        }
        // Once per change, failed or not: a read-only disk is not retried every pass.
        entry.written = Some(site.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SITES: [&str; 2] = ["site1", "site2"];

    #[test]
    fn a_written_cache_reads_back_for_its_agent_only() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub").join("preferred-ann.json");
        write(&p, "ann", "site2").unwrap();
        assert_eq!(read_checked(&p, "ann", &SITES), Ok("site2".to_owned()));
        let foreign = read_checked(&p, "bob", &SITES).unwrap_err();
        assert!(foreign.contains("\"ann\"'s, not \"bob\"'s"), "{foreign}");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&p).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "private: {mode:o}");
    }

    #[test]
    fn missing_corrupt_huge_unknown_or_linked_caches_are_ignored_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.json");
        let why = |p: &Path| read_checked(p, "ann", &SITES).unwrap_err();
        assert_eq!(why(&p), "not written yet");
        std::fs::write(&p, "{not json").unwrap();
        assert!(why(&p).starts_with("not a drctl cache"), "{}", why(&p));
        std::fs::write(&p, r#"{"agent":"ann","preferred":"site9"}"#).unwrap();
        assert!(why(&p).contains("\"site9\" is not one of"), "{}", why(&p));
        std::fs::write(&p, vec![b' '; MAX_CACHE as usize + 1]).unwrap();
        assert!(why(&p).starts_with("larger than"), "{}", why(&p));
        let link = dir.path().join("link.json");
        std::fs::write(&p, r#"{"agent":"ann","preferred":"site1"}"#).unwrap();
        std::os::unix::fs::symlink(&p, &link).unwrap();
        assert!(read_checked(&link, "ann", &SITES).is_err());
        assert!(read_checked(dir.path(), "ann", &SITES).is_err());
    }
}
