//! Finding the [`Origin`] of a key from figment's metadata and the file's spans.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use figment::value::Value;
use figment::{Figment, Metadata};

use crate::error::Origin;

/// Metadata name of the built-in defaults layer.
pub(crate) const DEFAULTS_NAME: &str = "built-in defaults";
/// Metadata name of the `DRCTL_*` environment layer.
pub(crate) const ENV_NAME: &str = "DRCTL_* environment";
/// Metadata name of the `--set` layer.
pub(crate) const SET_NAME: &str = "--set";
/// Prefix of the environment variables that hold config keys.
pub(crate) const ENV_PREFIX: &str = "DRCTL_";

/// A key path: table keys and array indices.
pub(crate) type Segments = [String];

/// The key as users write it: `policy.site-timeout`, `sites[1].name`.
pub(crate) fn display_key(segs: &Segments) -> String {
    let mut out = String::new();
    for s in segs {
        if !out.is_empty() && s.parse::<usize>().is_ok() {
            out.push_str(&format!("[{s}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(s);
        }
    }
    out
}

/// The environment variable that sets `segs`: `DRCTL_POLICY__SITE_TIMEOUT`.
pub(crate) fn env_var_name(segs: &Segments) -> String {
    let body: Vec<String> = segs
        .iter()
        .map(|s| s.to_ascii_uppercase().replace('-', "_"))
        .collect();
    format!("{ENV_PREFIX}{}", body.join("__"))
}

/// Looks up origins of keys in one loaded figment, caching parsed files.
pub(crate) struct Origins<'a> {
    figment: Option<&'a Figment>,
    root: Option<Value>,
    files: &'a [PathBuf],
    texts: HashMap<PathBuf, Option<String>>,
}

impl<'a> Origins<'a> {
    /// An origin finder over `figment` (absent for a config not built by `load`).
    pub(crate) fn new(figment: Option<&'a Figment>, files: &'a [PathBuf]) -> Self {
        let root = figment.and_then(|f| f.find_value("").ok());
        Origins {
            figment,
            root,
            files,
            texts: HashMap::new(),
        }
    }

    /// The origin of the value at `segs`, if some layer set it.
    pub(crate) fn exact(&mut self, segs: &Segments) -> Option<Origin> {
        let value = walk(self.root.as_ref()?, segs)?;
        let md = self.figment?.get_metadata(value.tag())?.clone();
        Some(self.classify(&md, segs))
    }

    /// The origin of `segs`, or for an absent key the best place to blame:
    /// the layer that set a sibling, else the highest config file, else the defaults.
    pub(crate) fn near(&mut self, segs: &Segments) -> Origin {
        if let Some(origin) = self.exact(segs) {
            if origin != Origin::Default {
                return origin;
            }
        }
        for depth in (1..segs.len()).rev() {
            let parent = &segs[..depth];
            let Some(value) = self.root.as_ref().and_then(|r| walk(r, parent)) else {
                continue;
            };
            let mut leaves = Vec::new();
            collect_leaves(value, parent.to_vec(), &mut leaves);
            let mut best: Option<Origin> = None;
            for leaf in leaves {
                match self.exact(&leaf) {
                    Some(Origin::File { path, .. }) => {
                        let line = self.line_of(&path, parent);
                        return Origin::File { path, line };
                    }
                    Some(Origin::Default) | None => {}
                    Some(other) => best = best.or(Some(other)),
                }
            }
            if let Some(origin) = best {
                return origin;
            }
        }
        match self.files.last() {
            Some(path) => Origin::File {
                path: path.clone(),
                line: None,
            },
            None => Origin::Default,
        }
    }

    fn classify(&mut self, md: &Metadata, segs: &Segments) -> Origin {
        if let Some(path) = md.source.as_ref().and_then(|s| s.file_path()) {
            let path = path.to_path_buf();
            let line = self.line_of(&path, segs);
            return Origin::File { path, line };
        }
        match md.name.as_ref() {
            ENV_NAME => Origin::Env {
                var: env_var_name(segs),
            },
            SET_NAME => Origin::CommandLine,
            _ => Origin::Default,
        }
    }

    /// 1-based line of the key `segs` in the TOML file at `path`.
    pub(crate) fn line_of(&mut self, path: &Path, segs: &Segments) -> Option<usize> {
        let text = self
            .texts
            .entry(path.to_path_buf())
            .or_insert_with(|| std::fs::read_to_string(path).ok())
            .as_deref()?;
        line_in(text, segs)
    }
}

/// The value at `segs` in a figment value (dict keys and array indices).
fn walk<'v>(mut value: &'v Value, segs: &Segments) -> Option<&'v Value> {
    for s in segs {
        value = match value {
            Value::Dict(_, dict) => dict.get(s)?,
            Value::Array(_, items) => items.get(s.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(value)
}

/// Paths of the leaves under `value` (tables and arrays of tables are descended).
pub(crate) fn collect_leaves(value: &Value, at: Vec<String>, out: &mut Vec<Vec<String>>) {
    match value {
        Value::Dict(_, dict) => {
            for (k, v) in dict {
                let mut p = at.clone();
                p.push(k.clone());
                collect_leaves(v, p, out);
            }
        }
        Value::Array(_, items) if items.iter().any(|i| matches!(i, Value::Dict(..))) => {
            for (i, v) in items.iter().enumerate() {
                let mut p = at.clone();
                p.push(i.to_string());
                collect_leaves(v, p, out);
            }
        }
        _ => out.push(at),
    }
}

/// 1-based line where the key `segs` appears in the TOML document `text`.
fn line_in(text: &str, segs: &Segments) -> Option<usize> {
    use toml::de::{DeTable, DeValue};

    let doc = DeTable::parse(text).ok()?;
    let mut table = doc.get_ref();
    let mut value: Option<&DeValue<'_>> = None;
    let mut start = None;
    for s in segs {
        if let Some(DeValue::Array(items)) = value {
            let item = items.get(s.parse::<usize>().ok()?)?;
            start = Some(item.span().start);
            value = Some(item.get_ref());
        } else {
            if let Some(v) = value {
                table = match v {
                    DeValue::Table(t) => t,
                    _ => return None,
                };
            }
            let (key, v) = table.iter().find(|(k, _)| k.get_ref().as_ref() == s)?;
            start = Some(key.span().start);
            value = Some(v.get_ref());
        }
        if let Some(DeValue::Table(t)) = value {
            table = t;
            value = None;
        }
    }
    let start = start?;
    Some(text.get(..start)?.matches('\n').count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(key: &str) -> Vec<String> {
        key.split('.').map(str::to_owned).collect()
    }

    #[test]
    fn keys_display_like_users_write_them() {
        assert_eq!(display_key(&segs("sites.1.cs-proxy")), "sites[1].cs-proxy");
        assert_eq!(
            display_key(&segs("policy.site-timeout")),
            "policy.site-timeout"
        );
        assert_eq!(
            env_var_name(&segs("policy.site-timeout")),
            "DRCTL_POLICY__SITE_TIMEOUT"
        );
    }

    #[test]
    fn finds_lines_of_keys() {
        let text = "[agent]\nusername = \"a\"\n\n[[sites]]\nname = \"s1\"\n[[sites]]\nname = \"s2\"\n\n[startup.backoff]\ninitial = \"1s\"\n[policy]\nsite-timeout = \"3x\"\n";
        assert_eq!(line_in(text, &segs("agent.username")), Some(2));
        assert_eq!(line_in(text, &segs("sites.1.name")), Some(7));
        assert_eq!(line_in(text, &segs("startup.backoff.initial")), Some(10));
        assert_eq!(line_in(text, &segs("policy.site-timeout")), Some(12));
        assert_eq!(line_in(text, &segs("policy.nope")), None);
    }
}
