//! Reading `/proc` (Linux; elsewhere every reader answers `None`): a process's state and CPU
//! time, and the machine's busy CPU time. Read-only: nothing here signals or changes a
//! process.

/// The fields of `/proc/<pid>/stat` after the command name, starting with the state (field
/// 3); `None` if the process does not exist.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Format: "pid (comm) state ..."; comm may contain spaces and parentheses.
    let (_, rest) = stat.rsplit_once(')')?;
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// The state letter of a process (`R`, `S`, `Z` for an exited process not yet reaped, ...).
pub fn process_state(pid: u32) -> Option<char> {
    stat_fields(pid)?.first()?.chars().next()
}

/// When a process started, in clock ticks since boot (field 22 of `/proc/<pid>/stat`): with
/// the pid, it names one process for good, as a pid alone does not once it is reused.
pub fn process_start_ticks(pid: u32) -> Option<u64> {
    stat_fields(pid)?.get(19)?.parse().ok()
}

/// User plus system clock ticks a process has used (all its threads).
pub fn process_ticks(pid: u32) -> Option<u64> {
    let rest = stat_fields(pid)?;
    // utime and stime are fields 14 and 15; `rest` starts at field 3.
    Some(rest.get(11)?.parse::<u64>().ok()? + rest.get(12)?.parse::<u64>().ok()?)
}

/// Busy clock ticks of all CPUs since boot.
pub fn machine_busy_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let cpu: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...: user, nice, system and steal
    // (time the hypervisor gave to others). Interrupt time is left out: most of it is
    // loopback traffic, which no process is charged for.
    Some(cpu.first()? + cpu.get(1)? + cpu.get(2)? + cpu.get(7).copied().unwrap_or(0))
}

/// Clock ticks per second (the unit of the tick counts above).
pub fn ticks_per_second() -> Option<f64> {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (hz > 0).then_some(hz as f64)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn cpu_time_moves_forward() {
        let me = std::process::id();
        let before = process_ticks(me).expect("our own ticks");
        let machine = machine_busy_ticks().expect("the machine's ticks");
        let t = Instant::now();
        let mut x = 0u64;
        while t.elapsed() < Duration::from_millis(50) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        assert!(process_ticks(me).unwrap() >= before);
        assert!(machine_busy_ticks().unwrap() >= machine);
        assert!(ticks_per_second().is_some());
    }

    #[test]
    fn missing_processes_have_no_figures() {
        assert_eq!(process_ticks(u32::MAX), None);
        assert_eq!(process_state(u32::MAX), None);
        let mine = process_state(std::process::id()).expect("our own state");
        assert!(mine != 'Z', "{mine}");
    }
}
