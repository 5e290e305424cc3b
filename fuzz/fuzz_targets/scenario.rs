//! The mock's scenario parser, `Scenario::parse`, on arbitrary text.
//!
//! Ops write scenarios by hand for drills: any text must give a scenario or
//! an error naming the line, never a panic. A scenario that parses must also
//! answer the questions the simulator asks of it (capacity, fractions).
#![no_main]

use std::path::Path;

use drctl_plugin_mock::scenario::Targets;
use drctl_plugin_mock::Scenario;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let sites = ["site1".to_owned(), "site2".to_owned()];
    let scenario = match Scenario::parse(text, Path::new("fuzz.toml"), &sites) {
        Ok(s) => s,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let _ = scenario.deployment.capacity();
    let mut last = None;
    for h in &scenario.timeline {
        assert!(last <= Some(h.at), "timeline not sorted by time");
        last = Some(h.at);
        if let Targets::Fraction(f) = h.agents {
            for n in [0, 1, 7, 10_000, usize::MAX] {
                assert!(Targets::fraction_of(f, n) <= n, "fraction {f} of {n}");
            }
        }
    }
    assert_eq!(scenario.sites.len(), 2, "both sites have a state");
});
