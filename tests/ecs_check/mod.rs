//! The ECS field reference (Elastic's `@elastic/ecs`, installed by `cargo xtask setup`) and
//! the check of one event against it: every field outside `tlsmon.*` exists in ECS with a
//! JSON value its type takes, and only allowed values where ECS lists them; or it is one of
//! the pre-ECS names README "Event schema" lists, where those are allowed. Shared by
//! tests/ecs_events.rs (replay), tests/probe_lab.rs (probe events) and
//! tests/live_attribution.rs (process fields).
#![allow(dead_code)]
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

pub struct Field {
    pub ty: String,
    pub allowed: Vec<String>,
}

pub struct Reference {
    pub version: String,
    pub fields: BTreeMap<String, Field>,
}

pub fn reference() -> Reference {
    let path = std::env::var_os("TLSMON_ECS_REFERENCE").map(PathBuf::from).unwrap_or_else(|| {
        let home = std::env::var_os("HOME").expect("HOME");
        Path::new(&home).join(".cache/tlsmon-ecs-9.4.0/ecs_flat.json")
    });
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("the ECS field reference {} is missing ({e}): run `cargo xtask setup`", path.display())
    });
    let v: Value = serde_json::from_str(&text).expect("ecs_flat.json");
    let fields = v["fields"]
        .as_object()
        .expect("fields")
        .iter()
        .map(|(name, f)| {
            let allowed = f["allowed"].as_array().into_iter().flatten().filter_map(|a| a.as_str().map(String::from));
            (name.clone(), Field { ty: f["type"].as_str().unwrap_or("").to_string(), allowed: allowed.collect() })
        })
        .collect();
    Reference { version: v["version"].as_str().unwrap_or("").to_string(), fields }
}

/// (dotted path, value) of every leaf; an array of scalars is one leaf, an array of objects
/// is walked under its own path.
pub fn leaves<'a>(prefix: &str, v: &'a Value, out: &mut Vec<(String, &'a Value)>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let p = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                leaves(&p, v, out);
            }
        }
        Value::Array(a) if a.iter().any(Value::is_object) => {
            for v in a {
                leaves(prefix, v, out);
            }
        }
        _ => out.push((prefix.to_string(), v)),
    }
}

/// Whether `v` (or each element of an array) is a value of ECS type `ty`.
pub fn fits(ty: &str, v: &Value) -> bool {
    if let Value::Array(a) = v {
        return a.iter().all(|x| fits(ty, x));
    }
    match ty {
        "keyword" | "constant_keyword" | "wildcard" | "match_only_text" | "text" => v.is_string(),
        "long" | "integer" | "short" | "byte" | "unsigned_long" => v.is_u64() || v.is_i64(),
        "float" | "double" | "scaled_float" | "half_float" => v.is_number(),
        "boolean" => v.is_boolean(),
        "ip" => v.as_str().is_some_and(|s| s.parse::<std::net::IpAddr>().is_ok()),
        "date" => v.as_str().is_some_and(|s| {
            // RFC 3339 in UTC, as Elasticsearch's strict_date_optional_time takes it.
            let b = s.as_bytes();
            s.ends_with('Z') && b.len() >= 20 && b[4] == b'-' && b[7] == b'-' && b[10] == b'T' && b[13] == b':'
        }),
        _ => false,
    }
}

/// The paths of `ev` that are neither ECS (with a fitting value) nor `tlsmon.*`, with why.
pub fn nonconforming(r: &Reference, ev: &Value) -> Vec<(String, String)> {
    let mut all = Vec::new();
    leaves("", ev, &mut all);
    let mut bad = Vec::new();
    for (path, v) in all {
        if path.starts_with("tlsmon.") {
            continue;
        }
        match r.fields.get(&path) {
            None => bad.push((path, "not an ECS field".to_string())),
            Some(f) if !fits(&f.ty, v) => bad.push((path, format!("ECS type {} does not take {v}", f.ty))),
            Some(f) if !f.allowed.is_empty() => {
                let vals: Vec<&Value> = if let Value::Array(a) = v { a.iter().collect() } else { vec![v] };
                for x in vals {
                    if !x.as_str().is_some_and(|s| f.allowed.iter().any(|a| a == s)) {
                        bad.push((path.clone(), format!("{x} is not an allowed value")));
                    }
                }
            }
            Some(_) => {}
        }
    }
    bad
}

/// The pre-ECS names README "Event schema" lists (its table's first column).
pub fn documented_legacy() -> BTreeSet<String> {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md")).unwrap();
    let start = readme.find("### Pre-ECS field names").expect("README: ### Pre-ECS field names");
    let section = &readme[start..];
    let section = &section[..section[4..].find("\n#").map_or(section.len(), |i| i + 4)];
    section.lines().filter(|l| l.starts_with("| `")).filter_map(|l| l.split('`').nth(1)).map(str::to_string).collect()
}

/// What is wrong with `ev`: fields neither ECS nor `tlsmon.*` (nor, when `legacy` is given,
/// one of those pre-ECS names), and a missing `@timestamp`, `event.dataset` or `ecs.version`.
pub fn problems(r: &Reference, ev: &Value, legacy: Option<&BTreeSet<String>>) -> Vec<String> {
    let mut out = Vec::new();
    for p in ["/@timestamp", "/event/dataset", "/event/kind", "/ecs/version", "/network/transport"] {
        if ev.pointer(p).is_none() {
            out.push(format!("no {p}"));
        }
    }
    for (path, why) in nonconforming(r, ev) {
        let documented = legacy.is_some_and(|l| l.iter().any(|d| path == *d || path.starts_with(&format!("{d}."))));
        if !documented {
            out.push(format!("{path}: {why}"));
        }
    }
    out
}
