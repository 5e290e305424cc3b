//! `mock`: a drctl backend that simulates a two-site Genesys deployment from
//! a scenario file (SPEC §6), driven only by host time (`DETERMINISTIC`), so
//! scenarios run on drctl's virtual clock at full speed.
//!
//! Config (JSON, from the host): `{"scenario": "/abs/path.toml",
//! "sites": [{"name", "cs_proxy", "app_name"}, ...], "dn": "7001"}`.

pub mod scenario;
pub mod sim;

use drctl_plugin_api::abi::Capabilities;
use drctl_plugin_api::messages::{Input, Output};
use drctl_plugin_api::plugin::{Backend, HostHandle};
use serde::Deserialize;
use std::path::PathBuf;

pub use scenario::{Scenario, ScenarioError};
pub use sim::{Sim, SiteInfo};

/// The mock's config, as the host sends it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MockConfig {
    scenario: PathBuf,
    sites: Vec<SiteInfo>,
    #[serde(default = "default_dn")]
    dn: String,
}

fn default_dn() -> String {
    "7001".to_owned()
}

/// The plugin: a [`Sim`] behind the ABI.
pub struct MockBackend {
    sim: Sim,
}

impl Backend for MockBackend {
    fn create(config: serde_json::Value, host: HostHandle) -> Result<Self, String> {
        let cfg: MockConfig =
            serde_json::from_value(config).map_err(|e| format!("mock backend config: {e}"))?;
        let names: Vec<String> = cfg.sites.iter().map(|s| s.name.clone()).collect();
        let scenario = Scenario::load(&cfg.scenario, &names).map_err(|e| e.to_string())?;
        for warning in &scenario.warnings {
            host.warn(warning);
        }
        let capacity = match scenario.deployment.capacity() {
            Some(c) => format!("{}/s per site, queue {}", c.per_second, c.queue),
            None => "unlimited".to_owned(),
        };
        host.debug(format!(
            "scenario {} loaded: {} timeline entries, written for {} agent(s), \
             CS Proxy capacity {capacity}",
            cfg.scenario.display(),
            scenario.timeline.len(),
            scenario.deployment.agents,
        ));
        Ok(MockBackend {
            sim: Sim::new(scenario, cfg.sites, cfg.dn),
        })
    }

    fn handle(&mut self, now_ns: u64, input: Input) -> Result<(), String> {
        self.sim.handle(now_ns, input)
    }

    fn poll_output(&mut self, now_ns: u64) -> Option<Output> {
        self.sim.poll_output(now_ns)
    }

    fn poll_output_compact(&mut self, now_ns: u64, out: &mut Vec<u8>) -> Result<bool, String> {
        self.sim
            .poll_output_compact(now_ns, out)
            .map_err(|e| format!("cannot encode output: {e}"))
    }

    fn poll_timeout(&self) -> Option<u64> {
        self.sim.poll_timeout()
    }
}

// COMPACT: a fleet's hundreds of thousands of messages cross the ABI in
// the compact encoding (JSON costs more than the simulation itself).
drctl_plugin_api::export_plugin! {
    backend: MockBackend,
    name: "mock",
    capabilities: Capabilities::DETERMINISTIC.union(Capabilities::COMPACT),
}
