//! The host's side: find, load and drive plugins safely.
//!
//! ```no_run
//! use std::sync::Arc;
//! use drctl_plugin_api::loader::{self, LogSink};
//!
//! let path = loader::find_plugin("mock", &loader::search_dirs::<&str>(&[]))?;
//! let plugin = loader::load(&path)?;
//! let sink = plugin.tracing_log_sink();
//! let mut backend = plugin.create(&serde_json::json!({}), Arc::new(|| {}), sink)?;
//! while let Some(output) = backend.poll_output(0)? {
//!     println!("{output:?}");
//! }
//! # Ok::<(), drctl_plugin_api::PluginError>(())
//! ```

use std::cell::Cell;
use std::ffi::{c_void, CStr};
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::abi::{
    status, Buf, Capabilities, EntryFn, HostVtable, LogLevel, PluginHeader, ABI_MAJOR, ABI_MINOR,
    ENTRY_SYMBOL, MAGIC, NO_TIMEOUT,
};
use crate::messages::{compact, Input, Output};
use drctl_protocol::memo::ParseMemo;

/// The largest output the host reads (1 MiB): real outputs are a few hundred bytes.
pub const MAX_OUTPUT_BYTES: usize = 1 << 20;

/// Anything that can go wrong finding, loading or driving a plugin. Every
/// message names the plugin file.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum PluginError {
    /// No plugin file of that name in any search directory.
    #[error(
        "plugin `{name}` not found: no {file} in {} (build it with `cargo build -p drctl-plugin-{name}`)",
        display_dirs(searched)
    )]
    NotFound {
        /// The plugin name asked for.
        name: String,
        /// The file name looked for.
        file: String,
        /// Every directory searched, in order.
        searched: Vec<PathBuf>,
    },
    /// The file could not be loaded as a shared library.
    #[error("cannot load plugin {}: {message}", path.display())]
    NotLoadable {
        /// The file.
        path: PathBuf,
        /// The dynamic loader's message.
        message: String,
    },
    /// Someone other than the operator could have changed the file (like ssh
    /// with its keys, drctl refuses to run such code).
    #[error("refusing plugin {}: {why}", path.display())]
    Insecure {
        /// The file.
        path: PathBuf,
        /// What is wrong and how to fix it.
        why: String,
    },
    /// A shared library, but not a drctl plugin (missing symbol, bad magic, bad header).
    #[error("{} is not a drctl plugin: {why}", path.display())]
    NotAPlugin {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// The plugin speaks another ABI major.
    #[error(
        "plugin {} speaks drctl plugin ABI {plugin_major}.{plugin_minor}, this drctl speaks {host_major}.{host_minor}",
        path.display()
    )]
    AbiMismatch {
        /// The file.
        path: PathBuf,
        /// The plugin's ABI major.
        plugin_major: u32,
        /// The plugin's ABI minor.
        plugin_minor: u32,
        /// The host's ABI major.
        host_major: u32,
        /// The host's ABI minor.
        host_minor: u32,
    },
    /// The plugin's `create` refused (bad config, unreachable resource, ...).
    #[error("plugin {plugin} failed to start: {message}")]
    CreateFailed {
        /// `` `name` (path) ``.
        plugin: Arc<str>,
        /// The plugin's message.
        message: String,
    },
    /// A call returned an error (the backend's own fault report).
    #[error("plugin {plugin} failed in {export}: {message}")]
    Failed {
        /// `` `name` (path) ``.
        plugin: Arc<str>,
        /// Which ABI function.
        export: &'static str,
        /// The plugin's message.
        message: String,
    },
    /// The plugin could not read the JSON the host sent (version skew).
    #[error("plugin {plugin} could not read the host's input in {export}: {message}")]
    BadInput {
        /// `` `name` (path) ``.
        plugin: Arc<str>,
        /// Which ABI function.
        export: &'static str,
        /// The plugin's message.
        message: String,
    },
    /// The plugin panicked; the instance is unusable (recreate it).
    #[error("plugin {plugin} panicked in {export}: {message}")]
    Panicked {
        /// `` `name` (path) ``.
        plugin: Arc<str>,
        /// Which ABI function.
        export: &'static str,
        /// The panic message and location.
        message: String,
    },
    /// The instance refused a call after an earlier panic (recreate it).
    #[error("plugin {plugin} refused {export}: {message}")]
    Poisoned {
        /// `` `name` (path) ``.
        plugin: Arc<str>,
        /// Which ABI function.
        export: &'static str,
        /// The plugin's message.
        message: String,
    },
    /// The plugin returned bytes that are not a valid message (or an unknown status).
    #[error("plugin {plugin} returned malformed output from {export}: {message}")]
    Malformed {
        /// `` `name` (path) ``.
        plugin: Arc<str>,
        /// Which ABI function.
        export: &'static str,
        /// What was wrong, with the start of the output.
        message: String,
    },
}

impl PluginError {
    /// Whether the instance is unusable and should be destroyed and recreated.
    pub fn instance_unusable(&self) -> bool {
        matches!(
            self,
            PluginError::Panicked { .. } | PluginError::Poisoned { .. }
        )
    }
}

fn display_dirs(dirs: &[PathBuf]) -> String {
    if dirs.is_empty() {
        return "(no directory to search)".to_owned();
    }
    dirs.iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Opens the plugin file and refuses it unless only root or the user running
/// drctl could have written it: the open file itself (a regular file, owner
/// root or you, not writable by group or others) and every directory from
/// its real location up to `/` (owner root or you; writable by group or
/// others only if sticky, like /tmp), as sudo and ssh check. Its code would
/// run with drctl's rights (the password included). Checks only: [`load`]
/// loads the very file it checked.
pub fn check_ownership(path: &Path) -> Result<(), PluginError> {
    open_checked(path).map(drop)
}

/// The checked plugin file, open: what [`load`] hands to the dynamic loader.
#[cfg(unix)]
struct CheckedFile {
    file: std::fs::File,
    dev: u64,
    ino: u64,
}

#[cfg(unix)]
fn open_checked(path: &Path) -> Result<CheckedFile, PluginError> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let unloadable = |p: &Path, e: std::io::Error| PluginError::NotLoadable {
        path: p.to_path_buf(),
        message: e.to_string(),
    };
    let insecure = |why: String| PluginError::Insecure {
        path: path.to_path_buf(),
        why,
    };
    // O_NONBLOCK: opening a FIFO planted at the path must not hang drctl
    // (no effect on a regular file). std adds O_CLOEXEC.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| unloadable(path, e))?;
    let meta = file.metadata().map_err(|e| unloadable(path, e))?;
    let real = real_path(&file, path).map_err(|e| unloadable(path, e))?;
    if !meta.file_type().is_file() {
        return Err(insecure(format!(
            "{} is not a regular file",
            real.display()
        )));
    }
    // The path checked below must be where the open file is now: if not, a
    // symlink or directory on the way is being swapped.
    match std::fs::symlink_metadata(&real) {
        Ok(now) if now.dev() == meta.dev() && now.ino() == meta.ino() => {}
        _ => {
            return Err(insecure(format!(
                "{} changed while it was being checked (is a symlink or directory on its path \
                 being replaced?)",
                real.display()
            )))
        }
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    check_owner_and_mode("file", &real, &meta, me, false).map_err(insecure)?;
    for dir in real.ancestors().skip(1) {
        let dir_meta = std::fs::symlink_metadata(dir).map_err(|e| unloadable(dir, e))?;
        check_owner_and_mode("directory", dir, &dir_meta, me, true).map_err(insecure)?;
    }
    Ok(CheckedFile {
        dev: meta.dev(),
        ino: meta.ino(),
        file,
    })
}

/// Where the open `file` (opened as `path`) really is, with no symlink in it.
#[cfg(unix)]
fn real_path(file: &std::fs::File, path: &Path) -> std::io::Result<PathBuf> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let _ = path;
        // The kernel's name for the open file: no second lookup of `path`.
        std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
    }
    #[cfg(not(target_os = "linux"))]
    {
        // Compared with the open file's identity by the caller.
        let _ = file;
        std::fs::canonicalize(path)
    }
}

/// The owner/mode rule for one file or directory: `Err(why, with the fix)`.
#[cfg(unix)]
fn check_owner_and_mode(
    what: &str,
    p: &Path,
    meta: &std::fs::Metadata,
    me: u32,
    sticky_ok: bool,
) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let mode = meta.mode() & 0o7777;
    if meta.uid() != 0 && meta.uid() != me {
        return Err(format!(
            "the {what} {} is owned by uid {}, neither root nor you (uid {me}); \
             fix it with: chown {me} {} (or install it as root)",
            p.display(),
            meta.uid(),
            p.display()
        ));
    }
    // In a sticky directory others may add entries but not rename or remove
    // ours (its owner, root or you, may).
    let sticky = sticky_ok && mode & 0o1000 != 0;
    if mode & 0o022 != 0 && !sticky {
        return Err(format!(
            "the {what} {} is writable by group or others (mode {mode:o}); fix it with: chmod go-w {}",
            p.display(),
            p.display()
        ));
    }
    Ok(())
}

/// Not a Unix: no owner and mode bits to check.
#[cfg(not(unix))]
fn open_checked(_path: &Path) -> Result<(), PluginError> {
    Ok(())
}

/// A library handed to the dynamic loader as `/proc/self/fd/N`, kept open
/// for the life of the process: the loader knows the library by that name,
/// so the number must never name another file (libraries are never unloaded).
#[cfg(unix)]
struct Opened {
    dev: u64,
    ino: u64,
    /// The entry point, or `None` for a library without one.
    entry: Option<EntryFn>,
    _file: std::fs::File,
}

/// Every file given to the dynamic loader, by identity: one open file each.
#[cfg(unix)]
static OPENED: std::sync::Mutex<Vec<Opened>> = std::sync::Mutex::new(Vec::new());

/// The entry point of the plugin at `path`, from the very file that was checked.
#[cfg(unix)]
fn entry_point(path: &Path) -> Result<Option<EntryFn>, PluginError> {
    use std::os::fd::AsRawFd;
    let checked = open_checked(path)?;
    // A poisoned lock only means another load panicked; the list is still whole.
    let mut opened = OPENED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(known) = opened
        .iter()
        .find(|o| o.dev == checked.dev && o.ino == checked.ino)
    {
        return Ok(known.entry);
    }
    #[cfg(target_os = "linux")]
    let fd_path = format!("/proc/self/fd/{}", checked.file.as_raw_fd());
    #[cfg(not(target_os = "linux"))]
    let fd_path = format!("/dev/fd/{}", checked.file.as_raw_fd());
    // SAFETY: loading a library runs its initializers; this is the open file
    // whose owner and mode, and its directories', were just checked.
    let library =
        unsafe { libloading::Library::new(&fd_path) }.map_err(|e| PluginError::NotLoadable {
            path: path.to_path_buf(),
            message: e.to_string().replace(&fd_path, &path.display().to_string()),
        })?;
    // SAFETY: the symbol is declared with the ABI's entry type; a library that
    // exports the name with another type breaks the ABI contract.
    let entry = unsafe { library.get::<EntryFn>(ENTRY_SYMBOL) }
        .ok()
        .map(|symbol| *symbol);
    // Never unload: a plugin's thread-local destructors (and threads it may
    // have started) would run code from unmapped pages after dlclose and crash
    // the process. The leak is one handle and one descriptor per distinct file.
    std::mem::forget(library);
    opened.push(Opened {
        dev: checked.dev,
        ino: checked.ino,
        entry,
        _file: checked.file,
    });
    Ok(entry)
}

/// Not a Unix: load by path.
#[cfg(not(unix))]
fn entry_point(path: &Path) -> Result<Option<EntryFn>, PluginError> {
    open_checked(path)?;
    // SAFETY: as on Unix, without the owner checks this platform lacks.
    let library =
        unsafe { libloading::Library::new(path) }.map_err(|e| PluginError::NotLoadable {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    // SAFETY: as on Unix.
    let entry = unsafe { library.get::<EntryFn>(ENTRY_SYMBOL) }
        .ok()
        .map(|symbol| *symbol);
    std::mem::forget(library);
    Ok(entry)
}

/// The file name of plugin `name` on this platform: `mock` → `libdrctl_plugin_mock.so`
/// (`-` becomes `_`, as cargo does for crate `drctl-plugin-<name>`).
pub fn plugin_file_name(name: &str) -> String {
    format!(
        "{}drctl_plugin_{}{}",
        std::env::consts::DLL_PREFIX,
        name.replace('-', "_"),
        std::env::consts::DLL_SUFFIX
    )
}

/// The directories searched after the caller's: the executable's directory;
/// its parent when that is cargo's `deps/` or `examples/` (tests, benches,
/// examples); and `<exe dir>/../lib/drctl` (installed layout).
pub fn default_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    let Ok(exe) = std::env::current_exe() else {
        return dirs;
    };
    let Some(dir) = exe.parent() else {
        return dirs;
    };
    dirs.push(dir.to_path_buf());
    if let (Some(base), Some(parent)) = (dir.file_name(), dir.parent()) {
        if base == "deps" || base == "examples" {
            dirs.push(parent.to_path_buf());
        }
    }
    // In a cargo target dir a plugin the binary depends on is built into
    // `deps/` (cargo only copies the top-level package's artifacts up).
    dirs.push(dir.join("deps"));
    if let Some(prefix) = dir.parent() {
        dirs.push(prefix.join("lib").join("drctl"));
    }
    dirs
}

/// `dirs` followed by [`default_dirs`], without duplicates.
pub fn search_dirs<P: AsRef<Path>>(dirs: &[P]) -> Vec<PathBuf> {
    let mut all: Vec<PathBuf> = Vec::new();
    for dir in dirs
        .iter()
        .map(|d| d.as_ref().to_path_buf())
        .chain(default_dirs())
    {
        if !all.contains(&dir) {
            all.push(dir);
        }
    }
    all
}

/// Find plugin `name` in `dirs`, then in [`default_dirs`]. A `name` that
/// contains a path separator or ends in the library suffix is taken as a path.
pub fn find_plugin<P: AsRef<Path>>(name: &str, dirs: &[P]) -> Result<PathBuf, PluginError> {
    if name.contains(std::path::MAIN_SEPARATOR) || name.ends_with(std::env::consts::DLL_SUFFIX) {
        let path = PathBuf::from(name);
        if path.is_file() {
            return Ok(path);
        }
        let parent = path.parent().map(Path::to_path_buf).unwrap_or_default();
        return Err(PluginError::NotFound {
            name: name.to_owned(),
            file: path
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default(),
            searched: vec![parent],
        });
    }
    let file = plugin_file_name(name);
    let searched = search_dirs(dirs);
    for dir in &searched {
        let candidate = dir.join(&file);
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    Err(PluginError::NotFound {
        name: name.to_owned(),
        file,
        searched,
    })
}

/// Every plugin file in `dirs` then [`default_dirs`] (the first of a name
/// wins, as in [`find_plugin`]), loaded to read its header. For
/// `drctl plugins list`; a file that fails to load is listed as its error.
///
/// Loading runs each library's initializers and never unloads it.
pub fn list_plugins<P: AsRef<Path>>(dirs: &[P]) -> Vec<Result<PluginInfo, PluginError>> {
    let prefix = format!("{}drctl_plugin_", std::env::consts::DLL_PREFIX);
    let suffix = std::env::consts::DLL_SUFFIX;
    let mut seen = Vec::new();
    let mut found = Vec::new();
    for dir in search_dirs(dirs) {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.is_file()
                    && p.file_name()
                        .and_then(|f| f.to_str())
                        .is_some_and(|f| f.starts_with(&prefix) && f.ends_with(suffix))
            })
            .collect();
        files.sort();
        for path in files {
            let file = path.file_name().map(|f| f.to_os_string());
            if seen.contains(&file) {
                continue;
            }
            seen.push(file);
            found.push(load(&path).map(|p| p.info().clone()));
        }
    }
    found
}

/// What a plugin's header says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    /// The plugin's name, e.g. `mock`.
    pub name: String,
    /// The plugin's version.
    pub version: String,
    /// The plugin's ABI major.
    pub abi_major: u32,
    /// The plugin's ABI minor.
    pub abi_minor: u32,
    /// What it can do.
    pub capabilities: Capabilities,
    /// The file it was loaded from.
    pub path: PathBuf,
}

/// `mock 0.1.0 (ABI 1.0, deterministic) /path/libdrctl_plugin_mock.so`
impl fmt::Display for PluginInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} (ABI {}.{}, {}) {}",
            self.name,
            self.version,
            self.abi_major,
            self.abi_minor,
            self.capabilities,
            self.path.display()
        )
    }
}

/// The fixed start of every header, whatever its ABI version.
#[repr(C)]
struct HeaderPrefix {
    magic: u64,
    abi_major: u32,
    abi_minor: u32,
    struct_size: usize,
}

/// Load the plugin at `path` and check its header. The file is opened once,
/// checked as [`check_ownership`] says, and that open file is what the
/// dynamic loader loads: a path swapped in between cannot change which code
/// runs. The library is never unloaded, so loading the same file twice is
/// cheap and safe.
pub fn load(path: &Path) -> Result<Plugin, PluginError> {
    let not_a_plugin = |why: String| PluginError::NotAPlugin {
        path: path.to_path_buf(),
        why,
    };
    let Some(entry) = entry_point(path)? else {
        return Err(not_a_plugin(
            "it does not export `drctl_plugin_entry`".to_owned(),
        ));
    };

    // SAFETY: the entry point of a drctl plugin takes nothing and returns a pointer to static data.
    let header = unsafe { entry() };
    if header.is_null() {
        return Err(not_a_plugin(
            "`drctl_plugin_entry` returned a null header".to_owned(),
        ));
    }
    // SAFETY: every header version starts with this prefix; the pointer is
    // non-null and points to the plugin's static header.
    let prefix = unsafe { header.cast::<HeaderPrefix>().read() };
    if prefix.magic != MAGIC {
        return Err(not_a_plugin(format!(
            "bad magic {:#018x} in its header (expected {MAGIC:#018x})",
            prefix.magic
        )));
    }
    if prefix.abi_major != ABI_MAJOR {
        return Err(PluginError::AbiMismatch {
            path: path.to_path_buf(),
            plugin_major: prefix.abi_major,
            plugin_minor: prefix.abi_minor,
            host_major: ABI_MAJOR,
            host_minor: ABI_MINOR,
        });
    }
    let needed = std::mem::size_of::<PluginHeader>();
    if prefix.struct_size < needed {
        return Err(not_a_plugin(format!(
            "its ABI {}.{} header is {} bytes, ABI {ABI_MAJOR}.0 needs {needed}",
            prefix.abi_major, prefix.abi_minor, prefix.struct_size
        )));
    }
    // SAFETY: struct_size says at least our version of the header is there.
    let header = unsafe { header.read() };
    let text = |ptr: *const std::ffi::c_char, what: &str| -> Result<String, PluginError> {
        if ptr.is_null() {
            return Err(not_a_plugin(format!("its header has a null {what}")));
        }
        // SAFETY: the header's strings are static and NUL-terminated per the ABI.
        let s = unsafe { CStr::from_ptr(ptr) };
        s.to_str()
            .map(str::to_owned)
            .map_err(|_| not_a_plugin(format!("its {what} is not UTF-8")))
    };
    let info = PluginInfo {
        name: text(header.name, "name")?,
        version: text(header.version, "version")?,
        abi_major: header.abi_major,
        abi_minor: header.abi_minor,
        capabilities: Capabilities::from_bits(header.capabilities),
        path: path.to_path_buf(),
    };
    let label = format!("`{}` ({})", info.name, path.display()).into();
    Ok(Plugin {
        inner: Arc::new(PluginInner {
            info,
            header,
            label,
        }),
    })
}

/// A loaded plugin: its header, ready to create instances. Cheap to clone.
#[derive(Clone)]
pub struct Plugin {
    inner: Arc<PluginInner>,
}

struct PluginInner {
    info: PluginInfo,
    header: PluginHeader,
    label: Arc<str>,
}

impl fmt::Debug for Plugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Plugin").field(&self.inner.info).finish()
    }
}

/// Called when a plugin instance has output ready; from any thread.
pub type WakeFn = Arc<dyn Fn() + Send + Sync>;

/// A log line consumer: level and text.
pub(crate) type LogFn = dyn Fn(LogLevel, &str) + Send + Sync;

/// Where a plugin instance's log lines go.
#[derive(Clone)]
pub struct LogSink {
    max_level: LogLevel,
    f: Arc<LogFn>,
}

impl LogSink {
    /// A sink calling `f` for every line up to `max_level` (the plugin skips the rest).
    pub fn new(max_level: LogLevel, f: impl Fn(LogLevel, &str) + Send + Sync + 'static) -> Self {
        LogSink {
            max_level,
            f: Arc::new(f),
        }
    }

    /// Forward into the host's `tracing` (target `drctl::plugin`, field
    /// `plugin` = `name`); the plugin skips what `tracing` filters out at the time of this call.
    pub fn tracing(name: &str) -> Self {
        let name: Arc<str> = name.into();
        LogSink::new(LogLevel::tracing_max(), move |level, msg| {
            let plugin = &*name;
            match level {
                LogLevel::Error => tracing::error!(target: "drctl::plugin", plugin, "{msg}"),
                LogLevel::Warn => tracing::warn!(target: "drctl::plugin", plugin, "{msg}"),
                LogLevel::Info => tracing::info!(target: "drctl::plugin", plugin, "{msg}"),
                LogLevel::Debug => tracing::debug!(target: "drctl::plugin", plugin, "{msg}"),
                LogLevel::Trace => tracing::trace!(target: "drctl::plugin", plugin, "{msg}"),
            }
        })
    }
}

impl fmt::Debug for LogSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LogSink(max {})", self.max_level)
    }
}

impl Plugin {
    /// The header's description of the plugin.
    pub fn info(&self) -> &PluginInfo {
        &self.inner.info
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.inner.info.name
    }

    /// The plugin's capabilities.
    pub fn capabilities(&self) -> Capabilities {
        self.inner.info.capabilities
    }

    /// The default log sink: the host's `tracing`, field `plugin` = this plugin's name.
    pub fn tracing_log_sink(&self) -> LogSink {
        LogSink::tracing(self.name())
    }

    /// Create an instance with this JSON config. `wake` is called (from any
    /// thread) when the instance has output ready; its logs go to `log`.
    /// Messages are in the compact encoding when the plugin announces
    /// [`Capabilities::COMPACT`], else JSON ([`Instance::encoding`]).
    pub fn create(
        &self,
        config: &serde_json::Value,
        wake: WakeFn,
        log: LogSink,
    ) -> Result<Instance, PluginError> {
        let encoding = if self.capabilities().contains(Capabilities::COMPACT) {
            Encoding::Compact
        } else {
            Encoding::Json
        };
        self.create_with(config, wake, log, encoding)
    }

    /// [`Plugin::create`] speaking `encoding`; [`Encoding::Compact`] only if
    /// the plugin announces [`Capabilities::COMPACT`] (else JSON).
    pub fn create_with(
        &self,
        config: &serde_json::Value,
        wake: WakeFn,
        log: LogSink,
        encoding: Encoding,
    ) -> Result<Instance, PluginError> {
        let encoding = match encoding {
            Encoding::Compact if self.capabilities().contains(Capabilities::COMPACT) => {
                Encoding::Compact
            }
            _ => Encoding::Json,
        };
        let agreed = match encoding {
            Encoding::Compact => Capabilities::COMPACT,
            Encoding::Json => Capabilities::NONE,
        };
        let ctx = Box::new(HostCtx { wake, log });
        let vtable = HostVtable {
            struct_size: std::mem::size_of::<HostVtable>(),
            ctx: (&*ctx as *const HostCtx).cast(),
            wake: host_wake,
            log: host_log,
            max_log_level: ctx.log.max_level as u32,
            agreed: agreed.bits(),
        };
        let config = serde_json::to_vec(config).expect("a serde_json::Value always serializes");
        let mut instance: *mut c_void = std::ptr::null_mut();
        let mut err = Buf::EMPTY;
        // SAFETY: all pointers are valid for the call; the vtable's ctx (boxed)
        // lives in the Instance until after destroy.
        let code = unsafe {
            (self.inner.header.create)(
                &vtable,
                config.as_ptr(),
                config.len(),
                &mut instance,
                &mut err,
            )
        };
        let message = self.take_message(err);
        match code {
            status::OK if !instance.is_null() => Ok(Instance {
                plugin: self.clone(),
                instance,
                _ctx: ctx,
                input: Vec::with_capacity(256),
                pending: Cell::new(None),
                encoding,
                memo: None,
                timeouts: None,
            }),
            status::OK => Err(PluginError::Malformed {
                plugin: self.inner.label.clone(),
                export: "create",
                message: "create succeeded but returned no instance".to_owned(),
            }),
            status::PANIC => Err(PluginError::Panicked {
                plugin: self.inner.label.clone(),
                export: "create",
                message,
            }),
            status::ERROR | status::BAD_INPUT => Err(PluginError::CreateFailed {
                plugin: self.inner.label.clone(),
                message,
            }),
            other => Err(self.error(other, "create", message)),
        }
    }

    /// Read and free a message buffer filled by the plugin.
    fn take_message(&self, buf: Buf) -> String {
        if buf.ptr.is_null() {
            return String::new();
        }
        // SAFETY: the plugin filled buf with len bytes; we read them before freeing.
        let text = String::from_utf8_lossy(unsafe { buf.as_slice() }).into_owned();
        // SAFETY: the buffer came from this plugin and is freed once, by it.
        unsafe { (self.inner.header.free_buf)(buf) };
        text
    }

    /// The error for a negative (or unknown) status.
    fn error(&self, code: i32, export: &'static str, message: String) -> PluginError {
        let plugin = self.inner.label.clone();
        match code {
            status::ERROR => PluginError::Failed {
                plugin,
                export,
                message,
            },
            status::BAD_INPUT => PluginError::BadInput {
                plugin,
                export,
                message,
            },
            status::PANIC => PluginError::Panicked {
                plugin,
                export,
                message,
            },
            status::POISONED => PluginError::Poisoned {
                plugin,
                export,
                message,
            },
            other => PluginError::Malformed {
                plugin,
                export,
                message: if message.is_empty() {
                    format!("unknown status {other}")
                } else {
                    format!("unknown status {other} ({message})")
                },
            },
        }
    }
}

/// The host context behind [`HostVtable::ctx`].
struct HostCtx {
    wake: WakeFn,
    log: LogSink,
}

unsafe extern "C" fn host_wake(ctx: *const c_void) {
    // SAFETY: ctx is the HostCtx of a live Instance (the plugin stops calling before destroy returns).
    let ctx = unsafe { &*ctx.cast::<HostCtx>() };
    // A panic must not unwind into the plugin's frames.
    let _ = catch_unwind(AssertUnwindSafe(|| (ctx.wake)()));
}

unsafe extern "C" fn host_log(ctx: *const c_void, level: u32, msg: *const u8, len: usize) {
    // SAFETY: as in host_wake.
    let ctx = unsafe { &*ctx.cast::<HostCtx>() };
    let bytes = if msg.is_null() || len == 0 {
        &[][..]
    } else {
        // SAFETY: the plugin passes len readable bytes for the duration of the call.
        unsafe { std::slice::from_raw_parts(msg, len) }
    };
    let text = String::from_utf8_lossy(bytes);
    let _ = catch_unwind(AssertUnwindSafe(|| {
        (ctx.log.f)(LogLevel::from_u32(level), &text)
    }));
}

/// A live backend instance. Calls go straight to the plugin; `Drop` destroys it.
///
/// `Send` but not `Sync`: one thread at a time, as the ABI requires.
pub struct Instance {
    plugin: Plugin,
    instance: *mut c_void,
    /// Must outlive `destroy` (the plugin may call back until then).
    _ctx: Box<HostCtx>,
    /// Reused serialization buffer for inputs.
    input: Vec<u8>,
    /// A `poll_timeout` failure, reported by the next `handle`/`poll_output`.
    pending: Cell<Option<PluginError>>,
    /// How messages cross to and from this instance.
    encoding: Encoding,
    /// JSON outputs parsed before, by their bytes ([`Instance::memoize_outputs`]).
    memo: Option<ParseMemo<Output>>,
    /// The deadline `poll_timeout` last gave, kept until the next `handle`
    /// or `poll_output` ([`Instance::cache_timeouts`]; `None`: not cached).
    timeouts: Option<Cell<Option<Option<u64>>>>,
}

/// How many distinct outputs [`Instance::memoize_outputs`] keeps.
const MEMO_ENTRIES: usize = 256;
/// The longest output it keeps (a recorded event is about 130 bytes).
const MEMO_LONGEST: usize = 1024;

/// How an instance's messages cross the ABI (SPEC §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// UTF-8 JSON, which every plugin speaks.
    Json,
    /// The compact encoding (`messages::compact`), agreed through
    /// [`Capabilities::COMPACT`]; an output starting with `{` is still JSON.
    Compact,
}

// SAFETY: the ABI lets an instance be called from any thread, one call at a
// time; `&mut self`/`!Sync` gives exactly that. HostCtx holds Send + Sync closures.
unsafe impl Send for Instance {}

impl fmt::Debug for Instance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Instance")
            .field("plugin", &self.plugin.inner.label)
            .finish()
    }
}

impl Instance {
    /// The plugin this instance belongs to.
    pub fn plugin(&self) -> &Plugin {
        &self.plugin
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        self.plugin.name()
    }

    /// How this instance's messages cross the ABI.
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// Parse each distinct JSON output once: an output with the bytes of one
    /// parsed before is that output again (a replay backend's recorded
    /// events repeat: SPEC §8). Bounded ([`ParseMemo`]); an output that does
    /// not parse is refused each time, as without it.
    pub fn memoize_outputs(&mut self) {
        self.memo
            .get_or_insert_with(|| ParseMemo::new(MEMO_ENTRIES, MEMO_LONGEST));
    }

    /// Ask a [`Capabilities::DETERMINISTIC`] plugin for its deadline once
    /// between two of its `handle` or `poll_output` calls: its state changes
    /// only in them (it reads no clock and has no thread of its own), so
    /// asking again in between gives the same answer, at the price of a
    /// call across the ABI. No effect on another plugin.
    pub fn cache_timeouts(&mut self) {
        if self
            .plugin
            .capabilities()
            .contains(Capabilities::DETERMINISTIC)
        {
            self.timeouts.get_or_insert_with(|| Cell::new(None));
        }
    }

    /// Forgets the cached deadline (the plugin is called).
    fn touched(&self) {
        if let Some(cached) = &self.timeouts {
            cached.set(None);
        }
    }

    /// Give the backend one input at host time `now_ns`.
    pub fn handle(&mut self, now_ns: u64, input: &Input) -> Result<(), PluginError> {
        self.touched();
        self.take_pending()?;
        self.input.clear();
        match self.encoding {
            Encoding::Json => {
                serde_json::to_writer(&mut self.input, input).expect("an Input always serializes")
            }
            Encoding::Compact => compact::encode_input(input, &mut self.input).map_err(|e| {
                PluginError::Malformed {
                    plugin: self.plugin.inner.label.clone(),
                    export: "handle",
                    message: format!("the host cannot encode its input: {e}"),
                }
            })?,
        }
        let mut err = Buf::EMPTY;
        // SAFETY: live instance, valid input bytes for the call, writable err.
        let code = unsafe {
            (self.plugin.inner.header.handle)(
                self.instance,
                now_ns,
                self.input.as_ptr(),
                self.input.len(),
                &mut err,
            )
        };
        let message = self.plugin.take_message(err);
        match code {
            status::OK => Ok(()),
            other => Err(self.plugin.error(other, "handle", message)),
        }
    }

    /// The next output at host time `now_ns`, if any.
    pub fn poll_output(&mut self, now_ns: u64) -> Result<Option<Output>, PluginError> {
        self.touched();
        self.take_pending()?;
        let mut out = Buf::EMPTY;
        // SAFETY: live instance, writable out.
        let code =
            unsafe { (self.plugin.inner.header.poll_output)(self.instance, now_ns, &mut out) };
        if code != status::OUTPUT {
            let message = self.plugin.take_message(out);
            return match code {
                status::NONE => Ok(None),
                other => Err(self.plugin.error(other, "poll_output", message)),
            };
        }
        // SAFETY: on OUTPUT the plugin filled `out`; we read it before freeing.
        let size = unsafe { out.as_slice() }.len();
        let parsed = if size > MAX_OUTPUT_BYTES {
            // A runaway plugin must not make the host parse (or hold) gigabytes.
            Err(PluginError::Malformed {
                plugin: self.plugin.inner.label.clone(),
                export: "poll_output",
                message: format!(
                    "an output of {size} bytes exceeds the limit of {MAX_OUTPUT_BYTES} bytes"
                ),
            })
        } else {
            // SAFETY: as above, still before freeing.
            let bytes = unsafe { out.as_slice() };
            match self.encoding {
                Encoding::Compact if !compact::is_json(bytes) => compact::decode_output(bytes)
                    .map_err(|e| self.malformed("poll_output", &e, bytes)),
                _ => match &mut self.memo {
                    Some(memo) => memo.get_or_parse(bytes, |b| serde_json::from_slice::<Output>(b)),
                    None => serde_json::from_slice::<Output>(bytes),
                }
                .map_err(|e| self.malformed("poll_output", &e, bytes)),
            }
        };
        // SAFETY: the buffer came from this plugin and is freed once, by it.
        unsafe { (self.plugin.inner.header.free_buf)(out) };
        parsed.map(Some)
    }

    /// When the backend wants to be called again (host clock, ns), if ever.
    ///
    /// A failure here (e.g. a panic) yields `None` and is reported by the next
    /// [`Instance::handle`] or [`Instance::poll_output`]; use
    /// [`Instance::try_poll_timeout`] to see it at once.
    pub fn poll_timeout(&self) -> Option<u64> {
        if let Some(deadline) = self.timeouts.as_ref().and_then(Cell::get) {
            return deadline;
        }
        match self.try_poll_timeout() {
            Ok(deadline) => {
                if let Some(cached) = &self.timeouts {
                    cached.set(Some(deadline));
                }
                deadline
            }
            Err(e) => {
                let mut pending = self.pending.take();
                pending.get_or_insert(e);
                self.pending.set(pending);
                None
            }
        }
    }

    /// [`Instance::poll_timeout`], reporting a failure at once.
    pub fn try_poll_timeout(&self) -> Result<Option<u64>, PluginError> {
        let mut deadline = NO_TIMEOUT;
        let mut err = Buf::EMPTY;
        // SAFETY: live instance, writable out pointers; `&self` + `!Sync` keeps calls serial.
        let code = unsafe {
            (self.plugin.inner.header.poll_timeout)(self.instance, &mut deadline, &mut err)
        };
        let message = self.plugin.take_message(err);
        match code {
            status::OK => Ok((deadline != NO_TIMEOUT).then_some(deadline)),
            other => Err(self.plugin.error(other, "poll_timeout", message)),
        }
    }

    /// A failure of `poll_timeout` not reported yet.
    fn take_pending(&mut self) -> Result<(), PluginError> {
        match self.pending.get_mut().take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn malformed(&self, export: &'static str, e: &dyn fmt::Display, bytes: &[u8]) -> PluginError {
        const SHOW: usize = 200;
        let shown = String::from_utf8_lossy(&bytes[..bytes.len().min(SHOW)]);
        let more = if bytes.len() > SHOW { "…" } else { "" };
        PluginError::Malformed {
            plugin: self.plugin.inner.label.clone(),
            export,
            message: format!("{e}; output was: {shown}{more}"),
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        // SAFETY: the instance is live and never used again; `_ctx` is dropped
        // only after this returns, and the plugin stops calling back before it does.
        unsafe { (self.plugin.inner.header.destroy)(self.instance) }
    }
}
