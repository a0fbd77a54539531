//! The end-to-end test harness: real `cluster` processes, real sockets on 127.0.0.1.
//!
//! Every test owns a [`TestEnv`]: a temporary `CLUSTER_DIR` that every child process gets
//! through `Command::env` (the test process's own environment is never changed, so tests
//! run in parallel). Each process the harness runs writes its stdout and stderr to its own
//! files under `<CLUSTER_DIR>/test-logs/`; `cluster start` writes the controller's and the
//! engines' logs under `<CLUSTER_DIR>/profile_<name>/log/`. When a test fails, dropping the
//! `TestEnv` prints every one of those files to stderr.
//!
//! Dropping a `TestEnv` always cleans up: `cluster stop` for every profile a cluster was
//! started for, then SIGKILL for every recorded pid still alive, then SIGKILL for any other
//! process whose environment carries this test's `CLUSTER_DIR` (engines started by
//! `cluster engines`, daemons left behind by a failed start, ...). No process outlives it.
//!
//! Waiting is always polling a condition against a deadline, never sleeping.

#![allow(dead_code)]

pub mod sshd;

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

/// The real binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_cluster");

/// How long any one condition may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Heartbeat flags that make death detection take about a second.
pub const FAST_HB: [&str; 4] = ["--hb-period", "100", "--hb-misses", "10"];

/// `name` on the PATH or in the system directories (where Debian puts sshd).
pub fn find_program(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/usr/bin", "/sbin"].map(PathBuf::from));
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

/// Polls `cond` until it returns `Some`, or fails after `timeout` with `what` and the last
/// state `describe` reports.
pub fn poll<T>(
    what: &str,
    timeout: Duration,
    mut cond: impl FnMut() -> Option<T>,
    mut describe: impl FnMut() -> String,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = cond() {
            return v;
        }
        if Instant::now() > deadline {
            panic!(
                "timed out after {:.0} s waiting for {what}; last seen: {}",
                timeout.as_secs_f64(),
                describe()
            );
        }
        std::thread::park_timeout(Duration::from_millis(10));
    }
}

/// Polls a boolean condition (see [`poll`]).
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool, describe: impl FnMut() -> String) {
    poll(what, DEADLINE, || cond().then_some(()), describe)
}

/// Whether a process exists and is not a zombie. (Daemons are re-parented to pid 1, which
/// may take a while to reap them; an exited-but-unreaped process counts as gone.)
pub fn alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // The state is the first field after the parenthesised command name.
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .unwrap_or("?");
            state != "Z" && state != "X"
        }
        Err(_) => false,
    }
}

/// Sends a signal to one process.
pub fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) with a positive pid we started (or one of its children) and a valid
    // signal number.
    unsafe { libc::kill(pid as libc::pid_t, sig) };
}

/// Waits until `pid` is gone.
pub fn wait_gone(what: &str, pid: u32) {
    wait_until(
        &format!("{what} (pid {pid}) to exit"),
        || !alive(pid),
        || format!("pid {pid} still alive"),
    )
}

/// 64-bit FNV-1a: a checksum to compare large data without printing it.
pub fn fnv1a(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A JSON file's contents (a connection file, say).
pub fn read_json_file(path: &Path) -> serde_json::Value {
    serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap()
}

/// Writes `text` to `path` with file mode `mode` (set explicitly, whatever the umask).
pub fn write_with_mode(path: &Path, text: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let _ = fs::remove_file(path);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
    std::io::Write::write_all(&mut f, text.as_bytes()).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// The mode bits of a file.
pub fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path)
        .unwrap_or_else(|e| panic!("cannot stat {}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// What a finished command did.
#[derive(Debug, Clone)]
pub struct Out {
    pub args: Vec<String>,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    fn describe(&self) -> String {
        format!(
            "`cluster {}` exited with {:?}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.args.join(" "),
            self.code,
            self.stdout,
            self.stderr
        )
    }

    /// Asserts exit code 0 and returns stdout.
    pub fn ok(&self) -> &str {
        assert_eq!(self.code, Some(0), "expected success: {}", self.describe());
        &self.stdout
    }

    /// Asserts success and parses stdout as JSON.
    pub fn json(&self) -> serde_json::Value {
        let out = self.ok();
        serde_json::from_str(out.trim())
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.describe()))
    }

    /// Asserts the exit code is `code`, that stdout is empty and that stderr is one line
    /// starting with `error: `; returns that line.
    pub fn fails(&self, code: i32) -> &str {
        assert_eq!(
            self.code,
            Some(code),
            "expected exit code {code}: {}",
            self.describe()
        );
        assert!(
            self.stdout.trim().is_empty(),
            "a failing command printed on stdout: {}",
            self.describe()
        );
        let err = self.stderr.trim_end();
        assert!(
            err.starts_with("error: "),
            "stderr should start with `error: `: {}",
            self.describe()
        );
        err
    }

    /// Like [`Out::fails`], and also asserts the message is a single line.
    pub fn fails_one_line(&self, code: i32) -> &str {
        let err = self.fails(code);
        assert_eq!(
            err.lines().count(),
            1,
            "expected one line on stderr: {}",
            self.describe()
        );
        err
    }
}

/// A process running in the background; its stdout and stderr go to files.
pub struct Bg {
    pub name: String,
    args: Vec<String>,
    child: Child,
    out_path: PathBuf,
    err_path: PathBuf,
    status: Option<ExitStatus>,
}

impl Bg {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stdout(&self) -> String {
        fs::read_to_string(&self.out_path).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        fs::read_to_string(&self.err_path).unwrap_or_default()
    }

    fn describe(&mut self) -> String {
        let state = match self.try_status() {
            Some(s) => format!("exited with {:?}", s.code()),
            None => "still running".to_string(),
        };
        format!(
            "`cluster {}` {state}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.args.join(" "),
            self.stdout(),
            self.stderr()
        )
    }

    /// The exit status, if the process has exited.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().expect("try_wait");
        }
        self.status
    }

    pub fn running(&mut self) -> bool {
        self.try_status().is_none()
    }

    /// Waits for a stdout line containing `needle`; returns it.
    pub fn wait_stdout_line(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(line) = self.stdout().lines().find(|l| l.contains(needle)) {
                return line.to_string();
            }
            if let Some(s) = self.try_status() {
                // One last look: the line may have been written just before exiting.
                if let Some(line) = self.stdout().lines().find(|l| l.contains(needle)) {
                    return line.to_string();
                }
                let what = self.describe();
                panic!("exited ({s}) before printing {needle:?}: {what}");
            }
            if Instant::now() > deadline {
                let what = self.describe();
                panic!("timed out waiting for {needle:?}: {what}");
            }
            std::thread::park_timeout(Duration::from_millis(10));
        }
    }

    /// Waits for the process to exit (failing the test after `timeout`).
    pub fn wait_exit_within(&mut self, timeout: Duration) -> Out {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(s) = self.try_status() {
                break s;
            }
            if Instant::now() > deadline {
                let what = self.describe();
                panic!("did not exit within {:.0} s: {what}", timeout.as_secs_f64());
            }
            std::thread::park_timeout(Duration::from_millis(10));
        };
        Out {
            args: self.args.clone(),
            code: status.code(),
            stdout: self.stdout(),
            stderr: self.stderr(),
        }
    }

    pub fn wait_exit(&mut self) -> Out {
        self.wait_exit_within(DEADLINE)
    }

    pub fn signal(&self, sig: i32) {
        if self.status.is_none() {
            signal(self.pid(), sig);
        }
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        if self.try_status().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A child whose stdout is a pipe, read line by line by a thread.
pub struct PipedChild {
    pub child: Child,
    lines: mpsc::Receiver<String>,
    pub seen: Vec<String>,
}

impl PipedChild {
    /// Waits for a line containing `needle`, keeping every line read in `seen`.
    pub fn wait_line(&mut self, needle: &str) -> String {
        self.wait_line_where(&format!("containing {needle:?}"), |l| l.contains(needle))
    }

    /// Waits for a line for which `pred` holds (`what` describes it when none comes),
    /// keeping every line read in `seen`.
    pub fn wait_line_where(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(l) = self.seen.iter().find(|l| pred(l)) {
                return l.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(e) => panic!("no line {what} ({e:?}); lines so far: {:#?}", self.seen),
            }
        }
    }

    /// Every remaining line, once the pipe closes (after the process exits).
    pub fn drain(&mut self) -> Vec<String> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => return self.seen.clone(),
                Err(e) => panic!("stdout stayed open ({e:?}); lines: {:#?}", self.seen),
            }
        }
    }
}

impl Drop for PipedChild {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// A cluster started with `cluster start --daemon`.
#[derive(Debug, Clone)]
pub struct Started {
    pub profile: String,
    pub controller_pid: u32,
    /// Engine pids in id order (`engine_pids[i]` is engine `ids[i]`).
    pub ids: Vec<u32>,
    pub engine_pids: Vec<u32>,
}

impl Started {
    /// The pid of engine `id`.
    pub fn engine_pid(&self, id: u32) -> u32 {
        let i = self
            .ids
            .iter()
            .position(|&e| e == id)
            .unwrap_or_else(|| panic!("no engine {id} in {:?}", self.ids));
        self.engine_pids[i]
    }
}

/// One test's world: its own `CLUSTER_DIR` and every process started in it.
pub struct TestEnv {
    dir: tempfile::TempDir,
    seq: AtomicUsize,
    /// Controller and engine pids to kill if still alive at the end.
    pids: Mutex<Vec<u32>>,
    /// Profiles with a cluster started by `start` (any profile with a live controller is
    /// stopped at the end too).
    profiles: Mutex<Vec<String>>,
}

impl Default for TestEnv {
    fn default() -> Self {
        TestEnv::new()
    }
}

impl TestEnv {
    /// Runs `cluster repl` with `script` on its standard input (no terminal); returns (code,
    /// stdout, stderr).
    pub fn repl_stdin(&self, script: &str) -> (i32, String, String) {
        use std::io::Write;
        let mut child = self
            .command(&["repl"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn cluster repl");
        // The REPL may exit before reading (no cluster): a broken pipe is fine here.
        let _ = child.stdin.take().unwrap().write_all(script.as_bytes());
        let out = child.wait_with_output().expect("repl output");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `cluster repl` on a real pseudo-terminal, ANSI escapes stripped, 30 s per expectation;
    /// returns once the banner is out.
    pub fn pty_repl(&self) -> rexpect::session::PtySession {
        let mut cmd = Command::new(BIN);
        cmd.arg("repl")
            .env("CLUSTER_DIR", self.root())
            .env("TERM", "xterm")
            .env_remove("CLUSTER_PROFILE")
            .env_remove("RUST_LOG");
        let mut p = rexpect::session::spawn_with_options(
            cmd,
            rexpect::session::Options::new()
                .timeout_ms(Some(30_000))
                .strip_ansi_escape_codes(true),
        )
        .expect("spawn the REPL on a pty");
        p.exp_string("Ctrl-D to leave").expect("banner");
        p
    }

    pub fn new() -> TestEnv {
        let dir = tempfile::Builder::new()
            .prefix("cluster-e2e-")
            .tempdir()
            .expect("tempdir");
        fs::create_dir_all(dir.path().join("test-logs")).unwrap();
        TestEnv {
            dir,
            seq: AtomicUsize::new(0),
            pids: Mutex::new(Vec::new()),
            profiles: Mutex::new(Vec::new()),
        }
    }

    /// The `CLUSTER_DIR` of this test.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// `<root>/profile_<name>`.
    pub fn profile_dir(&self, profile: &str) -> PathBuf {
        self.root().join(format!("profile_{profile}"))
    }

    pub fn client_file(&self, profile: &str) -> PathBuf {
        self.profile_dir(profile)
            .join("security/controller-client.json")
    }

    pub fn engine_file(&self, profile: &str) -> PathBuf {
        self.profile_dir(profile)
            .join("security/controller-engine.json")
    }

    /// The contents of the profile's client connection file.
    pub fn client_info(&self, profile: &str) -> serde_json::Value {
        read_json_file(&self.client_file(profile))
    }

    /// The contents of the profile's engine connection file.
    pub fn engine_info(&self, profile: &str) -> serde_json::Value {
        read_json_file(&self.engine_file(profile))
    }

    pub fn controller_log(&self, profile: &str) -> PathBuf {
        self.profile_dir(profile).join("log/controller.log")
    }

    /// The controller pid from the profile's pid file, if any.
    pub fn controller_pid(&self, profile: &str) -> Option<u32> {
        // `PID START_TICKS`: the pid is the first word.
        fs::read_to_string(self.profile_dir(profile).join("pid/controller.pid"))
            .ok()
            .and_then(|t| t.split_whitespace().next()?.parse().ok())
    }

    /// Records pids to kill at the end if they are still alive.
    pub fn track(&self, pids: &[u32]) {
        self.pids.lock().unwrap().extend_from_slice(pids);
    }

    /// A `cluster` command with this test's `CLUSTER_DIR` and nothing inherited that could
    /// change its behaviour.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env("CLUSTER_DIR", self.root())
            .env_remove("CLUSTER_PROFILE")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null());
        cmd
    }

    fn log_paths(&self, name: &str) -> (PathBuf, PathBuf) {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let safe: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .take(40)
            .collect();
        let base = self.root().join("test-logs").join(format!("{n:03}-{safe}"));
        (base.with_extension("out"), base.with_extension("err"))
    }

    /// Starts `cluster ARGS` in the background, in directory `cwd` if given.
    pub fn spawn_in(&self, cwd: Option<&Path>, args: &[&str]) -> Bg {
        self.spawn_with(cwd, &[], args)
    }

    /// Starts `cluster ARGS` in the background, in directory `cwd` if given, with extra
    /// environment variables.
    pub fn spawn_with(&self, cwd: Option<&Path>, vars: &[(&str, &str)], args: &[&str]) -> Bg {
        let name = args.join(" ");
        let (out_path, err_path) = self.log_paths(&name);
        let mut cmd = self.command(args);
        if let Some(dir) = cwd {
            cmd.current_dir(dir);
        }
        cmd.envs(vars.iter().copied());
        cmd.stdout(fs::File::create(&out_path).unwrap())
            .stderr(fs::File::create(&err_path).unwrap());
        let child = cmd.spawn().expect("spawn cluster");
        Bg {
            name,
            args: args.iter().map(|s| s.to_string()).collect(),
            child,
            out_path,
            err_path,
            status: None,
        }
    }

    pub fn spawn(&self, args: &[&str]) -> Bg {
        self.spawn_in(None, args)
    }

    /// Starts `cluster ARGS` with stdout as a pipe read line by line; stderr to a file.
    pub fn spawn_piped(&self, args: &[&str]) -> PipedChild {
        let (_, err_path) = self.log_paths(&args.join(" "));
        let mut child = self
            .command(args)
            .stdout(Stdio::piped())
            .stderr(fs::File::create(&err_path).unwrap())
            .spawn()
            .expect("spawn cluster");
        let out = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        PipedChild {
            child,
            lines: rx,
            seen: Vec::new(),
        }
    }

    /// Runs `cluster ARGS` to completion (failing the test if it takes over [`DEADLINE`]).
    /// Its output goes into the returned [`Out`] (and so into any assertion message), not
    /// into the logs printed on failure.
    pub fn run(&self, args: &[&str]) -> Out {
        let mut bg = self.spawn(args);
        let out = bg.wait_exit();
        let _ = fs::remove_file(&bg.out_path);
        let _ = fs::remove_file(&bg.err_path);
        out
    }

    /// Runs `cluster --profile PROFILE ARGS`.
    pub fn run_p(&self, profile: &str, args: &[&str]) -> Out {
        let mut all = vec!["--profile", profile];
        all.extend_from_slice(args);
        self.run(&all)
    }

    /// `cluster --profile PROFILE ids`, parsed.
    pub fn ids(&self, profile: &str) -> Vec<u32> {
        serde_json::from_value(self.run_p(profile, &["ids"]).json()).expect("ids are a list")
    }

    /// `cluster start -n N --daemon` with fast heartbeats and `extra` flags; records the
    /// controller and engine pids for the cleanup.
    pub fn start(&self, profile: &str, n: usize, extra: &[&str]) -> Started {
        self.start_hb(profile, n, &FAST_HB, extra)
    }

    /// [`TestEnv::start`] with the heartbeat flags `hb`.
    pub fn start_hb(&self, profile: &str, n: usize, hb: &[&str], extra: &[&str]) -> Started {
        let n_text = n.to_string();
        let mut args = vec!["--profile", profile, "start", "-n", &n_text, "--daemon"];
        args.extend_from_slice(hb);
        args.extend_from_slice(extra);
        self.profiles.lock().unwrap().push(profile.to_string());
        let out = self.run(&args);
        if let Some(pid) = self.controller_pid(profile) {
            self.track(&[pid]);
        }
        out.ok();
        let controller_pid = self
            .controller_pid(profile)
            .expect("a started cluster has a controller pid file");
        let ids = self.ids(profile);
        let engine_pids: Vec<u32> = if n == 0 {
            vec![]
        } else {
            serde_json::from_value(self.run_p(profile, &["apply", "getpid"]).json()).expect("pids")
        };
        self.track(&engine_pids);
        Started {
            profile: profile.to_string(),
            controller_pid,
            ids,
            engine_pids,
        }
    }

    /// Every log file of this test (stdout and stderr of background processes, the logs of
    /// `cluster start`), for a failure report.
    fn log_files(&self) -> Vec<PathBuf> {
        fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
            let Ok(entries) = fs::read_dir(dir) else {
                return;
            };
            let mut entries: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
            entries.sort();
            for p in entries {
                if p.is_dir() {
                    walk(&p, out);
                } else if matches!(
                    p.extension().and_then(|e| e.to_str()),
                    Some("log" | "out" | "err")
                ) {
                    out.push(p);
                }
            }
        }
        let mut out = Vec::new();
        walk(self.root(), &mut out);
        out
    }

    fn dump_logs(&self) {
        eprintln!(
            "\n===== logs of the failed test (CLUSTER_DIR={}) =====",
            self.root().display()
        );
        for path in self.log_files() {
            let mut text = String::new();
            if let Ok(mut f) = fs::File::open(&path) {
                let _ = f.read_to_string(&mut text);
            }
            if text.trim().is_empty() {
                continue;
            }
            eprintln!("----- {} -----\n{}", path.display(), text.trim_end());
        }
        eprintln!("===== end of logs =====");
    }

    /// Live processes of this test whose command line has `arg` as one of its words.
    pub fn processes_with_arg(&self, arg: &str) -> Vec<u32> {
        self.our_processes()
            .into_iter()
            .filter(|pid| {
                fs::read(format!("/proc/{pid}/cmdline"))
                    .map(|c| c.split(|&b| b == 0).any(|a| a == arg.as_bytes()))
                    .unwrap_or(false)
            })
            .collect()
    }

    /// Live processes whose environment carries this test's `CLUSTER_DIR`.
    pub fn our_processes(&self) -> Vec<u32> {
        let needle = format!("CLUSTER_DIR={}", self.root().display());
        let me = std::process::id();
        let Ok(entries) = fs::read_dir("/proc") else {
            return vec![];
        };
        entries
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter(|&pid| pid != me)
            .filter(|pid| {
                fs::read(format!("/proc/{pid}/environ"))
                    .map(|env| env.split(|&b| b == 0).any(|kv| kv == needle.as_bytes()))
                    .unwrap_or(false)
            })
            .filter(|&pid| alive(pid))
            .collect()
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.dump_logs();
        }
        // `cluster stop` for every profile with a live controller (started by `start`, by
        // a foreground `cluster start`, or by `cluster controller`), all at once.
        let mut profiles =
            std::mem::take(&mut *self.profiles.lock().unwrap_or_else(|e| e.into_inner()));
        if let Ok(all) = fs::read_dir(self.root()) {
            for entry in all.filter_map(Result::ok) {
                let name = entry.file_name();
                if let Some(p) = name.to_str().and_then(|n| n.strip_prefix("profile_")) {
                    profiles.push(p.to_string());
                }
            }
        }
        profiles.sort();
        profiles.dedup();
        let mut stops: Vec<Bg> = profiles
            .iter()
            .filter(|p| self.controller_pid(p).is_some_and(alive))
            .map(|p| self.spawn(&["--profile", p, "stop"]))
            .collect();
        let deadline = Instant::now() + DEADLINE;
        while stops.iter_mut().any(Bg::running) && Instant::now() < deadline {
            std::thread::park_timeout(Duration::from_millis(10));
        }
        let pids = std::mem::take(&mut *self.pids.lock().unwrap_or_else(|e| e.into_inner()));
        for pid in pids.into_iter().chain(self.our_processes()) {
            if alive(pid) {
                signal(pid, libc::SIGKILL);
            }
        }
    }
}
