//! `backend.ail-bridge.names`: a file remapping the AIL class, method and
//! constant names the sidecar's adapter uses (keys such as `class.loader`,
//! `method.kill-factory`, `constant.status-off`; `drctl-ail-bridge
//! self-test` lists them all with their defaults), without a rebuild.
//!
//! Two formats, by extension: `.toml` (tables flatten with dots, so
//! `[method] kill-factory = "x"` is the key `method.kill-factory`) and
//! anything else as a Java properties file (`method.kill-factory = x`). The
//! TOML file is parsed here; a properties file is handed as text to the
//! sidecar, whose `java.util.Properties` reads that format exactly. The keys
//! are checked by the sidecar, which owns the names: an unknown key is an
//! error naming it and the file.

use crate::error::BridgeError;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The largest names file read (the full mapping is about 2 KiB).
pub const MAX_BYTES: u64 = 64 << 10;

/// A names file as read at `create`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamesFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// What it holds.
    pub contents: Contents,
}

/// A names file's contents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Contents {
    /// A TOML file, flattened: `key -> name`.
    Table(BTreeMap<String, String>),
    /// The text of a Java properties file, for the sidecar to read.
    Properties(String),
}

impl NamesFile {
    /// The flattened table of a TOML file.
    pub fn table(&self) -> Option<&BTreeMap<String, String>> {
        match &self.contents {
            Contents::Table(t) => Some(t),
            Contents::Properties(_) => None,
        }
    }

    /// The text of a properties file.
    pub fn properties(&self) -> Option<&str> {
        match &self.contents {
            Contents::Properties(p) => Some(p),
            Contents::Table(_) => None,
        }
    }
}

fn error(path: &Path, message: impl Into<String>) -> BridgeError {
    BridgeError::Names {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// Reads the names file at `path` (a regular file of at most [`MAX_BYTES`]).
pub fn load(path: &Path) -> Result<NamesFile, BridgeError> {
    // Checked before opening: a FIFO would block the open itself.
    let meta = std::fs::metadata(path).map_err(|e| error(path, e.to_string()))?;
    if !meta.is_file() {
        return Err(error(path, "not a regular file"));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| error(path, e.to_string()))?;
    if bytes.len() as u64 > MAX_BYTES {
        return Err(error(path, format!("larger than {} KiB", MAX_BYTES >> 10)));
    }
    let text = String::from_utf8(bytes).map_err(|_| error(path, "not UTF-8"))?;
    let contents = if path.extension().is_some_and(|e| e == "toml") {
        let table: toml::Table = toml::from_str(&text).map_err(|e| error(path, e.to_string()))?;
        let mut flat = BTreeMap::new();
        flatten("", &table, &mut flat).map_err(|m| error(path, m))?;
        Contents::Table(flat)
    } else {
        Contents::Properties(text)
    };
    Ok(NamesFile {
        path: path.to_path_buf(),
        contents,
    })
}

/// `[a] b = "x"` -> `a.b = x`; every leaf must be a string.
fn flatten(
    prefix: &str,
    table: &toml::Table,
    out: &mut BTreeMap<String, String>,
) -> Result<(), String> {
    for (key, value) in table {
        let key = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            toml::Value::String(s) => {
                out.insert(key, s.clone());
            }
            toml::Value::Table(t) => flatten(&key, t, out)?,
            other => {
                return Err(format!(
                    "{key} must be a name (a string), not a {}",
                    other.type_str()
                ))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_tables_flatten_to_dotted_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("names.toml");
        std::fs::write(
            &path,
            "\"class.loader\" = \"a.B\"\n[method]\nkill-factory = \"killNow\"\n[constant]\nstatus-off = \"DOWN\"\n",
        )
        .unwrap();
        let names = load(&path).unwrap();
        let table = names.table().unwrap();
        assert_eq!(table.get("class.loader").map(String::as_str), Some("a.B"));
        assert_eq!(
            table.get("method.kill-factory").map(String::as_str),
            Some("killNow")
        );
        assert_eq!(
            table.get("constant.status-off").map(String::as_str),
            Some("DOWN")
        );
    }

    #[test]
    fn other_extensions_are_properties_handed_over_as_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("names.properties");
        std::fs::write(&path, "method.kill-factory = killNow\n").unwrap();
        let names = load(&path).unwrap();
        assert_eq!(names.properties(), Some("method.kill-factory = killNow\n"));
    }

    #[test]
    fn bad_files_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let not_string = dir.path().join("n.toml");
        std::fs::write(&not_string, "[method]\nkill-factory = 3\n").unwrap();
        let e = load(&not_string).unwrap_err().to_string();
        assert!(
            e.contains("n.toml") && e.contains("method.kill-factory must be a name"),
            "{e}"
        );
        let big = dir.path().join("big.properties");
        std::fs::write(&big, vec![b'#'; (MAX_BYTES + 1) as usize]).unwrap();
        let e = load(&big).unwrap_err().to_string();
        assert!(e.contains("larger than 64 KiB"), "{e}");
        let e = load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
        let e = load(&dir.path().join("absent.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("absent.toml"), "{e}");
    }
}
