//! `drctl-ail-bridge`: checks an AIL installation against the names the
//! ail-bridge sidecar uses, without connecting anywhere, and writes out the
//! embedded sidecar jar.
//!
//! ```text
//! drctl-ail-bridge self-test [--config DRCTL_TOML] [--names FILE] [--java JAVA]
//!                            [--classpath ENTRY]... [--jvm-arg ARG]...
//! drctl-ail-bridge jar FILE
//! drctl-ail-bridge version
//! ```

use drctl_plugin_ail_bridge::{jar, protocol, sidecar::MAIN_CLASS, BridgeConfig};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

const USAGE: &str = "usage:
  drctl-ail-bridge self-test [--config DRCTL_TOML] [--names FILE] [--java JAVA]
                             [--classpath ENTRY]... [--jvm-arg ARG]...
      load every AIL class, method and constant the bridge uses from the
      classpath (as in backend.ail-bridge.classpath) and name each one that is
      missing; print the effective names (after backend.ail-bridge.names),
      which killFactory AIL has and the other settings; connects nowhere.
      --config takes [backend.ail-bridge] from a drctl config file; the other
      flags override it (--classpath replaces its classpath). Exit 0 if all
      names are found, 1 if some are not, 2 if the settings are wrong.
  drctl-ail-bridge jar FILE
      write the embedded sidecar jar to FILE
  drctl-ail-bridge version
      print the protocol version and build id";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("drctl-ail-bridge: {message}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &[String]) -> Result<ExitCode, String> {
    match args.first().map(String::as_str) {
        Some("self-test") => self_test(&args[1..]),
        Some("jar") => {
            let [_, file] = args else {
                return Err(format!("jar takes one FILE\n{USAGE}"));
            };
            let bytes = jar::embedded()
                .ok_or_else(|| drctl_plugin_ail_bridge::BridgeError::NoSidecarJar.to_string())?;
            std::fs::write(file, bytes).map_err(|e| format!("{file}: {e}"))?;
            Ok(ExitCode::SUCCESS)
        }
        Some("version") => {
            println!(
                "drctl-ail-bridge protocol {} build {}",
                protocol::PROTOCOL,
                protocol::BUILD_ID
            );
            Ok(ExitCode::SUCCESS)
        }
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        _ => Err(USAGE.to_owned()),
    }
}

fn self_test(args: &[String]) -> Result<ExitCode, String> {
    let (mut config, mut names, mut java) = (None, None, None);
    let (mut classpath, mut jvm_args) = (Vec::new(), Vec::new());
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        let mut value = || {
            rest.next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--config" => config = Some(PathBuf::from(value()?)),
            "--names" => names = Some(PathBuf::from(value()?)),
            "--java" => java = Some(PathBuf::from(value()?)),
            "--classpath" => classpath.push(value()?),
            "--jvm-arg" => jvm_args.push(value()?),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    let mut table = match &config {
        Some(path) => bridge_table(path)?,
        None => serde_json::json!({}),
    };
    if let Some(obj) = table.as_object_mut() {
        if let Some(names) = names {
            // A relative path on the command line is the user's own directory.
            let names = std::path::absolute(&names).map_err(|e| format!("--names: {e}"))?;
            obj.insert("names".into(), names.display().to_string().into());
        }
        if let Some(java) = java {
            obj.insert("java".into(), java.display().to_string().into());
        }
        if !classpath.is_empty() {
            obj.insert("classpath".into(), classpath.into());
        }
    }
    let cfg = BridgeConfig::from_json(table).map_err(|e| e.to_string())?;
    let jar = jar::materialize(&jar::default_dir()).map_err(|e| e.to_string())?;
    let cp =
        std::env::join_paths(std::iter::once(jar).chain(cfg.classpath.iter().map(PathBuf::from)))
            .map_err(|e| format!("classpath: {e}"))?;
    let java = cfg.java();
    let mut child = Command::new(&java)
        .args(&cfg.jvm_args)
        .args(&jvm_args)
        .arg("-cp")
        .arg(cp)
        .arg(MAIN_CLASS)
        .args(["--self-test", "--hello-on-stdin"])
        .stdin(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", java.display()))?;
    // The same hello the plugin sends: the self-test checks what the bridge would run with.
    let hello = serde_json::to_string(&protocol::Hello::new(&cfg)).map_err(|e| e.to_string())?;
    if let Some(mut stdin) = child.stdin.take() {
        // A JVM that died at once is reported by its status below.
        let _ = stdin.write_all(format!("{hello}\n").as_bytes());
    }
    let status = child
        .wait()
        .map_err(|e| format!("waiting for {}: {e}", java.display()))?;
    Ok(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(1) => ExitCode::from(1),
        Some(3) => ExitCode::from(2),
        _ => return Err(format!("the self-test JVM failed: {status}")),
    })
}

/// `[backend.ail-bridge]` of a drctl config file, as JSON (empty if absent).
fn bridge_table(path: &Path) -> Result<serde_json::Value, String> {
    // drctl's own limit for a config file (drctl-config's MAX_CONFIG_BYTES).
    const MAX: u64 = 4 << 20;
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX + 1).read_to_string(&mut text))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if text.len() as u64 > MAX {
        return Err(format!("{}: larger than 4 MiB", path.display()));
    }
    let doc: toml::Table = toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let table = doc
        .get("backend")
        .and_then(|b| b.get("ail-bridge"))
        .cloned()
        .unwrap_or_else(|| toml::Value::Table(Default::default()));
    serde_json::to_value(table).map_err(|e| format!("{}: {e}", path.display()))
}
