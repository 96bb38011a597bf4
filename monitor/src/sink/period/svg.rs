//! Sink, period report, the charts: hand-made inline SVG bar charts (stacked or side by side),
//! one bar group per UTC day, a `<title>` per bar for its figure. No script, no external
//! reference; every label passes through `esc`.
use std::fmt::Write;

use super::html::esc;

/// One series of a chart: its name, colour, and one value per day.
pub struct Series {
    pub name: String,
    pub color: &'static str,
    pub values: Vec<f64>,
}

const W: f64 = 760.0;
const H: f64 = 230.0;
const LEFT: f64 = 48.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 34.0;

fn fmt_num(v: f64, pct: bool) -> String {
    if pct {
        format!("{v:.1}%")
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// A bar chart over `days` ("2026-11-30"): stacked (counts) or side by side (shares, `pct`
/// with a 0–100 axis). `label` names the chart for screen readers.
pub fn bars(label: &str, days: &[String], series: &[Series], stacked: bool, pct: bool) -> String {
    let n = days.len().max(1);
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let max = if pct {
        100.0
    } else {
        let per_day = (0..days.len()).map(|i| {
            let vals = series.iter().map(|s| s.values.get(i).copied().unwrap_or(0.0));
            if stacked {
                vals.sum::<f64>()
            } else {
                vals.fold(0.0, f64::max)
            }
        });
        per_day.fold(0.0, f64::max).max(1.0)
    };
    let slot = plot_w / n as f64;
    let group_w = (slot * 0.7).clamp(1.0, 48.0);
    let groups = if stacked { 1 } else { series.len().max(1) };
    let bar_w = group_w / groups as f64;
    let y = |v: f64| TOP + plot_h - v / max * plot_h;
    let mut s = String::new();
    let _ = write!(
        s,
        r##"<svg class="chart" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="{}">"##,
        esc(label)
    );
    // Axis, grid lines and their labels: 0, half, max.
    for frac in [0.0, 0.5, 1.0] {
        let v = max * frac;
        let yy = y(v);
        let _ = write!(
            s,
            r##"<line x1="{LEFT}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#d0d4d9" stroke-width="1"/><text x="{:.1}" y="{:.1}" text-anchor="end" font-size="10" fill="#444">{}</text>"##,
            W - RIGHT,
            LEFT - 4.0,
            yy + 3.5,
            fmt_num(if pct { v } else { v.round() }, pct)
        );
    }
    // Month-day labels within one year; whole dates (fewer of them) across years.
    let one_year = days.first().zip(days.last()).is_none_or(|(a, b)| a.get(..4) == b.get(..4));
    let step = n.div_ceil(if one_year { 12 } else { 7 });
    for (i, day) in days.iter().enumerate() {
        let x0 = LEFT + slot * i as f64 + (slot - group_w) / 2.0;
        let mut base = 0.0;
        for (j, se) in series.iter().enumerate() {
            let v = se.values.get(i).copied().unwrap_or(0.0);
            if v <= 0.0 && stacked {
                continue;
            }
            let (x, top, bottom) = if stacked {
                let b = base;
                base += v;
                (x0, y(base), y(b))
            } else {
                (x0 + bar_w * j as f64, y(v), y(0.0))
            };
            let _ = write!(
                s,
                r##"<rect x="{x:.1}" y="{top:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{} {}: {}</title></rect>"##,
                (bar_w - if stacked || groups == 1 { 0.0 } else { 0.5 }).max(0.5),
                (bottom - top).max(if v > 0.0 { 0.5 } else { 0.0 }),
                se.color,
                esc(day),
                esc(&se.name),
                fmt_num(v, pct)
            );
        }
        if i % step == 0 {
            let short = if one_year { day.get(5..).unwrap_or(day) } else { day };
            let _ = write!(
                s,
                r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="10" fill="#444">{}</text>"##,
                x0 + group_w / 2.0,
                H - BOTTOM + 14.0,
                esc(short)
            );
        }
    }
    let _ = write!(
        s,
        r##"<line x1="{LEFT}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#555" stroke-width="1"/></svg>"##,
        y(0.0),
        W - RIGHT,
        y(0.0)
    );
    s.push_str(r#"<ul class="legend">"#);
    for se in series {
        let _ = write!(s, r#"<li><span class="sw" style="background:{}"></span>{}</li>"#, se.color, esc(&se.name));
    }
    s.push_str("</ul>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stacked_bars_scale_to_the_tallest_day() {
        let days = vec!["2026-11-01".to_string(), "2026-11-02".to_string()];
        let series = [
            Series { name: "TLS 1.2".into(), color: "#1f77b4", values: vec![2.0, 1.0] },
            Series { name: "<b>".into(), color: "#2ca02c", values: vec![2.0, 0.0] },
        ];
        let svg = bars("versions", &days, &series, true, false);
        assert!(svg.contains("<title>2026-11-01 TLS 1.2: 2</title>"), "{svg}");
        assert!(svg.contains("&lt;b&gt;") && !svg.contains("<b>"), "{svg}");
        // The axis tops out at the tallest stack (4).
        assert!(svg.contains(">4</text>"), "{svg}");
        assert_eq!(svg.matches("<rect").count(), 3, "empty segments are not drawn: {svg}");
    }
}
