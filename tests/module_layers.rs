//! The monitor library's top-level modules form layers: each may use only modules of lower
//! layers, so there is no import loop and the core never reaches up into I/O or sinks. Read
//! from the source: every `crate::NAME` outside a `#[cfg(test)]` module counts.
//! Must never pass by reading nothing: it checks that every top-level module was found.
use std::path::{Path, PathBuf};

/// Bottom first. The core (decode → flow → inspect → observation → policy → pipeline) does no
/// I/O; sources and the run loop sit on it; then the argument structs (cli: clap lives only
/// there, and the I/O modules take its structs), the HTTP endpoint, the sinks, and the config
/// file that merges into the arguments. Modules in one row may not use each other.
const LAYERS: &[&[&str]] = &[
    &["decode", "ebpf_obj"],
    &["flow"],
    &["inspect"],
    &["observation"],
    &["policy"],
    &["pipeline"],
    &["attribution"],
    &["capture", "probe"],
    &["run"],
    &["fanout"],
    &["cli"],
    &["serve"],
    &["sink"],
    &["config"],
];

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|row| row.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read src") {
        let p = e.expect("dir entry").path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The `crate::NAME` paths of a file, leaving out what follows its first `#[cfg(test)]`.
fn uses(src: &str) -> Vec<String> {
    let body = src.find("#[cfg(test)]").map_or(src, |i| &src[..i]);
    body.split("crate::")
        .skip(1)
        .map(|rest| rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect())
        .collect()
}

#[test]
fn top_level_modules_only_use_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("lib.rs");
    let declared: Vec<&str> = lib.lines().filter_map(|l| l.strip_prefix("pub mod ")?.strip_suffix(';')).collect();
    for m in &declared {
        assert!(layer(m).is_some(), "module {m} is in lib.rs but in no layer of this test");
    }
    let mut wrong = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for f in &files {
        let rel = f.strip_prefix(&src).expect("under src");
        let top = rel.components().next().expect("a component").as_os_str().to_string_lossy();
        let top = top.trim_end_matches(".rs").to_string();
        // The binary's own modules (main, app, emitter, manual) sit above everything.
        let Some(from) = layer(&top) else { continue };
        seen.insert(top.clone());
        let text = std::fs::read_to_string(f).expect("read source");
        for used in uses(&text) {
            if used == top {
                continue;
            }
            match layer(&used) {
                Some(to) if to < from => {}
                Some(_) => wrong.push(format!("{} uses crate::{used} (layer {top} may not)", rel.display())),
                None => wrong.push(format!("{} uses crate::{used}, a module of no layer", rel.display())),
            }
        }
    }
    assert_eq!(seen.len(), declared.len(), "every declared module read: {seen:?} vs {declared:?}");
    assert!(wrong.is_empty(), "imports against the layers:\n{}", wrong.join("\n"));
}
