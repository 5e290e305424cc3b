//! `drctl config show`: the effective config as TOML, and each value's origin.

use crate::error::Origin;
use crate::model::Config;
use crate::origin::{display_key, Origins};
use crate::secret::redact;

/// One leaf of the effective configuration and where its value came from.
#[derive(Clone, Debug, PartialEq)]
pub struct OriginLine {
    /// The key: `policy.site-timeout`, `sites[0].name`.
    pub key: String,
    /// The value as TOML (secrets redacted).
    pub value: String,
    /// Where the value came from.
    pub origin: Origin,
}

impl Config {
    /// The effective configuration as TOML, with secrets redacted.
    pub fn redacted_toml(&self) -> String {
        let mut shown = self.clone();
        shown.backend.tables = self.backend.redacted_tables();
        toml::to_string(&shown).unwrap_or_else(|e| format!("# cannot render config: {e}\n"))
    }

    /// Every leaf key with its value (secrets redacted) and origin, sorted by key.
    pub fn origins(&self) -> Vec<OriginLine> {
        let mut root = match toml::Value::try_from(self) {
            Ok(v) => v,
            Err(_) => return Vec::new(),
        };
        if let Some(backend) = root.get_mut("backend").and_then(|b| b.as_table_mut()) {
            for (key, value) in backend.iter_mut() {
                if key != "name" && key != "plugin-dirs" {
                    redact(value);
                }
            }
        }
        let mut leaves = Vec::new();
        leaves_of(&root, Vec::new(), &mut leaves);
        let mut origins = Origins::new(self.sources.figment.as_ref(), &self.sources.files);
        leaves
            .into_iter()
            .map(|(segs, value)| OriginLine {
                key: display_key(&segs),
                value: render(value),
                origin: origins.exact(&segs).unwrap_or(Origin::Default),
            })
            .collect()
    }

    /// [`Config::origins`] as aligned `key = value   # origin` lines.
    pub fn origin_listing(&self) -> String {
        let lines = self.origins();
        let width = lines
            .iter()
            .map(|l| l.key.len() + 3 + l.value.len())
            .max()
            .unwrap_or(0);
        let mut out = String::new();
        for l in &lines {
            let kv = format!("{} = {}", l.key, l.value);
            out.push_str(&format!("{kv:<width$}   # {}\n", l.origin));
        }
        out
    }
}

/// Leaves in the order `toml` serialized them; arrays of tables are descended.
fn leaves_of<'v>(
    value: &'v toml::Value,
    at: Vec<String>,
    out: &mut Vec<(Vec<String>, &'v toml::Value)>,
) {
    match value {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let mut p = at.clone();
                p.push(k.clone());
                leaves_of(v, p, out);
            }
        }
        toml::Value::Array(items) if !items.is_empty() && items.iter().all(|i| i.is_table()) => {
            for (i, v) in items.iter().enumerate() {
                let mut p = at.clone();
                p.push(i.to_string());
                leaves_of(v, p, out);
            }
        }
        _ => out.push((at, value)),
    }
}

/// A value as inline TOML.
fn render(value: &toml::Value) -> String {
    match value {
        toml::Value::Table(t) if t.is_empty() => "{}".to_owned(),
        other => other.to_string(),
    }
}
