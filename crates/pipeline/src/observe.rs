//! Observers: how a long call reports progress and is stopped without the library printing
//! anything (argmin's `Observe`). A call hands each event to its observer, which answers
//! [`Control::Continue`] or [`Control::Stop`]; a stopped call returns what it finished.
//!
//! `()` observes nothing, and any `FnMut(&E) -> Control` closure is an observer:
//!
//! ```
//! use scorelab_pipeline::observe::{Control, Observe};
//! let mut seen = 0;
//! let mut count = |_: &u32| { seen += 1; if seen == 2 { Control::Stop } else { Control::Continue } };
//! assert_eq!(count.observe(&7), Control::Continue);
//! assert_eq!(count.observe(&8), Control::Stop);
//! assert_eq!(().observe(&9u32), Control::Continue);
//! ```

/// An observer's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Go on.
    Continue,
    /// Stop after this unit of work, keeping what is finished.
    Stop,
}

/// Sees events of type `E`.
pub trait Observe<E> {
    /// Sees one event.
    fn observe(&mut self, event: &E) -> Control;
}

impl<E> Observe<E> for () {
    fn observe(&mut self, _: &E) -> Control {
        Control::Continue
    }
}

impl<E, F: FnMut(&E) -> Control> Observe<E> for F {
    fn observe(&mut self, event: &E) -> Control {
        self(event)
    }
}

/// An observer that sees nothing but `flag` (a Ctrl-C handler's), and stops the call once it is
/// set.
///
/// # Examples
/// ```
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use scorelab_pipeline::observe::{stopper, Control, Observe};
/// let flag = AtomicBool::new(false);
/// let mut o = stopper(&flag);
/// assert_eq!(o.observe(&()), Control::Continue);
/// flag.store(true, Ordering::SeqCst);
/// assert_eq!(o.observe(&()), Control::Stop);
/// ```
pub fn stopper<E>(flag: &std::sync::atomic::AtomicBool) -> impl FnMut(&E) -> Control + Send + '_ {
    move |_| {
        if flag.load(std::sync::atomic::Ordering::SeqCst) {
            Control::Stop
        } else {
            Control::Continue
        }
    }
}
