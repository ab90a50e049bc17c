//! How a point's data is divided across its GPUs: contiguous ranges of elements (or matrix
//! rows), as even as the granule allows, one per device, none empty.
//!
//! Element-wise kernels and reductions split their arrays; the transpose and the matrix products
//! split the rows of their input (the transpose's output columns, the product's A and C) and copy
//! whatever every part needs (B) to every device. The granule keeps each part a whole number of
//! the kernel's tiles (128 rows for the register-blocked SGEMM), so no device needs edge code.

use std::ops::Range;

/// Split `n` items into `parts` contiguous ranges whose lengths are multiples of `granule`
/// (except the last, which takes the remainder), as even as possible: the first ones get one
/// granule more. Errors when some part would be empty.
pub fn split(n: usize, parts: usize, granule: usize) -> Result<Vec<Range<usize>>, String> {
    let parts = parts.max(1);
    let granule = granule.max(1);
    let units = n.div_ceil(granule);
    if units < parts {
        return Err(format!(
            "{n} items cannot be split over {parts} GPUs in pieces of at least {granule}; use a \
             size of at least {} or fewer GPUs",
            parts * granule
        ));
    }
    let (base, extra) = (units / parts, units % parts);
    let mut start = 0;
    Ok((0..parts)
        .map(|p| {
            let len = (base + usize::from(p < extra)) * granule;
            let end = (start + len).min(n);
            let r = start..end;
            start = end;
            r
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_contiguous_even_and_cover_everything() {
        assert_eq!(split(10, 3, 1).unwrap(), vec![0..4, 4..7, 7..10]);
        assert_eq!(split(10, 1, 1).unwrap(), vec![0..10]);
        assert_eq!(split(12, 4, 1).unwrap(), vec![0..3, 3..6, 6..9, 9..12]);
        for (n, p, g) in [
            (1000, 3, 7),
            (4096, 8, 128),
            (1 << 20, 5, 256),
            (129, 2, 128),
        ] {
            let parts = split(n, p, g).unwrap();
            assert_eq!(parts.len(), p);
            assert_eq!(parts[0].start, 0);
            assert_eq!(parts[p - 1].end, n);
            for w in parts.windows(2) {
                assert_eq!(w[0].end, w[1].start);
            }
            for r in &parts[..p - 1] {
                assert_eq!(r.len() % g, 0, "{n} {p} {g}: {parts:?}");
            }
            let (min, max) = parts.iter().fold((usize::MAX, 0), |(a, b), r| {
                (a.min(r.len()), b.max(r.len()))
            });
            // Even up to one granule, plus the remainder the last part lacks.
            assert!(min > 0 && max - min < 2 * g, "{parts:?}");
        }
    }

    #[test]
    fn rows_of_a_matrix_split_in_whole_tiles() {
        assert_eq!(
            split(8192, 3, 128).unwrap(),
            vec![0..2816, 2816..5504, 5504..8192]
        );
    }

    #[test]
    fn too_few_items_is_an_error_with_the_fix() {
        assert_eq!(
            split(100, 2, 128).unwrap_err(),
            "100 items cannot be split over 2 GPUs in pieces of at least 128; use a size of at \
             least 256 or fewer GPUs"
        );
    }
}
