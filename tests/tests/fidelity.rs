//! Issue 15, on the mock end to end: the seed rules as SPEC §3 states them
//! (S3 both Applications, E2 failback on evidence, W5 login), each a
//! scenario in `tests/scenarios/` run on the virtual clock, checked by its
//! exact decisions and, where the rule is about what drctl sends, by the
//! recorded commands. (D1's and D4's alarms are in the shipped scenarios'
//! expectations, `tests/tests/scenarios.rs`.)

use drctl_e2e::watch_test_scenario;
use serde_json::Value;

const S: u64 = 1_000_000_000;
const MS: u64 = 1_000_000;

/// [`watch_test_scenario`], checking the switchover decisions are `want`.
fn run_switching(scenario: &str, sets: &[&str], want: Vec<String>) -> (Vec<String>, Vec<Value>) {
    let (decisions, rec) = watch_test_scenario(scenario, sets);
    assert_eq!(switchovers(&decisions), want, "{scenario} {sets:?}");
    (decisions, rec)
}

fn at(t: u64, rest: &str) -> String {
    format!("{t} {rest}")
}

/// A switchover started at `t` and completed 200 ms later (the mock's
/// connect): `what` is `reason from to`.
fn switched(t: u64, what: &str) -> Vec<String> {
    vec![
        at(t, &format!("switchover-started {what}")),
        at(t + 200 * MS, &format!("switchover-completed {what}")),
    ]
}

/// The switchover decisions (started, completed, failed) only.
fn switchovers(decisions: &[String]) -> Vec<String> {
    decisions
        .iter()
        .filter(|d| {
            d.split(' ')
                .nth(1)
                .is_some_and(|ty| ty.starts_with("switchover-"))
        })
        .cloned()
        .collect()
}

/// When each failback started.
fn failbacks(decisions: &[String]) -> Vec<u64> {
    decisions
        .iter()
        .filter(|d| d.ends_with("switchover-started failback site2 site1"))
        .filter_map(|d| d.split(' ').next()?.parse().ok())
        .collect()
}

/// The recorded commands of `type`, each with its time.
fn commands<'a>(rec: &'a [Value], kind: &str) -> Vec<(u64, &'a Value)> {
    rec.iter()
        .filter(|r| r["kind"] == "command" && r["command"]["type"] == kind)
        .map(|r| (r["t"].as_u64().unwrap_or_default(), &r["command"]))
        .collect()
}

const AUTO_60S: [&str; 3] = [
    "policy.failback=auto",
    "policy.failback-after=60s",
    "policy.failback-probe-interval=10s",
];

/// An E2 run of `scenario` ([`AUTO_60S`]): its switchovers are `want`, and
/// failback `nth` starts no earlier than `not_before`. Returns the recording.
fn e2_run(scenario: &str, want: &[Vec<String>], (nth, not_before): (usize, u64)) -> Vec<Value> {
    let (decisions, rec) = run_switching(scenario, &AUTO_60S, want.concat());
    let failbacks = failbacks(&decisions);
    assert!(failbacks[nth] >= not_before, "{failbacks:?}");
    rec
}

/// E2: the preferred site's telephony is down for 200 s (10 s to 210 s),
/// `failback = auto`, `failback-after = 60s`: exactly one switchover away
/// and one failback, no earlier than 60 s after site1 recovered. Until then
/// site1 is probed every 10 s through its CS Proxy, from site2.
#[test]
fn e2_a_site_down_for_200s_gives_one_switchover_away_and_one_failback() {
    let want = [
        switched(40 * S, "telephony-timeout site1 site2"),
        // Healthy from the probe at 210.2 s.
        switched(270 * S + 200 * MS, "failback site2 site1"),
    ];
    let rec = e2_run("e2-preferred-down-200s.toml", &want, (0, 210 * S + 60 * S));
    // D1: the OFF at 10 s is an alarm naming the switchover due at 40 s.
    let alarm = rec
        .iter()
        .find(|r| r["kind"] == "decision" && r["type"] == "alarm-raised")
        .unwrap();
    assert_eq!(
        (
            alarm["t"].as_u64(),
            &alarm["alarm"],
            alarm["deadline"].as_u64()
        ),
        (Some(10 * S), &"telephony-service-down".into(), Some(40 * S))
    );
    let probes = commands(&rec, "probe");
    let times: Vec<u64> = probes.iter().map(|p| p.0).collect();
    let want: Vec<u64> = (0..24).map(|k| 40 * S + 200 * MS + k * 10 * S).collect();
    assert_eq!(times, want, "one probe every 10 s while on site2");
    assert!(probes
        .iter()
        .all(|(_, c)| c["site"] == "site1" && c["cs_proxy"] == "csproxy1.mock:7000"));
    // Each probe was answered from site1's state: unhealthy until 210 s.
    let healthy: Vec<bool> = rec
        .iter()
        .filter(|r| r["kind"] == "result" && r["result"]["type"] == "probed")
        .map(|r| r["result"]["healthy"] == true)
        .collect();
    assert_eq!(healthy.iter().filter(|h| !**h).count(), 17);
    assert!(healthy[17..].iter().all(|h| *h), "{healthy:?}");
}

/// E2: a failback that lands on a dead site (site1's telephony went off
/// again between the last healthy probe and the landing) returns at once,
/// `site-timeout` after landing, and the next failback waits twice
/// `failback-after` (120 s) from site1's recovery at 150 s.
#[test]
fn e2_a_failback_onto_a_dead_site_returns_and_doubles_failback_after() {
    let want = [
        switched(40 * S, "telephony-timeout site1 site2"),
        switched(110 * S + 200 * MS, "failback site2 site1"),
        switched(140 * S + 400 * MS, "telephony-timeout site1 site2"),
        switched(270 * S + 600 * MS, "failback site2 site1"),
    ];
    // site1 healthy again from 150 s: the second failback waits twice 60 s.
    e2_run(
        "e2-failback-onto-a-dead-site.toml",
        &want,
        (1, 150 * S + 120 * S),
    );
}

/// S3: ops moved site2's CS Proxy; its AIL Application names the new
/// address, the local `[[sites]]` the old one. Both Applications are read
/// at startup, and the switchover connects where the Application says.
#[test]
fn s3_a_switchover_follows_the_cs_proxy_ops_moved() {
    let (_, rec) = run_switching(
        "s3-moved-cs-proxy.toml",
        &[],
        switched(40 * S, "telephony-timeout site1 site2"),
    );
    let reads: Vec<&Value> = commands(&rec, "read_application")
        .into_iter()
        .map(|c| &c.1["app_name"])
        .collect();
    assert_eq!(reads, ["AIL_site1", "AIL_site2"]);
    let connects: Vec<(&Value, &Value)> = commands(&rec, "connect")
        .into_iter()
        .map(|(_, c)| (&c["site"], &c["cs_proxy"]))
        .collect();
    assert_eq!(
        connects,
        [
            (&"site1".into(), &"csproxy1.mock:7000".into()),
            (&"site2".into(), &"csp2-moved.example:7000".into()),
        ]
    );
}

/// S3: when an Application cannot be read, the local `[[sites]]` entry is
/// the fallback, announced by an `application-fallback` decision (here the
/// old address no longer answers: W4 takes the agent back to site1).
#[test]
fn s3_an_unreadable_application_falls_back_to_the_local_site_and_says_so() {
    let (decisions, rec) = watch_test_scenario("s3-application-unreadable.toml", &[]);
    assert_eq!(
        decisions[..2],
        [
            at(200 * MS, "startup-connected site1"),
            at(
                200 * MS,
                "application-fallback site2 AIL Application \"AIL_site2\" cannot be read"
            ),
        ]
    );
    assert!(decisions.contains(&at(
        40 * S + 200 * MS,
        "switchover-failed site2 no CS Proxy of site2 answers at csproxy2.mock:7000"
    )));
    let last = commands(&rec, "connect").into_iter().nth(1).unwrap().1;
    assert_eq!(last["cs_proxy"], "csproxy2.mock:7000");
}

/// W5: with `agent.login`, the agent is logged in on its DN after each
/// connect and subscribe; a login site2 refuses is a failed switchover (W4:
/// alarm, back to site1), and the next try, once site2 takes logins again,
/// gets there and clears the alarm.
#[test]
fn w5_a_refused_login_is_a_failed_switchover_and_the_retry_logs_in() {
    let (decisions, rec) = run_switching(
        "w5-login-refused.toml",
        &["agent.login=true", "agent.dn=7001"],
        [
            vec![
                at(40 * S, "switchover-started telephony-timeout site1 site2"),
                at(
                    40 * S + 200 * MS,
                    "switchover-failed site2 login failed: login refused at site2",
                ),
                at(
                    40 * S + 400 * MS,
                    "switchover-completed telephony-timeout site1 site1",
                ),
            ],
            switched(70 * S + 400 * MS, "telephony-timeout site1 site2"),
        ]
        .concat(),
    );
    assert!(decisions.contains(&at(40 * S + 200 * MS, "alarm-raised switchover-failed")));
    assert!(decisions.contains(&at(70 * S + 600 * MS, "alarm-cleared switchover-failed")));
    let logins: Vec<(u64, &Value, &Value)> = commands(&rec, "login")
        .into_iter()
        .map(|(t, c)| (t, &c["epoch"], &c["dn"]))
        .collect();
    let epochs: Vec<u64> = logins.iter().map(|l| l.1.as_u64().unwrap()).collect();
    assert_eq!(epochs, [1, 2, 3, 4], "a login on every connection");
    assert!(logins.iter().all(|l| l.2 == "7001"));
    // Off by default: no login at all.
    let (_, rec) = watch_test_scenario("w5-login-refused.toml", &[]);
    assert!(commands(&rec, "login").is_empty());
}
