//! Interrupting a sweep: SIGINT (Ctrl-C), SIGTERM and SIGHUP stop it cleanly.
//!
//! Without handlers a signal kills `scalelab run` wherever it is; Ctrl-C also reaches the point's
//! own process (same process group), which the executor would then record as *crashed* had it
//! survived. With [`Interrupt::install`] the first signal only sets a flag: the executor stops the
//! point in flight, records nothing for it (a resume measures it again), the sweep ends, and the
//! command says what finished, how to resume, and exits with 128 + the signal's number. A second
//! signal while stopping exits at once with that code (the point's process dies with it, see
//! `die_with_parent` in the local executor).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use anyhow::Result;

/// The flag a signal sets; cloned into whatever must notice it (the sweep, the executor).
#[derive(Clone, Debug, Default)]
pub struct Interrupt {
    /// The number of the first signal received, 0 while none has come.
    signal: Arc<AtomicUsize>,
    /// Set by the first signal; arms the immediate exit on the second.
    seen: Arc<AtomicBool>,
}

/// A point in flight was stopped by a signal and not recorded; returned as the executor's error so
/// that the sweep ends without counting it.
#[derive(Debug, thiserror::Error)]
#[error("interrupted by {}", signal_name(*signal))]
pub struct Interrupted {
    pub signal: i32,
}

impl Interrupt {
    /// A flag no signal sets (for library callers and tests that drive a sweep themselves).
    pub fn never() -> Interrupt {
        Interrupt::default()
    }

    /// Catch SIGINT, SIGTERM and SIGHUP from now on for the whole process.
    #[cfg(unix)]
    pub fn install() -> Result<Interrupt> {
        use anyhow::Context;
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        use signal_hook::flag;
        let i = Interrupt::default();
        for sig in [SIGINT, SIGTERM, SIGHUP] {
            // The shutdown goes first: on the second signal `seen` is already true.
            flag::register_conditional_shutdown(sig, 128 + sig, Arc::clone(&i.seen))
                .and_then(|_| flag::register_usize(sig, Arc::clone(&i.signal), sig as usize))
                .and_then(|_| flag::register(sig, Arc::clone(&i.seen)))
                .with_context(|| format!("installing a handler for {}", signal_name(sig)))?;
        }
        Ok(i)
    }

    /// Without unix signals there is nothing to catch.
    #[cfg(not(unix))]
    pub fn install() -> Result<Interrupt> {
        Ok(Interrupt::default())
    }

    /// The signal received, if any.
    pub fn signal(&self) -> Option<i32> {
        match self.signal.load(Ordering::SeqCst) {
            0 => None,
            n => i32::try_from(n).ok(),
        }
    }

    /// Act as if `signal` had arrived (what the handlers do; for tests of the sweep).
    pub fn raise(&self, signal: i32) {
        self.signal.store(signal as usize, Ordering::SeqCst);
        self.seen.store(true, Ordering::SeqCst);
    }
}

/// "SIGINT", "SIGTERM", "SIGHUP", or "signal N".
pub fn signal_name(signal: i32) -> String {
    match signal {
        1 => "SIGHUP".into(),
        2 => "SIGINT".into(),
        15 => "SIGTERM".into(),
        n => format!("signal {n}"),
    }
}
