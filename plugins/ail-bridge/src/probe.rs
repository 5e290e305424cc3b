//! E2's probe: is a site healthy, seen from where the agent is, without
//! leaving it. AIL offers no way to ask another site's SIP Server anything
//! without logging in there (which would be the switchover itself), so the
//! bridge checks what it can: the target Application's CS Proxy accepts a TCP
//! connection, and then, if the operator configured one, a probe command
//! (`backend.ail-bridge.probe-command`, exit 0 = healthy) that can ask what
//! drctl cannot (SIP Server's own health check, a monitoring API...).
//!
//! Each probe runs on its own thread (a connect or a command may take up to
//! `probe-timeout`, which the host's loop must never wait for); its answer
//! comes back through a channel and a wake of the host.

use drctl_plugin_api::messages::{CommandError, CommandResult, Reply};
use std::ffi::OsString;
use std::io::Read;
use std::net::{TcpStream, ToSocketAddrs};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use wait_timeout::ChildExt;

/// At most this many probes run at once (the engine sends one per
/// `failback-probe-interval`; a hung DNS or command must not pile up threads).
pub const MAX_IN_FLIGHT: usize = 2;

/// At most this much of the probe command's output is kept for the detail.
const MAX_OUTPUT: u64 = 512;

/// What one probe needs, owned (it runs on its own thread).
#[derive(Debug, Clone)]
pub struct Probe {
    /// The site probed, e.g. `site1` (given to the command as `DRCTL_PROBE_SITE`).
    pub site: String,
    /// The CS Proxy `host:port` its Application names (S3).
    pub cs_proxy: String,
    /// The operator's probe command (program and arguments), if any.
    pub command: Vec<String>,
    /// Bound of the connect and of the command, each.
    pub timeout: Duration,
    /// The command's whole environment (drctl's is never inherited: no secret).
    pub env: Vec<(OsString, OsString)>,
}

impl Probe {
    /// Runs the probe: `Probed { healthy, detail }`; an error only if the
    /// probe itself could not run (then the engine counts it as not healthy).
    pub fn run(&self) -> CommandResult {
        if let Err(why) = self.connect() {
            return Ok(Reply::Probed {
                healthy: false,
                detail: format!("CS Proxy {} does not answer: {why}", self.cs_proxy),
            });
        }
        let Some((program, args)) = self.command.split_first() else {
            return Ok(Reply::Probed {
                healthy: true,
                detail: format!("CS Proxy {} accepts connections", self.cs_proxy),
            });
        };
        let mut child = Command::new(program)
            .args(args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("DRCTL_PROBE_SITE", &self.site)
            .env("DRCTL_PROBE_CS_PROXY", &self.cs_proxy)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| CommandError::new(format!("cannot run probe-command {program:?}: {e}")))?;
        let status = match child.wait_timeout(self.timeout) {
            Ok(Some(status)) => status,
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Ok(Reply::Probed {
                    healthy: false,
                    detail: format!(
                        "probe-command {program:?} did not finish within {} (killed)",
                        humantime::format_duration(self.timeout)
                    ),
                });
            }
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(CommandError::new(format!(
                    "cannot wait for probe-command {program:?}: {e}"
                )));
            }
        };
        // The command has exited: its stdout is a closed pipe, read at once.
        let mut said = String::new();
        if let Some(out) = child.stdout.take() {
            let _ = out.take(MAX_OUTPUT).read_to_string(&mut said);
        }
        let said = said.trim();
        let said = if said.is_empty() {
            String::new()
        } else {
            format!(": {said}")
        };
        Ok(Reply::Probed {
            healthy: status.success(),
            detail: format!("probe-command {program:?} {status}{said}"),
        })
    }

    /// A TCP connect to the CS Proxy (each resolved address in turn), closed at once.
    fn connect(&self) -> Result<(), String> {
        let deadline = Instant::now() + self.timeout;
        let addrs = self
            .cs_proxy
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve it: {e}"))?;
        let mut last = String::from("it resolves to no address");
        for addr in addrs {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                last = format!(
                    "no connection within {}",
                    humantime::format_duration(self.timeout)
                );
                break;
            }
            match TcpStream::connect_timeout(&addr, left) {
                Ok(_) => return Ok(()),
                Err(e) => last = format!("{addr}: {e}"),
            }
        }
        Err(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn probe(cs_proxy: String, command: &[&str]) -> Probe {
        Probe {
            site: "site1".into(),
            cs_proxy,
            command: command.iter().map(|s| s.to_string()).collect(),
            timeout: Duration::from_secs(5),
            env: vec![("PATH".into(), "/usr/bin:/bin".into())],
        }
    }

    fn healthy(r: CommandResult) -> (bool, String) {
        match r {
            Ok(Reply::Probed { healthy, detail }) => (healthy, detail),
            other => panic!("not a probe answer: {other:?}"),
        }
    }

    #[test]
    fn a_listening_cs_proxy_is_healthy_and_a_closed_port_is_not() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        assert!(healthy(probe(addr.clone(), &[]).run()).0);
        // A closed port: bound (so no parallel test's listener can take the
        // freed number, which made this test flaky) but not listening.
        let closed =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        closed
            .bind(
                &"127.0.0.1:0"
                    .parse::<std::net::SocketAddr>()
                    .unwrap()
                    .into(),
            )
            .unwrap();
        let addr = closed
            .local_addr()
            .unwrap()
            .as_socket()
            .unwrap()
            .to_string();
        let (ok, detail) = healthy(probe(addr.clone(), &[]).run());
        assert!(!ok, "{detail}");
        assert!(detail.contains(&addr), "{detail}");
    }

    #[test]
    fn the_probe_command_decides_after_the_connect_and_sees_the_site() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let script = r#"echo "asked for $DRCTL_PROBE_SITE at $DRCTL_PROBE_CS_PROXY"; test "$DRCTL_PROBE_SITE" = site1"#;
        let (ok, detail) = healthy(probe(addr.clone(), &["/bin/sh", "-c", script]).run());
        assert!(ok, "{detail}");
        assert!(
            detail.contains(&format!("asked for site1 at {addr}")),
            "{detail}"
        );
        let (ok, detail) = healthy(probe(addr, &["/bin/sh", "-c", "exit 3"]).run());
        assert!(!ok, "{detail}");
        assert!(detail.contains("exit status: 3"), "{detail}");
    }

    #[test]
    fn a_hung_probe_command_is_killed_at_the_timeout() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut p = probe(
            listener.local_addr().unwrap().to_string(),
            &["/bin/sleep", "30"],
        );
        p.timeout = Duration::from_millis(200);
        let (ok, detail) = healthy(p.run());
        assert!(!ok);
        assert!(detail.contains("did not finish"), "{detail}");
    }

    #[test]
    fn the_command_inherits_no_environment_of_drctl() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        // The test process has HOME (and the agent's password would be
        // in an env var in a careless setup): the command sees none of it.
        let (ok, detail) =
            healthy(probe(addr, &["/bin/sh", "-c", "test -z \"$HOME\" && echo clean"]).run());
        assert!(ok, "{detail}");
    }
}
