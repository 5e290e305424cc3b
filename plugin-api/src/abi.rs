//! The C ABI between the drctl host and a backend plugin (SPEC §4).
//!
//! A plugin is a shared library exporting one symbol, [`ENTRY_SYMBOL`]
//! (`drctl_plugin_entry`), an `extern "C" fn() -> *const PluginHeader`. The
//! header is static data: a magic number, the ABI version, its own size, the
//! plugin's name, version and [`Capabilities`], and the function pointers
//! below. Only `#[repr(C)]` structs, integers, pointers and UTF-8 JSON bytes
//! (the messages of [`crate::messages`]) cross the boundary, so a plugin can
//! be written in any language with a C ABI.
//!
//! Rules both sides follow:
//! - Memory is freed by the side that allocated it: every [`Buf`] a plugin
//!   fills is released with that plugin's `free_buf`; input bytes passed by
//!   the host are only borrowed for the duration of the call.
//! - No panic or exception crosses: a failing export returns a negative
//!   [`status`] with a UTF-8 message in its `out_err`/`out` buffer.
//! - Calls on one instance are never concurrent (the host serializes them),
//!   but successive calls may come from different threads; different
//!   instances may be used in parallel. The plugin may call
//!   [`HostVtable::wake`] and [`HostVtable::log`] from any thread, but only
//!   until `destroy` returns, and must not expect them to block.
//! - `now_ns` is nanoseconds since the session start on the host's clock
//!   (real or virtual). A [`Capabilities::DETERMINISTIC`] plugin reads no
//!   other clock.
//!
//! Versioning: the host refuses a plugin whose `abi_major` differs from
//! [`ABI_MAJOR`]. A newer `abi_minor` only appends fields to the end of the
//! header and of the host vtable (hence their `struct_size`: neither side
//! reads past the size the other declared) and may add output kinds, which an
//! older host reads as `Output::Unknown` and skips.

use std::ffi::{c_char, c_void};
use std::fmt;

/// The header's magic number: ASCII `DRCTLPLG`, big-endian.
pub const MAGIC: u64 = u64::from_be_bytes(*b"DRCTLPLG");
/// The ABI major version this crate speaks; a different major is refused.
pub const ABI_MAJOR: u32 = 1;
/// The ABI minor version this crate speaks; minors only add.
/// 1: the `divergence` output kind (replay backend).
/// 2: [`Capabilities::COMPACT`] and [`HostVtable::agreed`] (the compact encoding).
pub const ABI_MINOR: u32 = 2;
/// The name of the one symbol a plugin exports, NUL-terminated.
pub const ENTRY_SYMBOL: &[u8] = b"drctl_plugin_entry\0";

/// The type of [`ENTRY_SYMBOL`].
pub type EntryFn = unsafe extern "C" fn() -> *const PluginHeader;

/// `create(host, config_json, len, out_instance, out_err) -> status`.
///
/// `host` is valid only during the call: the plugin copies the vtable. On
/// [`status::OK`] `*out_instance` holds the new instance; otherwise `*out_err`
/// holds a message.
pub type CreateFn = unsafe extern "C" fn(
    host: *const HostVtable,
    config_json: *const u8,
    len: usize,
    out_instance: *mut *mut c_void,
    out_err: *mut Buf,
) -> i32;

/// `handle(instance, now_ns, input_json, len, out_err) -> status`: one [`crate::Input`].
pub type HandleFn = unsafe extern "C" fn(
    instance: *mut c_void,
    now_ns: u64,
    input_json: *const u8,
    len: usize,
    out_err: *mut Buf,
) -> i32;

/// `poll_output(instance, now_ns, out) -> status`: [`status::OUTPUT`] with one
/// [`crate::Output`] as JSON in `*out`, [`status::NONE`], or a negative status
/// with a message in `*out`.
pub type PollOutputFn =
    unsafe extern "C" fn(instance: *mut c_void, now_ns: u64, out: *mut Buf) -> i32;

/// `poll_timeout(instance, out_deadline_ns, out_err) -> status`: on
/// [`status::OK`] `*out_deadline_ns` is the next time (host clock, ns) at
/// which the plugin wants a call, or [`NO_TIMEOUT`].
pub type PollTimeoutFn = unsafe extern "C" fn(
    instance: *mut c_void,
    out_deadline_ns: *mut u64,
    out_err: *mut Buf,
) -> i32;

/// `free_buf(buf)`: release a buffer this plugin filled. Accepts an empty `Buf`.
pub type FreeBufFn = unsafe extern "C" fn(buf: Buf);

/// `destroy(instance)`: drop the instance; the plugin stops calling the host vtable before returning.
pub type DestroyFn = unsafe extern "C" fn(instance: *mut c_void);

/// [`PollTimeoutFn`]'s "no deadline".
pub const NO_TIMEOUT: u64 = u64::MAX;

/// Return codes of the ABI functions.
pub mod status {
    /// Success (`create`, `handle`, `poll_timeout`); for `poll_output`: nothing to output.
    pub const OK: i32 = 0;
    /// `poll_output`: nothing to output now.
    pub const NONE: i32 = 0;
    /// `poll_output`: one output written.
    pub const OUTPUT: i32 = 1;
    /// The backend reported an error (message in the buffer).
    pub const ERROR: i32 = -1;
    /// The plugin could not read the host's JSON (config or input).
    pub const BAD_INPUT: i32 = -2;
    /// The export panicked; the instance is poisoned from now on.
    pub const PANIC: i32 = -3;
    /// An earlier panic left the instance unusable; only `destroy` is meaningful.
    pub const POISONED: i32 = -4;
}

/// A byte buffer allocated by the plugin and freed only by its `free_buf`.
#[repr(C)]
#[derive(Debug)]
pub struct Buf {
    /// Start of the bytes; null for an empty buffer.
    pub ptr: *mut u8,
    /// Number of bytes.
    pub len: usize,
    /// Allocation capacity, for the allocator's own use.
    pub cap: usize,
}

impl Buf {
    /// The empty buffer (nothing to free).
    pub const EMPTY: Buf = Buf {
        ptr: std::ptr::null_mut(),
        len: 0,
        cap: 0,
    };

    /// Hand a `Vec`'s allocation over (plugin side); release it with [`Buf::into_vec`].
    pub fn from_vec(v: Vec<u8>) -> Buf {
        let mut v = std::mem::ManuallyDrop::new(v);
        Buf {
            ptr: v.as_mut_ptr(),
            len: v.len(),
            cap: v.capacity(),
        }
    }

    /// Take back the `Vec` behind a buffer made by [`Buf::from_vec`] (plugin side).
    ///
    /// # Safety
    /// `self` must come from [`Buf::from_vec`] in this same binary (same
    /// allocator), unmodified, and not be turned back twice.
    pub unsafe fn into_vec(self) -> Option<Vec<u8>> {
        if self.ptr.is_null() {
            return None;
        }
        // SAFETY: per the contract, ptr/len/cap are exactly those of a Vec<u8>
        // leaked by `from_vec` in this binary.
        Some(unsafe { Vec::from_raw_parts(self.ptr, self.len, self.cap) })
    }

    /// View the bytes (host side, before handing the buffer to `free_buf`).
    ///
    /// # Safety
    /// `ptr` must be null or point to `len` initialized bytes that stay valid
    /// while the returned slice is used.
    pub unsafe fn as_slice(&self) -> &[u8] {
        if self.ptr.is_null() || self.len == 0 {
            &[]
        } else {
            // SAFETY: non-null and `len` readable bytes per the caller's contract.
            unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
        }
    }
}

/// The callbacks the host offers a plugin instance. Copied by the plugin in
/// `create`; `ctx` and the callbacks stay valid until `destroy` returns.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct HostVtable {
    /// `size_of::<HostVtable>()` as the host built it; later minors append fields.
    pub struct_size: usize,
    /// Opaque host context, passed back to every callback.
    pub ctx: *const c_void,
    /// Output is ready: the host will call `poll_output` soon. Thread-safe,
    /// cheap, may be called from any thread.
    pub wake: unsafe extern "C" fn(ctx: *const c_void),
    /// A log line (UTF-8, `len` bytes) at a [`LogLevel`] (1 = error .. 5 = trace). Thread-safe.
    pub log: unsafe extern "C" fn(ctx: *const c_void, level: u32, msg: *const u8, len: usize),
    /// The most verbose [`LogLevel`] the host will keep; the plugin may skip the rest.
    pub max_log_level: u32,
    /// ABI 1.2: the [`Capabilities`] the host took up for this instance, a
    /// subset of those the plugin's header announced. [`Capabilities::COMPACT`]:
    /// inputs and outputs of this instance are in the compact encoding
    /// (`drctl_protocol::messages::compact`). A vtable of an older host ends
    /// before this field (`struct_size`): nothing agreed, JSON.
    pub agreed: u64,
}

impl HostVtable {
    /// The size of an ABI 1.0 host vtable (before [`HostVtable::agreed`]):
    /// the least a plugin accepts.
    pub const MIN_SIZE: usize = std::mem::offset_of!(HostVtable, agreed);
}

/// The static description of a plugin, returned by `drctl_plugin_entry`.
///
/// Layout is frozen for ABI major 1: later minors only append fields, and
/// `struct_size` tells the host how many bytes are really there.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct PluginHeader {
    /// Must be [`MAGIC`].
    pub magic: u64,
    /// The plugin's ABI major.
    pub abi_major: u32,
    /// The plugin's ABI minor.
    pub abi_minor: u32,
    /// `size_of::<PluginHeader>()` as the plugin built it.
    pub struct_size: usize,
    /// Plugin name, NUL-terminated UTF-8, static.
    pub name: *const c_char,
    /// Plugin version, NUL-terminated UTF-8, static.
    pub version: *const c_char,
    /// [`Capabilities`] bits.
    pub capabilities: u64,
    /// See [`CreateFn`].
    pub create: CreateFn,
    /// See [`HandleFn`].
    pub handle: HandleFn,
    /// See [`PollOutputFn`].
    pub poll_output: PollOutputFn,
    /// See [`PollTimeoutFn`].
    pub poll_timeout: PollTimeoutFn,
    /// See [`FreeBufFn`].
    pub free_buf: FreeBufFn,
    /// See [`DestroyFn`].
    pub destroy: DestroyFn,
}

// SAFETY: the header is immutable static data; its pointers point to static,
// immutable NUL-terminated strings and its functions are plain code addresses.
unsafe impl Sync for PluginHeader {}
// SAFETY: as above, nothing in the header is tied to a thread.
unsafe impl Send for PluginHeader {}

/// What a plugin can do, as bit flags.
#[repr(transparent)]
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Capabilities(u64);

impl Capabilities {
    /// No capability.
    pub const NONE: Capabilities = Capabilities(0);
    /// Driven only by host time (`now_ns`), never a clock or thread of its own:
    /// usable under `--clock virtual`.
    pub const DETERMINISTIC: Capabilities = Capabilities(1 << 0);
    /// One instance serves many agent sessions (fleet mode).
    pub const MULTI_SESSION: Capabilities = Capabilities(1 << 1);
    /// ABI 1.2: the plugin also speaks the compact (binary) encoding of the
    /// messages; the host takes it up per instance through
    /// [`HostVtable::agreed`], else both sides speak JSON (SPEC §4).
    pub const COMPACT: Capabilities = Capabilities(1 << 2);

    const NAMED: [(Capabilities, &'static str); 3] = [
        (Capabilities::DETERMINISTIC, "deterministic"),
        (Capabilities::MULTI_SESSION, "multi-session"),
        (Capabilities::COMPACT, "compact"),
    ];

    /// From raw bits (unknown bits are kept).
    pub const fn from_bits(bits: u64) -> Self {
        Capabilities(bits)
    }

    /// The raw bits.
    pub const fn bits(self) -> u64 {
        self.0
    }

    /// Whether every flag of `other` is set.
    pub const fn contains(self, other: Capabilities) -> bool {
        self.0 & other.0 == other.0
    }

    /// Both sets of flags.
    pub const fn union(self, other: Capabilities) -> Self {
        Capabilities(self.0 | other.0)
    }
}

impl std::ops::BitOr for Capabilities {
    type Output = Capabilities;
    fn bitor(self, rhs: Self) -> Self {
        self.union(rhs)
    }
}

/// `deterministic,multi-session`, `none`, unknown bits as hex.
impl fmt::Display for Capabilities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        let mut first = true;
        for (flag, name) in Self::NAMED {
            if self.contains(flag) {
                if !first {
                    f.write_str(",")?;
                }
                f.write_str(name)?;
                first = false;
                rest &= !flag.0;
            }
        }
        if rest != 0 {
            if !first {
                f.write_str(",")?;
            }
            write!(f, "{rest:#x}")?;
            first = false;
        }
        if first {
            f.write_str("none")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Capabilities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Capabilities({self})")
    }
}

/// A log level on the wire of [`HostVtable::log`].
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    /// Something failed.
    Error = 1,
    /// Something looks wrong.
    Warn = 2,
    /// Normal operation worth telling.
    Info = 3,
    /// Detail for developers.
    Debug = 4,
    /// Very verbose detail.
    Trace = 5,
}

impl LogLevel {
    /// From the wire value; unknown values become the nearest level.
    pub fn from_u32(level: u32) -> LogLevel {
        match level {
            0 | 1 => LogLevel::Error,
            2 => LogLevel::Warn,
            3 => LogLevel::Info,
            4 => LogLevel::Debug,
            _ => LogLevel::Trace,
        }
    }

    /// From a `tracing` level.
    pub fn from_tracing(level: tracing::Level) -> LogLevel {
        match level {
            tracing::Level::ERROR => LogLevel::Error,
            tracing::Level::WARN => LogLevel::Warn,
            tracing::Level::INFO => LogLevel::Info,
            tracing::Level::DEBUG => LogLevel::Debug,
            _ => LogLevel::Trace,
        }
    }

    /// The most verbose level `tracing` currently lets through in this binary
    /// (`Error` when it lets nothing through).
    pub fn tracing_max() -> LogLevel {
        match tracing::level_filters::LevelFilter::current().into_level() {
            Some(level) => LogLevel::from_tracing(level),
            None => LogLevel::Error,
        }
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_prefix_layout_is_frozen() {
        // The host reads magic, versions and size before trusting anything else.
        assert_eq!(std::mem::offset_of!(PluginHeader, magic), 0);
        assert_eq!(std::mem::offset_of!(PluginHeader, abi_major), 8);
        assert_eq!(std::mem::offset_of!(PluginHeader, abi_minor), 12);
        assert_eq!(std::mem::offset_of!(PluginHeader, struct_size), 16);
        assert_eq!(&MAGIC.to_be_bytes(), b"DRCTLPLG");
        assert_eq!(std::mem::offset_of!(HostVtable, struct_size), 0);
        // ABI 1.2 appended `agreed`: everything before it stays where 1.0 had it.
        assert_eq!(HostVtable::MIN_SIZE, 5 * std::mem::size_of::<usize>());
        assert_eq!(
            std::mem::size_of::<HostVtable>(),
            HostVtable::MIN_SIZE + std::mem::size_of::<u64>()
        );
    }

    #[test]
    fn capabilities_display() {
        assert_eq!(Capabilities::NONE.to_string(), "none");
        assert_eq!(Capabilities::DETERMINISTIC.to_string(), "deterministic");
        assert_eq!(
            (Capabilities::DETERMINISTIC | Capabilities::MULTI_SESSION).to_string(),
            "deterministic,multi-session"
        );
        assert_eq!(
            Capabilities::from_bits(1 | 0x100).to_string(),
            "deterministic,0x100"
        );
        assert!(Capabilities::from_bits(3).contains(Capabilities::MULTI_SESSION));
    }

    #[test]
    fn buf_round_trip() {
        let buf = Buf::from_vec(b"hello".to_vec());
        // SAFETY: buf comes from from_vec just above.
        assert_eq!(unsafe { buf.as_slice() }, b"hello");
        // SAFETY: same buffer, turned back once.
        let v = unsafe { buf.into_vec() }.unwrap();
        assert_eq!(v, b"hello");
        // SAFETY: the empty buffer is null.
        assert!(unsafe { Buf::EMPTY.into_vec() }.is_none());
    }
}
