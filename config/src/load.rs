//! The layers (SPEC §7), built into one [`Figment`] by [`figment()`], and [`Config::load`].

use std::path::{Path, PathBuf};

use figment::error::{Actual, Kind};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider, Source};

use crate::error::{ConfigError, Origin};
use crate::model::{Config, Sources};
use crate::origin::{display_key, Origins, DEFAULTS_NAME, ENV_NAME, ENV_PREFIX, SET_NAME};

/// The system-wide config file (layer 2).
pub const SYSTEM_CONFIG_FILE: &str = "/etc/drctl/drctl.toml";
/// The working-directory config file (layer 4, unless `--config` replaces it).
const LOCAL_CONFIG_FILE: &str = "drctl.toml";

/// What to load: the command line's `--config` and `--set`, and where the standard files are.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// `--config FILE`: replaces `./drctl.toml`; it must exist.
    pub config_file: Option<PathBuf>,
    /// `--set KEY=VALUE` pairs in command-line order (a later pair wins).
    pub overrides: Vec<(String, String)>,
    /// The system-wide file (default [`SYSTEM_CONFIG_FILE`]); `None` skips the layer.
    pub system_file: Option<PathBuf>,
    /// The user's file (default [`user_config_file`]); `None` skips the layer.
    pub user_file: Option<PathBuf>,
    /// The working-directory file (default `drctl.toml`), used when `config_file` is `None`.
    pub local_file: Option<PathBuf>,
    /// Read `DRCTL_*` environment variables (default true).
    pub env: bool,
}

impl Default for LoadOptions {
    /// The standard layers of SPEC §7, no `--config`, no `--set`.
    fn default() -> Self {
        LoadOptions {
            config_file: None,
            overrides: Vec::new(),
            system_file: Some(PathBuf::from(SYSTEM_CONFIG_FILE)),
            user_file: user_config_file(),
            local_file: Some(PathBuf::from(LOCAL_CONFIG_FILE)),
            env: true,
        }
    }
}

impl LoadOptions {
    /// Only defaults, the given `--config` file, and `--set`: no standard files, no environment.
    pub fn isolated(config_file: Option<PathBuf>) -> Self {
        LoadOptions {
            config_file,
            overrides: Vec::new(),
            system_file: None,
            user_file: None,
            local_file: None,
            env: false,
        }
    }

    /// The config file layers, lowest first, each with whether it must exist.
    pub(crate) fn file_layers(&self) -> Vec<(&Path, bool)> {
        let mut layers = Vec::new();
        layers.extend(self.system_file.as_deref().map(|p| (p, false)));
        layers.extend(self.user_file.as_deref().map(|p| (p, false)));
        match &self.config_file {
            Some(p) => layers.push((p.as_path(), true)),
            None => layers.extend(self.local_file.as_deref().map(|p| (p, false))),
        }
        layers
    }
}

/// `$XDG_CONFIG_HOME/drctl/drctl.toml`, else `$HOME/.config/drctl/drctl.toml`.
pub fn user_config_file() -> Option<PathBuf> {
    let non_empty = |var: &str| std::env::var_os(var).filter(|v| !v.is_empty());
    let base = match non_empty("XDG_CONFIG_HOME") {
        Some(dir) if Path::new(&dir).is_absolute() => PathBuf::from(dir),
        _ => PathBuf::from(non_empty("HOME")?).join(".config"),
    };
    Some(base.join("drctl").join("drctl.toml"))
}

/// The one place the layers are put together, lowest first.
pub fn figment(opts: &LoadOptions) -> Figment {
    let mut figment = Figment::from(Defaults);
    for (path, required) in opts.file_layers() {
        figment = figment.merge(TomlFile {
            path: path.to_path_buf(),
            required,
        });
    }
    if opts.env {
        figment = figment.merge(EnvLayer);
    }
    figment.merge(Overrides(opts.overrides.clone()))
}

impl Config {
    /// Loads all layers, extracts them and validates the result ([`Config::validate`]).
    pub fn load(opts: &LoadOptions) -> Result<Config, ConfigError> {
        for (key, _) in &opts.overrides {
            check_override_key(key)?;
        }
        let figment = figment(opts);
        let searched: Vec<PathBuf> = opts
            .file_layers()
            .into_iter()
            .map(|(p, _)| p.to_path_buf())
            .collect();
        let files: Vec<PathBuf> = searched.iter().filter(|p| p.is_file()).cloned().collect();
        let mut config: Config = figment
            .extract()
            .map_err(|e| extraction_error(e, &figment, &files))?;
        config.sources = Sources {
            figment: Some(figment),
            files,
            searched,
        };
        config.validate()?;
        Ok(config)
    }
}

impl Config {
    /// The config a recording ran with (its header's `config`, see
    /// [`Config::recordable`]) with `--set` overrides on top: what `drctl replay`
    /// runs. No files, no environment: a replay depends only on the recording.
    pub fn from_recording(
        recorded: &serde_json::Value,
        overrides: &[(String, String)],
    ) -> Result<Config, ConfigError> {
        for (key, _) in overrides {
            check_override_key(key)?;
        }
        let figment = Figment::from(Defaults)
            .merge(Recorded(recorded.clone()))
            .merge(Overrides(overrides.to_vec()));
        let mut config: Config = figment
            .extract()
            .map_err(|e| extraction_error(e, &figment, &[]))?;
        config.sources = Sources {
            figment: Some(figment),
            files: Vec::new(),
            searched: Vec::new(),
        };
        config.validate()?;
        Ok(config)
    }

    /// This config as a recording's header keeps it: secrets dropped (the
    /// password itself) or redacted (secret-looking keys of backend tables).
    pub fn recordable(&self) -> serde_json::Value {
        let mut shown = self.clone();
        shown.agent.password = None;
        shown.backend.tables = self.backend.redacted_tables();
        serde_json::to_value(&shown).unwrap_or_default()
    }
}

/// The config layer of a recording (`drctl replay`).
struct Recorded(serde_json::Value);

impl Provider for Recorded {
    fn metadata(&self) -> Metadata {
        Metadata::named("recording")
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let dict = Value::serialize(&self.0)?
            .into_dict()
            .ok_or_else(|| figment::Error::from("the recording's config is not a table"))?;
        Ok(Profile::Default.collect(dict))
    }
}

/// A `--set` key must be dotted kebab-case words.
fn check_override_key(key: &str) -> Result<(), ConfigError> {
    let ok = key.split('.').all(|seg| {
        !seg.is_empty()
            && seg
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    });
    if ok {
        Ok(())
    } else {
        Err(ConfigError::Invalid {
            origin: Origin::CommandLine,
            key: key.to_owned(),
            message: "not a key: expected a dotted key like policy.site-timeout".to_owned(),
        })
    }
}

/// Keys whose values are always strings, never parsed as TOML (a password `0x10` stays text).
fn is_string_key(segs: &[String]) -> bool {
    let key = segs.join(".");
    matches!(
        key.as_str(),
        "agent.username"
            | "agent.password"
            | "agent.password-env"
            | "agent.password-file"
            | "agent.password-credential"
            | "agent.dn"
            | "startup.first-site"
            | "startup.cache-file"
            | "history.file"
            | "backend.name"
    ) || key.starts_with("genesys.")
}

/// An environment or `--set` value: a TOML value if it parses as one, else the string.
fn parse_value(segs: &[String], raw: &str) -> Value {
    if !is_string_key(segs) && !raw.contains(['\n', '\r']) {
        if let Ok(mut doc) = toml::from_str::<toml::Table>(&format!("v = {raw}")) {
            if let Some(value) = doc.remove("v") {
                if let Ok(value) = Value::serialize(value) {
                    return value;
                }
            }
        }
    }
    Value::from(raw.to_owned())
}

/// Inserts `value` at `segs` in `dict`, creating tables on the way (replacing non-tables).
fn insert_path(dict: &mut Dict, segs: &[String], value: Value) {
    let Some((first, rest)) = segs.split_first() else {
        return;
    };
    if rest.is_empty() {
        dict.insert(first.clone(), value);
        return;
    }
    let entry = dict
        .entry(first.clone())
        .or_insert_with(|| Value::from(Dict::new()));
    if entry.as_dict().is_none() {
        *entry = Value::from(Dict::new());
    }
    if let Value::Dict(_, inner) = entry {
        insert_path(inner, rest, value);
    }
}

/// Layer 1: [`Config::default`].
struct Defaults;

impl Provider for Defaults {
    fn metadata(&self) -> Metadata {
        Metadata::named(DEFAULTS_NAME)
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let value = Value::serialize(Config::default())?;
        let dict = value
            .into_dict()
            .ok_or_else(|| figment::Error::from("defaults are not a table"))?;
        Ok(Profile::Default.collect(dict))
    }
}

/// Layers 2-4: one TOML file, optional unless given with `--config`.
struct TomlFile {
    path: PathBuf,
    required: bool,
}

impl Provider for TomlFile {
    fn metadata(&self) -> Metadata {
        Metadata::from("config file", Source::File(self.path.clone()))
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let text = match read_bounded(&self.path) {
            Ok(Some(text)) => text,
            Ok(None) => {
                return Err(format!(
                    "larger than a config file may be ({MAX_CONFIG_BYTES} bytes, 4 MiB)"
                )
                .into())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !self.required => {
                return Ok(Map::new());
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err("config file not found".into());
            }
            Err(e) => return Err(format!("cannot read config file: {e}").into()),
        };
        let mut table: toml::Table = toml::from_str(&text).map_err(|e| syntax_error(&text, &e))?;
        if let Some(dir) = self.path.parent() {
            resolve_paths(&mut table, dir);
        }
        let dict = Value::serialize(table)?
            .into_dict()
            .ok_or_else(|| figment::Error::from("not a TOML table"))?;
        Ok(Profile::Default.collect(dict))
    }
}

/// The keys holding paths, as `(table path, key)`; `*` is any one table
/// (each `[[agents]]` entry). A relative path in a config file means one
/// next to that file, wherever drctl runs from (the environment and `--set`
/// stay relative to the working directory).
const PATH_KEYS: [(&[&str], &str); 9] = [
    (&["agent"], "password-file"),
    (&["agents", "*"], "password-file"),
    (&["startup"], "cache-file"),
    (&["backend"], "plugin-dirs"),
    (&["backend", "mock"], "scenario"),
    (&["backend", "ail-bridge"], "java"),
    (&["backend", "ail-bridge"], "classpath"),
    (&["backend", "ail-bridge"], "cache-dir"),
    (&["control"], "socket"),
];

/// Makes the relative paths of [`PATH_KEYS`] in a config file's `table`
/// relative to the file's directory `dir`. A bare program name
/// (`java = "java"`, found on `PATH`) stays as it is.
fn resolve_paths(table: &mut toml::Table, dir: &Path) {
    if dir.as_os_str().is_empty() {
        // A file in the working directory: its relative paths already are.
        return;
    }
    fn tables<'t>(at: &'t mut toml::Table, path: &[&str]) -> Vec<&'t mut toml::Table> {
        let Some((first, rest)) = path.split_first() else {
            return vec![at];
        };
        match at.get_mut(*first) {
            Some(toml::Value::Table(t)) => tables(t, rest),
            Some(toml::Value::Array(items)) if rest.first() == Some(&"*") => items
                .iter_mut()
                .filter_map(|i| i.as_table_mut())
                .flat_map(|t| tables(t, &rest[1..]))
                .collect(),
            _ => Vec::new(),
        }
    }
    let resolve = |v: &mut toml::Value, bare_ok: bool| {
        if let toml::Value::String(s) = v {
            let p = Path::new(s.as_str());
            let bare = bare_ok && !s.contains('/');
            if !s.is_empty() && p.is_relative() && !bare {
                *s = dir.join(p).to_string_lossy().into_owned();
            }
        }
    };
    for (path, key) in PATH_KEYS {
        for t in tables(table, path) {
            match t.get_mut(key) {
                Some(toml::Value::Array(items)) => items.iter_mut().for_each(|v| resolve(v, false)),
                Some(v) => resolve(v, key == "java"),
                None => {}
            }
        }
    }
}

/// The largest config file read, 4 MiB (a fleet of 10 000 `[[agents]]` is
/// about 1 MB): parsing holds the file and its TOML tree.
pub const MAX_CONFIG_BYTES: u64 = 4 << 20;

/// A file's text, or `None` when it is larger than [`MAX_CONFIG_BYTES`]
/// (refused by its size before reading, and bounded while reading).
fn read_bounded(path: &Path) -> std::io::Result<Option<String>> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    if file.metadata()?.len() > MAX_CONFIG_BYTES {
        return Ok(None);
    }
    let mut text = String::new();
    file.take(MAX_CONFIG_BYTES + 1).read_to_string(&mut text)?;
    Ok((text.len() as u64 <= MAX_CONFIG_BYTES).then_some(text))
}

/// A one-line TOML syntax error with its line and column.
fn syntax_error(text: &str, e: &toml::de::Error) -> figment::Error {
    let message = e.message().trim().replace('\n', "; ");
    match e.span().and_then(|span| text.get(..span.start)) {
        Some(before) => {
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("line {line}, column {column}: invalid TOML: {message}").into()
        }
        None => format!("invalid TOML: {message}").into(),
    }
}

/// Layer 5: `DRCTL_SECTION__KEY=value`; variables without `__` are not config keys.
struct EnvLayer;

impl Provider for EnvLayer {
    fn metadata(&self) -> Metadata {
        Metadata::named(ENV_NAME)
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut dict = Dict::new();
        let mut vars: Vec<(String, String)> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        vars.sort();
        for (name, raw) in vars {
            let Some(prefix) = name.get(..ENV_PREFIX.len()) else {
                continue;
            };
            if !prefix.eq_ignore_ascii_case(ENV_PREFIX) {
                continue;
            }
            let rest = &name[ENV_PREFIX.len()..];
            if !rest.contains("__") {
                continue;
            }
            let segs: Vec<String> = rest
                .split("__")
                .map(|s| s.to_ascii_lowercase().replace('_', "-"))
                .collect();
            if segs.iter().any(String::is_empty) {
                continue;
            }
            let value = parse_value(&segs, &raw);
            insert_path(&mut dict, &segs, value);
        }
        Ok(Profile::Default.collect(dict))
    }
}

/// Layer 6: `--set KEY=VALUE`.
struct Overrides(Vec<(String, String)>);

impl Provider for Overrides {
    fn metadata(&self) -> Metadata {
        Metadata::named(SET_NAME)
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut dict = Dict::new();
        for (key, raw) in &self.0 {
            let segs: Vec<String> = key.split('.').map(str::to_owned).collect();
            if segs.iter().any(String::is_empty) {
                return Err(format!("--set {key}: not a key").into());
            }
            insert_path(&mut dict, &segs, parse_value(&segs, raw));
        }
        Ok(Profile::Default.collect(dict))
    }
}

/// Turns figment's first extraction error into a [`ConfigError`] naming origin and key.
fn extraction_error(err: figment::Error, figment: &Figment, files: &[PathBuf]) -> ConfigError {
    let Some(e) = err.into_iter().next() else {
        return ConfigError::Invalid {
            origin: Origin::Default,
            key: String::new(),
            message: "cannot be loaded".to_owned(),
        };
    };
    let file = e
        .metadata
        .as_ref()
        .and_then(|md| md.source.as_ref())
        .and_then(|s| s.file_path())
        .map(Path::to_path_buf);
    let mut segs = e.path.clone();
    let message = match &e.kind {
        Kind::Message(m) if segs.is_empty() => {
            // A layer failed as a whole: an unreadable or malformed file.
            return match file {
                Some(path) => ConfigError::File {
                    path,
                    message: m.clone(),
                },
                None => ConfigError::Invalid {
                    origin: Origin::Default,
                    key: String::new(),
                    message: m.clone(),
                },
            };
        }
        Kind::UnknownField(field, expected) => {
            if segs.last() != Some(field) {
                segs.push(field.clone());
            }
            format!("unknown key: expected one of: {}", expected.join(", "))
        }
        Kind::MissingField(field) => {
            if segs.last().map(String::as_str) != Some(field.as_ref()) {
                segs.push(field.to_string());
            }
            "missing: this key is required".to_owned()
        }
        Kind::InvalidType(actual, expected) | Kind::InvalidValue(actual, expected) => {
            format!("invalid value {}: expected {expected}", show_actual(actual))
        }
        Kind::UnknownVariant(found, expected) => {
            format!(
                "invalid value {found:?}: expected one of: {}",
                expected.join(", ")
            )
        }
        other => other.to_string(),
    };
    let mut origins = Origins::new(Some(figment), files);
    let origin = origins.near(&segs);
    ConfigError::Invalid {
        origin,
        key: display_key(&segs),
        message,
    }
}

/// A found value as it would appear in TOML.
fn show_actual(actual: &Actual) -> String {
    match actual {
        Actual::Str(s) => format!("{s:?}"),
        Actual::Bool(b) => b.to_string(),
        Actual::Unsigned(n) => n.to_string(),
        Actual::Signed(n) => n.to_string(),
        Actual::Float(x) => x.to_string(),
        Actual::Map => "(a table)".to_owned(),
        Actual::Seq => "(an array)".to_owned(),
        other => format!("({other})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_in_a_config_file_are_next_to_it() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let sub = dir.path().join("etc");
        std::fs::create_dir(&sub).expect("mkdir");
        let file = sub.join("drctl.toml");
        std::fs::write(
            &file,
            "[agent]\nusername = \"ann\"\npassword-file = \"secret/pw\"\n\
             [[agents]]\nusername = \"bob\"\npassword-file = \"bob.pw\"\n\
             [[sites]]\nname = \"site1\"\ncs-proxy = \"a:1\"\napp-name = \"A\"\n\
             [[sites]]\nname = \"site2\"\ncs-proxy = \"b:1\"\napp-name = \"B\"\n\
             [startup]\ncache-file = \"state/cache.json\"\n\
             [backend]\nplugin-dirs = [\"plugins\", \"/abs/plugins\"]\n\
             [backend.mock]\nscenario = \"../scenarios/demo.toml\"\n\
             [backend.ail-bridge]\njava = \"java\"\nclasspath = [\"lib/*\", \"/opt/ail/*\"]\n\
             [control]\nsocket = \"run/ann.sock\"\n",
        )
        .expect("write");
        let mut opts = LoadOptions::isolated(Some(file.clone()));
        // --set stays relative to the working directory.
        opts.overrides
            .push(("startup.cache-file".into(), "here.json".into()));
        let cfg = Config::load(&opts).expect("loads");
        assert_eq!(cfg.agent.password_file, Some(sub.join("secret/pw")));
        assert_eq!(cfg.agents[0].password_file, Some(sub.join("bob.pw")));
        assert_eq!(cfg.startup.cache_file, Some(PathBuf::from("here.json")));
        assert_eq!(
            cfg.backend.plugin_dirs,
            [sub.join("plugins"), PathBuf::from("/abs/plugins")]
        );
        assert_eq!(cfg.control.socket, Some(sub.join("run/ann.sock")));
        let mock = cfg.backend.table_json("mock");
        let scenario = sub.join("../scenarios/demo.toml");
        assert_eq!(mock["scenario"], scenario.to_string_lossy().as_ref());
        let bridge = cfg.backend.table_json("ail-bridge");
        assert_eq!(bridge["java"], "java", "a program on PATH stays bare");
        let lib = sub.join("lib/*");
        assert_eq!(
            bridge["classpath"],
            serde_json::json!([lib.to_string_lossy(), "/opt/ail/*"])
        );
    }
}
