//! Source, kernel model: the embedded eBPF programs run on given frames with
//! BPF_PROG_TEST_RUN, never attached to an interface. The records they write come back in
//! order, so a capture can go through the real kernel code and then the same pipeline as
//! live capture (differential tests, `cargo xtask bench kernel`).
//! Must never attach a program or touch an interface; needs CAP_BPF (root).
use aya::maps::{MapData, PerCpuArray, RingBuf};
use aya::programs::{SchedClassifier, TestRun as _, TestRunOptions, Xdp};
use aya::{Ebpf, EbpfLoader};
use monitor_common::{counter, KernelConfig, CONFIG_GLOBAL, COUNTERS_MAP, RING_MAP};

use crate::ebpf_obj::{EBPF_OBJECT, NOOP_TC_PROGRAM, NOOP_XDP_PROGRAM, TC_PROGRAM, XDP_PROGRAM};

/// Which program to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    Tc,
    Xdp,
    /// The do-nothing TC baseline (benchmarks).
    NoopTc,
    /// The do-nothing XDP baseline (benchmarks).
    NoopXdp,
}

impl Hook {
    fn program(self) -> &'static str {
        match self {
            Hook::Tc => TC_PROGRAM,
            Hook::Xdp => XDP_PROGRAM,
            Hook::NoopTc => NOOP_TC_PROGRAM,
            Hook::NoopXdp => NOOP_XDP_PROGRAM,
        }
    }

    fn is_tc(self) -> bool {
        matches!(self, Hook::Tc | Hook::NoopTc)
    }

    /// The action every program must return: TC_ACT_PIPE (3) or XDP_PASS (2).
    pub fn pass_action(self) -> u32 {
        if self.is_tc() {
            3
        } else {
            2
        }
    }
}

/// Why the kernel programs could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum TestRunError {
    #[error("loading the eBPF object")]
    Load(#[source] aya::EbpfError),
    #[error("program {0} is missing from the eBPF object")]
    MissingProgram(&'static str),
    #[error("map {0} is missing from the eBPF object")]
    MissingMap(&'static str),
    #[error("loading program {name} into the kernel")]
    Program {
        name: &'static str,
        #[source]
        source: aya::programs::ProgramError,
    },
    #[error("opening map {name}")]
    Map {
        name: &'static str,
        #[source]
        source: aya::maps::MapError,
    },
    #[error("BPF_PROG_TEST_RUN of {name} on a {len}-byte frame")]
    Run {
        name: &'static str,
        len: usize,
        #[source]
        source: aya::programs::ProgramError,
    },
}

/// What one BPF_PROG_TEST_RUN returned.
#[derive(Clone, Copy, Debug)]
pub struct RunResult {
    pub action: u32,
    /// Average time per repetition, as the kernel measured it.
    pub ns_per_run: u64,
}

/// The loaded programs with their ring buffer and counters.
pub struct KernelModel {
    ebpf: Ebpf,
    ring: RingBuf<MapData>,
}

/// Largest frame BPF_PROG_TEST_RUN takes for TC (one page less skb overhead) and XDP (one page
/// less headroom and shared info); larger frames must be re-segmented by the caller.
pub const MAX_TEST_FRAME: usize = 3000;
/// Smallest frame BPF_PROG_TEST_RUN takes (an Ethernet header).
pub const MIN_TEST_FRAME: usize = 14;

impl KernelModel {
    /// Load the object with `cfg` and load (not attach) all four programs.
    pub fn load(cfg: &KernelConfig) -> Result<KernelModel, TestRunError> {
        let mut ebpf = EbpfLoader::new()
            .override_global(CONFIG_GLOBAL, cfg, true)
            .load(EBPF_OBJECT)
            .map_err(TestRunError::Load)?;
        for name in [TC_PROGRAM, NOOP_TC_PROGRAM] {
            let p: &mut SchedClassifier = ebpf
                .program_mut(name)
                .ok_or(TestRunError::MissingProgram(name))?
                .try_into()
                .map_err(|source| TestRunError::Program { name, source })?;
            p.load().map_err(|source| TestRunError::Program { name, source })?;
        }
        for name in [XDP_PROGRAM, NOOP_XDP_PROGRAM] {
            let p: &mut Xdp = ebpf
                .program_mut(name)
                .ok_or(TestRunError::MissingProgram(name))?
                .try_into()
                .map_err(|source| TestRunError::Program { name, source })?;
            p.load().map_err(|source| TestRunError::Program { name, source })?;
        }
        let map = ebpf.take_map(RING_MAP).ok_or(TestRunError::MissingMap(RING_MAP))?;
        let ring = RingBuf::try_from(map).map_err(|source| TestRunError::Map { name: RING_MAP, source })?;
        Ok(KernelModel { ebpf, ring })
    }

    /// Run `hook` on `frame` `repeat` times.
    pub fn run(&self, hook: Hook, frame: &[u8], repeat: u32) -> Result<RunResult, TestRunError> {
        let name = hook.program();
        let opts = TestRunOptions { data_in: Some(frame), repeat, ..TestRunOptions::default() };
        let prog = self.ebpf.program(name).ok_or(TestRunError::MissingProgram(name))?;
        let res = if hook.is_tc() {
            let p: &SchedClassifier = prog.try_into().map_err(|source| TestRunError::Program { name, source })?;
            p.test_run(opts)
        } else {
            let p: &Xdp = prog.try_into().map_err(|source| TestRunError::Program { name, source })?;
            p.test_run(opts)
        };
        let r = res.map_err(|source| TestRunError::Run { name, len: frame.len(), source })?;
        Ok(RunResult { action: r.return_value, ns_per_run: r.duration.as_nanos() as u64 })
    }

    /// Hand every record waiting in the ring buffer to `f`, oldest first; returns how many.
    pub fn drain(&mut self, mut f: impl FnMut(&[u8])) -> usize {
        let mut n = 0;
        while let Some(item) = self.ring.next() {
            f(&item);
            n += 1;
        }
        n
    }

    /// Every counter summed over CPUs, indexed by `monitor_common::counter`.
    pub fn counters(&self) -> Result<[u64; counter::COUNT as usize], TestRunError> {
        let map = self.ebpf.map(COUNTERS_MAP).ok_or(TestRunError::MissingMap(COUNTERS_MAP))?;
        let array =
            PerCpuArray::<_, u64>::try_from(map).map_err(|source| TestRunError::Map { name: COUNTERS_MAP, source })?;
        let mut out = [0u64; counter::COUNT as usize];
        for (i, slot) in out.iter_mut().enumerate() {
            let per_cpu =
                array.get(&(i as u32), 0).map_err(|source| TestRunError::Map { name: COUNTERS_MAP, source })?;
            *slot = per_cpu.iter().sum();
        }
        Ok(out)
    }
}
