//! Charts drawn on the server as SVG: no chart library, no script, and the same picture with
//! JavaScript off. Colours come from the stylesheet (classes `s0`…`s7`), so both themes apply.

use super::html::esc;

/// One series' value in one column.
pub(super) struct Column {
    pub label: String,
    /// (series index, value); shares are computed per column.
    pub values: Vec<(usize, f64)>,
}

const W: f64 = 640.0;
const H: f64 = 220.0;
const LEFT: f64 = 40.0;
const BOTTOM: f64 = 24.0;
const TOP: f64 = 8.0;

/// 100%-stacked columns: each column shows how its total splits between the series.
pub(super) fn stacked_shares(title: &str, series: &[String], columns: &[Column]) -> String {
    let plot_h = H - BOTTOM - TOP;
    let n = columns.len().max(1) as f64;
    let slot = (W - LEFT) / n;
    let bar = (slot * 0.7).min(60.0);
    let mut out = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{t}\" \
         preserveAspectRatio=\"xMidYMid meet\"><title>{t}</title>",
        t = esc(title)
    );
    for pct in [0, 25, 50, 75, 100] {
        let y = TOP + plot_h * (1.0 - f64::from(pct) / 100.0);
        out.push_str(&format!(
            "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{W}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/>\
             <text class=\"axis\" x=\"{x:.1}\" y=\"{ty:.1}\" text-anchor=\"end\">{pct}%</text>",
            x = LEFT - 4.0,
            ty = y + 4.0
        ));
    }
    for (i, c) in columns.iter().enumerate() {
        let x = LEFT + slot * i as f64 + (slot - bar) / 2.0;
        let total: f64 = c.values.iter().map(|(_, v)| v).sum();
        let mut y = TOP + plot_h;
        if total > 0.0 {
            for (s, v) in &c.values {
                let h = plot_h * v / total;
                y -= h;
                let name = series.get(*s).map_or("", String::as_str);
                out.push_str(&format!(
                    "<rect class=\"s{k}\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bar:.1}\" height=\"{h:.1}\">\
                     <title>{label}: {name} {share:.1}%</title></rect>",
                    k = s % 8,
                    label = esc(&c.label),
                    name = esc(name),
                    share = 100.0 * v / total,
                ));
            }
        }
        out.push_str(&format!(
            "<text class=\"axis\" x=\"{cx:.1}\" y=\"{ly:.1}\" text-anchor=\"middle\">{label}</text>",
            cx = x + bar / 2.0,
            ly = H - 6.0,
            label = esc(&c.label)
        ));
    }
    out.push_str("</svg>");
    out
}

/// One horizontal bar split by share, then the same figures as text (a list under the bar,
/// readable at any width and in either theme). The parts carry `data-model` and `data-share`
/// (a fraction) for tests and scripts.
pub(super) fn share_bar(title: &str, unit: &str, parts: &[(usize, String, f64)]) -> String {
    let total: f64 = parts.iter().map(|(_, _, v)| v).sum();
    let share = |v: f64| if total > 0.0 { v / total } else { 0.0 };
    let mut out = format!(
        "<svg class=\"chart bar\" viewBox=\"0 0 {W} 24\" role=\"img\" aria-label=\"{t}\" \
         preserveAspectRatio=\"none\"><title>{t}</title>",
        t = esc(title)
    );
    let mut x = 0.0;
    for (s, name, v) in parts {
        let f = share(*v);
        let w = W * f;
        out.push_str(&format!(
            "<g class=\"part\" data-model=\"{n}\" data-share=\"{f:.6}\"><rect class=\"s{k}\" x=\"{x:.1}\" y=\"0\" \
             width=\"{w:.1}\" height=\"24\"><title>{n}: {pct:.1}%</title></rect></g>",
            n = esc(name),
            k = s % 8,
            pct = f * 100.0,
        ));
        x += w;
    }
    out.push_str("</svg><ul class=\"legend\">");
    for (s, name, v) in parts {
        out.push_str(&format!(
            "<li>{swatch} <strong>{n}</strong> {pct:.1}% <span class=\"hint\">({v} {unit})</span></li>",
            swatch = swatch(*s),
            n = esc(name),
            pct = share(*v) * 100.0,
            unit = if *v == 1.0 {
                unit.strip_suffix('s').unwrap_or(unit)
            } else {
                unit
            },
        ));
    }
    out.push_str("</ul>");
    out
}

fn swatch(series: usize) -> String {
    format!(
        "<svg width=\"12\" height=\"12\" aria-hidden=\"true\"><rect class=\"s{}\" width=\"12\" height=\"12\"/></svg>",
        series % 8
    )
}

/// The colour key for `series`.
pub(super) fn legend(series: &[String]) -> String {
    let items: String = series
        .iter()
        .enumerate()
        .map(|(i, s)| format!("<li>{} {}</li>", swatch(i), esc(s)))
        .collect();
    format!("<ul class=\"legend\">{items}</ul>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_are_fractions_of_the_total_and_names_are_escaped() {
        let svg = share_bar(
            "t",
            "requests",
            &[(0, "a<b".into(), 3.0), (1, "c".into(), 1.0)],
        );
        assert!(svg.contains("data-model=\"a&lt;b\" data-share=\"0.750000\""));
        assert!(svg.contains("data-share=\"0.250000\""));
    }

    #[test]
    fn empty_columns_draw_no_bars() {
        let svg = stacked_shares(
            "t",
            &["a".into()],
            &[Column {
                label: "d".into(),
                values: vec![],
            }],
        );
        assert!(!svg.contains("<rect"));
    }
}
