//! Replay driver: one capture through the pipeline, handing each judged handshake to the
//! caller as soon as it is judged. Used by the binary and by the tests alike.
use std::io::Read;

use crate::capture::pcap::{for_each_frame, SourceError, SourceStats};
use crate::observation::Output;
use crate::pipeline::Pipeline;

/// Feed one capture into `pipeline`; `sink` gets outputs as they are judged. On a corrupt or
/// truncated file everything before the bad block has gone through and been handed on.
pub fn feed<R: Read>(
    pipeline: &mut Pipeline,
    input: R,
    mut sink: impl FnMut(Output),
    mut tick: impl FnMut(&SourceStats, &Pipeline),
) -> Result<SourceStats, SourceError> {
    let mut seen = SourceStats::default();
    let res = for_each_frame(input, |f| {
        pipeline.frame(f.ts_ns, f.linktype, f.data);
        for o in pipeline.drain_outputs() {
            sink(o);
        }
        seen.frames += 1;
        seen.bytes += f.data.len() as u64;
        if seen.frames & 0xffff == 0 {
            tick(&seen, pipeline);
        }
    });
    res.map_err(|(_, e)| e)
}

/// Replay whole files into one list of outputs (tests, small captures).
pub fn replay_path(path: &std::path::Path) -> Result<(Vec<Output>, Pipeline), (Vec<Output>, SourceError)> {
    let mut pipeline = Pipeline::new(Default::default());
    let mut out = Vec::new();
    let file = std::fs::File::open(path).map_err(|e| (Vec::new(), SourceError::Io { offset: 0, source: e }))?;
    let r = feed(&mut pipeline, std::io::BufReader::new(file), |o| out.push(o), |_, _| {});
    pipeline.finish();
    out.extend(pipeline.drain_outputs());
    match r {
        Ok(_) => Ok((out, pipeline)),
        Err(e) => Err((out, e)),
    }
}
