//! What changed between the running configuration and a newly loaded one, for a reload.
//!
//! A reload swaps the routing part of the config (groups, deployments, routing settings) and the
//! gateway's request limits; a few keys are bound to sockets, connections or secrets made once at
//! start (listen addresses, Redis, the ledger, the master key). Those keep their running value
//! ([`keep_restart_only`]) and the diff names them, so the caller can say "needs a restart".
//! Deployments are matched by id; comparing their `Debug` text keeps this module right when
//! other keys are added to [`Deployment`].

use super::model::{Config, Deployment};

/// The differences a reload reports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigDiff {
    /// Deployment ids new in the new config.
    pub deployments_added: Vec<String>,
    /// Deployment ids gone from it.
    pub deployments_removed: Vec<String>,
    /// Deployment ids present in both, with some setting changed.
    pub deployments_changed: Vec<String>,
    pub groups_added: Vec<String>,
    pub groups_removed: Vec<String>,
    /// Groups present in both whose members, fallbacks or mode changed.
    pub groups_changed: Vec<String>,
    /// Reloadable settings sections that changed (`routing`, `gateway`).
    pub settings_changed: Vec<String>,
    /// Restart-only keys whose value differs: the running value is kept.
    pub needs_restart: Vec<String>,
}

impl ConfigDiff {
    /// Whether a reload would change anything that is applied.
    pub fn is_empty(&self) -> bool {
        self.deployments_added.is_empty()
            && self.deployments_removed.is_empty()
            && self.deployments_changed.is_empty()
            && self.groups_added.is_empty()
            && self.groups_removed.is_empty()
            && self.groups_changed.is_empty()
            && self.settings_changed.is_empty()
    }
}

/// The keys that only take effect at start, as the README names them.
pub const RESTART_ONLY: &[&str] = &[
    "gateway.listen",
    "gateway.router_address",
    "gateway.master_key",
    "gateway.internal_secret",
    "gateway.header_read_timeout",
    "gateway.body_read_timeout",
    "gateway.shutdown_grace",
    "router.listen",
    "router.metrics_listen",
    "state (redis_url, key_prefix)",
    "ledger (database_url, listen, address, spool_path, spool_max_bytes, metrics_listen)",
    "prober (enabled, interval, timeout, metrics_listen)",
];

/// A deployment's settings as text, with its group by name (indexes move when groups do).
fn deployment_text(c: &Config, d: &Deployment) -> String {
    let group = c.groups.get(d.group).map_or("", |g| g.name.as_str());
    let mut d = d.clone();
    d.group = 0;
    format!("{group}|{d:?}")
}

fn group_text(c: &Config, g: &super::model::Group) -> String {
    let names = |ixs: &[usize], f: &dyn Fn(usize) -> String| -> Vec<String> {
        ixs.iter().map(|&i| f(i)).collect()
    };
    let dep = |i: usize| c.deployments.get(i).map_or(String::new(), |d| d.id.clone());
    let grp = |i: usize| c.groups.get(i).map_or(String::new(), |g| g.name.clone());
    format!(
        "{:?}|{:?}|{:?}|{:?}",
        names(&g.deployments, &dep),
        names(&g.fallbacks, &grp),
        names(&g.context_fallbacks, &grp),
        g.mode
    )
}

/// Restart-only values that differ, by key.
fn restart_only_changes(old: &Config, new: &Config) -> Vec<String> {
    let mut out = Vec::new();
    let (o, n) = (&old.gateway, &new.gateway);
    let mut check = |key: &str, same: bool| {
        if !same {
            out.push(key.to_string());
        }
    };
    check("gateway.listen", o.listen == n.listen);
    check(
        "gateway.router_address",
        o.router_address == n.router_address,
    );
    check("gateway.master_key", o.master_key == n.master_key);
    check(
        "gateway.internal_secret",
        o.internal_secret == n.internal_secret,
    );
    check(
        "gateway.header_read_timeout",
        o.header_read_timeout == n.header_read_timeout,
    );
    check(
        "gateway.body_read_timeout",
        o.body_read_timeout == n.body_read_timeout,
    );
    check(
        "gateway.shutdown_grace",
        o.shutdown_grace == n.shutdown_grace,
    );
    check("router.listen", old.router.listen == new.router.listen);
    check(
        "router.metrics_listen",
        old.router.metrics_listen == new.router.metrics_listen,
    );
    check(
        "state",
        format!("{:?}", old.state) == format!("{:?}", new.state),
    );
    check(
        "ledger",
        format!("{:?}", old.ledger) == format!("{:?}", new.ledger),
    );
    check(
        "prober",
        format!("{:?}", old.prober) == format!("{:?}", new.prober),
    );
    out
}

/// Gives `new` the running values of every restart-only key (see [`RESTART_ONLY`]).
pub fn keep_restart_only(old: &Config, new: &mut Config) {
    let (o, n) = (&old.gateway, &mut new.gateway);
    n.listen = o.listen;
    n.router_address = o.router_address.clone();
    n.master_key = o.master_key.clone();
    n.internal_secret = o.internal_secret.clone();
    n.header_read_timeout = o.header_read_timeout;
    n.body_read_timeout = o.body_read_timeout;
    n.shutdown_grace = o.shutdown_grace;
    new.router = old.router.clone();
    new.state = old.state.clone();
    new.ledger = old.ledger.clone();
    new.prober = old.prober.clone();
}

/// Compares the running config with a new one.
pub fn diff(old: &Config, new: &Config) -> ConfigDiff {
    let mut d = ConfigDiff::default();
    for nd in &new.deployments {
        match old.deployments.iter().find(|od| od.id == nd.id) {
            None => d.deployments_added.push(nd.id.clone()),
            Some(od) => {
                if deployment_text(old, od) != deployment_text(new, nd) {
                    d.deployments_changed.push(nd.id.clone());
                }
            }
        }
    }
    for od in &old.deployments {
        if !new.deployments.iter().any(|nd| nd.id == od.id) {
            d.deployments_removed.push(od.id.clone());
        }
    }
    for ng in &new.groups {
        match old.groups.iter().find(|og| og.name == ng.name) {
            None => d.groups_added.push(ng.name.clone()),
            Some(og) => {
                if group_text(old, og) != group_text(new, ng) {
                    d.groups_changed.push(ng.name.clone());
                }
            }
        }
    }
    for og in &old.groups {
        if new.group(&og.name).is_none() {
            d.groups_removed.push(og.name.clone());
        }
    }
    if format!("{:?}", old.routing) != format!("{:?}", new.routing) {
        d.settings_changed.push("routing".into());
    }
    let mut kept = new.clone();
    keep_restart_only(old, &mut kept);
    if format!("{:?}", old.gateway) != format!("{:?}", kept.gateway) {
        d.settings_changed.push("gateway".into());
    }
    d.needs_restart = restart_only_changes(old, new);
    d
}

/// A text that is equal for two configs exactly when they route the same: every setting,
/// group and deployment, not the notes and warnings `check` prints.
pub fn fingerprint(c: &Config) -> String {
    let mut s = format!(
        "{:?}|{:?}|{:?}|{:?}|{:?}|{:?}",
        c.gateway, c.router, c.state, c.ledger, c.prober, c.routing
    );
    for g in &c.groups {
        s.push_str(&format!("|{}={}", g.name, group_text(c, g)));
    }
    for d in &c.deployments {
        s.push('|');
        s.push_str(&deployment_text(c, d));
    }
    s
}

#[cfg(test)]
mod tests {
    #![allow(clippy::panic)]

    use super::*;
    use crate::config::{Format, load_str};

    fn load(text: &str) -> Config {
        match load_str(
            "test",
            text,
            Some(Format::Yaml),
            &std::collections::HashMap::<String, String>::new(),
        ) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        }
    }

    const BASE: &str = r#"
model_list:
  - model_name: small
    litellm_params: {model: ollama/a, api_base: "http://127.0.0.1:1"}
    model_info: {id: a}
  - model_name: big
    litellm_params: {model: ollama/b, api_base: "http://127.0.0.1:2"}
    model_info: {id: b}
"#;

    #[test]
    fn same_text_is_no_change() {
        let (a, b) = (load(BASE), load(BASE));
        assert!(diff(&a, &b).is_empty());
        assert_eq!(fingerprint(&a), fingerprint(&b));
    }

    #[test]
    fn deployments_groups_and_restart_keys() {
        let old = load(BASE);
        let new = load(
            r#"
general_settings: {master_key: sk-new-master-key}
gateway: {listen: "127.0.0.1:4100", max_messages: 7}
model_list:
  - model_name: small
    litellm_params: {model: ollama/a, api_base: "http://127.0.0.1:9"}
    model_info: {id: a}
  - model_name: other
    litellm_params: {model: ollama/c, api_base: "http://127.0.0.1:3"}
    model_info: {id: c}
"#,
        );
        let d = diff(&old, &new);
        assert_eq!(d.deployments_added, ["c"]);
        assert_eq!(d.deployments_removed, ["b"]);
        assert_eq!(d.deployments_changed, ["a"]);
        assert_eq!(d.groups_added, ["other"]);
        assert_eq!(d.groups_removed, ["big"]);
        assert_eq!(d.settings_changed, ["gateway"]);
        assert_eq!(d.needs_restart, ["gateway.listen", "gateway.master_key"]);
        let mut kept = new.clone();
        keep_restart_only(&old, &mut kept);
        assert_eq!(kept.gateway.listen, old.gateway.listen);
        assert_eq!(kept.gateway.max_messages, 7);
    }
}
