//! Expansion: a validated configuration plus a discovery [`Catalog`] give the configuration the
//! router runs on, with one group per discovered model.
//!
//! Pure and deterministic (the catalog is sorted), so every process that expands the same file
//! with the same catalog gets the same groups, ids and chains; deployment ids are
//! `model@host`, stable while the model stays, so reloads carry a deployment's counters over.

use super::catalog::{Catalog, DiscoveredModel};
use super::discovery::{AutoFallbacks, DiscoverySpec};
use super::model::*;
use crate::tokens::TemplateFamily;

/// `base` with the groups and deployments its wildcard entries find in `catalog` (a
/// configuration without wildcard entries comes back unchanged). A name a configured group
/// already has stays the configured group's; the discovered model is left out, with a note.
pub fn expand(base: &Config, catalog: &Catalog) -> Config {
    let mut out = base.clone();
    if base.discovery.is_empty() {
        return out;
    }
    let mut chain: Vec<(u32, String, GroupIx)> = Vec::new();
    for spec in &base.discovery {
        let Some(host) = catalog.host(spec.provider(), spec.api_base()) else {
            out.notes.push(format!(
                "{}: nothing discovered yet (the host has not answered)",
                spec.label()
            ));
            continue;
        };
        let mut taken = 0usize;
        for m in &host.models {
            if !spec.admits(&m.name) {
                continue;
            }
            if let Some(link) = add_model(&mut out, base, spec, m) {
                taken += 1;
                if let Some(link) = link {
                    chain.push(link);
                }
            }
        }
        out.notes.push(format!(
            "{}: {} of the host's {} model(s) taken",
            spec.label(),
            taken,
            host.models.len()
        ));
    }
    chain_by_context(&mut out, chain);
    out.reindex();
    out
}

/// Adds one discovered model; `None` when it is left out, else its by-context chain link (if
/// its entry chains by context and its window is known).
fn add_model(
    out: &mut Config,
    base: &Config,
    spec: &DiscoverySpec,
    m: &DiscoveredModel,
) -> Option<Option<(u32, String, GroupIx)>> {
    let name = spec.group_name(&m.name);
    let label = spec.label();
    if base.group(&name).is_some() {
        out.notes.push(format!(
            "{name}: discovered by {label}, but a configured group has this name; the configured one is kept"
        ));
        return None;
    }
    let mode = if m.capabilities.is_empty() {
        spec.prototype.mode
    } else if m.is_embedding() {
        Mode::Embedding
    } else {
        Mode::Chat
    };
    let g = match out.groups.iter().position(|g| g.name == name) {
        Some(g) if out.groups[g].mode != mode => {
            out.notes.push(format!(
                "{name}: {} from {label} serves {}, the group already serves {}; left out",
                m.name,
                mode.as_str(),
                out.groups[g].mode.as_str()
            ));
            return None;
        }
        Some(g) => g,
        None => {
            out.groups.push(Group {
                name: name.clone(),
                deployments: Vec::new(),
                fallbacks: Vec::new(),
                context_fallbacks: Vec::new(),
                mode,
                spill_after: None,
            });
            out.groups.len() - 1
        }
    };
    let source = m.context_source.as_deref().unwrap_or("the server");
    let (window, why) = spec.window(m.context_length, source);
    let host = spec
        .api_base()
        .split_once("://")
        .map_or(spec.api_base(), |(_, h)| h);
    let mut id = format!("{}@{host}", m.name);
    if out.deployments.iter().any(|d| d.id == id) {
        id = format!("{id}/{name}");
    }
    let mut d = spec.prototype.clone();
    d.id = id;
    d.group = g;
    d.model = m.name.clone();
    d.context_window = window;
    d.window_source = match window {
        Some(_) => WindowSource::Discovered(why.clone()),
        None => WindowSource::Unknown,
    };
    d.template = spec
        .template
        .unwrap_or_else(|| TemplateFamily::from_model_name(&m.name));
    d.mode = mode;
    d.discovered = Some(Discovered {
        from: label.clone(),
        family: m.family.clone(),
        capabilities: m.capabilities.clone(),
    });
    let caps = if m.capabilities.is_empty() {
        String::new()
    } else {
        format!(" ({})", m.capabilities.join(", "))
    };
    let shown = window.map_or_else(|| "unknown".to_owned(), |w| w.to_string());
    out.notes.push(format!(
        "{name} ({} via {} at {}): discovered by {label}; {} model{caps}, window {shown} from {why}",
        d.model,
        d.provider.as_str(),
        d.api_base,
        mode.as_str()
    ));
    let ix = out.deployments.len();
    out.deployments.push(d);
    let deps = &out.deployments;
    let group = &mut out.groups[g];
    group.deployments.push(ix);
    group.deployments.sort_by_key(|&x| deps[x].order);
    let link = (spec.auto_fallbacks == AutoFallbacks::ByContext && mode == Mode::Chat)
        .then_some(window)
        .flatten()
        .map(|w| (w, name, g));
    Some(link)
}

/// `auto_fallbacks: by_context`: the chained groups, smallest window first, each falling back to
/// every larger one (ties by name). A group with a chain of its own keeps it.
fn chain_by_context(out: &mut Config, mut chain: Vec<(u32, String, GroupIx)>) {
    if chain.is_empty() {
        return;
    }
    // A group found on several hosts is chained once, at its largest window.
    chain.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let mut seen = Vec::new();
    chain.retain(|(_, _, g)| {
        let new = !seen.contains(g);
        seen.push(*g);
        new
    });
    chain.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    let order: Vec<GroupIx> = chain.iter().map(|(_, _, g)| *g).collect();
    for (i, &g) in order.iter().enumerate() {
        if out.groups[g].fallbacks.is_empty() {
            out.groups[g].fallbacks = order[i + 1..].to_vec();
        }
    }
    let names: Vec<String> = chain.iter().map(|(w, n, _)| format!("{n} ({w})")).collect();
    out.notes.push(format!(
        "auto_fallbacks: by_context: {}",
        names.join(" -> ")
    ));
}

#[cfg(test)]
mod tests;
