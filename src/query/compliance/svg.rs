//! The charts of the HTML report, drawn as inline SVG by hand: no JavaScript, no fonts or
//! files to fetch, and they print. Two shapes cover the report: vertical stacked bars over
//! time (assumptions per day) and horizontal stacked bars per label (top principals, the
//! duration distribution per role). Labels are escaped (they are principals' and roles' ARNs).

use std::fmt::Write;

use super::text::{count, html};

/// One series of a stacked chart: its name and colour.
pub struct Series {
    pub name: &'static str,
    pub colour: &'static str,
}

/// One bar: its label and a value per series.
pub struct Bar {
    pub label: String,
    pub values: Vec<i64>,
}

const WIDTH: i64 = 960;
const FONT: &str = "font-family=\"inherit\" font-size=\"12\" fill=\"#3b4556\"";

/// Vertical stacked bars, one per bar (a day), labels under some of them.
pub fn columns(bars: &[Bar], series: &[Series], title: &str) -> String {
    let height = 220;
    let (left, bottom, top) = (48, 36, 12);
    let plot_height = height - bottom - top;
    let max = scale_max(bars);
    let step = (WIDTH - left - 8) / (bars.len().max(1) as i64);
    let bar_width = (step * 7 / 10).max(2);
    let mut svg = open(WIDTH, height + 24, title);
    axis(&mut svg, left, top, plot_height, max);
    let label_every = (bars.len() as i64 / 10).max(1);
    for (at, bar) in bars.iter().enumerate() {
        let x = left + at as i64 * step + (step - bar_width) / 2;
        let mut y = top + plot_height;
        for (value, serie) in bar.values.iter().zip(series) {
            let h = value * plot_height / max;
            y -= h;
            rect(
                &mut svg,
                x,
                y,
                bar_width,
                h,
                serie.colour,
                &bar.label,
                *value,
                serie.name,
            );
        }
        if at as i64 % label_every == 0 {
            let _ = write!(
                svg,
                "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" {FONT}>{}</text>",
                x + bar_width / 2,
                top + plot_height + 16,
                html(&bar.label)
            );
        }
    }
    legend(&mut svg, series, left, height + 12);
    svg.push_str("</svg>");
    svg
}

/// Horizontal stacked bars, one row per bar, the label on the left and the total on the right.
pub fn rows(bars: &[Bar], series: &[Series], title: &str) -> String {
    let (row_height, label_width, top) = (26, 380, 8);
    let height = top + bars.len() as i64 * row_height + 34;
    let plot_width = WIDTH - label_width - 70;
    let max = scale_max(bars);
    let mut svg = open(WIDTH, height, title);
    for (at, bar) in bars.iter().enumerate() {
        let y = top + at as i64 * row_height;
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" {FONT}>{}</text>",
            label_width - 8,
            y + 16,
            html(&shorten(&bar.label, 58))
        );
        let mut x = label_width;
        for (value, serie) in bar.values.iter().zip(series) {
            let w = value * plot_width / max;
            rect(
                &mut svg,
                x,
                y + 4,
                w,
                16,
                serie.colour,
                &bar.label,
                *value,
                serie.name,
            );
            x += w;
        }
        let total: i64 = bar.values.iter().sum();
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"{}\" {FONT}>{}</text>",
            x + 6,
            y + 16,
            count(total)
        );
    }
    legend(&mut svg, series, label_width, height - 12);
    svg.push_str("</svg>");
    svg
}

fn open(width: i64, height: i64, title: &str) -> String {
    format!(
        "<svg class=\"chart\" viewBox=\"0 0 {width} {height}\" width=\"100%\" role=\"img\" \
         xmlns=\"http://www.w3.org/2000/svg\"><title>{}</title>",
        html(title)
    )
}

/// The largest stacked total, at least 1 (so an empty chart divides by one).
fn scale_max(bars: &[Bar]) -> i64 {
    bars.iter()
        .map(|bar| bar.values.iter().sum::<i64>())
        .max()
        .unwrap_or(0)
        .max(1)
}

/// The value axis: a baseline and the maximum, with light grid lines at half and full.
fn axis(svg: &mut String, left: i64, top: i64, plot_height: i64, max: i64) {
    for (fraction, value) in [(0, 0), (1, max / 2), (2, max)] {
        let y = top + plot_height - plot_height * fraction / 2;
        let _ = write!(
            svg,
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{y}\" y2=\"{y}\" stroke=\"#e3e7ee\"/>\
             <text x=\"{}\" y=\"{}\" text-anchor=\"end\" {FONT}>{}</text>",
            WIDTH - 8,
            left - 6,
            y + 4,
            count(value)
        );
    }
}

#[allow(clippy::too_many_arguments)]
fn rect(
    svg: &mut String,
    x: i64,
    y: i64,
    w: i64,
    h: i64,
    fill: &str,
    label: &str,
    value: i64,
    name: &str,
) {
    if value <= 0 {
        return;
    }
    let _ = write!(
        svg,
        "<rect x=\"{x}\" y=\"{y}\" width=\"{}\" height=\"{}\" fill=\"{fill}\" rx=\"2\">\
         <title>{}: {} {}</title></rect>",
        w.max(1),
        h.max(1),
        html(label),
        count(value),
        html(name)
    );
}

fn legend(svg: &mut String, series: &[Series], left: i64, y: i64) {
    let mut x = left;
    for serie in series {
        let _ = write!(
            svg,
            "<rect x=\"{x}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{}\" rx=\"2\"/>\
             <text x=\"{}\" y=\"{y}\" {FONT}>{}</text>",
            y - 9,
            serie.colour,
            x + 14,
            html(serie.name)
        );
        x += 24 + 7 * serie.name.chars().count() as i64;
    }
}

/// `text` cut to `max` characters, keeping its end (an ARN's end names the role).
fn shorten(text: &str, max: usize) -> String {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= max {
        return text.to_owned();
    }
    let tail: String = chars[chars.len() - (max - 1)..].iter().collect();
    format!("\u{2026}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped_and_long_ones_keep_their_end() {
        let bars = [Bar {
            label: "<b>x</b>".to_owned(),
            values: vec![3, 1],
        }];
        let series = [
            Series {
                name: "ok",
                colour: "#000",
            },
            Series {
                name: "failed",
                colour: "#f00",
            },
        ];
        let svg = rows(&bars, &series, "t");
        assert!(svg.contains("&lt;b&gt;x&lt;/b&gt;"));
        assert!(!svg.contains("<b>"));
        assert_eq!(shorten("abcdef", 4), "\u{2026}def");
    }
}
