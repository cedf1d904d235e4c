//! RFC 6962 Merkle trees: hashing, an append-only frontier, and proofs.
//!
//! Verification follows the algorithms of RFC 9162 §2.1.3.2 (inclusion) and §2.1.4.2
//! (consistency). Every input a verifier gets may come from an attacker: hashes of the
//! wrong length, sizes out of range and proofs of the wrong length are errors, never
//! panics. One exception, as the published vectors require: a consistency "proof" between
//! two trees of the same size only compares the two roots byte for byte.

use sha2::{Digest as _, Sha256};

/// A SHA-256 tree hash.
pub type Hash = [u8; 32];

/// Proofs longer than this cannot belong to any tree of at most 2^64 leaves.
pub const MAX_PROOF_LEN: usize = 64;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("a hash is {0} bytes long, not 32")]
    BadHashLength(usize),
    #[error("leaf index {index} is not inside a tree of size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("tree size {size1} is larger than tree size {size2}")]
    SizesReversed { size1: u64, size2: u64 },
    #[error("a consistency proof from the empty tree proves nothing")]
    EmptyFirstTree,
    #[error("the proof has {got} hashes, a tree of this shape needs {want}")]
    WrongProofLength { got: usize, want: usize },
    #[error("the proof does not lead to the given root")]
    RootMismatch,
}

/// SHA-256(0x00 ‖ data): the hash of one record.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// SHA-256(0x01 ‖ left ‖ right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the empty tree: SHA-256 of nothing.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The largest power of two strictly smaller than `n` (n ≥ 2).
fn split_point(n: usize) -> usize {
    debug_assert!(n >= 2);
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// MTH over leaf hashes (RFC 6962 §2.1). O(n); use [`Frontier`] for a growing log.
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split_point(n);
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// The audit path of leaf `index` (RFC 6962 §2.1.1, PATH).
pub fn inclusion_proof(leaves: &[Hash], index: u64) -> Result<Vec<Hash>, ProofError> {
    let size = leaves.len() as u64;
    let m = usize::try_from(index)
        .ok()
        .filter(|&m| m < leaves.len())
        .ok_or(ProofError::IndexOutOfRange { index, size })?;
    let mut proof = Vec::new();
    path(m, leaves, &mut proof);
    Ok(proof)
}

fn path(m: usize, leaves: &[Hash], out: &mut Vec<Hash>) {
    let n = leaves.len();
    if n <= 1 {
        return;
    }
    let k = split_point(n);
    if m < k {
        path(m, &leaves[..k], out);
        out.push(root(&leaves[k..]));
    } else {
        path(m - k, &leaves[k..], out);
        out.push(root(&leaves[..k]));
    }
}

/// The consistency proof between the first `size1` leaves and all of `leaves`
/// (RFC 6962 §2.1.2, PROOF).
pub fn consistency_proof(leaves: &[Hash], size1: u64) -> Result<Vec<Hash>, ProofError> {
    let size2 = leaves.len() as u64;
    if size1 > size2 {
        return Err(ProofError::SizesReversed { size1, size2 });
    }
    if size1 == 0 {
        return Err(ProofError::EmptyFirstTree);
    }
    let mut proof = Vec::new();
    subproof(size1 as usize, leaves, true, &mut proof);
    Ok(proof)
}

fn subproof(m: usize, leaves: &[Hash], complete: bool, out: &mut Vec<Hash>) {
    let n = leaves.len();
    if m == n {
        if !complete {
            out.push(root(leaves));
        }
        return;
    }
    let k = split_point(n);
    if m <= k {
        subproof(m, &leaves[..k], complete, out);
        out.push(root(&leaves[k..]));
    } else {
        subproof(m - k, &leaves[k..], false, out);
        out.push(root(&leaves[..k]));
    }
}

fn to_hash(bytes: &[u8]) -> Result<Hash, ProofError> {
    bytes
        .try_into()
        .map_err(|_| ProofError::BadHashLength(bytes.len()))
}

/// Verifies that `leaf` (a leaf hash) is entry `index` of the tree of `size` with `root`.
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &[u8],
    proof: &[impl AsRef<[u8]>],
    root: &[u8],
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    if proof.len() > MAX_PROOF_LEN {
        return Err(ProofError::WrongProofLength {
            got: proof.len(),
            want: MAX_PROOF_LEN,
        });
    }
    let root = to_hash(root)?;
    let mut r = to_hash(leaf)?;
    let (mut fn_, mut sn) = (index, size - 1);
    for p in proof {
        let p = to_hash(p.as_ref())?;
        if sn == 0 {
            return Err(ProofError::WrongProofLength {
                got: proof.len(),
                want: inclusion_len(index, size),
            });
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(&p, &r);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            r = node_hash(&r, &p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::WrongProofLength {
            got: proof.len(),
            want: inclusion_len(index, size),
        });
    }
    if r != root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// The length an inclusion proof for `index` in a tree of `size` must have.
fn inclusion_len(index: u64, size: u64) -> usize {
    let (mut fn_, mut sn, mut len) = (index, size.saturating_sub(1), 0);
    while sn != 0 {
        if fn_ & 1 == 1 || fn_ == sn {
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        }
        fn_ >>= 1;
        sn >>= 1;
        len += 1;
    }
    len
}

/// Verifies that the tree of `size2` with `root2` extends the tree of `size1` with `root1`.
pub fn verify_consistency(
    size1: u64,
    size2: u64,
    proof: &[impl AsRef<[u8]>],
    root1: &[u8],
    root2: &[u8],
) -> Result<(), ProofError> {
    if size1 > size2 {
        return Err(ProofError::SizesReversed { size1, size2 });
    }
    if size1 == 0 {
        return Err(ProofError::EmptyFirstTree);
    }
    if proof.len() > MAX_PROOF_LEN {
        return Err(ProofError::WrongProofLength {
            got: proof.len(),
            want: MAX_PROOF_LEN,
        });
    }
    if size1 == size2 {
        // The same tree: nothing to prove but that the two roots are the same bytes (the
        // published vectors accept this whatever the roots' length).
        if !proof.is_empty() {
            return Err(ProofError::WrongProofLength {
                got: proof.len(),
                want: 0,
            });
        }
        return if root1 == root2 {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        };
    }
    let (root1, root2) = (to_hash(root1)?, to_hash(root2)?);
    let mut path: Vec<Hash> = proof
        .iter()
        .map(|p| to_hash(p.as_ref()))
        .collect::<Result<_, _>>()?;
    if path.is_empty() {
        return Err(ProofError::WrongProofLength { got: 0, want: 1 });
    }
    if size1.is_power_of_two() {
        path.insert(0, root1);
    }
    let (mut fn_, mut sn) = (size1 - 1, size2 - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if sn == 0 {
            return Err(ProofError::WrongProofLength {
                got: proof.len(),
                want: proof.len() - 1,
            });
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::WrongProofLength {
            got: proof.len(),
            want: proof.len() + 1,
        });
    }
    if fr != root1 || sr != root2 {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// The right edge of a growing tree: the roots of its perfect subtrees, largest first.
/// Appending is amortised O(1), the root O(log n), memory O(log n): what an append-only
/// log needs to sign a checkpoint after every batch without rereading its records.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// (subtree size, subtree root), sizes strictly decreasing powers of two.
    peaks: Vec<(u64, Hash)>,
}

impl Frontier {
    pub fn new() -> Self {
        Frontier::default()
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Rebuilds a frontier from its size and the roots of its perfect subtrees (largest
    /// first), as [`Frontier::peaks`] returns them; `None` if they cannot belong together.
    pub fn from_peaks(size: u64, peaks: &[Hash]) -> Option<Frontier> {
        if peaks.len() != size.count_ones() as usize {
            return None;
        }
        let sizes = (0..64)
            .rev()
            .map(|bit| 1u64 << bit)
            .filter(|s| size & s != 0);
        Some(Frontier {
            size,
            peaks: sizes.zip(peaks.iter().copied()).collect(),
        })
    }

    /// The roots of the perfect subtrees, largest first.
    pub fn peaks(&self) -> Vec<Hash> {
        self.peaks.iter().map(|(_, hash)| *hash).collect()
    }

    /// Appends a leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        let mut node = (1u64, leaf);
        while let Some(&(size, hash)) = self.peaks.last() {
            if size != node.0 {
                break;
            }
            self.peaks.pop();
            node = (size * 2, node_hash(&hash, &node.1));
        }
        self.peaks.push(node);
        self.size += 1;
    }

    /// MTH of everything appended so far.
    pub fn root(&self) -> Hash {
        let mut peaks = self.peaks.iter().rev();
        match peaks.next() {
            None => empty_root(),
            Some(&(_, last)) => peaks.fold(last, |acc, (_, left)| node_hash(left, &acc)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_point_is_the_largest_smaller_power_of_two() {
        assert_eq!([2, 3, 4, 5, 8, 9].map(split_point), [1, 2, 2, 4, 4, 8]);
    }

    #[test]
    fn the_frontier_agrees_with_the_recursive_definition() {
        let leaves: Vec<Hash> = (0..70u32).map(|i| leaf_hash(&i.to_le_bytes())).collect();
        let mut frontier = Frontier::new();
        assert_eq!(frontier.root(), empty_root());
        for n in 1..=leaves.len() {
            frontier.push(leaves[n - 1]);
            assert_eq!(frontier.root(), root(&leaves[..n]), "size {n}");
        }
    }

    #[test]
    fn a_frontier_rebuilt_from_its_peaks_continues_identically() {
        let leaves: Vec<Hash> = (0..40u32).map(|i| leaf_hash(&i.to_le_bytes())).collect();
        let mut frontier = Frontier::new();
        for (n, leaf) in leaves.iter().enumerate() {
            let mut resumed =
                Frontier::from_peaks(frontier.size(), &frontier.peaks()).expect("resumes");
            assert_eq!(resumed, frontier, "size {n}");
            resumed.push(*leaf);
            frontier.push(*leaf);
            assert_eq!(resumed.root(), frontier.root());
        }
        assert!(Frontier::from_peaks(3, &[[0; 32]]).is_none());
    }

    #[test]
    fn generated_proofs_verify_and_tampered_ones_do_not() {
        let leaves: Vec<Hash> = (0..23u32).map(|i| leaf_hash(&i.to_le_bytes())).collect();
        for size in 1..=leaves.len() {
            let tree = &leaves[..size];
            let r = root(tree);
            for index in 0..size as u64 {
                let proof = inclusion_proof(tree, index).expect("proof");
                assert_eq!(proof.len(), inclusion_len(index, size as u64));
                verify_inclusion(index, size as u64, &tree[index as usize], &proof, &r)
                    .expect("verifies");
                if let Some(first) = proof.first() {
                    let mut bad = proof.clone();
                    bad[0][0] ^= 1;
                    assert!(
                        verify_inclusion(index, size as u64, &tree[index as usize], &bad, &r)
                            .is_err()
                    );
                    // A sibling is not the leaf.
                    assert!(verify_inclusion(index, size as u64, first, &proof, &r).is_err());
                }
            }
            for size1 in 1..=size as u64 {
                let proof = consistency_proof(tree, size1).expect("proof");
                let r1 = root(&tree[..size1 as usize]);
                verify_consistency(size1, size as u64, &proof, &r1, &r).expect("consistent");
                if size1 < size as u64 {
                    let mut bad = proof.clone();
                    let last = bad.len() - 1;
                    bad[last][31] ^= 0x80;
                    assert!(verify_consistency(size1, size as u64, &bad, &r1, &r).is_err());
                }
            }
        }
    }
}
