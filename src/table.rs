//! Plain-text tables with aligned columns: `fleet hosts`, the run recap, and the
//! `table()` function recipes use.

use unicode_width::UnicodeWidthStr;

/// Renders `header` and `rows` left-aligned with two spaces between columns; the last
/// column is not padded so lines carry no trailing spaces.
pub fn render(header: &[String], rows: &[Vec<String>]) -> String {
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
    for row in std::iter::once(header).chain(rows.iter().map(Vec::as_slice)) {
        let mut line = String::new();
        for (i, width) in widths.iter().enumerate() {
            let cell = row.get(i).map(|c| cell_text(c)).unwrap_or_default();
            line.push_str(&cell);
            if i + 1 < columns {
                line.push_str(&" ".repeat(width - cell.width() + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Cells are one line: newlines would break the columns.
fn cell_text(cell: &str) -> String {
    cell.replace(['\n', '\r'], " ")
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
}
