//! Keeps heavy tests of different groups from overlapping inside one test binary.
//!
//! The integration tests used to be one binary per file: cargo ran the binaries one after another,
//! so tests of one file only ever ran beside tests of the same file (failover timing, fixed netns
//! ports, CPU-sensitive release thresholds were tuned for that). Several files now share a binary,
//! whose test threads would mix them. A heavy test takes its group's turn ([`group`], the group
//! being its old file name): tests of one group still run side by side, as before, while a test of
//! another group waits until the running group has no test left. Light tests (no directors, no
//! namespaces) take no turn.

use std::sync::{Condvar, Mutex, MutexGuard};

/// The group whose tests are running, and how many of them.
struct Turn {
    group: Option<&'static str>,
    running: usize,
}

static TURN: Mutex<Turn> = Mutex::new(Turn {
    group: None,
    running: 0,
});
static CHANGED: Condvar = Condvar::new();

fn turn() -> MutexGuard<'static, Turn> {
    // A test that panicked while holding the lock left the counts consistent (they change only
    // in `group` and `Drop`), so a poisoned lock is still good.
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

/// Held by a running heavy test; ends its group's turn when the last one drops it.
#[must_use = "the turn ends when the guard is dropped"]
pub struct GroupTurn {
    group: &'static str,
}

/// Waits until no test of another group runs, then joins `group`'s turn.
pub fn group(group: &'static str) -> GroupTurn {
    let mut t = turn();
    while t.group.is_some_and(|g| g != group) {
        t = CHANGED.wait(t).unwrap_or_else(|e| e.into_inner());
    }
    t.group = Some(group);
    t.running += 1;
    GroupTurn { group }
}

impl Drop for GroupTurn {
    fn drop(&mut self) {
        let mut t = turn();
        debug_assert_eq!(t.group, Some(self.group));
        t.running -= 1;
        if t.running == 0 {
            t.group = None;
            CHANGED.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    /// Two groups of threads: at no moment does a thread of one run beside a thread of the other,
    /// while two threads of the same group do run together.
    #[test]
    fn groups_never_overlap_but_members_do() {
        let inside = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
        let overlap_seen = Arc::new(AtomicUsize::new(0));
        let mut threads = Vec::new();
        for i in 0..6 {
            let (inside, overlap_seen) = (inside.clone(), overlap_seen.clone());
            threads.push(std::thread::spawn(move || {
                let (me, other) = (i % 2, 1 - i % 2);
                let _turn = group(["serial-test-a", "serial-test-b"][me]);
                inside[me].fetch_add(1, Ordering::SeqCst);
                for _ in 0..20 {
                    assert_eq!(inside[other].load(Ordering::SeqCst), 0, "groups overlapped");
                    if inside[me].load(Ordering::SeqCst) > 1 {
                        overlap_seen.fetch_add(1, Ordering::SeqCst);
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
                inside[me].fetch_sub(1, Ordering::SeqCst);
            }));
        }
        for t in threads {
            t.join().unwrap();
        }
        assert!(
            overlap_seen.load(Ordering::SeqCst) > 0,
            "one group never ran two at once"
        );
        assert!(turn().group.is_none());
    }
}
