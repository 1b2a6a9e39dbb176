//! The latency histogram the text summary draws on a terminal (or with `--histogram`): one
//! row per round-numbered log bin, a bar of block characters and the count.

use crate::summary::BIN_EDGES_MICROS;

/// Widest bar, in character cells.
const BAR_CELLS: u64 = 40;

/// Bars end in eighths of a cell: none, then one to seven eighths.
const EIGHTHS: [&str; 8] = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"];

/// The histogram of `bins` (counts per bin of [`BIN_EDGES_MICROS`]), from the first bin
/// with a count to the last; empty when no result has a latency.
pub(super) fn render(bins: &[u64]) -> String {
    let (Some(first), Some(last)) = (
        bins.iter().position(|&count| count > 0),
        bins.iter().rposition(|&count| count > 0),
    ) else {
        return String::new();
    };
    let most = bins.iter().copied().max().unwrap_or(1).max(1);
    let labels: Vec<String> = (first..=last).map(label).collect();
    let width = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    let mut text = String::from("latency histogram:\n");
    for (label, &count) in labels.iter().zip(&bins[first..=last]) {
        let pad = " ".repeat(width - label.chars().count());
        text.push_str(&format!("  {pad}{label} {} {count}\n", bar(count, most)));
    }
    text
}

/// A bar `count / most` of the widest, in eighths of a cell; at least a sliver when not 0.
fn bar(count: u64, most: u64) -> String {
    let eighths = (count * BAR_CELLS * 8 / most).max(u64::from(count > 0));
    let mut bar = "█".repeat((eighths / 8) as usize);
    bar.push_str(EIGHTHS[(eighths % 8) as usize]);
    bar
}

/// The range bin `index` covers: `< 100µs`, `1ms–2ms`, ..., `≥ 500s`.
fn label(index: usize) -> String {
    match (index.checked_sub(1), BIN_EDGES_MICROS.get(index)) {
        (None, Some(&high)) => format!("< {}", micros(high)),
        (Some(low), Some(&high)) => format!("{}–{}", micros(BIN_EDGES_MICROS[low]), micros(high)),
        (Some(low), None) => format!("≥ {}", micros(BIN_EDGES_MICROS[low])),
        (None, None) => String::new(),
    }
}

/// A round number of microseconds in the largest unit it is whole in.
fn micros(value: u64) -> String {
    match value {
        v if v >= 1_000_000 => format!("{}s", v / 1_000_000),
        v if v >= 1_000 => format!("{}ms", v / 1_000),
        v => format!("{v}µs"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_span_the_bins_in_use_with_scaled_bars() {
        let mut bins = vec![0; BIN_EDGES_MICROS.len() + 1];
        bins[4] = 80;
        bins[6] = 3;
        let text = render(&bins);
        assert_eq!(
            text,
            format!(
                "latency histogram:\n   1ms–2ms {} 80\n   2ms–5ms  0\n  5ms–10ms █▌ 3\n",
                "█".repeat(40)
            )
        );
    }

    #[test]
    fn the_outer_bins_are_open() {
        assert_eq!(label(0), "< 100µs");
        assert_eq!(label(BIN_EDGES_MICROS.len()), "≥ 500s");
        assert_eq!(label(13), "1s–2s");
        assert_eq!(render(&[0; 22]), "");
    }
}
