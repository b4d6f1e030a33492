//! A client's request body on its way upstream: it must arrive whole by a deadline (a body
//! trickled in a byte at a time would hold an in-flight slot, and the backend's connection, for
//! as long as the client likes), and past the size limit it is cut off (`Limited`).

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use hyper::body::{Body as _, Frame, Incoming, SizeHint};

use super::timer::{Coarse, Sleep};

/// The client did not send its body by the deadline.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
pub struct BodyTimeout;

/// Why reading a request body failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Timeout(#[from] BodyTimeout),
    #[error(transparent)]
    Client(#[from] hyper::Error),
}

/// A request body that fails with [`BodyTimeout`] once its deadline has passed while it waits
/// for the client. The deadline is set on the worker's timer only the first time the body
/// waits: an empty body, or one already read whole with its head, costs no timer entry.
pub struct Timed {
    inner: Incoming,
    deadline: Instant,
    /// `None` for a body that was over from the start.
    timer: Option<Coarse>,
    sleep: Option<Sleep>,
}

impl Timed {
    pub fn new(inner: Incoming, deadline: Instant, timer: &Coarse) -> Self {
        let timer = (!inner.is_end_stream()).then(|| timer.clone());
        Self {
            inner,
            deadline,
            timer,
            sleep: None,
        }
    }
}

impl hyper::body::Body for Timed {
    type Data = Bytes;
    type Error = ReadError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ReadError>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Pending => {
                // Waiting on the client: the deadline applies.
                if this.sleep.is_none()
                    && let Some(timer) = &this.timer
                {
                    this.sleep = Some(timer.sleep_until(this.deadline));
                }
                if let Some(sleep) = &mut this.sleep
                    && Pin::new(sleep).poll(cx).is_ready()
                {
                    return Poll::Ready(Some(Err(BodyTimeout.into())));
                }
                Poll::Pending
            }
            Poll::Ready(frame) => Poll::Ready(frame.map(|f| f.map_err(ReadError::Client))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Whether an upstream call failed because the client's body missed its deadline.
pub fn timed_out(e: &hyper::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(err) = source {
        if matches!(err.downcast_ref(), Some(ReadError::Timeout(_))) {
            return true;
        }
        source = err.source();
    }
    false
}
