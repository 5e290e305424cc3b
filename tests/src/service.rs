//! Helpers for the service tests (`tests/tests/service.rs`): the shipped
//! systemd unit read as systemd reads it, its directories and credential
//! laid out under a temporary root, a notification socket like systemd's,
//! and plain HTTP/1.1 requests on loopback.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A unit file's settings, in file order: `(section, key, value)`.
pub struct Unit {
    entries: Vec<(String, String, String)>,
}

impl Unit {
    /// `config/examples/drctl.service`.
    pub fn shipped() -> Unit {
        let path = crate::repo().join("config/examples/drctl.service");
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Unit::parse(&text)
    }

    /// Parses unit-file syntax (comments, sections, `Key=value`; no line continuations).
    pub fn parse(text: &str) -> Unit {
        let mut section = String::new();
        let mut entries = Vec::new();
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            assert!(
                !line.ends_with('\\'),
                "line continuations not handled: {line}"
            );
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = name.to_owned();
                continue;
            }
            let (key, value) = line
                .split_once('=')
                .unwrap_or_else(|| panic!("not Key=value: {line}"));
            entries.push((
                section.clone(),
                key.trim().to_owned(),
                value.trim().to_owned(),
            ));
        }
        Unit { entries }
    }

    /// Every value of `[Service]`'s `key`, in order.
    pub fn service(&self, key: &str) -> Vec<&str> {
        self.entries
            .iter()
            .filter(|(s, k, _)| s == "Service" && k == key)
            .map(|(_, _, v)| v.as_str())
            .collect()
    }

    /// The one value of `[Service]`'s `key`.
    pub fn one(&self, key: &str) -> &str {
        match self.service(key).as_slice() {
            [v] => v,
            other => panic!("expected one {key}= in the unit, found {other:?}"),
        }
    }
}

/// The directories and credential a system unit gets, under a temporary
/// root: `%t` (`/run`), `%S` (`/var/lib`), `%C` (`/var/cache`), `%d` (the
/// credentials directory), made as systemd makes them.
pub struct UnitDirs {
    /// The temporary root.
    pub root: tempfile::TempDir,
}

impl UnitDirs {
    /// The unit's `RuntimeDirectory=`, `StateDirectory=`, `CacheDirectory=`
    /// (0700) and its `LoadCredential=`s, each credential holding `secret`
    /// with the mode systemd's ACL makes `stat` show (0440), in a 0500 directory.
    pub fn for_unit(unit: &Unit, secret: &str) -> UnitDirs {
        let dirs = UnitDirs {
            root: tempfile::tempdir().expect("a temp root"),
        };
        for (key, base) in [
            ("RuntimeDirectory", "run"),
            ("StateDirectory", "var/lib"),
            ("CacheDirectory", "var/cache"),
        ] {
            let name = unit.one(key);
            let dir = dirs.root.path().join(base).join(name);
            std::fs::create_dir_all(&dir).expect("a unit directory");
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        }
        let creds = dirs.credentials();
        std::fs::create_dir_all(&creds).unwrap();
        for spec in unit.service("LoadCredential") {
            let (name, _source) = spec
                .split_once(':')
                .unwrap_or_else(|| panic!("LoadCredential={spec}: expected NAME:FILE"));
            let file = creds.join(name);
            std::fs::write(&file, format!("{secret}\n")).unwrap();
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o440)).unwrap();
        }
        std::fs::set_permissions(&creds, std::fs::Permissions::from_mode(0o500)).unwrap();
        dirs
    }

    /// `%d`: where systemd puts the service's credentials.
    pub fn credentials(&self) -> PathBuf {
        self.root.path().join("run/credentials/drctl.service")
    }

    /// `unit`'s directory of `key` (`RuntimeDirectory`, …) under this root.
    pub fn of(&self, unit: &Unit, key: &str) -> PathBuf {
        let base = match key {
            "RuntimeDirectory" => "run",
            "StateDirectory" => "var/lib",
            "CacheDirectory" => "var/cache",
            other => panic!("no directory setting {other}"),
        };
        self.root.path().join(base).join(unit.one(key))
    }

    /// `value` with the unit specifiers drctl's unit uses expanded; any other
    /// specifier fails the test (so a new one in the unit is seen here).
    pub fn expand(&self, value: &str) -> String {
        let root = self.root.path().display().to_string();
        let mut out = String::new();
        let mut chars = value.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('%') => out.push('%'),
                Some('t') => out.push_str(&format!("{root}/run")),
                Some('S') => out.push_str(&format!("{root}/var/lib")),
                Some('C') => out.push_str(&format!("{root}/var/cache")),
                Some('d') => out.push_str(&self.credentials().display().to_string()),
                other => panic!("unit specifier %{other:?} in {value:?} not handled by the test"),
            }
        }
        out
    }

    /// The environment systemd gives the service: its `Environment=` lines
    /// (expanded) and the directory variables.
    pub fn environment(&self, unit: &Unit) -> Vec<(String, String)> {
        let mut env = Vec::new();
        for line in unit.service("Environment") {
            for assignment in line.split_whitespace() {
                let (k, v) = assignment
                    .split_once('=')
                    .unwrap_or_else(|| panic!("Environment={line}: expected KEY=VALUE"));
                env.push((k.to_owned(), self.expand(v)));
            }
        }
        for (key, var) in [
            ("RuntimeDirectory", "RUNTIME_DIRECTORY"),
            ("StateDirectory", "STATE_DIRECTORY"),
            ("CacheDirectory", "CACHE_DIRECTORY"),
        ] {
            env.push((var.to_owned(), self.of(unit, key).display().to_string()));
        }
        if !unit.service("LoadCredential").is_empty() {
            env.push((
                "CREDENTIALS_DIRECTORY".to_owned(),
                self.credentials().display().to_string(),
            ));
        }
        env
    }

    /// `ExecStart=`'s arguments after the binary, expanded (drctl's has no
    /// quoting; a quote fails the test rather than being split wrongly).
    pub fn exec_args(&self, unit: &Unit) -> Vec<String> {
        let line = unit.one("ExecStart");
        assert!(!line.contains(['"', '\'']), "quoting not handled: {line}");
        let mut words = line.split_whitespace().map(|w| self.expand(w));
        let binary = words.next().expect("ExecStart= names a binary");
        assert!(binary.ends_with("/drctl"), "ExecStart= runs {binary}");
        words.collect()
    }
}

/// A datagram socket standing in for systemd's `$NOTIFY_SOCKET`.
pub struct NotifySocket {
    socket: UnixDatagram,
    path: PathBuf,
    _dir: tempfile::TempDir,
    /// Every message received so far.
    pub seen: Vec<String>,
}

impl NotifySocket {
    /// Binds a fresh socket.
    pub fn bind() -> NotifySocket {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("notify");
        let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        NotifySocket {
            socket,
            path,
            _dir: dir,
            seen: Vec::new(),
        }
    }

    /// Its path, for `NOTIFY_SOCKET`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Receives for `within`; the messages that came.
    pub fn drain(&mut self, within: Duration) -> Vec<String> {
        let deadline = Instant::now() + within;
        let mut got = Vec::new();
        while Instant::now() < deadline {
            if let Some(m) = self.recv() {
                got.push(m);
            }
        }
        got
    }

    /// Waits (up to 30 s) for a message with a line equal to `line`.
    pub fn wait_for(&mut self, line: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(m) = self.recv() {
                if m.lines().any(|l| l == line) {
                    return m;
                }
            }
        }
        panic!("no {line:?} on the notify socket; seen {:#?}", self.seen)
    }

    fn recv(&mut self) -> Option<String> {
        let mut buf = [0u8; 4096];
        let n = self.socket.recv(&mut buf).ok()?;
        let m = String::from_utf8_lossy(&buf[..n]).into_owned();
        self.seen.push(m.clone());
        Some(m)
    }
}

/// An HTTP response: status, headers (names lower-cased), body.
#[derive(Debug)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: String,
}

impl HttpResponse {
    /// The first header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request on `127.0.0.1:port` (`Connection: close`); `None`
/// while nothing answers there.
pub fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)]) -> Option<HttpResponse> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let mut lines = head.lines();
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Some(HttpResponse {
        status,
        headers,
        body: body.to_owned(),
    })
}

/// `promtool check metrics` passes on `body` (exit 0, nothing said), or
/// the test fails with what promtool said and the body; skipped without
/// promtool outside CI (see [`skip`]).
pub fn promtool_check_metrics(body: &str) {
    let Some(promtool) =
        tool("promtool").or_else(|| skip("promtool is not installed (apt-get install prometheus)"))
    else {
        return;
    };
    let mut check = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run promtool");
    std::io::Write::write_all(
        &mut check.stdin.take().expect("promtool's stdin"),
        body.as_bytes(),
    )
    .expect("write to promtool");
    let out = check.wait_with_output().expect("wait for promtool");
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: {}{}\n{body}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A tool on `PATH` (`promtool`, `systemd-analyze`), or `None`.
pub fn tool(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

/// [`tool`] `name`, or a [`skip`] saying it is not installed and how to
/// install it (`install`: `apt-get install systemd`).
pub fn tool_or_skip(name: &str, install: &str) -> Option<PathBuf> {
    tool(name).or_else(|| skip(&format!("{name} is not installed ({install})")))
}

/// Says why a test is skipped, on stderr (shown with `--nocapture`), and
/// returns `None` to skip with. In CI (`CI=true`, as `.ci/run` runs), which
/// installs the tools, a missing one fails the test instead.
pub fn skip(why: &str) -> Option<PathBuf> {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{why}: .ci/run installs it"
    );
    eprintln!("SKIPPED: {why}");
    None
}
