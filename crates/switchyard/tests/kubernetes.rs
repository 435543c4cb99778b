//! No cluster runs on our machines, so `deploy/kubernetes/` is checked here the way
//! `tests/compose.rs` checks compose: the kustomization names files that exist, every Switchyard
//! command has a form the multi-process tests run, every environment variable and Secret key
//! resolves and the mounted configuration validates with them, every probe and Service port is a
//! port something listens on — and then each service is started with its manifest's own
//! arguments and environment (addresses moved to loopback) and every probe is sent to it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde_json::Value;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/kubernetes");

fn yaml_docs(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| {
            let v: serde_yaml::Value = serde::Deserialize::deserialize(d).unwrap();
            serde_json::to_value(v).unwrap()
        })
        .filter(|v| !v.is_null())
        .collect()
}

/// The kustomization and every object of every file it lists.
struct Manifests {
    kustomization: Value,
    objects: Vec<Value>,
}

impl Manifests {
    fn load() -> Self {
        let mut k = yaml_docs(&Path::new(DIR).join("kustomization.yaml"));
        assert_eq!(k.len(), 1);
        let kustomization = k.remove(0);
        let mut objects = Vec::new();
        for r in kustomization["resources"].as_array().unwrap() {
            let file = Path::new(DIR).join(r.as_str().unwrap());
            assert!(
                file.exists(),
                "kustomization lists {file:?}, which is missing"
            );
            objects.extend(yaml_docs(&file));
        }
        Manifests {
            kustomization,
            objects,
        }
    }

    fn of_kind<'a>(&'a self, kinds: &'a [&str]) -> impl Iterator<Item = &'a Value> + 'a {
        self.objects
            .iter()
            .filter(move |o| kinds.contains(&o["kind"].as_str().unwrap_or("")))
    }

    fn secret(&self, name: &str, key: &str) -> String {
        let s = self
            .of_kind(&["Secret"])
            .find(|s| s["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no Secret {name}"));
        s["stringData"][key]
            .as_str()
            .unwrap_or_else(|| panic!("Secret {name} has no key {key}"))
            .to_string()
    }

    /// The ConfigMap the generator makes, and the files in it.
    fn config_map(&self) -> (String, Vec<String>) {
        assert_eq!(
            self.kustomization["generatorOptions"]["disableNameSuffixHash"], true,
            "a hashed ConfigMap name would restart every pod on each change instead of reloading"
        );
        let g = &self.kustomization["configMapGenerator"][0];
        let files = g["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap().to_string())
            .collect();
        (g["name"].as_str().unwrap().to_string(), files)
    }
}

/// One Switchyard container of a workload.
struct Service {
    workload: String,
    labels: Value,
    container: Value,
    volumes: Value,
}

impl Service {
    fn args(&self) -> Vec<String> {
        self.container["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect()
    }

    fn flag(&self, name: &str) -> Option<String> {
        let args = self.args();
        let i = args.iter().position(|a| a == name)?;
        args.get(i + 1).cloned()
    }

    /// The container port `port` (a name or a number) stands for.
    fn port_number(&self, port: &Value) -> u16 {
        if let Some(n) = port.as_u64() {
            return u16::try_from(n).unwrap();
        }
        let name = port.as_str().unwrap();
        self.container["ports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .and_then(|p| p["containerPort"].as_u64())
            .map(|n| u16::try_from(n).unwrap())
            .unwrap_or_else(|| panic!("{}: no container port named {name}", self.workload))
    }

    /// Ports the command listens on, by flag.
    fn listen_ports(&self) -> Vec<(&'static str, u16)> {
        ["--listen", "--metrics-listen"]
            .into_iter()
            .filter_map(|f| {
                let addr: std::net::SocketAddr = self.flag(f)?.parse().unwrap();
                Some((f, addr.port()))
            })
            .collect()
    }

    /// The environment the pod gets, with Secret references resolved.
    fn env(&self, m: &Manifests) -> HashMap<String, String> {
        let mut env = HashMap::new();
        for e in self.container["env"].as_array().into_iter().flatten() {
            let name = e["name"].as_str().unwrap().to_string();
            let value = match e["value"].as_str() {
                Some(v) => v.to_string(),
                None => {
                    let r = &e["valueFrom"]["secretKeyRef"];
                    m.secret(r["name"].as_str().unwrap(), r["key"].as_str().unwrap())
                }
            };
            env.insert(name, value);
        }
        env
    }

    fn probes(&self) -> Vec<(&'static str, Value)> {
        ["livenessProbe", "readinessProbe", "startupProbe"]
            .into_iter()
            .filter(|p| !self.container[*p].is_null())
            .map(|p| (p, self.container[p].clone()))
            .collect()
    }
}

fn switchyard_services(m: &Manifests) -> Vec<Service> {
    let mut out = Vec::new();
    for w in m.of_kind(&["Deployment", "StatefulSet"]) {
        let spec = &w["spec"]["template"]["spec"];
        for c in spec["containers"].as_array().unwrap() {
            if c["image"] != "switchyard" {
                continue;
            }
            out.push(Service {
                workload: w["metadata"]["name"].as_str().unwrap().to_string(),
                labels: w["spec"]["template"]["metadata"]["labels"].clone(),
                container: c.clone(),
                volumes: spec["volumes"].clone(),
            });
        }
    }
    out
}

#[test]
fn every_command_is_a_tested_form_the_binary_accepts() {
    let m = Manifests::load();
    let services = switchyard_services(&m);
    let names: BTreeSet<&str> = services.iter().map(|s| s.workload.as_str()).collect();
    for needed in ["gateway", "router", "prober", "ledger"] {
        assert!(names.contains(needed), "no {needed} Deployment");
    }
    for s in &services {
        let args = s.args();
        let flags: BTreeSet<&str> = args
            .iter()
            .map(String::as_str)
            .filter(|a| a.starts_with("--"))
            .collect();
        let (_, expected) = common::TESTED_FORMS
            .iter()
            .find(|(sub, _)| *sub == args[0])
            .unwrap_or_else(|| panic!("{}: `{}` is not a tested subcommand", s.workload, args[0]));
        let expected: BTreeSet<&str> = expected.iter().copied().collect();
        assert_eq!(
            flags, expected,
            "{}: flags differ from the tested form",
            s.workload
        );
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args(&args)
            .arg("--help")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            s.workload,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn the_config_is_mounted_so_that_edits_reach_the_pods_and_validates_with_each_pods_environment() {
    let m = Manifests::load();
    let (config_map, files) = m.config_map();
    for s in switchyard_services(&m) {
        let config = s.flag("--config").unwrap();
        let (dir, file) = config.rsplit_once('/').unwrap();
        assert!(
            files.iter().any(|f| f == file),
            "{}: {file} is not in the ConfigMap",
            s.workload
        );
        let mount = s.container["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["mountPath"] == dir)
            .unwrap_or_else(|| panic!("{}: nothing mounted at {dir}", s.workload));
        assert!(
            mount["subPath"].is_null(),
            "{}: a subPath mount never sees ConfigMap updates",
            s.workload
        );
        let volume = s
            .volumes
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == mount["name"])
            .unwrap();
        assert_eq!(volume["configMap"]["name"], config_map.as_str());

        // The file as the pod reads it: its own environment overrides and os.environ/ references.
        let env = s.env(&m);
        let path = Path::new(DIR).join(file);
        let c = switchyard_core::config::load_file(path.to_str().unwrap(), &env)
            .unwrap_or_else(|e| panic!("{}: the config does not load: {e}", s.workload));
        if let Some(url) = env.get("SWITCHYARD__STATE__REDIS_URL") {
            assert_eq!(
                c.state.redis_url.as_deref(),
                Some(url.as_str()),
                "{}",
                s.workload
            );
        }
        if let Some(a) = env.get("SWITCHYARD__LEDGER__ADDRESS") {
            assert_eq!(
                c.ledger.address.as_deref(),
                Some(a.as_str()),
                "{}",
                s.workload
            );
        }
        if let Some(u) = env.get("SWITCHYARD__LEDGER__DATABASE_URL") {
            assert_eq!(
                c.ledger.database_url.as_deref(),
                Some(u.as_str()),
                "{}",
                s.workload
            );
        }
        assert!(
            c.gateway.master_key.is_some(),
            "{}: the master key does not reach the config",
            s.workload
        );
        // Every service that calls or serves gRPC agrees on the internal secret.
        assert!(
            env.contains_key("SWITCHYARD_INTERNAL_SECRET"),
            "{}",
            s.workload
        );
    }
}

#[test]
fn probes_and_services_point_at_ports_something_listens_on() {
    let m = Manifests::load();
    let services = switchyard_services(&m);
    for s in &services {
        let listening: Vec<u16> = s.listen_ports().iter().map(|(_, p)| *p).collect();
        for (_, p) in s.listen_ports() {
            let declared = s.container["ports"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["containerPort"] == p);
            assert!(
                declared,
                "{}: listens on {p} without a containerPort",
                s.workload
            );
        }
        for (kind, probe) in s.probes() {
            let port = match &probe["httpGet"]["port"] {
                Value::Null => &probe["tcpSocket"]["port"],
                p => p,
            };
            let n = s.port_number(port);
            assert!(
                listening.contains(&n),
                "{}: {kind} on {n}, where nothing listens",
                s.workload
            );
        }
    }
    for svc in m.of_kind(&["Service"]) {
        let name = svc["metadata"]["name"].as_str().unwrap();
        let selector = svc["spec"]["selector"].as_object().unwrap();
        let Some(s) = services
            .iter()
            .find(|s| selector.iter().all(|(k, v)| s.labels.get(k) == Some(v)))
        else {
            // Redis and PostgreSQL: not Switchyard containers.
            continue;
        };
        for p in svc["spec"]["ports"].as_array().unwrap() {
            let n = s.port_number(&p["targetPort"]);
            assert!(
                s.listen_ports().iter().any(|(_, l)| *l == n),
                "Service {name}: target port {n} is not one {} listens on",
                s.workload
            );
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running service started from its manifest, and where each manifest port ended up.
struct Started {
    _proc: common::Proc,
    ports: HashMap<u16, u16>,
}

/// Starts `s` with its manifest's arguments and environment, with every listen address moved
/// to a free loopback port, the data directory to `data`, the config to `config`, and the
/// in-cluster addresses of Redis, the ledger and the router replaced by `addresses`.
async fn start(
    s: &Service,
    m: &Manifests,
    config: &Path,
    data: &Path,
    addresses: &HashMap<&str, String>,
) -> Started {
    let mut ports = HashMap::new();
    let mut args = s.args();
    for i in 1..args.len() {
        match args[i - 1].as_str() {
            "--listen" | "--metrics-listen" => {
                let from: std::net::SocketAddr = args[i].parse().unwrap();
                let to = free_port();
                ports.insert(from.port(), to);
                args[i] = format!("127.0.0.1:{to}");
            }
            "--config" => args[i] = config.to_str().unwrap().to_string(),
            "--data-dir" => args[i] = data.to_str().unwrap().to_string(),
            "--router" => args[i] = addresses["router"].clone(),
            _ => {}
        }
    }
    let mut env = s.env(m);
    // PostgreSQL in the cluster; the ledger's SQLite file here (the probes do not depend on it).
    env.remove("SWITCHYARD__LEDGER__DATABASE_URL");
    for (k, v) in &mut env {
        match k.as_str() {
            "SWITCHYARD__STATE__REDIS_URL" => *v = addresses["redis"].clone(),
            "SWITCHYARD__LEDGER__ADDRESS" => *v = addresses["ledger"].clone(),
            _ => {}
        }
    }
    env.insert(
        "SWITCHYARD__STATE__KEY_PREFIX".into(),
        addresses["prefix"].clone(),
    );
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let proc = common::spawn_switchyard_env(&args, &env).await;
    Started { _proc: proc, ports }
}

#[tokio::test]
async fn every_probe_answers_on_services_started_as_the_manifests_start_them() {
    if !common::redis_available().await {
        eprintln!("skipped: Redis not reachable at 127.0.0.1:6379");
        return;
    }
    let m = Manifests::load();
    let services = switchyard_services(&m);
    let sim = common::reference_ollama().await;
    let dir = tempfile::tempdir().unwrap();
    let (_, files) = m.config_map();
    let text = std::fs::read_to_string(Path::new(DIR).join(&files[0])).unwrap();
    // Loopback only: the example's model servers become the simulator.
    let text = text.replace("http://ollama.lab.internal:11434", &sim.base_url());
    assert!(!text.contains("lab.internal"));
    let config: PathBuf = dir.path().join(&files[0]);
    std::fs::write(&config, text).unwrap();

    let mut addresses: HashMap<&str, String> = HashMap::new();
    addresses.insert("redis", "redis://127.0.0.1:6379".into());
    addresses.insert("prefix", common::unique_prefix());
    let mut running = Vec::new();
    // In dependency order: the ledger's and the router's addresses are others' arguments.
    for name in ["ledger", "prober", "router", "gateway"] {
        let s = services.iter().find(|s| s.workload == name).unwrap();
        let data = dir.path().join(name);
        std::fs::create_dir_all(&data).unwrap();
        let started = start(s, &m, &config, &data, &addresses).await;
        if let Some(p) = s.flag("--listen") {
            let port: std::net::SocketAddr = p.parse().unwrap();
            let url = format!("http://127.0.0.1:{}", started.ports[&port.port()]);
            addresses.insert(if name == "ledger" { "ledger" } else { "router" }, url);
        }
        running.push((s, started));
    }

    let http = common::client();
    for (s, started) in &running {
        for (kind, probe) in s.probes() {
            if !probe["httpGet"].is_null() {
                let port = started.ports[&s.port_number(&probe["httpGet"]["port"])];
                let path = probe["httpGet"]["path"].as_str().unwrap();
                let url = format!("http://127.0.0.1:{port}{path}");
                // The gateway's readiness needs the router: poll until it holds.
                common::eventually(30, &format!("{} {kind} {url}", s.workload), || {
                    let http = http.clone();
                    let url = url.clone();
                    async move { matches!(http.get(&url).send().await, Ok(r) if r.status() == 200) }
                })
                .await;
            } else {
                let port = started.ports[&s.port_number(&probe["tcpSocket"]["port"])];
                tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .unwrap_or_else(|e| panic!("{} {kind}: {port}: {e}", s.workload));
            }
        }
    }
    // And the stack serves a request end to end, with the master key from the Secret.
    let gateway = &running
        .iter()
        .find(|(s, _)| s.workload == "gateway")
        .unwrap()
        .1;
    let key = m.secret("switchyard-secrets", "master-key");
    let port = gateway.ports[&4000];
    let r = http
        .post(format!("http://127.0.0.1:{port}/v1/chat/completions"))
        .bearer_auth(key)
        .json(&common::chat_body("local-small", "hello", false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}
