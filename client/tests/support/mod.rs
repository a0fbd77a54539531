//! An in-process cluster for the library's tests: a real controller and real engines as
//! threads of the test, over real ZeroMQ sockets on 127.0.0.1.

#![allow(dead_code)]

use client::Client;
use controller::{Controller, ControllerConfig};
use engine::{Engine, EngineOptions, ScriptOptions};
use protocol::{ConnectionInfo, HeartbeatConfig};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub struct Cluster {
    pub client_info: ConnectionInfo,
    pub engine_info: ConnectionInfo,
    stop: Arc<AtomicBool>,
    controller: Option<JoinHandle<()>>,
    engines: Vec<(Arc<AtomicBool>, JoinHandle<()>)>,
}

impl Cluster {
    /// A controller and `n` engines with default options.
    pub fn start(n: usize) -> Cluster {
        Cluster::start_scripted(n, ScriptOptions::default())
    }

    /// A controller and `n` engines whose user code runs under `script`.
    pub fn start_scripted(n: usize, script: ScriptOptions) -> Cluster {
        let cfg = ControllerConfig {
            heartbeat: HeartbeatConfig {
                period_ms: 100,
                misses: 20,
            },
            ..Default::default()
        };
        let c = Controller::bind(cfg).expect("bind");
        let client_info = c.client_info().clone();
        let engine_info = c.engine_info().clone();
        let stop = Arc::new(AtomicBool::new(false));
        let s2 = stop.clone();
        let controller = std::thread::spawn(move || c.run(&s2).expect("controller run"));
        let mut cl = Cluster {
            client_info,
            engine_info,
            stop,
            controller: Some(controller),
            engines: vec![],
        };
        for _ in 0..n {
            cl.add_engine_with(EngineOptions {
                script: script.clone(),
                ..EngineOptions::default()
            });
        }
        cl
    }

    /// Registers one more engine, running in a thread of this process.
    pub fn add_engine_with(&mut self, opts: EngineOptions) {
        let e = Engine::connect(&self.engine_info, opts).expect("engine connect");
        let stop = Arc::new(AtomicBool::new(false));
        let s2 = stop.clone();
        let h = std::thread::spawn(move || {
            e.run(&s2).expect("engine run");
        });
        self.engines.push((stop, h));
    }

    /// A client, once every engine started so far has registered.
    pub fn client(&self) -> Client {
        let rc = Client::from_info(self.client_info.clone(), None, Duration::from_secs(5))
            .expect("client");
        let n = self.engines.len();
        wait_for(&format!("{n} engines"), || rc.ids().unwrap().len() == n);
        rc
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for (s, _) in &self.engines {
            s.store(true, Ordering::Relaxed);
        }
        for (_, h) in self.engines.drain(..) {
            let _ = h.join();
        }
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.controller.take() {
            let _ = h.join();
        }
    }
}

/// Polls `cond` until it holds, failing after 20 s.
pub fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::park_timeout(Duration::from_millis(5));
    }
}
