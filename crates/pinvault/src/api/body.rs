//! The request body as the handlers read it: within a time limit from the
//! request's headers, and telling the response whether it was read to its end.

use std::future::Future as _;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use hyper::body::{Frame, SizeHint};

/// A request body that must arrive within a time limit (a client trickling a
/// body in holds a connection and a task), and that sets its flag once read to
/// its end.
pub struct Tracked {
    inner: Body,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    done: Arc<AtomicBool>,
}

impl Tracked {
    /// The body, and the flag that says it was read to its end.
    pub fn new(inner: Body, limit: Option<Duration>) -> (Self, Arc<AtomicBool>) {
        let done = Arc::new(AtomicBool::new(false));
        let body = Tracked {
            inner,
            deadline: limit.map(|l| Box::pin(tokio::time::sleep(l))),
            done: done.clone(),
        };
        (body, done)
    }
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        let frame = Pin::new(&mut this.inner).poll_frame(cx);
        match &frame {
            Poll::Pending => {
                if let Some(deadline) = this.deadline.as_mut() {
                    if deadline.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(Some(Err(axum::Error::new(
                            "the request body did not arrive in time",
                        ))));
                    }
                }
            }
            Poll::Ready(None) => this.done.store(true, Ordering::Release),
            Poll::Ready(Some(Ok(_))) if this.inner.is_end_stream() => {
                this.done.store(true, Ordering::Release);
            }
            Poll::Ready(Some(_)) => {}
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
