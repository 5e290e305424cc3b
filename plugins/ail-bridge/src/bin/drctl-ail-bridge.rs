//! `drctl-ail-bridge`: checks an AIL installation against the names the
//! ail-bridge sidecar uses, without connecting anywhere, and writes out the
//! embedded sidecar jar.
//!
//! ```text
//! drctl-ail-bridge self-test [--java JAVA] [--classpath ENTRY]... [--jvm-arg ARG]...
//! drctl-ail-bridge jar FILE
//! drctl-ail-bridge version
//! ```

use drctl_plugin_ail_bridge::{jar, protocol, sidecar::MAIN_CLASS, BridgeConfig};
use std::path::PathBuf;
use std::process::{Command, ExitCode};

const USAGE: &str = "usage:
  drctl-ail-bridge self-test [--java JAVA] [--classpath ENTRY]... [--jvm-arg ARG]...
      load every AIL class, method and constant the bridge uses from the
      classpath (as in backend.ail-bridge.classpath) and name each one that is
      missing; connects nowhere. Exit 0 if all are found, 1 if not.
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
    let mut java = None;
    let mut classpath = Vec::new();
    let mut jvm_args = Vec::new();
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        let mut value = || {
            rest.next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--java" => java = Some(PathBuf::from(value()?)),
            "--classpath" => classpath.push(value()?),
            "--jvm-arg" => jvm_args.push(value()?),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    let mut cfg = BridgeConfig::from_json(serde_json::json!({})).map_err(|e| e.to_string())?;
    cfg.java = java;
    let jar = jar::materialize(&jar::default_dir()).map_err(|e| e.to_string())?;
    let cp = std::env::join_paths(std::iter::once(jar).chain(classpath.iter().map(PathBuf::from)))
        .map_err(|e| format!("classpath: {e}"))?;
    let java = cfg.java();
    let status = Command::new(&java)
        .args(&jvm_args)
        .arg("-cp")
        .arg(cp)
        .arg(MAIN_CLASS)
        .arg("--self-test")
        .status()
        .map_err(|e| format!("cannot run {}: {e}", java.display()))?;
    Ok(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(1) => ExitCode::from(1),
        _ => return Err(format!("the self-test JVM failed: {status}")),
    })
}
