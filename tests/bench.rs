//! `cluster bench` through the real binary: it runs every measurement on a private cluster
//! and leaves nothing behind, also when interrupted. (Its figures are not asserted: speed
//! is measured by the benchmark, not by tests.)

mod common;

use common::{poll, signal, wait_until, TestEnv, DEADLINE};
use std::fs;
use std::path::{Path, PathBuf};

/// Processes whose environment names `dir` (the benchmark's children inherit its TMPDIR).
fn processes_under(dir: &Path) -> Vec<u32> {
    let needle = format!("TMPDIR={}", dir.display());
    let mut pids = Vec::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(env) = fs::read(entry.path().join("environ")) else {
            continue;
        };
        if env.split(|&b| b == 0).any(|var| var == needle.as_bytes()) && common::alive(pid) {
            pids.push(pid);
        }
    }
    pids
}

/// A TMPDIR for the benchmark inside the test's directory; on drop, fails the test if a
/// process under it is still alive (and kills it).
struct Tmp(PathBuf);

impl Tmp {
    fn new(env: &TestEnv) -> Tmp {
        let dir = env.root().join("tmp");
        fs::create_dir_all(&dir).unwrap();
        Tmp(dir)
    }

    fn entries(&self) -> Vec<String> {
        fs::read_dir(&self.0)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    }

    fn assert_nothing_left(&self) {
        wait_until(
            "the benchmark's processes to exit",
            || processes_under(&self.0).is_empty(),
            || format!("still running: {:?}", processes_under(&self.0)),
        );
        assert!(
            self.entries().is_empty(),
            "left behind: {:?}",
            self.entries()
        );
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        for pid in processes_under(&self.0) {
            signal(pid, libc::SIGKILL);
        }
    }
}

#[test]
fn bench_measures_everything_on_its_own_cluster_and_cleans_up() {
    let env = TestEnv::new();
    let tmp = Tmp::new(&env);
    let tmp_dir = tmp.0.to_str().unwrap().to_string();
    let mut bg = env.spawn_with(
        None,
        &[("TMPDIR", &tmp_dir)],
        &["bench", "-n", "2", "--quick", "--repeats", "1", "--json"],
    );
    let out = bg.wait_exit();
    let report = out.json();
    assert_eq!(report["engines"], 2);
    assert_eq!(report["quick"], true);
    for key in [
        "zmq_roundtrip_us",
        "roundtrip_us",
        "roundtrip_vs_two_zmq",
        "lb_apply_async_tasks_per_s",
        "lb_map_sync_tasks_per_s",
        "direct_map_items_per_s",
        "push_mb_per_s",
        "pull_mb_per_s",
        "pi_samples_per_s_1",
        "pi_samples_per_s_n",
        "pi_speedup",
        "startup_s",
    ] {
        let v = report[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key} missing: {report}"));
        assert!(v > 0.0 && v.is_finite(), "{key} = {v}");
    }
    let rows = report["primality"].as_array().expect("primality rows");
    let verdicts: Vec<(String, bool)> = rows
        .iter()
        .map(|r| (r["n"].to_string(), r["prime"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        verdicts,
        [
            ("112272535095295".to_string(), false),
            ("100109100129100369".to_string(), false),
            ("100109100129101027".to_string(), false),
            ("100109100129100151".to_string(), true),
            ("100109100129162907".to_string(), true),
        ]
    );
    for r in rows {
        for m in [
            "serial_s",
            "naive_split_s",
            "less_naive_s",
            "early_exit_s",
            "miller_rabin_s",
        ] {
            assert!(r[m].as_f64().is_some_and(|t| t > 0.0), "{m} in {r}");
        }
    }
    tmp.assert_nothing_left();
    // The user's own profiles were never touched.
    assert!(!env.profile_dir("default").exists());
    assert!(!env.profile_dir("bench").exists());
}

#[test]
fn an_interrupted_bench_stops_its_cluster() {
    let env = TestEnv::new();
    let tmp = Tmp::new(&env);
    let tmp_dir = tmp.0.to_str().unwrap().to_string();
    let mut bg = env.spawn_with(
        None,
        &[("TMPDIR", &tmp_dir)],
        &["bench", "-n", "2", "--quick", "--repeats", "20"],
    );
    // Wait until its private cluster runs, then Ctrl-C.
    let pid_file = poll(
        "the benchmark's cluster to start",
        DEADLINE,
        || {
            tmp.entries()
                .into_iter()
                .map(|d| tmp.0.join(d).join("profile_bench/pid/controller.pid"))
                .find(|p| p.exists())
        },
        || format!("{:?}", tmp.entries()),
    );
    let controller: u32 = poll(
        "the controller pid",
        DEADLINE,
        || {
            fs::read_to_string(&pid_file)
                .ok()?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        },
        || pid_file.display().to_string(),
    );
    bg.signal(libc::SIGINT);
    let out = bg.wait_exit();
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr
            .contains("interrupted; the benchmark's cluster is stopped"),
        "{}",
        out.stderr
    );
    assert!(!common::alive(controller), "the controller still runs");
    tmp.assert_nothing_left();
}
