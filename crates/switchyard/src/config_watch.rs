//! Changes in the config file's directory that can concern the config file.
//!
//! The directory is watched, not the file: editors replace files, and a Kubernetes ConfigMap
//! volume swaps a `..data` symlink, neither of which a watch on the old inode sees. The same
//! directory usually holds the usage database, its spool and often the logs (the data directory
//! defaults to the config file's), written on every request. On Linux the watch asks the kernel
//! only for the events that end a change (a file closed after writing, created, moved, deleted,
//! its attributes changed), not for every write, so those files wake nothing while they stay
//! open; elsewhere `notify` reports every event. Either way, only events naming the config file
//! or a ConfigMap entry (see [`concerns_config`]) come out.

use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::pin::Pin;

use futures::{Stream, StreamExt};

/// A stream that yields once per batch of events that may have changed the file.
pub(crate) type Changes = Pin<Box<dyn Stream<Item = ()> + Send>>;

/// Whether a change to the entry `entry` of the config file's directory can change the config
/// file `name`: the file itself (written in place, or replaced by a rename), or a Kubernetes
/// ConfigMap volume's `..data` symlink and `..<timestamp>` directories, through which the file's
/// name resolves. An event that names no entry is taken to concern it.
pub(crate) fn concerns_config(entry: Option<&OsStr>, name: Option<&OsStr>) -> bool {
    match entry {
        None => true,
        Some(e) => Some(e) == name || e.as_encoded_bytes().starts_with(b".."),
    }
}

/// The changes of `dir` that concern the file `name` in it, for as long as the stream lives.
pub(crate) fn changes(dir: &Path, name: Option<OsString>) -> std::io::Result<Changes> {
    imp::changes(dir, name)
}

#[cfg(target_os = "linux")]
mod imp {
    use super::*;
    use inotify::{Inotify, WatchMask};

    pub(super) fn changes(dir: &Path, name: Option<OsString>) -> std::io::Result<Changes> {
        let inotify = Inotify::init()?;
        inotify.watches().add(
            dir,
            WatchMask::CLOSE_WRITE
                | WatchMask::CREATE
                | WatchMask::MOVED_TO
                | WatchMask::MOVED_FROM
                | WatchMask::DELETE
                | WatchMask::ATTRIB
                | WatchMask::DELETE_SELF
                | WatchMask::MOVE_SELF,
        )?;
        let events = inotify.into_event_stream([0u8; 4096])?;
        Ok(Box::pin(events.filter_map(move |e| {
            let hit = match e {
                Ok(e) => concerns_config(e.name.as_deref(), name.as_deref()),
                // The queue overflowed or the read failed: look at the file all the same.
                Err(_) => true,
            };
            std::future::ready(hit.then_some(()))
        })))
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use super::*;
    use notify::Watcher;
    use std::path::PathBuf;

    pub(super) fn changes(dir: &Path, name: Option<OsString>) -> std::io::Result<Changes> {
        let (tx, rx) = tokio::sync::mpsc::channel::<()>(1);
        let mut watcher = notify::recommended_watcher(move |e: notify::Result<notify::Event>| {
            let hit = e.is_ok_and(|e| {
                !e.kind.is_access()
                    && (e.paths.is_empty()
                        || e.paths
                            .iter()
                            .any(|p: &PathBuf| concerns_config(p.file_name(), name.as_deref())))
            });
            if hit {
                let _ = tx.try_send(());
            }
        })
        .map_err(std::io::Error::other)?;
        watcher
            .watch(dir, notify::RecursiveMode::NonRecursive)
            .map_err(std::io::Error::other)?;
        // The watcher lives as long as the stream.
        Ok(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx).map(move |x| {
                let _ = &watcher;
                x
            }),
        ))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::time::Duration;

    #[test]
    fn only_the_config_file_and_configmap_entries_concern_it() {
        let name = Some(OsStr::new("config.yaml"));
        let one = |e: &str| concerns_config(Some(OsStr::new(e)), name);
        assert!(one("config.yaml"));
        assert!(one("..data"));
        assert!(one("..data_tmp"));
        assert!(one("..2026_12_06_19_00_00.123"));
        assert!(!one("switchyard-usage.db-wal"));
        assert!(!one("config.yaml.swp"));
        assert!(!one(".config.yaml.swp"));
        assert!(concerns_config(None, name));
    }

    #[tokio::test]
    async fn the_files_own_change_comes_out_and_writes_beside_it_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.yaml");
        std::fs::write(&config, "a: 1\n").unwrap();
        let mut wal = std::fs::File::create(dir.path().join("usage.db-wal")).unwrap();
        let mut changes = changes(dir.path(), Some("config.yaml".into())).unwrap();
        let mut scribble = |n: usize| {
            for _ in 0..n {
                wal.write_all(b"a record\n").unwrap();
            }
            wal.flush().unwrap();
        };
        scribble(100);
        std::fs::write(&config, "a: 2\n").unwrap();
        let first = tokio::time::timeout(Duration::from_secs(20), changes.next()).await;
        assert!(matches!(first, Ok(Some(()))));
        // Drain what the config write itself caused (a write in place can be several events).
        while tokio::time::timeout(Duration::from_millis(200), changes.next())
            .await
            .is_ok()
        {}
        scribble(100);
        let after = tokio::time::timeout(Duration::from_millis(500), changes.next()).await;
        assert!(
            after.is_err(),
            "writes to another file came out as a change"
        );
    }
}
