//! systemd service notifications (sd_notify(3)) for `Type=notify` units: `READY=1` once the
//! service serves, `STATUS=` lines for `systemctl status`, `STOPPING=1` at shutdown, and
//! `WATCHDOG=1` pings when the unit sets `WatchdogSec=`. Every call is a no-op when
//! `NOTIFY_SOCKET` is unset, i.e. when not started by systemd.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sd_notify::NotifyState;

/// Only the first failure is logged: a broken socket would otherwise log on every ping.
static WARNED: AtomicBool = AtomicBool::new(false);

fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        if !WARNED.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                error = %e,
                socket = ?std::env::var_os("NOTIFY_SOCKET"),
                "cannot notify systemd"
            );
        }
    }
}

/// One line: a newline would end the STATUS= assignment and start another one.
fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

/// `READY=1` with a status line: start-up is complete.
pub fn ready(status: &str) {
    let s = one_line(status);
    send(&[NotifyState::Ready, NotifyState::Status(&s)]);
}

/// A new status line for `systemctl status`.
pub fn status(status: &str) {
    let s = one_line(status);
    send(&[NotifyState::Status(&s)]);
}

/// `STOPPING=1` with a status line: shutdown has begun.
pub fn stopping(status: &str) {
    let s = one_line(status);
    send(&[NotifyState::Stopping, NotifyState::Status(&s)]);
}

/// How often to ping the watchdog: half of `WATCHDOG_USEC`, when it is set for this process
/// (`WATCHDOG_PID` unset or ours, so children that inherit the variables do not ping).
pub fn watchdog_period() -> Option<Duration> {
    sd_notify::watchdog_enabled()
        .map(|d| d / 2)
        .filter(|d| !d.is_zero())
}

/// Pings the watchdog every half period from a task on the current tokio runtime, so a runtime
/// that stops running tasks stops the pings and systemd restarts the service. Returns the period,
/// or `None` (and starts nothing) when the unit has no watchdog. Call it once start-up is
/// complete: systemd arms the watchdog at `READY=1`.
pub fn spawn_watchdog() -> Option<Duration> {
    let period = watchdog_period()?;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            send(&[NotifyState::Watchdog]);
        }
    });
    Some(period)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_stays_on_one_line() {
        assert_eq!(one_line("a\nb\r\nc"), "a b  c");
    }
}
