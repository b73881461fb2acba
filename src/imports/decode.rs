//! Bytes to text for imported files: UTF-8 with or without a byte-order mark, or Windows-1252
//! (what Excel on Windows saves as "CSV"), and the delimiter a file uses.

use std::borrow::Cow;

/// Windows-1252's 0x80-0x9F; the rest of its upper half is Latin-1, which maps byte for
/// code point. The five undefined bytes keep their C1 code points.
const CP1252_HIGH: [char; 32] = [
    '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8D}', 'Ž', '\u{8F}',
    '\u{90}', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9D}', 'ž', 'Ÿ',
];

/// One cell as text. Valid UTF-8 is taken as is; anything else is read as Windows-1252, which
/// decodes every byte. Deciding per cell (not per file) keeps a streamed file's reading
/// independent of what comes later; a real Windows-1252 accent is never valid UTF-8.
pub fn cell_text(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => Cow::Owned(
            bytes
                .iter()
                .map(|&b| match b {
                    0x80..=0x9F => CP1252_HIGH[usize::from(b - 0x80)],
                    _ => char::from(b),
                })
                .collect(),
        ),
    }
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The file's start without a UTF-8 byte-order mark.
pub fn strip_bom(head: &[u8]) -> &[u8] {
    head.strip_prefix(BOM).unwrap_or(head)
}

/// The delimiter of a file from its first line: whichever of `,` `;` and tab occurs most
/// outside quotes (a comma when none does).
pub fn sniff_delimiter(head: &[u8]) -> u8 {
    let mut counts = [0usize; 3];
    let mut quoted = false;
    for &b in head {
        match b {
            b'"' => quoted = !quoted,
            b'\n' | b'\r' if !quoted => break,
            b',' if !quoted => counts[0] += 1,
            b';' if !quoted => counts[1] += 1,
            b'\t' if !quoted => counts[2] += 1,
            _ => {}
        }
    }
    let candidates = [b',', b';', b'\t'];
    let best = (0..3)
        .max_by_key(|&i| (counts[i], usize::from(i == 0)))
        .unwrap_or(0);
    candidates[best]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_1252_cells_decode() {
        assert_eq!(cell_text(b"Caf\xe9 \x80 \x93ok\x94"), "Café € “ok”");
        assert_eq!(cell_text("Café".as_bytes()), "Café");
    }

    #[test]
    fn delimiters_are_sniffed_outside_quotes() {
        assert_eq!(sniff_delimiter(b"a,b,c\n1;2;3;4;5"), b',');
        assert_eq!(sniff_delimiter(b"a;b;\"x,y,z\"\n"), b';');
        assert_eq!(sniff_delimiter(b"a\tb\tc"), b'\t');
        assert_eq!(sniff_delimiter(b"single"), b',');
        assert_eq!(strip_bom(b"\xEF\xBB\xBFname"), b"name");
    }
}
