//! A tiny PDF writer for the simulated bureau's finished reports.
//!
//! The daemon verifies report PDFs before it vaults them, so the simulator must produce files that real tools
//! (`pdfinfo`, `pdftotext`) accept: a `%PDF-1.4` header, catalog, page tree, one page with a Helvetica text
//! stream, a cross-reference table whose offsets are exact, a trailer and `%%EOF`. Nothing else is attempted;
//! the text carries no personal data (no national id), only the request's name and subject type.

use std::fmt::Write as _;

/// A one-page PDF whose page shows `lines`, top to bottom.
pub fn render(title: &str, lines: &[String]) -> Vec<u8> {
    let mut content = String::from("BT\n/F1 16 Tf\n72 760 Td\n");
    let _ = writeln!(content, "({}) Tj", escape(title));
    content.push_str("/F1 11 Tf\n");
    for line in lines {
        let _ = writeln!(content, "0 -20 Td\n({}) Tj", escape(line));
    }
    content.push_str("ET\n");

    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] \
         /Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>"
            .to_string(),
        format!(
            "<< /Length {} >>\nstream\n{content}endstream",
            content.len()
        ),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_string(),
    ];

    // The binary comment line tells transfer tools the file is binary, as real PDF writers do.
    let mut out: Vec<u8> = b"%PDF-1.4\n%\xE2\xE3\xCF\xD3\n".to_vec();
    let mut offsets = Vec::with_capacity(objects.len());
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", i + 1).as_bytes());
    }
    let xref_at = out.len();
    let mut xref = format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1);
    for offset in offsets {
        // Each entry is exactly 20 bytes: 10-digit offset, space, 5-digit generation, space, type, space, LF.
        let _ = writeln!(xref, "{offset:010} 00000 n ");
    }
    let _ = write!(
        xref,
        "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref_at}\n%%EOF\n",
        objects.len() + 1
    );
    out.extend_from_slice(xref.as_bytes());
    out
}

/// A PDF literal string: backslash and parentheses escaped, anything outside printable ASCII replaced, so the
/// standard Helvetica encoding can show it.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' | '(' | ')' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => out.push('?'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every xref entry must point at the start of `N 0 obj`.
    #[test]
    fn xref_offsets_point_at_objects() {
        let pdf = render("Credit report (CRR-1)", &["Subject type: Person".into()]);
        let text = String::from_utf8_lossy(&pdf).to_string();
        assert!(pdf.starts_with(b"%PDF-1.4\n"));
        assert!(text.ends_with("%%EOF\n"));
        let start: usize = text
            .rsplit("startxref\n")
            .next()
            .and_then(|s| s.lines().next())
            .and_then(|s| s.parse().ok())
            .unwrap();
        assert!(pdf[start..].starts_with(b"xref\n"));
        let xref = String::from_utf8_lossy(&pdf[start..]).to_string();
        let entries: Vec<&str> = xref.lines().skip(3).take(5).collect();
        for (i, entry) in entries.iter().enumerate() {
            let offset: usize = entry[..10].parse().unwrap();
            assert!(pdf[offset..].starts_with(format!("{} 0 obj", i + 1).as_bytes()));
        }
    }

    #[test]
    fn escapes_literal_strings() {
        assert_eq!(escape(r"a(b)\c é"), r"a\(b\)\\c ?");
    }
}
