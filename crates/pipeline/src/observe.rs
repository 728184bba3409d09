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

/// An iterative computation [`execute`] drives: training steps, sampler steps. It takes one step
/// at a time and says what happened; after each, it may do its bookkeeping (evaluate, save, write a
/// snapshot), reporting more to the observer.
pub trait Iterate {
    /// What a step reports.
    type Event;
    /// Whether every step is taken.
    fn done(&self) -> bool;
    /// Takes one step.
    ///
    /// # Errors
    /// The step's, which ends the run.
    fn step(&mut self) -> crate::Result<Self::Event>;
    /// The bookkeeping after a step (nothing by default).
    ///
    /// # Errors
    /// A failed save, which ends the run.
    fn after_step(&mut self, _observer: &mut dyn Observe<Self::Event>) -> crate::Result<Control> {
        Ok(Control::Continue)
    }
}

/// How [`execute`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ran {
    /// Every step was taken.
    Finished,
    /// The observer stopped it; the steps taken are kept.
    Stopped,
}

/// The one driver loop of the workspace (argmin's `Executor`): step, show the step to the
/// observer, do the bookkeeping, and stop before the next step once the observer (or the
/// bookkeeping) asks; a stop asked on the last step lets the run finish. Training
/// ([`crate::train::train`]) and sampling ([`crate::sample::Sampling::run`]) both run on it.
///
/// # Examples
/// ```
/// use scorelab_pipeline::observe::{execute, Control, Iterate, Observe, Ran};
/// struct Count(u32);
/// impl Iterate for Count {
///     type Event = u32;
///     fn done(&self) -> bool { self.0 == 5 }
///     fn step(&mut self) -> scorelab_pipeline::Result<u32> { self.0 += 1; Ok(self.0) }
/// }
/// let mut c = Count(0);
/// assert_eq!(execute(&mut c, &mut ())?, Ran::Finished);
/// let mut c = Count(0);
/// let mut stop_at_2 = |k: &u32| if *k == 2 { Control::Stop } else { Control::Continue };
/// assert_eq!((execute(&mut c, &mut stop_at_2)?, c.0), (Ran::Stopped, 2));
/// # Ok::<(), scorelab_pipeline::PipelineError>(())
/// ```
///
/// # Errors
/// The first error of a step or its bookkeeping.
pub fn execute<I: Iterate + ?Sized>(
    it: &mut I,
    observer: &mut dyn Observe<I::Event>,
) -> crate::Result<Ran> {
    let mut stop = false;
    while !it.done() {
        if stop {
            return Ok(Ran::Stopped);
        }
        let event = it.step()?;
        stop = observer.observe(&event) == Control::Stop;
        stop |= it.after_step(observer)? == Control::Stop;
    }
    Ok(Ran::Finished)
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
