//! S5 end to end: the preferred-site cache written after S2 and read at the
//! next start, on the mock (demo: starts at site2, prefers site1).

use drctl_e2e::{
    assert_contains, assert_replays_identically, read_json, recorded, Drctl, Ran, TestDir,
};
use std::path::Path;

/// `drctl startup --backend mock --scenario DEMO --clock virtual` with the
/// cache at `cache`, recording to `rec`.
fn startup_demo(cache: &Path, rec: &Path) -> Drctl {
    Drctl::mock("startup", Drctl::DEMO)
        .virtual_clock()
        .record(rec)
        .set(&format!("startup.cache-file={}", cache.display()))
}

/// [`startup_demo`] with `--output json` and `startup.cache-preferred=true`,
/// which must succeed.
fn startup(cache: &Path, rec: &Path) -> Ran {
    startup_demo(cache, rec)
        .json()
        .set("startup.cache-preferred=true")
        .run()
        .expect_code(0)
}

/// The command types sent to the backend, in order.
fn commands(rec: &Path) -> Vec<String> {
    recorded(rec)
        .iter()
        .filter(|r| r["kind"] == "command")
        .map(|r| r["command"]["type"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn s5_the_second_start_tries_the_cached_site_first_and_still_runs_s2_to_s4() {
    let dir = TestDir::new();
    let cache = dir.path().join("state").join("preferred.json");
    let (rec1, rec2) = (dir.path().join("1.jsonl"), dir.path().join("2.jsonl"));

    // First start: nothing cached; S1 at the configured first site, S4 relocates.
    let out = startup(&cache, &rec1);
    let stderr = &out.stderr;
    assert!(
        stderr.contains("not written yet") && stderr.contains("preferred.json"),
        "{stderr}"
    );
    let first = out.records();
    assert_eq!(first[0], "200000000 startup-connected site2", "{first:?}");
    assert!(
        first
            .iter()
            .any(|r| r.contains("switchover-completed startup-relocate")),
        "{first:?}"
    );
    let cached = read_json(&cache);
    assert_eq!(cached["preferred"], "site1", "{cached}");

    // Second start: the cached site first, no relocation, and S2-S4 still run.
    let out = startup(&cache, &rec2);
    let second = out.records();
    assert_eq!(second[0], "200000000 startup-connected site1", "{second:?}");
    assert!(
        !second.iter().any(|r| r.contains("switchover")),
        "{second:?}"
    );
    let sent = commands(&rec2);
    assert_eq!(sent[0], "connect");
    assert!(sent.contains(&"read_person_sites".to_owned()), "{sent:?}");
    assert!(sent.contains(&"read_application".to_owned()), "{sent:?}");
    assert!(sent.contains(&"subscribe".to_owned()), "{sent:?}");
    let header: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(&rec2)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["cached_preferred"], "site1", "{header}");

    // The recording replays as it ran: the replay starts at the cached site too.
    assert_replays_identically(&rec2, &[]);
}

#[test]
fn s5_a_corrupt_or_foreign_cache_is_ignored_with_a_warning() {
    let dir = TestDir::new();
    let cache = dir.path().join("preferred.json");
    let rec = dir.path().join("r.jsonl");
    for (content, why) in [
        ("{\"agent\":", "not a drctl cache"),
        (
            r#"{"agent":"somebody-else","preferred":"site1"}"#,
            "\"somebody-else\"'s",
        ),
        (r#"{"agent":"agent","preferred":"site7"}"#, "\"site7\""),
    ] {
        std::fs::write(&cache, content).unwrap();
        let out = startup(&cache, &rec);
        let stderr = &out.stderr;
        assert!(stderr.contains(why), "{content}: {stderr}");
        assert!(stderr.contains("ignored"), "{content}: {stderr}");
        assert_eq!(
            out.records()[0],
            "200000000 startup-connected site2",
            "{content}"
        );
        // It is rewritten with what S2 read.
        let cached = std::fs::read_to_string(&cache).unwrap();
        assert_contains(&cached, "\"preferred\":\"site1\"");
        std::fs::remove_file(&rec).unwrap();
    }
}

#[test]
fn s5_without_cache_preferred_nothing_is_read_or_written() {
    let dir = TestDir::new();
    let cache = dir.path().join("preferred.json");
    let rec = dir.path().join("r.jsonl");
    startup_demo(&cache, &rec).run().expect_code(0);
    assert!(!cache.exists());
}
