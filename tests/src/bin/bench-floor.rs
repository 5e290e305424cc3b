//! The floors `bench/run` measures beside drctl's figures (SPEC §8: every
//! figure is reported with a floor from the same run; the target is the ratio).
//!
//! - `bench-floor parse FILE`: a plain streaming serde_json parse of every
//!   line of FILE, one core, keeping nothing (`IgnoredAny`: the parse checks
//!   the whole line, builds no value); prints the line count. The floor of
//!   `replay --check` (a parse into `serde_json::Value` is about 4x slower).
//! - `bench-floor sleep < DEADLINES`: a bare OS sleep (`std::thread::sleep`)
//!   to each deadline (ns from the start, one a line, ascending); at each
//!   wake-up it writes a `switchover-started` line (`t` = the deadline) to
//!   stdout and flushes it, as drctl writes a decision. Piped through
//!   `stamp`, it is the floor of timer lateness measured the way drctl's is:
//!   the pipe and the stamping reader's own wake-up are in both figures.
//! - `bench-floor stamp < DECISIONS`: reads a real-clock run's `--output
//!   json` decisions as drctl writes them and prints, for each
//!   `switchover-started`, its `t` (ns) and when the line arrived (ns since
//!   the first line arrived): drctl's lateness without trusting its own clock.

use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["parse", file] => parse(file),
        ["sleep"] => sleep(),
        ["stamp"] => stamp(),
        _ => {
            eprintln!(
                "usage: bench-floor parse FILE | bench-floor sleep < DEADLINES_NS | bench-floor stamp < DECISIONS"
            );
            return ExitCode::from(2);
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-floor: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Parses every line of `file` with serde_json, streaming (one line in memory).
fn parse(file: &str) -> Result<(), String> {
    let f = std::fs::File::open(file).map_err(|e| format!("{file}: {e}"))?;
    let mut input = std::io::BufReader::with_capacity(1 << 16, f);
    let mut line = Vec::with_capacity(512);
    let mut n = 0u64;
    loop {
        line.clear();
        let read = input
            .read_until(b'\n', &mut line)
            .map_err(|e| format!("{file}: {e}"))?;
        if read == 0 {
            break;
        }
        n += 1;
        let parsed: serde::de::IgnoredAny =
            serde_json::from_slice(&line).map_err(|e| format!("{file}:{n}: {e}"))?;
        std::hint::black_box(parsed);
    }
    println!("{n}");
    Ok(())
}

/// Sleeps to each deadline read from stdin and prints its lateness (ms).
fn sleep() -> Result<(), String> {
    let mut deadlines = Vec::new();
    for line in std::io::stdin().lock().lines() {
        let line = line.map_err(|e| e.to_string())?;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let ns: u64 = line
            .parse()
            .map_err(|e| format!("deadline {line:?}: {e}"))?;
        deadlines.push(Duration::from_nanos(ns));
    }
    let start = Instant::now();
    let mut out = std::io::stdout().lock();
    for d in deadlines {
        let due = start + d;
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        let t = d.as_nanos();
        writeln!(out, r#"{{"t":{t},"kind":"switchover-started"}}"#)
            .and_then(|()| out.flush())
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Stamps each `switchover-started` line of stdin with its arrival time.
fn stamp() -> Result<(), String> {
    let mut start = None;
    let mut stamped = Vec::new();
    for line in std::io::stdin().lock().lines() {
        let line = line.map_err(|e| e.to_string())?;
        let now = Instant::now();
        let start = *start.get_or_insert(now);
        if !line.contains("\"switchover-started\"") {
            continue;
        }
        let decision: serde_json::Value =
            serde_json::from_str(&line).map_err(|e| format!("{line:?}: {e}"))?;
        let t = decision["t"]
            .as_u64()
            .ok_or_else(|| format!("no t in {line:?}"))?;
        stamped.push((t, now.saturating_duration_since(start).as_nanos()));
    }
    let mut out = std::io::stdout().lock();
    for (t, wall) in stamped {
        writeln!(out, "{t} {wall}").map_err(|e| e.to_string())?;
    }
    Ok(())
}
