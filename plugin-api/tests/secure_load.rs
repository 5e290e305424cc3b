//! A plugin is loaded from the very file whose owner and mode, and every
//! ancestor directory's, were checked (SPEC §9): no symlink swapped between
//! the check and the load gets another library loaded.

#![cfg(unix)]

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use drctl_plugin_api::loader;
use drctl_plugin_api::PluginError;
use support::fixture;

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A new temporary directory that only this user may write (mode 755), by
/// its canonical path (no symlink in it, so the loader's checks see only
/// what the test makes): the guard that removes it, and the path.
fn private_base() -> (tempfile::TempDir, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let base = root.path().canonicalize().unwrap();
    set_mode(&base, 0o755);
    (root, base)
}

/// `dir` made with `mode`, holding a copy of fixture `name` as `file`.
fn plugin_dir(dir: &Path, mode: u32, name: &str, file: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    set_mode(dir, mode);
    let lib = dir.join(file);
    std::fs::copy(fixture(name), &lib).unwrap();
    set_mode(&lib, 0o755);
    lib
}

/// The reproduction of the race: a thread flips `lnk` between a good plugin
/// directory and a world-writable one holding another library (the
/// `badjson` fixture, which names itself `badjson`) while the loader loads
/// through `lnk`. Before the fix the check resolved the path, then dlopen
/// resolved it again, and some loads got `badjson`. Each attempt uses another
/// spelling of the path (`./` repeated), so the dynamic loader's cache of
/// names cannot hide the race.
#[test]
fn a_symlink_swapped_during_loading_never_loads_the_other_library() {
    const FILE: &str = "libdrctl_plugin_raced.so";
    let (_root, base) = private_base();
    plugin_dir(&base.join("good"), 0o755, "echo", FILE);
    // Anyone could have put this library there: it must never run.
    plugin_dir(&base.join("bad"), 0o777, "badjson", FILE);
    let lnk = base.join("lnk");
    std::os::unix::fs::symlink(base.join("good"), &lnk).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let flips = Arc::new(AtomicU64::new(0));
    let swapper = {
        let (stop, flips, base) = (stop.clone(), flips.clone(), base.clone());
        std::thread::spawn(move || {
            let tmp = base.join("lnk.tmp");
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let target = if n % 2 == 0 { "bad" } else { "good" };
                let _ = std::fs::remove_file(&tmp);
                std::os::unix::fs::symlink(base.join(target), &tmp).unwrap();
                // rename is atomic: `lnk` always resolves to one of the two.
                std::fs::rename(&tmp, base.join("lnk")).unwrap();
                n += 1;
                flips.store(n, Ordering::Relaxed);
            }
        })
    };

    let (mut good, mut refused, mut attempts) = (0u32, 0u32, 0usize);
    let mut wrong = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    // At least 1000 loads, and on until both outcomes were seen (the race ran).
    while attempts < 1000 || ((good == 0 || refused == 0) && Instant::now() < deadline) {
        let path = lnk.join(format!("{}{FILE}", "./".repeat(attempts % 1000)));
        attempts += 1;
        match loader::load(&path) {
            Ok(plugin) if plugin.name() == "echo" => good += 1,
            Ok(plugin) => wrong.push(plugin.name().to_owned()),
            Err(PluginError::Insecure { why, .. }) => {
                assert!(why.contains("chmod go-w"), "{why}");
                refused += 1;
            }
            Err(other) => panic!("attempt {attempts}: unexpected error: {other}"),
        }
    }
    stop.store(true, Ordering::Relaxed);
    swapper.join().unwrap();
    println!(
        "{attempts} loads: {good} good, {refused} refused, {} wrong; {} flips",
        wrong.len(),
        flips.load(Ordering::Relaxed)
    );
    assert!(
        wrong.is_empty(),
        "{} of {attempts} loads through the swapped symlink loaded another library: {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(3)]
    );
    assert!(
        good > 0 && refused > 0,
        "the race did not run: {good} good loads, {refused} refusals in {attempts} attempts, {} flips",
        flips.load(Ordering::Relaxed)
    );
}

/// Every ancestor directory counts, not only the file's own: a plugin
/// directory inside a world-writable one could be renamed away and replaced.
/// A sticky world-writable directory owned by root (like /tmp) is fine.
#[test]
fn a_world_writable_ancestor_is_refused_a_sticky_one_is_not() {
    const FILE: &str = "libdrctl_plugin_nested.so";
    let (_root, base) = private_base();

    let open = base.join("open");
    let lib = plugin_dir(&open.join("plugins"), 0o755, "echo", FILE);
    set_mode(&open, 0o777);
    let err = loader::load(&lib).unwrap_err();
    assert!(matches!(err, PluginError::Insecure { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains(&format!(
            "the directory {} is writable by group or others (mode 777)",
            open.display()
        )) && text.contains(&format!("fix it with: chmod go-w {}", open.display())),
        "{text}"
    );
    // Fixed as told, it loads.
    set_mode(&open, 0o755);
    assert_eq!(loader::load(&lib).expect("fixed").name(), "echo");

    let sticky = base.join("sticky");
    let lib = plugin_dir(&sticky.join("plugins"), 0o755, "echo", FILE);
    set_mode(&sticky, 0o1777);
    assert_eq!(
        loader::load(&lib)
            .expect("a sticky world-writable ancestor of ours is accepted")
            .name(),
        "echo"
    );

    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("skipped: the ancestor owned by another user needs root to chown");
        return;
    }
    // Sticky, but its owner (another user) may rename anything in it.
    std::os::unix::fs::chown(&sticky, Some(4242), None).unwrap();
    let text = loader::load(&lib).unwrap_err().to_string();
    assert!(
        text.contains(&format!(
            "the directory {} is owned by uid 4242, neither root nor you",
            sticky.display()
        )),
        "{text}"
    );
}

/// What the loader opens must be a regular file: a FIFO (which would block an
/// open for reading) or a directory is refused by name.
#[test]
fn only_regular_files_are_loaded() {
    let (_root, base) = private_base();
    let fifo = base.join("libdrctl_plugin_fifo.so");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let text = loader::load(&fifo).unwrap_err().to_string();
    assert!(
        text.contains(&format!("{} is not a regular file", fifo.display())),
        "{text}"
    );
}
