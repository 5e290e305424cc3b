//! `drctl config show`: the effective config as TOML, and each value's origin.

use crate::error::{ConfigError, Origin};
use crate::load::{figment, LoadOptions};
use crate::model::{redact_url, Config};
use crate::origin::{collect_leaves, display_key, Origins, ENV_PREFIX};
use crate::secret::{is_secret_key, redact, REDACTED};

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

/// The layers of `opts`, lowest first, as `#` comment lines: what `config
/// show --origin` prints first, so that an origin can be read against them.
pub fn layer_listing(opts: &LoadOptions) -> String {
    let mut out = String::from("# layers, lowest first (a higher one wins):\n");
    out.push_str("#   1. built-in defaults\n");
    for (n, (path, required)) in opts.file_layers().into_iter().enumerate() {
        let state = match std::fs::metadata(path) {
            Ok(m) if m.is_file() => "read",
            Ok(_) => "not a file",
            Err(_) if required => "missing (given with --config)",
            Err(_) => "not found",
        };
        out.push_str(&format!("#   {}. {} ({state})\n", n + 2, path.display()));
    }
    let next = opts.file_layers().len() + 2;
    if opts.env {
        let vars = std::env::vars_os()
            .filter_map(|(k, _)| k.into_string().ok())
            .filter(|k| {
                k.get(..ENV_PREFIX.len())
                    .is_some_and(|p| p.eq_ignore_ascii_case(ENV_PREFIX))
                    && k[ENV_PREFIX.len()..].contains("__")
            })
            .count();
        out.push_str(&format!("#   {next}. DRCTL_* environment ({vars} set)\n"));
    }
    out.push_str(&format!(
        "#   {}. --set ({} given)\n",
        next + usize::from(opts.env),
        opts.overrides.len()
    ));
    out
}

/// `config show --origin` for a configuration that does not load: every
/// key the layers set (defaults included) with its origin, secrets redacted,
/// and the key `error` is about marked `<-- error: ...` (added as missing
/// when no layer set it).
pub fn broken_listing(opts: &LoadOptions, error: &ConfigError) -> String {
    let figment = figment(opts);
    let bad = error.key().unwrap_or_default();
    let why = match error {
        ConfigError::Invalid { message, .. } | ConfigError::Password { message, .. } => {
            message.clone()
        }
        ConfigError::File { path, message } => format!("{}: {message}", path.display()),
    };
    let root = match figment.find_value("") {
        Ok(root) => root,
        // A layer that cannot be read at all (bad TOML): only the error says more.
        Err(_) => return format!("# the layers cannot be merged: {why}\n"),
    };
    let files: Vec<std::path::PathBuf> = opts
        .file_layers()
        .into_iter()
        .filter(|(p, _)| p.is_file())
        .map(|(p, _)| p.to_path_buf())
        .collect();
    let mut origins = Origins::new(Some(&figment), &files);
    let mut leaves = Vec::new();
    collect_leaves(&root, Vec::new(), &mut leaves);
    leaves.sort();
    let mut rows: Vec<(String, String, String)> = Vec::new();
    let mut marked = false;
    for segs in leaves {
        let key = display_key(&segs);
        let value = leaf_value(&root, &segs);
        let origin = origins
            .exact(&segs)
            .map_or_else(|| Origin::Default.to_string(), |o| o.to_string());
        let hit = !bad.is_empty() && (key == bad || key.starts_with(&format!("{bad}.")));
        marked |= hit;
        let note = if hit {
            format!("{origin}   <-- error: {why}")
        } else {
            origin
        };
        rows.push((key, value, note));
    }
    if !marked && !bad.is_empty() {
        rows.push((
            bad.to_owned(),
            "(not set)".to_owned(),
            format!("{}   <-- error: {why}", origin_of(error)),
        ));
    }
    let width = rows
        .iter()
        .map(|(k, v, _)| k.len() + 3 + v.len())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (k, v, note) in rows {
        let kv = format!("{k} = {v}");
        out.push_str(&format!("{kv:<width$}   # {note}\n"));
    }
    out
}

/// Where the error itself says the bad value came from.
fn origin_of(error: &ConfigError) -> String {
    match error {
        ConfigError::Invalid { origin, .. } | ConfigError::Password { origin, .. } => {
            origin.to_string()
        }
        ConfigError::File { path, .. } => path.display().to_string(),
    }
}

/// The leaf at `segs` as inline TOML, with what may be a secret redacted: a
/// password or secret-looking key anywhere on the path, a sink's `env`
/// values, a webhook URL's credentials.
fn leaf_value(root: &figment::value::Value, segs: &[String]) -> String {
    let mut value = root;
    for s in segs {
        let next = match value {
            figment::value::Value::Dict(_, d) => d.get(s),
            figment::value::Value::Array(_, a) => s.parse::<usize>().ok().and_then(|i| a.get(i)),
            _ => None,
        };
        match next {
            Some(v) => value = v,
            None => return "?".to_owned(),
        }
    }
    let secret = segs.iter().any(|s| is_secret_key(s))
        || (segs.first().is_some_and(|s| s == "alarms") && segs.iter().any(|s| s == "env"));
    if secret {
        return format!("{REDACTED:?}");
    }
    let mut shown = match toml::Value::try_from(value) {
        Ok(v) => v,
        Err(_) => return "?".to_owned(),
    };
    if segs.last().is_some_and(|s| s == "url") {
        if let Some(url) = shown.as_str() {
            shown = toml::Value::String(redact_url(url));
        }
    }
    redact(&mut shown);
    render(&shown)
}
