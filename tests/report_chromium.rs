//! The HTML reports in a real browser: Debian's headless Chromium opens the report of a
//! replay of tests/captures and the multi-day fleet report over audit logs from file://,
//! takes a 1366×900 screenshot, prints them to PDF and pdftoppm renders the A4 pages. The
//! files must be PNGs and PDF pages A4; Chromium must log no console error from the page and
//! no network request; and the HTML itself must reference nothing that could be fetched.
//! Needs `chromium` and `poppler-utils` (`cargo xtask setup` installs them); without them the
//! test fails and says so. Screenshots stay in target/report-shots/ for a person to look at.
#[path = "period_series.rs"]
mod period_series;

use std::path::{Path, PathBuf};
use std::process::Command;

use period_series::*;

fn shots() -> PathBuf {
    let d = root().join("target/report-shots");
    std::fs::create_dir_all(&d).expect("target/report-shots");
    d
}

fn require(tool: &str, arg: &str) {
    let ok = Command::new(tool).arg(arg).output().is_ok_and(|o| o.status.success());
    assert!(ok, "`{tool}` is missing: run `cargo xtask setup` (installs Debian's chromium and poppler-utils)");
}

/// Width and height of a PNG (its IHDR), after checking the signature.
fn png_size(p: &Path) -> (u32, u32) {
    let b = std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    assert!(b.len() > 1000 && b.starts_with(b"\x89PNG\r\n\x1a\n"), "{} is not a PNG", p.display());
    let be = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    (be(16), be(20))
}

/// Nothing in the file could make a browser fetch or run anything: every tag (all text from
/// logs is escaped, so `<` only opens real tags) and the style sheet are free of references.
/// Text may mention `src=` (a hostile SNI does): as text it is inert.
fn static_proof(html: &str, what: &str) {
    assert!(html.starts_with("<!DOCTYPE html>"), "{what}");
    let lower = html.to_ascii_lowercase();
    let tags: Vec<&str> = lower.split('<').skip(1).map(|t| t.split('>').next().unwrap_or("")).collect();
    assert!(tags.len() > 100, "{what}: tags found");
    for t in &tags {
        for banned in ["script", "link", "img", "iframe", "object", "embed", "image", "use ", "base", "meta http-equiv"]
        {
            assert!(!t.starts_with(banned), "{what} has a <{t}> tag");
        }
        for banned in ["src=", "href=", "url(", "http:", "https:", "on"] {
            let attr_hit = if banned == "on" {
                t.split_whitespace().skip(1).any(|a| a.starts_with("on"))
            } else {
                t.contains(banned)
            };
            assert!(!attr_hit, "{what}: <{t}> carries {banned}");
        }
    }
    let style = &lower[lower.find("<style>").expect("inline style")..lower.find("</style>").expect("style end")];
    for banned in ["url(", "@import", "@font-face", "http"] {
        assert!(!style.contains(banned), "{what}: the style sheet carries {banned}");
    }
}

/// Chromium's log lines that speak of the page: console messages and network errors.
fn page_errors(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| {
            l.contains("CONSOLE") || l.contains("Uncaught") || l.contains("net::ERR") || l.contains("Failed to load")
        })
        .collect()
}

fn chromium(args: &[String], html: &Path) -> String {
    let out = Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0"])
        .args(["--host-resolver-rules=MAP * ~NOTFOUND", "--no-first-run", "--disable-background-networking"])
        .args(args)
        .arg(format!("file://{}", html.display()))
        .output()
        .expect("runs chromium");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "chromium failed on {}:\n{stderr}", html.display());
    stderr
}

fn check_in_browser(html_path: &Path, name: &str, min_pages: usize) {
    let html = std::fs::read_to_string(html_path).expect("report");
    static_proof(&html, name);
    let dir = shots();
    let shot = dir.join(format!("{name}.png"));
    let pdf = dir.join(format!("{name}.pdf"));
    let _ = std::fs::remove_file(&shot);
    let _ = std::fs::remove_file(&pdf);
    let log = chromium(&[format!("--screenshot={}", shot.display()), "--window-size=1366,900".into()], html_path);
    assert_eq!(png_size(&shot), (1366, 900), "the screenshot");
    assert!(page_errors(&log).is_empty(), "{name}: the page logged errors:\n{}", page_errors(&log).join("\n"));
    let log = chromium(&[format!("--print-to-pdf={}", pdf.display()), "--no-pdf-header-footer".into()], html_path);
    assert!(page_errors(&log).is_empty(), "{name}: printing logged errors:\n{}", page_errors(&log).join("\n"));
    assert!(std::fs::read(&pdf).expect("pdf").starts_with(b"%PDF"), "a PDF");
    let prefix = dir.join(format!("{name}-a4"));
    for old in std::fs::read_dir(&dir).expect("dir").flatten() {
        if old.file_name().to_string_lossy().starts_with(&format!("{name}-a4")) {
            let _ = std::fs::remove_file(old.path());
        }
    }
    let st = Command::new("pdftoppm").args(["-png", "-r", "50"]).arg(&pdf).arg(&prefix).status().expect("pdftoppm");
    assert!(st.success(), "pdftoppm");
    let mut pages: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(&format!("{name}-a4-"))))
        .collect();
    pages.sort();
    assert!(pages.len() >= min_pages, "{name}: {} pages, a page per section wanted", pages.len());
    for p in &pages {
        // A4 at 50 dpi: 8.27 × 11.69 in → 413 × 585 px (Letter would be 425 × 550).
        let (w, h) = png_size(p);
        assert!((412..=414).contains(&w) && (584..=586).contains(&h), "{}: {w}×{h} is not A4", p.display());
    }
}

#[test]
fn html_reports_render_print_and_fetch_nothing() {
    require("chromium", "--version");
    require("pdftoppm", "-v");
    let dir = shots();

    // An incident responder's replay.
    let replay_html = dir.join("replay.html");
    let (code, _) = tlsmon(
        &["replay", "--format", "none", "--report", "html", "--report-out", replay_html.to_str().unwrap()],
        &captures(),
    );
    assert!(code <= 1);
    check_in_browser(&replay_html, "replay", 7);

    // An auditor's fleet report over three days of two agents' logs.
    let evs = spread(events(&captures()));
    let (files, _) = write_logs(&root().join(format!("target/test-data/report-chromium-{}", std::process::id())), &evs);
    let fleet_html = dir.join("fleet.html");
    let (code, _) = tlsmon(&["report", "--out", fleet_html.to_str().unwrap()], &files);
    assert_eq!(code, 0);
    check_in_browser(&fleet_html, "fleet", 7);
}
