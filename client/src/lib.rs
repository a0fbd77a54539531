//! The client library: connect to a cluster and run work on it, in IPython Parallel's
//! vocabulary.
//!
//! ```no_run
//! use client::{Client, Value};
//! let rc = Client::connect("default")?;
//! let dview = rc.direct_view(client::Targets::All)?;
//! let hits = dview.apply_sync("calculate_pi", vec![Value::Int(1_000_000)])?;
//! let lview = rc.load_balanced_view();
//! let primes = lview.map_sync("check_prime", (0..100).map(Value::Int).collect())?;
//! # Ok::<(), client::ClusterError>(())
//! ```
//!
//! A [`Client`] owns one I/O thread (the only user of its sockets); views and results are
//! handles onto it and may be used from any thread. The library never prints.

mod client;
mod conn;
mod error;
pub mod events;
pub mod failures;
mod report;
mod result;
pub mod shared;
mod view;

pub use client::{Client, DEFAULT_CONNECT_TIMEOUT, DEFAULT_REQUEST_TIMEOUT};
pub use error::{exit_status, profile_exit_status, ClusterError, ErrorGroup, ExitStatus, Failures};
pub use protocol::alloc::keep_large_buffers;
pub use protocol::messages::{EngineInfo, ErrorKind, FunctionInfo, QueueStatus, TaskError};
pub use protocol::shared::{SharedInfo, SharedOp, SharedResult};
pub use protocol::{EngineId, MsgId, Value};
pub use report::engines_table;
pub use result::{AsCompleted, AsyncResult, Item, ItemCursor, Items, Step};
pub use shared::{Counter, Event, Lock, Queue, Semaphore, Subscription, Variable};
pub use view::{partition, DirectView, LoadBalancedView, Targets};
