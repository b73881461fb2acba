//! Bytes to text for imported files: UTF-8 with or without a byte-order mark, or Windows-1252
//! (what Excel on Windows saves as "CSV"); UTF-16 and UTF-32 with a byte-order mark (Excel's
//! "Unicode text"), transcoded to UTF-8 as they stream ([`Transcode`]); and the delimiter a
//! file uses. Files that are not text (compressed, a workbook, binary) are named as such
//! ([`detect`]) instead of being read as garbage.

use std::borrow::Cow;
use std::io::Read;

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

/// How a file's bytes encode its text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// UTF-8 (its byte-order mark skipped) or, cell by cell, Windows-1252 ([`cell_text`]).
    Utf8,
    Utf16Le,
    Utf16Be,
    Utf32Le,
    Utf32Be,
}

/// The encoding of a file from its first bytes, or why it cannot be imported as text (the
/// answer says what the file is and what to do).
pub fn detect(head: &[u8]) -> Result<Encoding, String> {
    // UTF-32 LE's mark starts like UTF-16 LE's, so it is checked first.
    let marks: [(&[u8], Encoding); 5] = [
        (b"\xFF\xFE\x00\x00", Encoding::Utf32Le),
        (b"\x00\x00\xFE\xFF", Encoding::Utf32Be),
        (b"\xFF\xFE", Encoding::Utf16Le),
        (b"\xFE\xFF", Encoding::Utf16Be),
        (BOM, Encoding::Utf8),
    ];
    if let Some((_, encoding)) = marks.iter().find(|(mark, _)| head.starts_with(mark)) {
        return Ok(*encoding);
    }
    if head.starts_with(b"\x1F\x8B") {
        return Err("the file is compressed (gzip); upload the CSV file itself".into());
    }
    if head.starts_with(b"PK\x03\x04") {
        return Err(
            "the file is a ZIP archive (an Excel workbook?); save it as CSV and upload that".into(),
        );
    }
    let first_line = head.split(|&b| b == b'\n').next().unwrap_or(head);
    if first_line.contains(&0) {
        let nul_every_other = first_line.len() >= 4
            && (first_line.iter().skip(1).step_by(2).all(|&b| b == 0)
                || first_line.iter().step_by(2).all(|&b| b == 0))
            && first_line.iter().any(|&b| b != 0);
        return Err(if nul_every_other {
            "the file looks like UTF-16 without a byte-order mark; save it as UTF-8 (or as \
             UTF-16 with a byte-order mark)"
                .into()
        } else {
            "the file's first line contains NUL bytes: it is not a text file (save it as CSV, \
             UTF-8)"
                .into()
        });
    }
    Ok(Encoding::Utf8)
}

impl Encoding {
    /// Bytes per code unit (1 for UTF-8: nothing to transcode).
    fn unit(self) -> usize {
        match self {
            Encoding::Utf8 => 1,
            Encoding::Utf16Le | Encoding::Utf16Be => 2,
            Encoding::Utf32Le | Encoding::Utf32Be => 4,
        }
    }

    /// UTF-8 text of `bytes` as far as whole characters go, and how many bytes that used.
    /// Invalid units (a lone surrogate, a value past U+10FFFF) become U+FFFD, as a text
    /// editor shows them; the byte-order mark becomes U+FEFF, which the caller drops.
    fn decode(self, bytes: &[u8], out: &mut Vec<u8>) -> usize {
        let mut push = |c: char| {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        };
        match self {
            Encoding::Utf8 => {
                out.extend_from_slice(bytes);
                bytes.len()
            }
            Encoding::Utf16Le | Encoding::Utf16Be => {
                let le = self == Encoding::Utf16Le;
                let units: Vec<u16> = bytes
                    .chunks_exact(2)
                    .map(|p| {
                        if le {
                            u16::from_le_bytes([p[0], p[1]])
                        } else {
                            u16::from_be_bytes([p[0], p[1]])
                        }
                    })
                    .collect();
                // A high surrogate at the very end waits for its pair in the next read.
                let whole = match units.last() {
                    Some(&u) if (0xD800..0xDC00).contains(&u) => units.len() - 1,
                    _ => units.len(),
                };
                for c in char::decode_utf16(units[..whole].iter().copied()) {
                    push(c.unwrap_or(char::REPLACEMENT_CHARACTER));
                }
                whole * 2
            }
            Encoding::Utf32Le | Encoding::Utf32Be => {
                let le = self == Encoding::Utf32Le;
                let mut used = 0;
                for p in bytes.chunks_exact(4) {
                    let value = if le {
                        u32::from_le_bytes([p[0], p[1], p[2], p[3]])
                    } else {
                        u32::from_be_bytes([p[0], p[1], p[2], p[3]])
                    };
                    push(char::from_u32(value).unwrap_or(char::REPLACEMENT_CHARACTER));
                    used += 4;
                }
                used
            }
        }
    }

    /// The UTF-8 text of a file's first chunk, for sniffing its delimiter.
    pub fn head_text(self, head: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(head.len());
        self.decode(head, &mut out);
        strip_bom(&out).to_vec()
    }
}

/// A reader giving UTF-8 for a UTF-16 or UTF-32 source, a chunk at a time (the byte-order
/// mark dropped). Bytes of a character split between two reads wait for the rest.
pub struct Transcode<R> {
    inner: R,
    encoding: Encoding,
    /// Source bytes not yet decoded (part of a character).
    pending: Vec<u8>,
    /// Decoded bytes not yet handed out, from `pos`.
    out: Vec<u8>,
    pos: usize,
    started: bool,
}

impl<R: Read> Transcode<R> {
    pub fn new(inner: R, encoding: Encoding) -> Self {
        Transcode {
            inner,
            encoding,
            pending: Vec::new(),
            out: Vec::new(),
            pos: 0,
            started: false,
        }
    }
}

impl<R: Read> Read for Transcode<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pos >= self.out.len() {
            let mut chunk = [0u8; 16 * 1024];
            let n = self.inner.read(&mut chunk)?;
            if n == 0 {
                if !self.pending.is_empty() {
                    // A file ending inside a character: show that there was something.
                    self.pending.clear();
                    self.out.clear();
                    self.pos = 0;
                    self.out
                        .extend_from_slice(char::REPLACEMENT_CHARACTER.to_string().as_bytes());
                    continue;
                }
                return Ok(0);
            }
            self.pending.extend_from_slice(&chunk[..n]);
            self.out.clear();
            self.pos = 0;
            let used = self.encoding.decode(&self.pending, &mut self.out);
            self.pending.drain(..used);
            if !self.started && !self.out.is_empty() {
                self.started = true;
                if self.out.starts_with(BOM) {
                    self.pos = BOM.len();
                }
            }
        }
        let n = buf.len().min(self.out.len() - self.pos);
        buf[..n].copy_from_slice(&self.out[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Encoding {
    /// Whether the reader needs a [`Transcode`] in front.
    pub fn transcodes(self) -> bool {
        self.unit() > 1
    }
}

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

    fn transcoded(bytes: &[u8], read_size: usize) -> String {
        let encoding = detect(bytes).unwrap();
        // A reader that hands out at most `read_size` bytes at a time, to split characters.
        struct Slow<'a>(&'a [u8], usize);
        impl Read for Slow<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = self.0.len().min(self.1).min(buf.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut text = String::new();
        Transcode::new(Slow(bytes, read_size), encoding)
            .read_to_string(&mut text)
            .unwrap();
        text
    }

    #[test]
    fn utf16_and_utf32_with_a_mark_are_transcoded() {
        let text = "first_name,email\nZoë,z@x.io\n😀,e@x.io\n";
        let utf16le: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain(text.encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        let utf16be: Vec<u8> = [0xFE, 0xFF]
            .into_iter()
            .chain(text.encode_utf16().flat_map(u16::to_be_bytes))
            .collect();
        let utf32le: Vec<u8> = [0xFF, 0xFE, 0, 0]
            .into_iter()
            .chain(text.chars().flat_map(|c| (c as u32).to_le_bytes()))
            .collect();
        let utf32be: Vec<u8> = [0, 0, 0xFE, 0xFF]
            .into_iter()
            .chain(text.chars().flat_map(|c| (c as u32).to_be_bytes()))
            .collect();
        for bytes in [&utf16le, &utf16be, &utf32le, &utf32be] {
            for read_size in [1, 3, 7, 4096] {
                assert_eq!(transcoded(bytes, read_size), text);
            }
        }
        assert_eq!(
            detect(&utf16le).unwrap().head_text(&utf16le),
            text.as_bytes()
        );
    }

    #[test]
    fn files_that_are_not_text_are_named() {
        assert!(detect(b"\x1F\x8B\x08\x00").unwrap_err().contains("gzip"));
        assert!(detect(b"PK\x03\x04rest").unwrap_err().contains("ZIP"));
        assert!(detect(b"n\0a\0m\0e\0\n\0").unwrap_err().contains("UTF-16"));
        assert!(detect(&[0u8; 64]).unwrap_err().contains("NUL"));
        assert!(detect(b"na\0me,email\n").unwrap_err().contains("NUL"));
        assert_eq!(detect(b"name,email\nx\0y,z\n"), Ok(Encoding::Utf8));
    }

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
