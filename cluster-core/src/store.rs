//! The openraft type configuration and its sled-backed storage: the Raft log (flushed before an
//! append or a vote is acknowledged), the state machine (persisted incrementally, one atomic batch
//! per apply call), and snapshots (built from the state, kept in sled, installed atomically).
//!
//! One sled `Db` holds every tree, so the flush that makes a log append durable also makes
//! earlier state-machine writes durable.

// The storage traits fix openraft's (large) StorageError as the error type.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::fmt;
use std::io::Cursor;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::{Arc, RwLock};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage, RaftStateMachine, Snapshot};
use openraft::{
    AnyError, Entry, EntryPayload, LogId, OptionalSend, RaftLogReader, RaftSnapshotBuilder,
    SnapshotMeta, StorageError, StorageIOError, StoredMembership, Vote,
};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::error::CommandError;
use crate::model::{Service, ServiceKey, SyncSettings, VipGroup};
use crate::state::{Applied, ClientRequest, HistoryEntry, State, Touched, HISTORY_LEN};

pub type NodeId = u64;

/// A director as Raft knows it: where its Raft service and its API listen.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectorNode {
    pub raft_addr: String,
    pub api_addr: String,
}

impl fmt::Display for DirectorNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "raft={} api={}", self.raft_addr, self.api_addr)
    }
}

/// What the state machine answers for each log entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Response {
    /// Blank and membership entries.
    None,
    Ok(Applied),
    Err(CommandError),
}

openraft::declare_raft_types!(
    /// Raft types of the director cluster.
    pub TypeConfig:
        D = ClientRequest,
        R = Response,
        NodeId = NodeId,
        Node = DirectorNode,
        Entry = Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

pub type Raft = openraft::Raft<TypeConfig>;
type SErr = StorageError<NodeId>;

fn any<E: std::error::Error + 'static>(e: E) -> AnyError {
    AnyError::new(&e)
}

fn index_key(i: u64) -> [u8; 8] {
    i.to_be_bytes()
}

fn enc<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("store types serialise")
}

/// Flushes the whole database off the async runtime (sled #1308: avoid flush_async).
async fn flush(db: &sled::Db) -> Result<(), sled::Error> {
    let db = db.clone();
    tokio::task::spawn_blocking(move || db.flush().map(|_| ()))
        .await
        .expect("flush task")
}

/// Opens (or creates) the sled database under `dir` and returns the two openraft stores.
pub fn open(dir: &Path) -> std::io::Result<(LogStore, StateMachineStore)> {
    let ctx = |e: sled::Error| std::io::Error::other(format!("{}: {e}", dir.display()));
    let db = sled::Config::new()
        .path(dir.join("raft.sled"))
        // Durability comes from explicit flushes; the background flusher only adds fsyncs.
        .flush_every_ms(None)
        .open()
        .map_err(ctx)?;
    let log = LogStore {
        db: db.clone(),
        log: db.open_tree("log").map_err(ctx)?,
        meta: db.open_tree("meta").map_err(ctx)?,
    };
    let sm = StateMachineStore::load(db).map_err(ctx)?;
    Ok((log, sm))
}

// ---------------------------------------------------------------------------------------------
// Log store

/// The Raft log and vote in sled.
#[derive(Clone)]
pub struct LogStore {
    db: sled::Db,
    log: sled::Tree,
    meta: sled::Tree,
}

impl LogStore {
    /// The commit index openraft last saved (`save_committed`, just before it applies up to it);
    /// `None` before the first commit or when it cannot be read. For metrics: openraft 0.9's
    /// `RaftMetrics` has no commit index.
    pub fn committed_index(&self) -> Option<u64> {
        self.get_meta::<Option<LogId<NodeId>>>("committed")
            .ok()
            .flatten()
            .flatten()
            .map(|l| l.index)
    }

    fn get_meta<T: for<'de> Deserialize<'de>>(&self, key: &str) -> Result<Option<T>, SErr> {
        match self
            .meta
            .get(key)
            .map_err(|e| StorageIOError::read(any(e)))?
        {
            None => Ok(None),
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(|e| StorageIOError::read(any(e)).into()),
        }
    }

    fn last_purged(&self) -> Result<Option<LogId<NodeId>>, SErr> {
        self.get_meta("last_purged")
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + fmt::Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, SErr> {
        let start = match range.start_bound() {
            Bound::Included(i) => *i,
            Bound::Excluded(i) => i + 1,
            Bound::Unbounded => 0,
        };
        let iter = match range.end_bound() {
            Bound::Included(i) => self.log.range(index_key(start)..=index_key(*i)),
            Bound::Excluded(i) => self.log.range(index_key(start)..index_key(*i)),
            Bound::Unbounded => self.log.range(index_key(start)..),
        };
        let mut out = Vec::new();
        for kv in iter {
            let (_, v) = kv.map_err(|e| StorageIOError::read_logs(any(e)))?;
            let entry: Entry<TypeConfig> =
                serde_json::from_slice(&v).map_err(|e| StorageIOError::read_logs(any(e)))?;
            out.push(entry);
        }
        Ok(out)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, SErr> {
        let last_purged = self.last_purged()?;
        let last = match self
            .log
            .last()
            .map_err(|e| StorageIOError::read_logs(any(e)))?
        {
            Some((_, v)) => {
                let e: Entry<TypeConfig> =
                    serde_json::from_slice(&v).map_err(|e| StorageIOError::read_logs(any(e)))?;
                Some(e.log_id)
            }
            None => last_purged,
        };
        Ok(LogState {
            last_purged_log_id: last_purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), SErr> {
        self.meta
            .insert("vote", enc(vote))
            .map_err(|e| StorageIOError::write_vote(any(e)))?;
        flush(&self.db)
            .await
            .map_err(|e| StorageIOError::write_vote(any(e)))?;
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, SErr> {
        self.get_meta("vote")
    }

    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> Result<(), SErr> {
        // Not flushed: losing it only means re-applying from the last applied entry.
        self.meta
            .insert("committed", enc(&committed))
            .map_err(|e| StorageIOError::write(any(e)))?;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, SErr> {
        Ok(self
            .get_meta::<Option<LogId<NodeId>>>("committed")?
            .flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), SErr>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = sled::Batch::default();
        for e in entries {
            batch.insert(&index_key(e.log_id.index), enc(&e));
        }
        self.log
            .apply_batch(batch)
            .map_err(|e| StorageIOError::write_logs(any(e)))?;
        // Acknowledge only once the entries are on disk.
        let res = flush(&self.db)
            .await
            .map_err(|e| std::io::Error::other(e.to_string()));
        let failed = res.as_ref().err().map(|e| e.to_string());
        callback.log_io_completed(res);
        if let Some(msg) = failed {
            return Err(StorageIOError::write_logs(AnyError::error(msg)).into());
        }
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), SErr> {
        let mut batch = sled::Batch::default();
        for kv in self.log.range(index_key(log_id.index)..) {
            let (k, _) = kv.map_err(|e| StorageIOError::write_logs(any(e)))?;
            batch.remove(k);
        }
        self.log
            .apply_batch(batch)
            .map_err(|e| StorageIOError::write_logs(any(e)))?;
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), SErr> {
        // Record the purge point first: a crash in between leaves extra entries, never a gap.
        self.meta
            .insert("last_purged", enc(&log_id))
            .map_err(|e| StorageIOError::write_logs(any(e)))?;
        let mut batch = sled::Batch::default();
        for kv in self.log.range(..=index_key(log_id.index)) {
            let (k, _) = kv.map_err(|e| StorageIOError::write_logs(any(e)))?;
            batch.remove(k);
        }
        self.log
            .apply_batch(batch)
            .map_err(|e| StorageIOError::write_logs(any(e)))?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// State machine

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct SmMeta {
    revision: u64,
    last_applied: Option<LogId<NodeId>>,
    last_membership: StoredMembership<NodeId, DirectorNode>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Globals {
    vip_groups: Vec<VipGroup>,
    sync: Option<SyncSettings>,
}

/// Snapshot contents: the whole state plus Raft's bookkeeping.
#[derive(Serialize, Deserialize)]
struct SnapshotPayload {
    meta: SmMeta,
    state: State,
}

#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta<NodeId, DirectorNode>,
    data: Vec<u8>,
}

const SVC_PREFIX: &[u8] = b"svc/";
const HIST_PREFIX: &[u8] = b"hist/";

fn svc_key(k: &ServiceKey) -> Vec<u8> {
    [SVC_PREFIX, k.to_string().as_bytes()].concat()
}

fn hist_key(rev: u64) -> Vec<u8> {
    [HIST_PREFIX, &rev.to_be_bytes()[..]].concat()
}

/// Read side of the state machine, shared with the API.
#[derive(Clone)]
pub struct StateHandle {
    state: Arc<RwLock<State>>,
    events: broadcast::Sender<HistoryEntry>,
}

impl StateHandle {
    /// Runs `f` on the current state.
    pub fn read<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        f(&self.state.read().expect("state lock"))
    }

    /// Changes as they are applied on this node.
    pub fn subscribe(&self) -> broadcast::Receiver<HistoryEntry> {
        self.events.subscribe()
    }
}

/// The state machine: in memory for reads, in sled for restarts.
pub struct StateMachineStore {
    db: sled::Db,
    sm: sled::Tree,
    snap: sled::Tree,
    meta: SmMeta,
    handle: StateHandle,
    snapshot_seq: u64,
}

impl StateMachineStore {
    fn load(db: sled::Db) -> Result<Self, sled::Error> {
        let sm = db.open_tree("sm")?;
        let snap = db.open_tree("snapshot")?;
        let bad = |what: &str, e: serde_json::Error| {
            sled::Error::Unsupported(format!("corrupt state machine {what}: {e}"))
        };
        let meta: SmMeta = match sm.get("meta")? {
            Some(v) => serde_json::from_slice(&v).map_err(|e| bad("meta", e))?,
            None => SmMeta::default(),
        };
        let globals: Globals = match sm.get("globals")? {
            Some(v) => serde_json::from_slice(&v).map_err(|e| bad("globals", e))?,
            None => Globals::default(),
        };
        let mut state = State {
            revision: meta.revision,
            ..Default::default()
        };
        for kv in sm.scan_prefix(SVC_PREFIX) {
            let (_, v) = kv?;
            let s: Service = serde_json::from_slice(&v).map_err(|e| bad("service", e))?;
            state.config.services.insert(s.key, s);
        }
        for kv in sm.scan_prefix(HIST_PREFIX) {
            let (_, v) = kv?;
            state
                .history
                .push_back(serde_json::from_slice(&v).map_err(|e| bad("history", e))?);
        }
        state.config.vip_groups = globals.vip_groups;
        state.config.sync = globals.sync;
        let (events, _) = broadcast::channel(4096);
        Ok(StateMachineStore {
            db,
            sm,
            snap,
            meta,
            handle: StateHandle {
                state: Arc::new(RwLock::new(state)),
                events,
            },
            snapshot_seq: 0,
        })
    }

    pub fn handle(&self) -> StateHandle {
        self.handle.clone()
    }

    fn persist(batch: &mut sled::Batch, st: &State, touched: &Touched) {
        for k in &touched.services {
            match st.config.services.get(k) {
                Some(s) => batch.insert(svc_key(k), enc(s)),
                None => batch.remove(svc_key(k)),
            }
        }
        if touched.globals {
            batch.insert(
                "globals",
                enc(&Globals {
                    vip_groups: st.config.vip_groups.clone(),
                    sync: st.config.sync.clone(),
                }),
            );
        }
    }

    /// Replaces the persisted state wholesale (snapshot install).
    fn rewrite(&self, st: &State) -> Result<(), SErr> {
        let mut batch = sled::Batch::default();
        for kv in self.sm.iter() {
            let (k, _) = kv.map_err(|e| StorageIOError::write_state_machine(any(e)))?;
            batch.remove(k);
        }
        Self::persist(
            &mut batch,
            st,
            &Touched {
                services: st.config.services.keys().copied().collect(),
                globals: true,
            },
        );
        for h in &st.history {
            batch.insert(hist_key(h.revision), enc(h));
        }
        batch.insert("meta", enc(&self.meta));
        self.sm
            .apply_batch(batch)
            .map_err(|e| StorageIOError::write_state_machine(any(e)))?;
        Ok(())
    }

    fn payload(&self) -> SnapshotPayload {
        SnapshotPayload {
            meta: self.meta.clone(),
            state: self.handle.read(|s| s.clone()),
        }
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = SnapshotBuilderHandle;

    async fn applied_state(
        &mut self,
    ) -> Result<
        (
            Option<LogId<NodeId>>,
            StoredMembership<NodeId, DirectorNode>,
        ),
        SErr,
    > {
        Ok((self.meta.last_applied, self.meta.last_membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, SErr>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut out = Vec::new();
        let mut batch = sled::Batch::default();
        let mut events = Vec::new();
        {
            let mut st = self.handle.state.write().expect("state lock");
            for entry in entries {
                self.meta.last_applied = Some(entry.log_id);
                let resp = match entry.payload {
                    EntryPayload::Blank => Response::None,
                    EntryPayload::Membership(m) => {
                        self.meta.last_membership = StoredMembership::new(Some(entry.log_id), m);
                        Response::None
                    }
                    EntryPayload::Normal(req) => match st.apply(&req) {
                        Ok((applied, touched)) => {
                            if !applied.changes.is_empty() {
                                Self::persist(&mut batch, &st, &touched);
                                let h = st.history.back().expect("history entry").clone();
                                batch.insert(hist_key(h.revision), enc(&h));
                                if h.revision > HISTORY_LEN as u64 {
                                    batch.remove(hist_key(h.revision - HISTORY_LEN as u64));
                                }
                                events.push(h);
                            }
                            Response::Ok(applied)
                        }
                        Err(e) => Response::Err(e),
                    },
                };
                out.push(resp);
            }
            self.meta.revision = st.revision;
        }
        batch.insert("meta", enc(&self.meta));
        self.sm
            .apply_batch(batch)
            .map_err(|e| StorageIOError::write_state_machine(any(e)))?;
        for e in events {
            // No subscribers is fine.
            let _ = self.handle.events.send(e);
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.snapshot_seq += 1;
        SnapshotBuilderHandle {
            db: self.db.clone(),
            snap: self.snap.clone(),
            payload: Some(self.payload()),
            seq: self.snapshot_seq,
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, SErr> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, DirectorNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), SErr> {
        let data = snapshot.into_inner();
        let payload: SnapshotPayload = serde_json::from_slice(&data)
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), any(e)))?;
        let old_rev = self.handle.read(|s| s.revision);
        self.meta = SmMeta {
            revision: payload.state.revision,
            last_applied: meta.last_log_id,
            last_membership: meta.last_membership.clone(),
        };
        self.rewrite(&payload.state)?;
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data,
        };
        self.snap
            .insert("current", enc(&stored))
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), any(e)))?;
        flush(&self.db)
            .await
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), any(e)))?;
        let newer: Vec<HistoryEntry> = payload
            .state
            .history
            .iter()
            .filter(|h| h.revision > old_rev)
            .cloned()
            .collect();
        *self.handle.state.write().expect("state lock") = payload.state;
        for h in newer {
            let _ = self.handle.events.send(h);
        }
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, SErr> {
        let Some(v) = self
            .snap
            .get("current")
            .map_err(|e| StorageIOError::read_snapshot(None, any(e)))?
        else {
            return Ok(None);
        };
        let s: StoredSnapshot =
            serde_json::from_slice(&v).map_err(|e| StorageIOError::read_snapshot(None, any(e)))?;
        Ok(Some(Snapshot {
            meta: s.meta,
            snapshot: Box::new(Cursor::new(s.data)),
        }))
    }
}

/// Builds a snapshot from a copy of the state taken when openraft asked for a builder, so applies
/// continue while it is written.
pub struct SnapshotBuilderHandle {
    db: sled::Db,
    snap: sled::Tree,
    payload: Option<SnapshotPayload>,
    seq: u64,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilderHandle {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, SErr> {
        let payload = self.payload.take().expect("snapshot built once");
        let data = enc(&payload);
        let last = payload.meta.last_applied;
        let snapshot_id = match last {
            Some(l) => format!("{}-{}-{}", l.leader_id, l.index, self.seq),
            None => format!("none-{}", self.seq),
        };
        let meta = SnapshotMeta {
            last_log_id: last,
            last_membership: payload.meta.last_membership.clone(),
            snapshot_id,
        };
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data: data.clone(),
        };
        self.snap
            .insert("current", enc(&stored))
            .map_err(|e| StorageIOError::write_snapshot(None, any(e)))?;
        // The log is purged up to this snapshot next: make the state and snapshot durable first.
        flush(&self.db)
            .await
            .map_err(|e| StorageIOError::write_snapshot(None, any(e)))?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

/// Membership as a plain map, for status output.
pub fn members(
    m: &StoredMembership<NodeId, DirectorNode>,
) -> BTreeMap<NodeId, (DirectorNode, bool)> {
    let voters: Vec<NodeId> = m.membership().voter_ids().collect();
    m.nodes()
        .map(|(id, n)| (*id, (n.clone(), voters.contains(id))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Config, RealServer, Service};
    use crate::state::Command;
    use openraft::testing::{StoreBuilder, Suite};
    use openraft::{CommittedLeaderId, Membership};

    struct Builder;

    impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, tempfile::TempDir> for Builder {
        async fn build(
            &self,
        ) -> Result<(tempfile::TempDir, LogStore, StateMachineStore), StorageError<NodeId>>
        {
            let dir = tempfile::tempdir().expect("tempdir");
            let (log, sm) = open(dir.path()).expect("open store");
            Ok((dir, log, sm))
        }
    }

    /// openraft's own conformance suite for log and state-machine storage.
    #[test]
    fn openraft_storage_suite() {
        Suite::test_all(Builder).unwrap();
    }

    /// sled releases its file lock from a background thread after the last handle drops.
    fn reopen(dir: &Path) -> (LogStore, StateMachineStore) {
        for _ in 0..100 {
            if let Ok(s) = open(dir) {
                return s;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        open(dir).unwrap()
    }

    fn entry(index: u64, payload: EntryPayload<TypeConfig>) -> Entry<TypeConfig> {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
            payload,
        }
    }

    fn write(index: u64, command: Command) -> Entry<TypeConfig> {
        entry(
            index,
            EntryPayload::Normal(ClientRequest {
                principal: "t".into(),
                time_ms: index,
                command,
                expected_revision: None,
            }),
        )
    }

    #[tokio::test]
    async fn state_machine_survives_reopen_and_snapshot_install() {
        let dir = tempfile::tempdir().unwrap();
        let key: ServiceKey = "tcp/10.0.0.1:80".parse().unwrap();
        let mut svc = Service::new(key);
        svc.reals
            .push(RealServer::new("10.0.1.1".parse().unwrap(), 80));
        let snapshot = {
            let (_log, mut sm) = open(dir.path()).unwrap();
            let members = Membership::new(
                vec![std::collections::BTreeSet::from([1])],
                std::collections::BTreeMap::from([(1, DirectorNode::default())]),
            );
            let out = sm
                .apply(vec![
                    entry(1, EntryPayload::Membership(members)),
                    write(2, Command::AddService(svc.clone())),
                    write(3, Command::DeleteService("udp/1.1.1.1:53".parse().unwrap())),
                    write(4, Command::Apply(Config::default())),
                    write(5, Command::AddService(svc.clone())),
                ])
                .await
                .unwrap();
            assert!(matches!(out[2], Response::Err(_)));
            let mut b = sm.get_snapshot_builder().await;
            b.build_snapshot().await.unwrap()
        };
        // Reopen: the state is exactly as applied (the apply after the service was removed by
        // the whole-config Apply is there; nothing stale from the same batch survives).
        let (_log, mut sm) = reopen(dir.path());
        let (applied, membership) = sm.applied_state().await.unwrap();
        assert_eq!(applied.unwrap().index, 5);
        assert_eq!(
            membership.membership().voter_ids().collect::<Vec<_>>(),
            vec![1]
        );
        let st = sm.handle().read(|s| s.clone());
        assert_eq!(st.revision, 3);
        assert_eq!(st.config.services[&key], svc);
        assert_eq!(st.history.len(), 3);
        drop(sm);

        // Install the snapshot into a fresh store.
        let dir2 = tempfile::tempdir().unwrap();
        let (log2, mut sm2) = open(dir2.path()).unwrap();
        let mut events = sm2.handle().subscribe();
        sm2.install_snapshot(&snapshot.meta, snapshot.snapshot)
            .await
            .unwrap();
        assert_eq!(sm2.handle().read(|s| s.clone()), st);
        assert_eq!(events.try_recv().unwrap().revision, 1);
        drop((log2, sm2));
        let (_log2, sm2) = reopen(dir2.path());
        assert_eq!(sm2.handle().read(|s| s.clone()), st);
    }
}
