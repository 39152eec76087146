//! Whole-file gzip inflate with libdeflate: CloudTrail files are small and are held in memory
//! whole anyway, and inflating a buffer in one call is over twice as fast as streaming it
//! through zlib (no per-file state to set up, no window to copy through). Every member of a
//! multi-member file is inflated. Anything libdeflate refuses (damage, a file over the cap) is
//! left to the streaming decoder, which keeps what it could read before the damage and says why.

use std::ptr::NonNull;

use libdeflate_sys::{
    libdeflate_alloc_decompressor, libdeflate_decompressor, libdeflate_free_decompressor,
    libdeflate_gzip_decompress_ex, libdeflate_result_LIBDEFLATE_INSUFFICIENT_SPACE as NO_ROOM,
    libdeflate_result_LIBDEFLATE_SUCCESS as SUCCESS,
};

/// The trailer's size is believed up to this many times the compressed size (CloudTrail logs
/// compress 5-20 to 1). The trailer is input, not a fact: a damaged or hostile one claiming
/// 4 GiB must not make a worker allocate and zero 4 GiB. Past this ratio the buffer starts here
/// and doubles only as far as the content really goes (up to the caller's limit).
const HINT_RATIO: usize = 32;

/// One worker's libdeflate decompressor (about 11 KB, reused for every file).
pub struct Inflater {
    decompressor: NonNull<libdeflate_decompressor>,
}

// SAFETY: a libdeflate decompressor holds no thread-local state; it only must not be used by two
// threads at once, which `&mut self` on every use guarantees.
unsafe impl Send for Inflater {}

impl Inflater {
    /// None when libdeflate cannot allocate its decompressor.
    pub fn new() -> Option<Inflater> {
        // SAFETY: no preconditions; a null result is handled.
        let decompressor = unsafe { libdeflate_alloc_decompressor() };
        NonNull::new(decompressor).map(|decompressor| Inflater { decompressor })
    }

    /// Inflates every gzip member of `gzip` into `out` (grown as needed, never past `limit`
    /// bytes); returns the bytes written, or None when the file is damaged or its content does
    /// not fit in `limit`. `out` keeps its memory (initialised) for the next file.
    pub fn gzip(&mut self, gzip: &[u8], out: &mut Vec<u8>, limit: usize) -> Option<usize> {
        let hint = trailer_size(gzip).min(gzip.len().saturating_mul(HINT_RATIO));
        grow(out, hint.max(64 * 1024), limit);
        let mut input = gzip;
        let mut written = 0;
        while !input.is_empty() {
            let (consumed, member) = loop {
                // `out` may be longer than `limit` from an earlier file.
                let room = out.len().min(limit);
                match self.member(input, &mut out[written..room]) {
                    Member::Done { consumed, written } => break (consumed, written),
                    Member::NoRoom if room < limit => grow(out, room * 2, limit),
                    Member::NoRoom | Member::Damaged => return None,
                }
            };
            written += member;
            input = &input[consumed..];
        }
        Some(written)
    }

    fn member(&mut self, input: &[u8], out: &mut [u8]) -> Member {
        let (mut consumed, mut written) = (0usize, 0usize);
        // SAFETY: the pointers and lengths describe live slices; libdeflate reads at most
        // `input.len()` bytes, writes at most `out.len()` bytes, and sets both counts on success.
        let result = unsafe {
            libdeflate_gzip_decompress_ex(
                self.decompressor.as_ptr(),
                input.as_ptr().cast(),
                input.len(),
                out.as_mut_ptr().cast(),
                out.len(),
                &mut consumed,
                &mut written,
            )
        };
        match result {
            SUCCESS if consumed > 0 && consumed <= input.len() => {
                Member::Done { consumed, written }
            }
            NO_ROOM => Member::NoRoom,
            _ => Member::Damaged,
        }
    }
}

impl Drop for Inflater {
    fn drop(&mut self) {
        // SAFETY: allocated by libdeflate_alloc_decompressor and freed only here.
        unsafe { libdeflate_free_decompressor(self.decompressor.as_ptr()) }
    }
}

enum Member {
    Done { consumed: usize, written: usize },
    NoRoom,
    Damaged,
}

/// ISIZE, the last four bytes of a gzip file: the size of its (last) member, modulo 4 GiB.
fn trailer_size(gzip: &[u8]) -> usize {
    match gzip.len().checked_sub(4).map(|start| &gzip[start..]) {
        Some(&[a, b, c, d]) => u32::from_le_bytes([a, b, c, d]) as usize,
        _ => 0,
    }
}

/// Grows `out` (zero-filled) to `wanted` bytes, at most `limit`; never shrinks it.
fn grow(out: &mut Vec<u8>, wanted: usize, limit: usize) {
    let wanted = wanted.min(limit);
    if out.len() < wanted {
        out.resize(wanted, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn inflates_every_member_and_grows_past_a_wrong_hint() {
        let first = b"{\"Records\":[]}".repeat(1000);
        let second = b"second member".to_vec();
        let mut file = gzip(&first);
        file.extend(gzip(&second));
        let mut inflater = Inflater::new().unwrap();
        let mut out = Vec::new();
        // The trailer names the last member's size (13 bytes): far too small for the first.
        let written = inflater.gzip(&file, &mut out, 1 << 20).unwrap();
        assert_eq!(&out[..written], [first, second].concat().as_slice());
    }

    #[test]
    fn a_lying_trailer_does_not_size_the_buffer() {
        // Poorly compressible text (about 2:1), its trailer rewritten to claim 4 GiB - 1.
        let data: Vec<u8> = (0..16 * 1024_u64)
            .flat_map(|n| {
                format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&n.to_le_bytes())).into_bytes()
            })
            .collect();
        let mut file = gzip(&data);
        let end = file.len();
        file[end - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
        let mut inflater = Inflater::new().unwrap();
        let mut out = Vec::new();
        assert_eq!(
            inflater.gzip(&file, &mut out, usize::MAX),
            None,
            "size mismatch"
        );
        // What the compressed size makes plausible, or what the content needed (doubling past
        // it at most), not the claim.
        let plausible = (HINT_RATIO * file.len()).max(2 * data.len());
        assert!(
            out.capacity() <= plausible,
            "{} bytes for {} of content",
            out.capacity(),
            data.len()
        );
    }

    #[test]
    fn refuses_damage_and_content_over_the_limit() {
        let data = b"0123456789".repeat(10_000);
        let file = gzip(&data);
        let mut inflater = Inflater::new().unwrap();
        let mut out = Vec::new();
        assert_eq!(inflater.gzip(&file, &mut out, 100_000), Some(100_000));
        assert_eq!(
            inflater.gzip(&file, &mut out, 99_999),
            None,
            "over the limit"
        );
        assert_eq!(
            inflater.gzip(&file[..file.len() - 9], &mut out, 1 << 20),
            None,
            "truncated"
        );
        let mut garbage = file.clone();
        garbage.extend(b"not gzip");
        assert_eq!(
            inflater.gzip(&garbage, &mut out, 1 << 20),
            None,
            "trailing garbage"
        );
        let mut corrupt = file.clone();
        let middle = corrupt.len() / 2;
        corrupt[middle] ^= 0xff;
        assert_eq!(
            inflater.gzip(&corrupt, &mut out, 1 << 20),
            None,
            "CRC or data error"
        );
    }
}
