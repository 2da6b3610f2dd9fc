//! Plain-text tables with aligned columns: `fleet hosts`, the run recap, and the
//! `table()` function recipes use.

use unicode_width::UnicodeWidthStr;

/// Renders `header` and `rows` left-aligned with two spaces between columns; the last
/// column is not padded so lines carry no trailing spaces.
pub(crate) fn render(header: &[String], rows: &[Vec<String>]) -> String {
    render_painted(header, rows, &|_, _, cell| cell.to_string())
}

/// `render`, with `paint(row, column, cell)` wrapping each data cell (colours on a
/// terminal) after its width was measured and its control characters neutralised.
pub(crate) fn render_painted(
    header: &[String],
    rows: &[Vec<String>],
    paint: &dyn Fn(usize, usize, &str) -> String,
) -> String {
    let columns = header
        .len()
        .max(rows.iter().map(Vec::len).max().unwrap_or(0));
    let mut widths = vec![0; columns];
    for row in std::iter::once(header).chain(rows.iter().map(Vec::as_slice)) {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell_text(cell).width());
        }
    }
    let mut out = String::new();
    for (r, row) in std::iter::once(header)
        .chain(rows.iter().map(Vec::as_slice))
        .enumerate()
    {
        let mut line = String::new();
        let mut pad = String::new();
        for (i, width) in widths.iter().enumerate() {
            let cell = row.get(i).map(|c| cell_text(c)).unwrap_or_default();
            if !cell.is_empty() {
                line.push_str(&pad);
                pad.clear();
                match r {
                    0 => line.push_str(&cell),
                    _ => line.push_str(&paint(r - 1, i, &cell)),
                }
            }
            if i + 1 < columns {
                pad.push_str(&" ".repeat(width - cell.width() + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Cells are one line: newlines would break the columns. Cells hold host output and
/// inventory values, so control characters are made visible before widths are measured.
pub(crate) fn cell_text(cell: &str) -> String {
    crate::ops::terminal::neutralise(&cell.replace(['\n', '\r'], " ")).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_columns_without_trailing_spaces() {
        let h = vec!["host".to_string(), "kernel".to_string()];
        let rows = vec![
            vec!["web-1".to_string(), "6.1".to_string()],
            vec!["db".to_string(), "".to_string()],
        ];
        assert_eq!(render(&h, &rows), "host   kernel\nweb-1  6.1\ndb\n");
    }

    #[test]
    fn escape_sequences_in_cells_are_neutralised_and_aligned() {
        let h = vec!["host".to_string(), "os".to_string()];
        let rows = vec![
            vec!["a\x1b]0;t\x07".to_string(), "x".to_string()],
            vec!["b".to_string(), "y".to_string()],
        ];
        assert_eq!(
            render(&h, &rows),
            "host       os\na^[]0;t^G  x\nb          y\n"
        );
    }
}
