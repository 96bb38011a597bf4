//! `bench compare --live`, the judging: a step's figures, whether it lost and to what (the
//! kernel or the agent; a step short of its asked rate is the sender's), the rate search
//! (doubling, then bisecting, then top speed), the closing verdict and the table's lines.
//! Must never call a step clean that lost a record, a packet or a handshake.
use anyhow::Result;

use super::tcpreplay::Sent;

/// A step whose streams sent less than this share of the asked rate is sender-limited.
const SENDER_SHORT: f64 = 0.9;
/// Agent CPU (% of one core) counted as saturated.
const AGENT_SATURATED: f64 = 95.0;
/// Machine busy (% of all cores) counted as saturated.
const HOST_SATURATED: f64 = 90.0;
/// Bisection stops once the lowest losing rate is within this factor of the highest clean one.
const BISECT_DONE: f64 = 1.15;

/// What a losing step is put down to (a step that only fell short of its rate is the sender's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Limit {
    /// Ring-buffer loss, flow-map full, veth or tcpreplay send drops.
    Kernel,
    /// Handshakes missing with nothing lost below the agent, or the agent's CPU saturated.
    Agent,
}

pub(super) struct Step {
    /// Aggregate Mbit/s asked; `None`: --topspeed.
    pub(super) asked: Option<f64>,
    pub(super) sent: Sent,
    pub(super) ring_lost: u64,
    pub(super) map_full: u64,
    pub(super) veth_drops: u64,
    pub(super) handshakes: u64,
    pub(super) expected: u64,
    pub(super) agent_cpu: f64,
    pub(super) sender_cpu: f64,
    /// The machine while sending, % of all cores: busy, and of that softirq (the veth's
    /// receive path, where the TC/XDP program runs, mostly lands there).
    pub(super) host_busy: f64,
    pub(super) softirq: f64,
}

impl Step {
    fn kernel_loss(&self) -> bool {
        self.ring_lost > 0 || self.map_full > 0 || self.veth_drops > 0 || self.sent.failed > 0
    }

    fn clean(&self) -> bool {
        !self.kernel_loss() && self.handshakes == self.expected
    }

    fn sender_short(&self) -> bool {
        self.asked.is_none_or(|a| self.sent.mbps() < SENDER_SHORT * a)
    }

    /// Why this step lost, if it did.
    fn loss(&self) -> Option<Limit> {
        if self.kernel_loss() {
            Some(Limit::Kernel)
        } else if self.handshakes != self.expected {
            Some(Limit::Agent)
        } else {
            None
        }
    }

    fn verdict(&self) -> String {
        let mut v = match self.loss() {
            None => "ok".to_string(),
            Some(l) => format!("LOSS ({})", describe(l, self)),
        };
        if self.sender_short() && self.asked.is_some() {
            v.push_str(", sender short");
        }
        if self.agent_cpu >= AGENT_SATURATED {
            v.push_str(", agent CPU saturated");
        }
        v
    }
}

fn describe(l: Limit, s: &Step) -> String {
    match l {
        Limit::Kernel => {
            let mut w = Vec::new();
            for (n, what) in [
                (s.ring_lost, "ring buffer full"),
                (s.map_full, "flow map full"),
                (s.veth_drops, "veth drops"),
                (s.sent.failed, "send failures"),
            ] {
                if n > 0 {
                    w.push(format!("{what} {n}"));
                }
            }
            format!("kernel: {}", w.join(", "))
        }
        Limit::Agent => format!("agent: {} handshakes missing", s.expected as i64 - s.handshakes as i64),
    }
}

/// Doubling from `start` until a step loses, then bisecting; at most `steps` steps, and a
/// --topspeed step last.
pub(super) fn search(mut run: impl FnMut(Option<f64>) -> Result<Step>, start: f64, steps: u64) -> Result<Vec<Step>> {
    let mut rows: Vec<Step> = Vec::new();
    let (mut good, mut bad): (Option<f64>, Option<f64>) = (None, None);
    let mut asked = start;
    for _ in 0..steps {
        let s = run(Some(asked))?;
        eprintln!("{}", line(&s));
        let (clean, short) = (s.clean(), s.sender_short());
        rows.push(s);
        if clean {
            good = Some(good.map_or(asked, |g: f64| g.max(asked)));
            if short {
                break; // the sender is at its top: the --topspeed step says the rest
            }
        } else {
            bad = Some(bad.map_or(asked, |b: f64| b.min(asked)));
        }
        asked = match (good, bad) {
            (Some(g), None) => g * 2.0,
            (None, Some(b)) => b / 2.0,
            (Some(g), Some(b)) if b / g > BISECT_DONE => (g + b) / 2.0,
            _ => break,
        };
    }
    let s = run(None)?;
    eprintln!("{}", line(&s));
    rows.push(s);
    Ok(rows)
}

/// The highest loss-free step, and what stopped a faster one.
pub(super) fn outcome(rows: &[Step]) -> String {
    let best = rows.iter().filter(|s| s.clean()).max_by(|a, b| a.sent.mbps().total_cmp(&b.sent.mbps()));
    let Some(best) = best else {
        let first = rows.iter().min_by(|a, b| a.sent.mbps().total_cmp(&b.sent.mbps()));
        let why = first.and_then(|s| Some(describe(s.loss()?, s))).unwrap_or_default();
        return format!("no loss-free step: even the slowest lost ({why})");
    };
    let mut rate = format!("{:.0} Mbit/s, {:.0} kpps", best.sent.mbps(), best.sent.kpps());
    if let Some(s) = rows.iter().find(|s| !s.clean() && s.sent.mbps() <= best.sent.mbps()) {
        // Loss is not monotonic in the rate here: say so rather than hide the slower step.
        let why = s.loss().map_or_else(String::new, |l| describe(l, s));
        rate.push_str(&format!(" (but a slower step, {:.0} Mbit/s, lost: {why}; a noisy machine?)", s.sent.mbps()));
    }
    let faster_loss = rows
        .iter()
        .filter(|s| !s.clean() && s.sent.mbps() > best.sent.mbps())
        .min_by(|a, b| a.sent.mbps().total_cmp(&b.sent.mbps()));
    match faster_loss {
        Some(s) => {
            let why = s.loss().map_or_else(String::new, |l| describe(l, s));
            let cpu = if s.agent_cpu >= AGENT_SATURATED { "; agent CPU saturated" } else { "" };
            format!(
                "highest loss-free rate {rate}; limited by the {why} at {:.0} Mbit/s (agent CPU {:.0}%{cpu})",
                s.sent.mbps(),
                s.agent_cpu
            )
        }
        None => {
            let top = rows.iter().max_by(|a, b| a.sent.mbps().total_cmp(&b.sent.mbps())).unwrap_or(best);
            let cores = if top.host_busy >= HOST_SATURATED {
                " — the cores were saturated: senders and the kernel's veth receive path share them, so this is \
                 a floor for the capture path, not its ceiling"
            } else {
                ""
            };
            format!(
                "highest loss-free rate {rate}; limited by the sender: tcpreplay sent no faster than {:.0} Mbit/s \
                 (senders {:.0}% of a core, machine busy {:.0}% of all cores, softirq {:.0}%) and nothing was lost{cores}",
                top.sent.mbps(),
                top.sender_cpu,
                top.host_busy,
                top.softirq
            )
        }
    }
}

pub(super) const HEADER: &str =
    "  asked Mbit/s  sent Mbit/s     kpps      s  ring lost  veth drops  handshakes seen/expected  \
                      tlsmon CPU%  sender CPU%  host busy%  softirq%  verdict";

pub(super) fn line(s: &Step) -> String {
    format!(
        "{:>14} {:>12.0} {:>8.1} {:>6.1} {:>10} {:>11} {:>15}/{:<10} {:>11.0} {:>12.0} {:>11.0} {:>9.0}  {}",
        s.asked.map_or("topspeed".into(), |a| format!("{a:.0}")),
        s.sent.mbps(),
        s.sent.kpps(),
        s.sent.secs,
        s.ring_lost,
        s.veth_drops,
        s.handshakes,
        s.expected,
        s.agent_cpu,
        s.sender_cpu,
        s.host_busy,
        s.softirq,
        s.verdict()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A step that sent `mbps` for one second (top speed: 5000), losing `ring` records and
    /// `missing` handshakes of 100.
    fn fake(asked: Option<f64>, mbps: f64, ring: u64, missing: u64) -> Step {
        let sent = Sent { packets: 1000, bytes: (mbps * 1e6 / 8.0) as u64, secs: 1.0, failed: 0 };
        Step {
            asked,
            sent,
            ring_lost: ring,
            map_full: 0,
            veth_drops: 0,
            handshakes: 100 - missing,
            expected: 100,
            agent_cpu: 50.0,
            sender_cpu: 80.0,
            host_busy: 95.0,
            softirq: 30.0,
        }
    }

    /// The kernel loses records above 3000 Mbit/s; the sender reaches 5000.
    fn lossy_above_3000(asked: Option<f64>) -> Result<Step> {
        let mbps = asked.unwrap_or(5000.0);
        Ok(fake(asked, mbps, if mbps > 3000.0 { 7 } else { 0 }, 0))
    }

    #[test]
    fn search_doubles_then_bisects_then_tops() {
        let rows = search(lossy_above_3000, 1000.0, 5).expect("search");
        let asked: Vec<Option<f64>> = rows.iter().map(|s| s.asked).collect();
        assert_eq!(asked, [Some(1000.0), Some(2000.0), Some(4000.0), Some(3000.0), Some(3500.0), None]);
        let out = outcome(&rows);
        assert!(out.starts_with("highest loss-free rate 3000 Mbit/s"), "{out}");
        assert!(out.contains("kernel: ring buffer full 7 at 3500 Mbit/s"), "{out}");
    }

    #[test]
    fn search_stops_doubling_when_the_sender_falls_short() {
        let capped = |asked: Option<f64>| Ok(fake(asked, asked.unwrap_or(2500.0).min(2500.0), 0, 0));
        let rows = search(capped, 1000.0, 5).expect("search");
        let asked: Vec<Option<f64>> = rows.iter().map(|s| s.asked).collect();
        assert_eq!(asked, [Some(1000.0), Some(2000.0), Some(4000.0), None]);
        assert_eq!(rows[2].verdict(), "ok, sender short");
        let out = outcome(&rows);
        assert!(out.contains("limited by the sender: tcpreplay sent no faster than 2500 Mbit/s"), "{out}");
        assert!(out.contains("cores were saturated"), "{out}");
    }

    #[test]
    fn missing_handshakes_are_the_agents_and_no_clean_step_is_said() {
        let agent = |asked: Option<f64>| Ok(fake(asked, asked.unwrap_or(5000.0), 0, 3));
        let rows = search(agent, 1000.0, 2).expect("search");
        let asked: Vec<Option<f64>> = rows.iter().map(|s| s.asked).collect();
        assert_eq!(asked, [Some(1000.0), Some(500.0), None]);
        assert_eq!(rows[0].verdict(), "LOSS (agent: 3 handshakes missing)");
        assert_eq!(outcome(&rows), "no loss-free step: even the slowest lost (agent: 3 handshakes missing)");
    }
}
