//! Where a byte the script readers stop at stands beside a byte their grammar allows,
//! searched 64 bytes at a time.
//!
//! The batch reader stops at every `\n`, `&`, `|` and Ctrl-Z, the ex reader at every `!`,
//! the vim register reader at every `@` and `*`. Those bytes are the low bytes of common
//! CT values (24 for air, 1064 for soft tissue, each ± noise: 0x0A, 0x1A, 0x21, 0x26,
//! 0x2A and 0x40 are each a few percent of the pixels), so a `memchr` search for them
//! stopped every 30 to 80 bytes, and each stop was turned away at once by the byte beside
//! it (a high byte, 0x00 to 0x0F): `memchr`'s searches were 23% of `scan`'s samples on a
//! CT tree (review r26-speed), almost all of it the cost of stopping.
//!
//! [`positions`] asks for the pair at once: a block of 64 bytes is first tested whole,
//! with byte comparisons the compiler turns into vector instructions (no early exit, so
//! no stop), and only a block holding a pair the reader could start at is looked at byte
//! by byte. The neighbour test each reader passes is a necessary condition of its own
//! first look-up (every byte its table accepts passes it), so the positions yielded are
//! a superset of those the reader went on to read before: the reader still applies its
//! own test to each, and finds what it found when it stopped at every trigger byte.

/// The bytes of a block tested at once.
const BLOCK: usize = 64;

/// Which neighbour of a trigger byte the reader looks at first.
#[derive(Clone, Copy)]
pub(crate) enum Beside {
    /// The byte before it (the ex reader's `!`); a trigger at the slice's start has none
    /// and is always yielded.
    Before,
    /// The byte after it (the batch reader's separators, vim's `@r`); a trigger on the
    /// slice's last byte has none and is always yielded.
    After,
}

/// The lowest byte a reader's table of neighbours holds (`u8::MAX` for an empty table):
/// every byte the table holds passes the neighbour test `b >= lowest(table)`, by
/// construction, so the test never turns away a pair the table would accept.
pub(crate) const fn lowest(table: &[bool; 256]) -> u8 {
    let mut b = 0;
    while b < 255 && !table[b] {
        b += 1;
    }
    b as u8
}

/// Every offset `at` of `bytes`, in increasing order, where `trigger(bytes[at])` holds
/// and the neighbour on the side `beside` is missing or passes `neighbour`.
///
/// Both tests must be pure functions of one byte: each block is tested for any such
/// pair before its offsets are, and the two must agree.
pub(crate) fn positions<'a, T, N>(
    bytes: &'a [u8],
    beside: Beside,
    trigger: T,
    neighbour: N,
) -> impl Iterator<Item = usize> + 'a
where
    T: Fn(u8) -> bool + Copy + 'a,
    N: Fn(u8) -> bool + Copy + 'a,
{
    let is_pair = move |at: usize| {
        trigger(bytes[at])
            && match beside {
                Beside::Before => at == 0 || neighbour(bytes[at - 1]),
                Beside::After => bytes.get(at + 1).is_none_or(|&b| neighbour(b)),
            }
    };
    // Blocks whose every offset has both neighbours in the slice are tested whole; the
    // first and last few bytes (at most a block and one byte) one by one.
    let inner_start = 1;
    let inner_blocks = bytes.len().saturating_sub(2) / BLOCK;
    let inner_end = inner_start + inner_blocks * BLOCK;
    let head = 0..inner_start.min(bytes.len());
    let trigger_bytes = TriggerBytes::of(trigger);
    let block_start = move |block: usize| inner_start + block * BLOCK;
    let inner = (0..inner_blocks)
        .step_by(CHUNK_BLOCKS)
        // A run of blocks without any trigger byte (zeros, text without one) is passed
        // over by one `memchr` search: the blocks' own test is as fast in a release
        // build, but about twenty times slower per byte in a debug build, where this
        // crate is not optimized and `memchr` is (a 256 MiB sparse test file took
        // seconds more per reader).
        .filter(move |&first| {
            let last = (first + CHUNK_BLOCKS).min(inner_blocks);
            trigger_bytes.occur_in(&bytes[block_start(first)..block_start(last)])
        })
        .flat_map(move |first| first..(first + CHUNK_BLOCKS).min(inner_blocks))
        .map(block_start)
        .filter(move |&start| {
            let (own, other) = match beside {
                Beside::Before => (&bytes[start..start + BLOCK], &bytes[start - 1..]),
                Beside::After => (&bytes[start..start + BLOCK], &bytes[start + 1..]),
            };
            block_has_pair(own, other, trigger, neighbour)
        })
        .flat_map(move |start| start..start + BLOCK);
    let tail = inner_end.max(head.end)..bytes.len();
    head.chain(inner).chain(tail).filter(move |&at| is_pair(at))
}

/// The blocks a `memchr` search for the trigger bytes looks at before any is tested.
const CHUNK_BLOCKS: usize = 64;

/// The bytes a trigger test accepts, found from the test itself (one source of truth),
/// when there are at most three (what `memchr` searches for at once).
#[derive(Clone, Copy)]
enum TriggerBytes {
    Few([u8; 3], usize),
    Many,
}

impl TriggerBytes {
    fn of(trigger: impl Fn(u8) -> bool) -> TriggerBytes {
        let mut few = [0u8; 3];
        let mut count = 0;
        for b in 0..=u8::MAX {
            if trigger(b) {
                if count == few.len() {
                    return TriggerBytes::Many;
                }
                few[count] = b;
                count += 1;
            }
        }
        TriggerBytes::Few(few, count)
    }

    /// Whether one of the bytes occurs in `part` (`true` when there are too many to
    /// search for: the blocks are then tested).
    fn occur_in(self, part: &[u8]) -> bool {
        match self {
            TriggerBytes::Few(_, 0) => false,
            TriggerBytes::Few([a, _, _], 1) => memchr::memchr(a, part).is_some(),
            TriggerBytes::Few([a, b, _], 2) => memchr::memchr2(a, b, part).is_some(),
            TriggerBytes::Few([a, b, c], _) => memchr::memchr3(a, b, c, part).is_some(),
            TriggerBytes::Many => true,
        }
    }
}

/// Whether some `i < BLOCK` has `trigger(own[i])` and `neighbour(other[i])`: one pass
/// without an early exit over fixed-size arrays, which the compiler vectorizes.
fn block_has_pair<T, N>(own: &[u8], other: &[u8], trigger: T, neighbour: N) -> bool
where
    T: Fn(u8) -> bool,
    N: Fn(u8) -> bool,
{
    let (Some(own), Some(other)) = (own.first_chunk::<BLOCK>(), other.first_chunk::<BLOCK>())
    else {
        // Not reached (the caller slices whole blocks); looking at every byte is right.
        return true;
    };
    let mut any = 0u8;
    for i in 0..BLOCK {
        any |= u8::from(trigger(own[i])) & u8::from(neighbour(other[i]));
    }
    any != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What [`positions`] must yield, one byte at a time.
    fn naive(
        bytes: &[u8],
        beside: Beside,
        trigger: fn(u8) -> bool,
        neighbour: fn(u8) -> bool,
    ) -> Vec<usize> {
        (0..bytes.len())
            .filter(|&at| {
                trigger(bytes[at])
                    && match beside {
                        Beside::Before => at == 0 || neighbour(bytes[at - 1]),
                        Beside::After => at + 1 == bytes.len() || neighbour(bytes[at + 1]),
                    }
            })
            .collect()
    }

    fn bang(b: u8) -> bool {
        b == b'!'
    }

    fn printable(b: u8) -> bool {
        b >= 0x09
    }

    #[test]
    fn every_pair_is_found_at_every_alignment_and_length() {
        for len in 0..200 {
            for at in 0..len {
                for beside in [Beside::Before, Beside::After] {
                    // Pixel-like bytes (a trigger beside a low byte, turned away) and
                    // one pair that must be found.
                    let mut bytes: Vec<u8> = (0..len)
                        .map(|i| if i % 2 == 0 { b'!' } else { 4 })
                        .collect();
                    bytes[at] = b'!';
                    match beside {
                        Beside::Before if at > 0 => bytes[at - 1] = b'\n',
                        Beside::After if at + 1 < len => bytes[at + 1] = b'x',
                        _ => {}
                    }
                    let found: Vec<usize> = positions(&bytes, beside, bang, printable).collect();
                    assert_eq!(
                        found,
                        naive(&bytes, beside, bang, printable),
                        "len {len}, at {at}"
                    );
                    assert!(found.contains(&at), "len {len}, at {at}");
                }
            }
        }
    }

    #[test]
    fn a_lone_pair_in_zeros_is_found_at_chunk_and_block_edges() {
        // Zeros hold no trigger: every chunk but the pair's is passed over by `memchr`.
        let chunk = CHUNK_BLOCKS * BLOCK;
        let len = 3 * chunk + 130;
        let edges = [
            0,
            1,
            2,
            63,
            64,
            65,
            66,
            chunk - 1,
            chunk,
            chunk + 1,
            chunk + 2,
        ];
        let far = [
            2 * chunk,
            2 * chunk + 1,
            3 * chunk,
            3 * chunk + 1,
            len - 2,
            len - 1,
        ];
        for &at in edges.iter().chain(&far) {
            for beside in [Beside::Before, Beside::After] {
                let mut bytes = vec![0u8; len];
                bytes[at] = b'!';
                match beside {
                    Beside::Before if at > 0 => bytes[at - 1] = b'\n',
                    Beside::After if at + 1 < len => bytes[at + 1] = b'x',
                    _ => {}
                }
                let found: Vec<usize> = positions(&bytes, beside, bang, printable).collect();
                assert_eq!(found, vec![at], "at {at}");
            }
        }
    }

    #[test]
    fn pseudo_random_bytes_give_the_naive_positions() {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let bytes: Vec<u8> = (0..100_003)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 32) as u8 & 0x3f
            })
            .collect();
        for beside in [Beside::Before, Beside::After] {
            let found: Vec<usize> = positions(&bytes, beside, bang, printable).collect();
            assert_eq!(found, naive(&bytes, beside, bang, printable));
            assert!(!found.is_empty());
        }
    }
}
