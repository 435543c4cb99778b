//! What the server under test costs, read from `/proc`: CPU time (`utime + stime` of every
//! process of the service and its descendants), resident memory now (`VmRSS`) and at its peak
//! (`VmHWM`, which `clear_refs` resets so each scenario gets its own peak).
//!
//! Linux only; on other systems (or for a process that is gone) the readings are `None` and the
//! report says "n/a" rather than inventing a number.

use std::collections::BTreeSet;
use std::fs;

/// Kernel clock ticks per second for `/proc/PID/stat` times. 100 on every mainstream Linux
/// build; the script passes `getconf CLK_TCK` to be sure.
pub const DEFAULT_CLK_TCK: u64 = 100;

/// The fields after the `(comm)` of `/proc/PID/stat`, starting with the state (field 3).
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let close = text.rfind(')')?;
    Some(
        text[close + 1..]
            .split_whitespace()
            .map(str::to_string)
            .collect(),
    )
}

/// `utime + stime` of one process (all its threads), in clock ticks.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let f = stat_fields(pid)?;
    // Field 14 is utime and 15 stime; the slice starts at field 3.
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn parent(pid: u32) -> Option<u32> {
    stat_fields(pid)?.get(1)?.parse().ok()
}

/// The given processes and all their live descendants (LiteLLM's workers, for instance).
pub fn with_descendants(roots: &[u32]) -> Vec<u32> {
    let mut set: BTreeSet<u32> = roots.iter().copied().collect();
    let Ok(dir) = fs::read_dir("/proc") else {
        return set.into_iter().collect();
    };
    let all: Vec<(u32, u32)> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Some((pid, parent(pid)?)))
        .collect();
    loop {
        let before = set.len();
        for &(pid, ppid) in &all {
            if set.contains(&ppid) {
                set.insert(pid);
            }
        }
        if set.len() == before {
            break;
        }
    }
    set.into_iter().collect()
}

/// Total CPU seconds of a set of processes.
pub fn cpu_seconds(pids: &[u32], clk_tck: u64) -> Option<f64> {
    let mut ticks = 0u64;
    for &p in pids {
        ticks += cpu_ticks(p)?;
    }
    Some(ticks as f64 / clk_tck.max(1) as f64)
}

/// A `kB` field of `/proc/PID/status` (`VmRSS`, `VmHWM`, …).
pub fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Sum of a `kB` status field over processes; `None` if any is unreadable.
pub fn sum_kb(pids: &[u32], field: &str) -> Option<u64> {
    pids.iter().map(|&p| status_kb(p, field)).sum()
}

/// Resets the peak-RSS mark (`VmHWM`) of a process (Linux ≥ 4.0, needs to own the process).
pub fn reset_peak(pid: u32) -> bool {
    fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// Socket inodes held open by a process (`/proc/PID/fd/* -> socket:[INODE]`).
fn socket_inodes(pid: u32) -> Vec<u64> {
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let link = fs::read_link(e.ok()?.path()).ok()?;
        let s = link.to_str()?;
        s.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
    })
    .collect()
}

/// TCP ports in LISTEN state owned by these processes (for servers started on port 0 that do not
/// print the port they got).
pub fn listening_ports(pids: &[u32]) -> Vec<u16> {
    let inodes: BTreeSet<u64> = pids.iter().flat_map(|&p| socket_inodes(p)).collect();
    let mut ports = BTreeSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            let (Some(local), Some(state), Some(inode)) = (f.get(1), f.get(3), f.get(9)) else {
                continue;
            };
            if *state != "0A" {
                continue;
            }
            let Ok(inode) = inode.parse::<u64>() else {
                continue;
            };
            if !inodes.contains(&inode) {
                continue;
            }
            if let Some(port) = local
                .rsplit(':')
                .next()
                .and_then(|p| u16::from_str_radix(p, 16).ok())
            {
                ports.insert(port);
            }
        }
    }
    ports.into_iter().collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reads_own_process() {
        let me = std::process::id();
        if fs::metadata("/proc/self/stat").is_err() {
            return; // not Linux
        }
        assert!(cpu_ticks(me).is_some());
        assert!(status_kb(me, "VmRSS").is_some_and(|kb| kb > 0));
        assert!(with_descendants(&[me]).contains(&me));
        assert!(cpu_seconds(&[me], DEFAULT_CLK_TCK).is_some());
        assert_eq!(status_kb(me, "NoSuchField"), None);
    }

    #[test]
    fn finds_own_listening_port() {
        if fs::metadata("/proc/net/tcp").is_err() {
            return;
        }
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        assert!(listening_ports(&[std::process::id()]).contains(&port));
    }
}
