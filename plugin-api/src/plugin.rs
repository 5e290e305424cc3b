//! The plugin author's side: implement [`Backend`], call [`export_plugin!`](crate::export_plugin),
//! write no `unsafe`.
//!
//! The glue behind the macro turns every ABI call into a call of your trait,
//! catches every panic (the export returns an error with the panic message and
//! location, and the instance is *poisoned*: later calls fail with
//! [`status::POISONED`] until the host destroys it), and reports bad input JSON
//! as an error, never a panic.
//!
//! # Logging from a plugin
//!
//! A plugin is its own binary with its own copy of `tracing`: events sent to
//! its global dispatcher never reach the host. Two ways that do:
//! - [`HostHandle::log`] (and `error`/`warn`/`info`/`debug`/`trace`), usable
//!   from any thread until the instance is destroyed;
//! - plain `tracing::info!(...)` inside the trait methods: the glue makes a
//!   subscriber that forwards to the host's `log` callback the default of
//!   the thread that calls (left in place between calls, replaced when
//!   another instance is called on that thread). In threads of your own, wrap the work in
//!   `tracing::dispatcher::with_default(&host.dispatch(), || ...)`.
//!
//! Spans are not forwarded, only events (message plus `key=value` fields).

use std::cell::{Cell, RefCell};
use std::ffi::c_void;
use std::fmt::{self, Write as _};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Once, RwLock};

use crate::abi::{status, Buf, Capabilities, HostVtable, LogLevel, NO_TIMEOUT};
use crate::messages::{compact, Input, Output};

/// A backend, as a plugin author writes it. Methods mirror the ABI; time is
/// `now_ns`, nanoseconds since the session start on the host's clock.
pub trait Backend: Send + Sized + 'static {
    /// Build an instance from the backend's JSON config. `Err` is reported to
    /// the operator as "plugin … failed to start: <message>".
    fn create(config: serde_json::Value, host: HostHandle) -> Result<Self, String>;

    /// Take one input. Answers to commands are queued and come out of
    /// [`Backend::poll_output`]; `Err` is a backend fault, not a failed command
    /// (a failed command is an `Output::Result` with `Err(CommandError)`).
    fn handle(&mut self, now_ns: u64, input: Input) -> Result<(), String>;

    /// The next output due at `now_ns`, if any. The host calls this until it
    /// returns `None`, after every `handle`, at every deadline and after every wake.
    fn poll_output(&mut self, now_ns: u64) -> Option<Output>;

    /// [`Backend::poll_output`] as the JSON that crosses the ABI, appended to
    /// `out` (empty): `Ok(true)` when there was an output. The default
    /// serializes `poll_output`'s; a backend that holds its outputs as JSON
    /// already (the replay backend: recorded lines) hands them over as they
    /// are, without parsing and writing them again. `Err` is a backend fault.
    fn poll_output_json(&mut self, now_ns: u64, out: &mut Vec<u8>) -> Result<bool, String> {
        match self.poll_output(now_ns) {
            None => Ok(false),
            Some(output) => serde_json::to_writer(out, &output)
                .map(|()| true)
                .map_err(|e| format!("cannot serialize output: {e}")),
        }
    }

    /// [`Backend::poll_output`] in the compact encoding (the host took up
    /// [`Capabilities::COMPACT`]), appended to `out` (empty): `Ok(true)` when
    /// there was an output. The default encodes `poll_output`'s; a backend
    /// that keeps its outputs' parts (a fleet's mock: session ids) writes
    /// them borrowed with [`compact::encode_output_ref`], building no
    /// [`Output`]. `Err` is a backend fault.
    fn poll_output_compact(&mut self, now_ns: u64, out: &mut Vec<u8>) -> Result<bool, String> {
        match self.poll_output(now_ns) {
            None => Ok(false),
            Some(output) => compact::encode_output(&output, out)
                .map(|()| true)
                .map_err(|e| format!("cannot encode output: {e}")),
        }
    }

    /// When the host should call again even without input (host clock, ns).
    fn poll_timeout(&self) -> Option<u64>;
}

/// The host's callbacks for one instance: cheap to clone, usable from any thread.
///
/// After the host destroys the instance every call is a no-op, so a stray
/// thread holding a clone cannot reach freed host memory.
#[derive(Clone)]
pub struct HostHandle {
    inner: Arc<HostInner>,
}

enum HostInner {
    Ffi {
        vtable: HostVtable,
        /// `false` once `destroy` started; guarded so no callback runs after it returns.
        alive: RwLock<bool>,
    },
    Local {
        wake: Box<dyn Fn() + Send + Sync>,
        log: Box<crate::loader::LogFn>,
    },
}

// SAFETY: the ABI contract makes the host's `wake` and `log` callbacks and
// their `ctx` thread-safe; the `Local` variant holds only Send + Sync closures.
unsafe impl Send for HostInner {}
// SAFETY: as above.
unsafe impl Sync for HostInner {}

impl HostHandle {
    /// A handle over the host's vtable, as received in `create`.
    ///
    /// # Safety
    /// `vtable` must follow the ABI contract: `ctx` and the callbacks valid
    /// and thread-safe until [`HostHandle::detach`] is called.
    pub unsafe fn from_vtable(vtable: HostVtable) -> Self {
        HostHandle {
            inner: Arc::new(HostInner::Ffi {
                vtable,
                alive: RwLock::new(true),
            }),
        }
    }

    /// An in-process handle, for testing a [`Backend`] without the ABI.
    pub fn local(
        wake: impl Fn() + Send + Sync + 'static,
        log: impl Fn(LogLevel, &str) + Send + Sync + 'static,
    ) -> Self {
        HostHandle {
            inner: Arc::new(HostInner::Local {
                wake: Box::new(wake),
                log: Box::new(log),
            }),
        }
    }

    /// A handle that drops everything (tests, benches).
    pub fn detached() -> Self {
        HostHandle::local(|| {}, |_, _| {})
    }

    /// Cut the link to the host: every later call is a no-op. Waits for calls in progress.
    pub fn detach(&self) {
        if let HostInner::Ffi { alive, .. } = &*self.inner {
            *alive.write().unwrap_or_else(|e| e.into_inner()) = false;
        }
    }

    /// Tell the host output is ready (it will call `poll_output`).
    pub fn wake(&self) {
        match &*self.inner {
            HostInner::Ffi { vtable, alive } => {
                let alive = alive.read().unwrap_or_else(|e| e.into_inner());
                if *alive {
                    // SAFETY: the host keeps ctx and wake valid until destroy
                    // returns; `alive` is cleared (under the write lock) before that.
                    unsafe { (vtable.wake)(vtable.ctx) }
                }
            }
            HostInner::Local { wake, .. } => wake(),
        }
    }

    /// Whether the host keeps logs of this level (skip formatting otherwise).
    pub fn enabled(&self, level: LogLevel) -> bool {
        match &*self.inner {
            HostInner::Ffi { vtable, .. } => level as u32 <= vtable.max_log_level,
            HostInner::Local { .. } => true,
        }
    }

    /// Send a log line to the host's `tracing` (field `plugin` = this plugin's name).
    pub fn log(&self, level: LogLevel, msg: impl fmt::Display) {
        if !self.enabled(level) {
            return;
        }
        let mut text = String::new();
        let _ = write!(text, "{msg}");
        self.log_str(level, &text);
    }

    fn log_str(&self, level: LogLevel, msg: &str) {
        match &*self.inner {
            HostInner::Ffi { vtable, alive } => {
                let alive = alive.read().unwrap_or_else(|e| e.into_inner());
                if *alive {
                    // SAFETY: as in `wake`; msg points to len valid UTF-8 bytes for the call.
                    unsafe { (vtable.log)(vtable.ctx, level as u32, msg.as_ptr(), msg.len()) }
                }
            }
            HostInner::Local { log, .. } => log(level, msg),
        }
    }

    /// Log at error level.
    pub fn error(&self, msg: impl fmt::Display) {
        self.log(LogLevel::Error, msg)
    }
    /// Log at warn level.
    pub fn warn(&self, msg: impl fmt::Display) {
        self.log(LogLevel::Warn, msg)
    }
    /// Log at info level.
    pub fn info(&self, msg: impl fmt::Display) {
        self.log(LogLevel::Info, msg)
    }
    /// Log at debug level.
    pub fn debug(&self, msg: impl fmt::Display) {
        self.log(LogLevel::Debug, msg)
    }
    /// Log at trace level.
    pub fn trace(&self, msg: impl fmt::Display) {
        self.log(LogLevel::Trace, msg)
    }

    /// A `tracing` dispatcher forwarding events to this host, for the plugin's own threads.
    pub fn dispatch(&self) -> tracing::Dispatch {
        tracing::Dispatch::new(HostSubscriber { host: self.clone() })
    }

    fn max_tracing_level(&self) -> tracing::level_filters::LevelFilter {
        use tracing::level_filters::LevelFilter;
        let max = match &*self.inner {
            HostInner::Ffi { vtable, .. } => vtable.max_log_level,
            HostInner::Local { .. } => LogLevel::Trace as u32,
        };
        match max {
            0 => LevelFilter::OFF,
            1 => LevelFilter::ERROR,
            2 => LevelFilter::WARN,
            3 => LevelFilter::INFO,
            4 => LevelFilter::DEBUG,
            _ => LevelFilter::TRACE,
        }
    }
}

impl fmt::Debug for HostHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HostHandle")
    }
}

/// Forwards `tracing` events of the plugin's copy of `tracing` to the host.
struct HostSubscriber {
    host: HostHandle,
}

impl tracing::Subscriber for HostSubscriber {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        self.host.enabled(LogLevel::from_tracing(*metadata.level()))
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(self.host.max_tracing_level())
    }

    fn new_span(&self, _span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _span: &tracing::span::Id, _values: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _span: &tracing::span::Id, _follows: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        let mut visitor = LineVisitor::default();
        event.record(&mut visitor);
        let mut line = visitor.message;
        if !visitor.fields.is_empty() {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(&visitor.fields);
        }
        self.host
            .log_str(LogLevel::from_tracing(*event.metadata().level()), &line);
    }

    fn enter(&self, _span: &tracing::span::Id) {}

    fn exit(&self, _span: &tracing::span::Id) {}
}

/// Formats an event as `message key=value key=value`.
#[derive(Default)]
struct LineVisitor {
    message: String,
    fields: String,
}

impl tracing::field::Visit for LineVisitor {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            self.record_debug(field, &value);
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            if !self.fields.is_empty() {
                self.fields.push(' ');
            }
            let _ = write!(self.fields, "{}={value:?}", field.name());
        }
    }
}

/// Glue behind [`export_plugin!`](crate::export_plugin); not a public API.
#[doc(hidden)]
pub mod __private {
    use super::*;

    /// What the plugin hands the host as its opaque instance pointer.
    pub struct Glue<B> {
        backend: Option<B>,
        host: HostHandle,
        dispatch: tracing::Dispatch,
        /// This instance among all the plugin's (never reused, unlike its
        /// address): which dispatcher a thread has installed.
        id: u64,
        /// Set by a panic: which export, and the message.
        poisoned: Option<(&'static str, String)>,
        /// The host took up [`Capabilities::COMPACT`]: messages are compact both ways.
        compact: bool,
    }

    thread_local! {
        /// Whether this thread is inside an export (the panic hook stays quiet then).
        static IN_EXPORT: Cell<bool> = const { Cell::new(false) };
        /// Where the last panic inside an export happened.
        static PANIC_LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
        /// Output buffers handed back by `free_buf`, reused by `poll_output`.
        static BUF_POOL: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
        /// The instance whose host dispatcher is this thread's default, left
        /// in place between calls: setting and restoring it around every
        /// call cost a fleet a few percent of its time, and the host calls
        /// one instance from one thread. Another instance's call replaces it.
        static INSTALLED: RefCell<Option<(u64, tracing::dispatcher::DefaultGuard)>> =
            const { RefCell::new(None) };
    }

    /// Numbers the instances ([`Glue::id`]).
    static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

    /// Makes instance `id`'s `dispatch` this thread's default, unless it is
    /// already; `false` when the thread cannot keep one (it is exiting, or a
    /// call is nested), and the caller sets it for the call only.
    fn install(id: u64, dispatch: &tracing::Dispatch) -> bool {
        INSTALLED
            .try_with(|slot| {
                let Ok(mut slot) = slot.try_borrow_mut() else {
                    return false;
                };
                if slot.as_ref().is_none_or(|(current, _)| *current != id) {
                    // The previous guard goes first: it restores the
                    // thread's own default, which the new one then saves.
                    *slot = None;
                    *slot = Some((id, tracing::dispatcher::set_default(dispatch)));
                }
                true
            })
            .unwrap_or(false)
    }

    /// Removes instance `id`'s dispatcher from this thread, if installed (destroy).
    fn uninstall(id: u64) {
        let _ = INSTALLED.try_with(|slot| {
            if let Ok(mut slot) = slot.try_borrow_mut() {
                if slot.as_ref().is_some_and(|(current, _)| *current == id) {
                    *slot = None;
                }
            }
        });
    }

    const POOL_MAX: usize = 16;
    const POOL_BUF_MAX: usize = 64 * 1024;

    /// Install (once per plugin binary) a panic hook that records the location
    /// of panics inside exports instead of printing them; other panics (the
    /// plugin's own threads) still go to the previous hook.
    fn install_panic_hook() {
        static ONCE: Once = Once::new();
        ONCE.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                if IN_EXPORT.with(Cell::get) {
                    let location = info.location().map(|l| l.to_string());
                    PANIC_LOCATION.with(|p| *p.borrow_mut() = location);
                } else {
                    previous(info);
                }
            }));
        });
    }

    /// Run `f`, turning a panic into its message (with location).
    fn guarded<R>(f: impl FnOnce() -> R) -> Result<R, String> {
        let was_inside = IN_EXPORT.with(|i| i.replace(true));
        let result = catch_unwind(AssertUnwindSafe(f));
        IN_EXPORT.with(|i| i.set(was_inside));
        result.map_err(|payload| {
            let message = if let Some(s) = payload.downcast_ref::<&str>() {
                (*s).to_owned()
            } else if let Some(s) = payload.downcast_ref::<String>() {
                s.clone()
            } else {
                "panic with a non-string payload".to_owned()
            };
            // Dropping a payload can itself panic; never let that escape.
            let _ = catch_unwind(AssertUnwindSafe(move || drop(payload)));
            match PANIC_LOCATION.with(|p| p.borrow_mut().take()) {
                Some(location) => format!("{message} (at {location})"),
                None => message,
            }
        })
    }

    /// Write `msg` into `out` (if the host gave one).
    fn write_msg(out: *mut Buf, msg: &str) {
        if !out.is_null() {
            // SAFETY: the host passes a valid, writable `Buf` (or null, checked above).
            unsafe { out.write(Buf::from_vec(msg.as_bytes().to_vec())) }
        }
    }

    fn pooled_buf() -> Vec<u8> {
        BUF_POOL
            .with(|p| p.borrow_mut().pop())
            .unwrap_or_else(|| Vec::with_capacity(256))
    }

    /// Borrow the host's bytes for the duration of a call.
    ///
    /// # Safety
    /// `ptr` must be null (with `len` 0) or point to `len` readable bytes.
    unsafe fn bytes<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
        if ptr.is_null() || len == 0 {
            &[]
        } else {
            // SAFETY: per the caller's contract.
            unsafe { std::slice::from_raw_parts(ptr, len) }
        }
    }

    /// Borrow the instance behind the opaque pointer.
    ///
    /// # Safety
    /// `inst` must come from `create::<B>` of this binary and not be destroyed;
    /// the host never calls one instance concurrently.
    unsafe fn glue<'a, B>(inst: *mut c_void) -> &'a mut Glue<B> {
        // SAFETY: per the caller's contract, inst is a live Box<Glue<B>>.
        unsafe { &mut *inst.cast::<Glue<B>>() }
    }

    impl<B: Backend> Glue<B> {
        /// Run one trait call with the host's `tracing` forwarding and panic capture.
        fn call<R>(
            &mut self,
            export: &'static str,
            out: *mut Buf,
            f: impl FnOnce(&mut B) -> R,
        ) -> Result<R, i32> {
            if let Some((where_, message)) = &self.poisoned {
                write_msg(
                    out,
                    &format!("instance unusable after a panic in {where_}: {message}"),
                );
                return Err(status::POISONED);
            }
            let Some(backend) = self.backend.as_mut() else {
                write_msg(out, "instance has no backend");
                return Err(status::POISONED);
            };
            let dispatch = &self.dispatch;
            let installed = install(self.id, dispatch);
            match guarded(|| {
                if installed {
                    f(backend)
                } else {
                    tracing::dispatcher::with_default(dispatch, || f(backend))
                }
            }) {
                Ok(r) => Ok(r),
                Err(message) => {
                    write_msg(out, &message);
                    self.poisoned = Some((export, message));
                    Err(status::PANIC)
                }
            }
        }
    }

    /// The `create` export for backend `B`.
    ///
    /// # Safety
    /// Called by the host per the ABI contract ([`crate::abi::CreateFn`]).
    pub unsafe extern "C" fn create<B: Backend>(
        host: *const HostVtable,
        config_json: *const u8,
        len: usize,
        out_instance: *mut *mut c_void,
        out_err: *mut Buf,
    ) -> i32 {
        install_panic_hook();
        if host.is_null() || out_instance.is_null() {
            write_msg(
                out_err,
                "create called with a null host vtable or out_instance",
            );
            return status::BAD_INPUT;
        }
        // SAFETY: non-null; every vtable version starts with `struct_size`.
        let host_size = unsafe { std::ptr::addr_of!((*host).struct_size).read() };
        if host_size < HostVtable::MIN_SIZE {
            write_msg(
                out_err,
                &format!(
                    "host vtable is {host_size} bytes, ABI {}.0 needs {}",
                    crate::abi::ABI_MAJOR,
                    HostVtable::MIN_SIZE
                ),
            );
            return status::BAD_INPUT;
        }
        // SAFETY: non-null, at least the 1.0 fields are there (checked above),
        // valid for the call; we copy them. `agreed` is read only when the
        // host's vtable has it (ABI 1.2): an older host agreed to nothing.
        let vtable = unsafe {
            HostVtable {
                struct_size: host_size,
                ctx: std::ptr::addr_of!((*host).ctx).read(),
                wake: std::ptr::addr_of!((*host).wake).read(),
                log: std::ptr::addr_of!((*host).log).read(),
                max_log_level: std::ptr::addr_of!((*host).max_log_level).read(),
                agreed: if host_size >= std::mem::size_of::<HostVtable>() {
                    std::ptr::addr_of!((*host).agreed).read()
                } else {
                    0
                },
            }
        };
        let compact = Capabilities::from_bits(vtable.agreed).contains(Capabilities::COMPACT);
        // SAFETY: the ABI contract keeps the vtable valid until destroy, which detaches.
        let handle = unsafe { HostHandle::from_vtable(vtable) };
        // SAFETY: the host passes `len` readable bytes.
        let config = unsafe { bytes(config_json, len) };
        let config: serde_json::Value = if config.is_empty() {
            serde_json::Value::Null
        } else {
            match serde_json::from_slice(config) {
                Ok(v) => v,
                Err(e) => {
                    write_msg(out_err, &format!("config is not valid JSON: {e}"));
                    return status::BAD_INPUT;
                }
            }
        };
        let dispatch = handle.dispatch();
        let for_backend = handle.clone();
        let made = guarded(|| {
            tracing::dispatcher::with_default(&dispatch, || B::create(config, for_backend))
        });
        match made {
            Ok(Ok(backend)) => {
                let glue = Box::new(Glue {
                    backend: Some(backend),
                    host: handle,
                    dispatch,
                    id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                    poisoned: None,
                    compact,
                });
                // SAFETY: out_instance is non-null and writable per the contract.
                unsafe { out_instance.write(Box::into_raw(glue).cast()) };
                status::OK
            }
            Ok(Err(message)) => {
                handle.detach();
                write_msg(out_err, &message);
                status::ERROR
            }
            Err(message) => {
                handle.detach();
                write_msg(out_err, &message);
                status::PANIC
            }
        }
    }

    /// The `handle` export for backend `B`.
    ///
    /// # Safety
    /// Called by the host per the ABI contract ([`crate::abi::HandleFn`]).
    pub unsafe extern "C" fn handle<B: Backend>(
        inst: *mut c_void,
        now_ns: u64,
        input_json: *const u8,
        len: usize,
        out_err: *mut Buf,
    ) -> i32 {
        if inst.is_null() {
            write_msg(out_err, "handle called with a null instance");
            return status::BAD_INPUT;
        }
        // SAFETY: a live instance of this backend, called non-concurrently.
        let glue = unsafe { glue::<B>(inst) };
        // SAFETY: the host passes `len` readable bytes.
        let raw = unsafe { bytes(input_json, len) };
        let input = if glue.compact {
            compact::decode_input(raw).map_err(|e| e.to_string())
        } else {
            serde_json::from_slice::<Input>(raw).map_err(|e| e.to_string())
        };
        let input = match input {
            Ok(input) => input,
            Err(e) => {
                write_msg(out_err, &format!("input is not a valid drctl Input: {e}"));
                return status::BAD_INPUT;
            }
        };
        match glue.call("handle", out_err, |b| b.handle(now_ns, input)) {
            Ok(Ok(())) => status::OK,
            Ok(Err(message)) => {
                write_msg(out_err, &message);
                status::ERROR
            }
            Err(code) => code,
        }
    }

    /// The `poll_output` export for backend `B`.
    ///
    /// # Safety
    /// Called by the host per the ABI contract ([`crate::abi::PollOutputFn`]).
    pub unsafe extern "C" fn poll_output<B: Backend>(
        inst: *mut c_void,
        now_ns: u64,
        out: *mut Buf,
    ) -> i32 {
        if inst.is_null() || out.is_null() {
            write_msg(out, "poll_output called with a null instance or buffer");
            return status::BAD_INPUT;
        }
        // SAFETY: a live instance of this backend, called non-concurrently.
        let glue = unsafe { glue::<B>(inst) };
        let mut bytes = pooled_buf();
        let compact = glue.compact;
        let code = match glue.call("poll_output", out, |b| {
            if compact {
                b.poll_output_compact(now_ns, &mut bytes)
            } else {
                b.poll_output_json(now_ns, &mut bytes)
            }
        }) {
            Ok(Ok(true)) => {
                // SAFETY: out is non-null and writable per the contract.
                unsafe { out.write(Buf::from_vec(std::mem::take(&mut bytes))) };
                status::OUTPUT
            }
            Ok(Ok(false)) => status::NONE,
            Ok(Err(message)) => {
                write_msg(out, &message);
                status::ERROR
            }
            Err(code) => code,
        };
        // Unused (nothing due, or an error): kept for the next call.
        recycle(bytes);
        code
    }

    /// The `poll_timeout` export for backend `B`.
    ///
    /// # Safety
    /// Called by the host per the ABI contract ([`crate::abi::PollTimeoutFn`]).
    pub unsafe extern "C" fn poll_timeout<B: Backend>(
        inst: *mut c_void,
        out_deadline_ns: *mut u64,
        out_err: *mut Buf,
    ) -> i32 {
        if inst.is_null() || out_deadline_ns.is_null() {
            write_msg(
                out_err,
                "poll_timeout called with a null instance or out pointer",
            );
            return status::BAD_INPUT;
        }
        // SAFETY: a live instance of this backend, called non-concurrently.
        let glue = unsafe { glue::<B>(inst) };
        match glue.call("poll_timeout", out_err, |b| b.poll_timeout()) {
            Ok(deadline) => {
                // SAFETY: non-null and writable per the contract.
                unsafe { out_deadline_ns.write(deadline.unwrap_or(NO_TIMEOUT)) };
                status::OK
            }
            Err(code) => code,
        }
    }

    /// The `free_buf` export: returns output buffers to a per-thread pool.
    ///
    /// # Safety
    /// `buf` must be empty or come from this plugin, and be freed once.
    pub unsafe extern "C" fn free_buf(buf: Buf) {
        // SAFETY: per the contract, buf was made by Buf::from_vec in this binary.
        if let Some(v) = unsafe { buf.into_vec() } {
            recycle(v);
        }
    }

    /// Keeps an output buffer for the next `poll_output` (a few, of a bounded size).
    fn recycle(mut v: Vec<u8>) {
        if v.capacity() > 0 && v.capacity() <= POOL_BUF_MAX {
            v.clear();
            let _ = BUF_POOL.try_with(|p| {
                if let Ok(mut pool) = p.try_borrow_mut() {
                    if pool.len() < POOL_MAX {
                        pool.push(v);
                    }
                }
            });
        }
    }

    /// The `destroy` export for backend `B`.
    ///
    /// # Safety
    /// `inst` must come from `create::<B>` and not be used afterwards.
    pub unsafe extern "C" fn destroy<B: Backend>(inst: *mut c_void) {
        if inst.is_null() {
            return;
        }
        // SAFETY: inst is the Box<Glue<B>> leaked by create; the host gives it back once.
        let mut glue = unsafe { Box::from_raw(inst.cast::<Glue<B>>()) };
        // Another thread that called this instance keeps its dispatcher
        // until it calls another instance or exits: detached below, it
        // forwards nothing.
        uninstall(glue.id);
        let backend = glue.backend.take();
        let dispatch = glue.dispatch.clone();
        let dropped =
            guarded(move || tracing::dispatcher::with_default(&dispatch, || drop(backend)));
        if let Err(message) = dropped {
            glue.host.error(format_args!(
                "backend panicked while being dropped: {message}"
            ));
        }
        glue.host.detach();
    }
}

/// Export a [`Backend`] as a drctl plugin: defines `drctl_plugin_entry` and
/// the ABI functions. Use it once, in the plugin's `cdylib` crate.
///
/// ```ignore
/// use drctl_plugin_api::{export_plugin, Backend, Capabilities, HostHandle, Input, Output};
///
/// struct Mock { /* ... */ }
/// impl Backend for Mock { /* create, handle, poll_output, poll_timeout */ }
///
/// export_plugin! {
///     backend: Mock,
///     name: "mock",
///     capabilities: Capabilities::DETERMINISTIC,
///     // version: "1.2.3",   // optional, defaults to the plugin crate's version
/// }
/// ```
///
/// The plugin must be built with `panic = "unwind"` (the default); with
/// `panic = "abort"` this macro refuses to compile, since a panic would take
/// the host down.
#[macro_export]
macro_rules! export_plugin {
    (
        backend: $backend:ty,
        name: $name:literal
        $(, version: $version:literal)?
        $(, capabilities: $caps:expr)?
        $(,)?
    ) => {
        #[cfg(panic = "abort")]
        ::core::compile_error!(
            "drctl plugins must be built with panic = \"unwind\": a panic would abort the host"
        );

        /// The drctl plugin entry point: returns this plugin's static header.
        #[unsafe(no_mangle)]
        pub extern "C" fn drctl_plugin_entry() -> *const $crate::abi::PluginHeader {
            static HEADER: $crate::abi::PluginHeader = $crate::abi::PluginHeader {
                magic: $crate::abi::MAGIC,
                abi_major: $crate::abi::ABI_MAJOR,
                abi_minor: $crate::abi::ABI_MINOR,
                struct_size: ::core::mem::size_of::<$crate::abi::PluginHeader>(),
                name: ::core::concat!($name, "\0").as_ptr().cast(),
                version: $crate::__plugin_version!($($version)?).as_ptr().cast(),
                capabilities: $crate::__plugin_capabilities!($($caps)?).bits(),
                create: $crate::plugin::__private::create::<$backend>,
                handle: $crate::plugin::__private::handle::<$backend>,
                poll_output: $crate::plugin::__private::poll_output::<$backend>,
                poll_timeout: $crate::plugin::__private::poll_timeout::<$backend>,
                free_buf: $crate::plugin::__private::free_buf,
                destroy: $crate::plugin::__private::destroy::<$backend>,
            };
            &HEADER
        }
    };
}

/// The NUL-terminated version string for [`export_plugin!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __plugin_version {
    () => {
        ::core::concat!(::core::env!("CARGO_PKG_VERSION"), "\0")
    };
    ($version:literal) => {
        ::core::concat!($version, "\0")
    };
}

/// The capabilities for [`export_plugin!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __plugin_capabilities {
    () => {
        $crate::abi::Capabilities::NONE
    };
    ($caps:expr) => {
        $caps
    };
}

#[cfg(test)]
mod tests {
    //! The glue in-process, through its `extern "C"` functions, with inputs a
    //! well-behaved host never sends.

    use super::__private as glue;
    use super::*;
    use crate::messages::{Command, Reply};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    /// Handles kept by backends, to check they go quiet after destroy.
    static KEPT: Mutex<Vec<HostHandle>> = Mutex::new(Vec::new());

    struct Answer {
        out: Vec<Output>,
    }

    impl Backend for Answer {
        fn create(config: serde_json::Value, host: HostHandle) -> Result<Self, String> {
            if config.get("keep_host").is_some() {
                KEPT.lock().unwrap().push(host);
            }
            Ok(Answer { out: Vec::new() })
        }
        fn handle(&mut self, _now_ns: u64, input: Input) -> Result<(), String> {
            let Input::Command { session, id, .. } = input;
            self.out.push(Output::Result {
                session,
                id,
                result: Ok(Reply::Done),
            });
            Ok(())
        }
        fn poll_output(&mut self, _now_ns: u64) -> Option<Output> {
            self.out.pop()
        }
        fn poll_timeout(&self) -> Option<u64> {
            None
        }
    }

    unsafe extern "C" fn count_wake(ctx: *const c_void) {
        // SAFETY: ctx is the test's AtomicUsize.
        unsafe { &*ctx.cast::<AtomicUsize>() }.fetch_add(1, Ordering::SeqCst);
    }

    unsafe extern "C" fn no_log(_ctx: *const c_void, _level: u32, _msg: *const u8, _len: usize) {}

    fn vtable(wakes: &AtomicUsize) -> HostVtable {
        HostVtable {
            struct_size: std::mem::size_of::<HostVtable>(),
            ctx: (wakes as *const AtomicUsize).cast(),
            wake: count_wake,
            log: no_log,
            max_log_level: LogLevel::Trace as u32,
            agreed: 0,
        }
    }

    /// Take a message the glue wrote.
    fn message(buf: Buf) -> String {
        // SAFETY: buf was filled by the glue (from_vec) in this binary.
        let v = unsafe { buf.into_vec() }.unwrap_or_default();
        String::from_utf8(v).unwrap()
    }

    fn create(wakes: &AtomicUsize, config: &[u8]) -> Result<*mut c_void, (i32, String)> {
        let vt = vtable(wakes);
        let mut inst = std::ptr::null_mut();
        let mut err = Buf::EMPTY;
        // SAFETY: valid pointers for the call.
        let code = unsafe {
            glue::create::<Answer>(&vt, config.as_ptr(), config.len(), &mut inst, &mut err)
        };
        if code == status::OK {
            Ok(inst)
        } else {
            Err((code, message(err)))
        }
    }

    #[test]
    fn bad_config_json_is_an_error() {
        let wakes = AtomicUsize::new(0);
        let (code, msg) = create(&wakes, b"{not json").unwrap_err();
        assert_eq!(code, status::BAD_INPUT);
        assert!(msg.starts_with("config is not valid JSON: "), "{msg}");
    }

    #[test]
    fn a_too_small_host_vtable_is_refused() {
        // One byte short of ABI 1.0's.
        let wakes = AtomicUsize::new(0);
        let mut vt = vtable(&wakes);
        vt.struct_size = HostVtable::MIN_SIZE - 1;
        let mut inst = std::ptr::null_mut();
        let mut err = Buf::EMPTY;
        // SAFETY: valid pointers for the call.
        let code = unsafe { glue::create::<Answer>(&vt, b"{}".as_ptr(), 2, &mut inst, &mut err) };
        assert_eq!(code, status::BAD_INPUT);
        assert!(message(err).contains(&format!("needs {}", HostVtable::MIN_SIZE)));
        assert!(inst.is_null());

        let wakes = AtomicUsize::new(0);
        let mut vt = vtable(&wakes);
        vt.struct_size = 8;
        let mut inst = std::ptr::null_mut();
        let mut err = Buf::EMPTY;
        // SAFETY: valid pointers for the call.
        let code = unsafe { glue::create::<Answer>(&vt, b"{}".as_ptr(), 2, &mut inst, &mut err) };
        assert_eq!(code, status::BAD_INPUT);
        assert!(message(err).starts_with("host vtable is 8 bytes"));
        assert!(inst.is_null());
    }

    #[test]
    fn bad_input_json_is_an_error_and_the_instance_goes_on() {
        let wakes = AtomicUsize::new(0);
        let inst = create(&wakes, b"{}").unwrap();
        for bad in [&b"garbage"[..], b"{\"kind\":\"command\"}", b"\xff", b""] {
            let mut err = Buf::EMPTY;
            // SAFETY: live instance, valid pointers.
            let code =
                unsafe { glue::handle::<Answer>(inst, 0, bad.as_ptr(), bad.len(), &mut err) };
            assert_eq!(code, status::BAD_INPUT);
            let msg = message(err);
            assert!(
                msg.starts_with("input is not a valid drctl Input: "),
                "{msg}"
            );
        }
        let input = serde_json::to_vec(&Input::Command {
            session: "s".into(),
            id: 9,
            command: Command::Shutdown,
        })
        .unwrap();
        let mut err = Buf::EMPTY;
        // SAFETY: live instance, valid pointers.
        let code =
            unsafe { glue::handle::<Answer>(inst, 0, input.as_ptr(), input.len(), &mut err) };
        assert_eq!(code, status::OK);
        let mut out = Buf::EMPTY;
        // SAFETY: live instance, valid pointer.
        assert_eq!(
            unsafe { glue::poll_output::<Answer>(inst, 0, &mut out) },
            status::OUTPUT
        );
        // SAFETY: filled by the glue just above.
        let output: Output = serde_json::from_slice(unsafe { out.as_slice() }).unwrap();
        // SAFETY: freed once, by the side that allocated it.
        unsafe { glue::free_buf(out) };
        assert!(matches!(output, Output::Result { id: 9, .. }));
        // SAFETY: live instance, given back once.
        unsafe { glue::destroy::<Answer>(inst) };
    }

    /// One input through `handle` of an instance made over `vt`, and the
    /// raw bytes of the output it answers with (or the handle's status and message).
    fn exchange(vt: &HostVtable, input: &[u8]) -> Result<Vec<u8>, (i32, String)> {
        let mut inst = std::ptr::null_mut();
        let mut err = Buf::EMPTY;
        // SAFETY: valid pointers for the call.
        let code = unsafe { glue::create::<Answer>(vt, b"{}".as_ptr(), 2, &mut inst, &mut err) };
        assert_eq!(code, status::OK, "{}", message(err));
        let mut err = Buf::EMPTY;
        // SAFETY: live instance, valid pointers.
        let code =
            unsafe { glue::handle::<Answer>(inst, 0, input.as_ptr(), input.len(), &mut err) };
        let answer = if code == status::OK {
            let mut out = Buf::EMPTY;
            // SAFETY: live instance, valid pointer.
            assert_eq!(
                unsafe { glue::poll_output::<Answer>(inst, 0, &mut out) },
                status::OUTPUT
            );
            // SAFETY: filled by the glue just above.
            let bytes = unsafe { out.as_slice() }.to_vec();
            // SAFETY: freed once, by the side that allocated it.
            unsafe { glue::free_buf(out) };
            Ok(bytes)
        } else {
            Err((code, message(err)))
        };
        // SAFETY: live instance, given back once.
        unsafe { glue::destroy::<Answer>(inst) };
        answer
    }

    #[test]
    fn messages_are_compact_both_ways_only_when_the_host_agreed() {
        let wakes = AtomicUsize::new(0);
        let input = Input::Command {
            session: "agent-7".into(),
            id: 9,
            command: Command::Shutdown,
        };
        let done = Output::Result {
            session: "agent-7".into(),
            id: 9,
            result: Ok(Reply::Done),
        };
        let json = serde_json::to_vec(&input).unwrap();
        let mut packed = Vec::new();
        compact::encode_input(&input, &mut packed).unwrap();

        // Nothing agreed (a 1.1 host): JSON both ways; compact input is refused.
        let vt = vtable(&wakes);
        let out = exchange(&vt, &json).unwrap();
        assert_eq!(serde_json::from_slice::<Output>(&out).unwrap(), done);
        let (code, msg) = exchange(&vt, &packed).unwrap_err();
        assert_eq!(code, status::BAD_INPUT);
        assert!(
            msg.starts_with("input is not a valid drctl Input: "),
            "{msg}"
        );

        // A 1.0 host's vtable ends before `agreed`: accepted, JSON.
        let old = HostVtable {
            struct_size: HostVtable::MIN_SIZE,
            ..vtable(&wakes)
        };
        let out = exchange(&old, &json).unwrap();
        assert_eq!(serde_json::from_slice::<Output>(&out).unwrap(), done);

        // COMPACT agreed: compact both ways; JSON input and garbage are refused.
        let vt = HostVtable {
            agreed: Capabilities::COMPACT.bits(),
            ..vtable(&wakes)
        };
        let out = exchange(&vt, &packed).unwrap();
        assert!(!compact::is_json(&out));
        assert_eq!(compact::decode_output(&out).unwrap(), done);
        for bad in [&json[..], b"\xff\x00", b""] {
            let (code, msg) = exchange(&vt, bad).unwrap_err();
            assert_eq!(code, status::BAD_INPUT);
            assert!(
                msg.starts_with("input is not a valid drctl Input: "),
                "{msg}"
            );
        }
    }

    #[test]
    fn null_pointers_are_errors_not_crashes() {
        let wakes = AtomicUsize::new(0);
        let mut err = Buf::EMPTY;
        let mut inst = std::ptr::null_mut();
        // SAFETY: the glue checks for null before dereferencing.
        unsafe {
            assert_eq!(
                glue::create::<Answer>(std::ptr::null(), b"{}".as_ptr(), 2, &mut inst, &mut err),
                status::BAD_INPUT
            );
            glue::free_buf(std::mem::replace(&mut err, Buf::EMPTY));
            let vt = vtable(&wakes);
            assert_eq!(
                glue::create::<Answer>(&vt, std::ptr::null(), 0, &mut inst, &mut err),
                status::OK,
                "no config is null config"
            );
            assert_eq!(
                glue::handle::<Answer>(std::ptr::null_mut(), 0, b"{}".as_ptr(), 2, &mut err),
                status::BAD_INPUT
            );
            glue::free_buf(std::mem::replace(&mut err, Buf::EMPTY));
            assert_eq!(
                glue::poll_output::<Answer>(inst, 0, std::ptr::null_mut()),
                status::BAD_INPUT
            );
            assert_eq!(
                glue::poll_timeout::<Answer>(inst, std::ptr::null_mut(), &mut err),
                status::BAD_INPUT
            );
            glue::free_buf(std::mem::replace(&mut err, Buf::EMPTY));
            glue::free_buf(Buf::EMPTY);
            glue::destroy::<Answer>(inst);
            glue::destroy::<Answer>(std::ptr::null_mut());
        }
    }

    #[test]
    fn host_handles_go_quiet_after_destroy() {
        let wakes = AtomicUsize::new(0);
        let inst = create(&wakes, br#"{"keep_host":true}"#).unwrap();
        let host = KEPT.lock().unwrap().pop().unwrap();
        host.wake();
        assert_eq!(wakes.load(Ordering::SeqCst), 1);
        // SAFETY: live instance, given back once.
        unsafe { glue::destroy::<Answer>(inst) };
        host.wake();
        host.error("after destroy");
        assert_eq!(wakes.load(Ordering::SeqCst), 1, "no call after destroy");
    }

    #[test]
    fn local_handle_for_backend_unit_tests() {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let host = HostHandle::local(
            || {},
            move |level, msg| sink.lock().unwrap().push(format!("{level} {msg}")),
        );
        host.info(format_args!("x={}", 1));
        tracing::dispatcher::with_default(&host.dispatch(), || {
            tracing::warn!(n = 2, "from tracing");
        });
        assert_eq!(
            *lines.lock().unwrap(),
            vec!["info x=1".to_owned(), "warn from tracing n=2".to_owned()]
        );
        HostHandle::detached().wake();
    }
}
