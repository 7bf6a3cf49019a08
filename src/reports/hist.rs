//! Duration histograms for the daily rollups: exact seconds below 100 s, then buckets 1%
//! wide, so a median or 90th percentile read from them is within 0.5% of the true one.
//! Stored sparse (bucket, count) in a blob; merged dense.

use crate::model::Millis;

const EXACT: i64 = 100;
const GROWTH: f64 = 1.01;
/// Buckets up to ~11 years.
pub const BUCKETS: usize = 1800;

/// The bucket of a duration.
pub fn bucket(ms: Millis) -> usize {
    let s = ms.max(0) / 1000;
    if s < EXACT {
        return s as usize;
    }
    let k = ((s as f64 / EXACT as f64).ln() / GROWTH.ln()).floor() as usize;
    (EXACT as usize + k).min(BUCKETS - 1)
}

/// The duration a bucket stands for (its geometric middle), ms.
pub fn value(bucket: usize) -> Millis {
    if bucket < EXACT as usize {
        return bucket as Millis * 1000;
    }
    let k = (bucket - EXACT as usize) as f64;
    (EXACT as f64 * GROWTH.powf(k) * GROWTH.sqrt() * 1000.0).round() as Millis
}

/// Add one duration to a sparse blob.
pub fn add(blob: Option<&[u8]>, ms: Millis) -> Vec<u8> {
    adjust(blob, ms, 1)
}

/// Add (`delta` 1) or take away (-1) one duration of a sparse blob.
pub fn adjust(blob: Option<&[u8]>, ms: Millis, delta: i64) -> Vec<u8> {
    let b = bucket(ms) as u16;
    let mut pairs = decode(blob.unwrap_or(&[]));
    match pairs.binary_search_by_key(&b, |p| p.0) {
        Ok(i) => {
            if let Some(p) = pairs.get_mut(i) {
                p.1 = (i64::from(p.1) + delta).clamp(0, i64::from(u32::MAX)) as u32;
                if p.1 == 0 {
                    pairs.remove(i);
                }
            }
        }
        Err(i) if delta > 0 => pairs.insert(i, (b, delta.min(i64::from(u32::MAX)) as u32)),
        Err(_) => {}
    }
    encode(&pairs)
}

fn decode(blob: &[u8]) -> Vec<(u16, u32)> {
    blob.chunks_exact(6)
        .map(|c| {
            let b = u16::from_le_bytes([c[0], c[1]]);
            let n = u32::from_le_bytes([c[2], c[3], c[4], c[5]]);
            (b, n)
        })
        .collect()
}

fn encode(pairs: &[(u16, u32)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(pairs.len() * 6);
    for (b, n) in pairs {
        out.extend_from_slice(&b.to_le_bytes());
        out.extend_from_slice(&n.to_le_bytes());
    }
    out
}

/// A histogram being summed up.
#[derive(Debug, Clone)]
pub struct Dense {
    counts: Vec<u64>,
    n: u64,
}

impl Default for Dense {
    fn default() -> Self {
        Dense {
            counts: vec![0; BUCKETS],
            n: 0,
        }
    }
}

impl Dense {
    pub fn merge(&mut self, blob: &[u8]) {
        for c in blob.chunks_exact(6) {
            let b = usize::from(u16::from_le_bytes([c[0], c[1]]));
            let n = u64::from(u32::from_le_bytes([c[2], c[3], c[4], c[5]]));
            if let Some(slot) = self.counts.get_mut(b) {
                *slot += n;
                self.n += n;
            }
        }
    }

    pub fn add(&mut self, ms: Millis) {
        if let Some(c) = self.counts.get_mut(bucket(ms)) {
            *c += 1;
            self.n += 1;
        }
    }

    pub fn count(&self) -> u64 {
        self.n
    }

    /// The nearest-rank quantile `p` (0 < p ≤ 1).
    pub fn quantile(&self, p: f64) -> Option<Millis> {
        if self.n == 0 {
            return None;
        }
        let rank = ((p * self.n as f64).ceil() as u64).clamp(1, self.n);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(value(i));
            }
        }
        None
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_stands_for_its_durations_within_half_a_percent() {
        for s in [
            0i64,
            1,
            59,
            99,
            100,
            101,
            1800,
            3600,
            86_400,
            30 * 86_400,
            365 * 86_400,
        ] {
            let v = value(bucket(s * 1000)) as f64 / 1000.0;
            let err = (v - s as f64).abs() / (s.max(1) as f64);
            assert!(err <= 0.0051, "{s}s -> {v}s");
        }
        assert_eq!(value(bucket(42_000)), 42_000, "exact below 100 s");
        assert!(bucket(i64::MAX) < BUCKETS);
        assert_eq!(bucket(-5), 0);
    }

    #[test]
    fn blobs_count_and_merge() {
        let mut blob = add(None, 5_000);
        for ms in [5_000, 3_600_000, 7_000] {
            blob = add(Some(&blob), ms);
        }
        let mut d = Dense::default();
        d.merge(&blob);
        d.add(10_000);
        assert_eq!(d.count(), 5);
        assert_eq!(d.quantile(0.5), Some(7_000));
        assert_eq!(d.quantile(0.2), Some(5_000));
        let p90 = d.quantile(0.9).unwrap();
        assert!((p90 - 3_600_000).abs() < 3_600_000 / 200, "{p90}");
        assert_eq!(Dense::default().quantile(0.5), None);
        // Taking them away again leaves nothing.
        let mut b = blob.clone();
        for ms in [5_000, 5_000, 3_600_000, 7_000] {
            b = adjust(Some(&b), ms, -1);
        }
        assert!(b.is_empty());
        assert_eq!(adjust(Some(&b), 1_000, -1), Vec::<u8>::new());
    }
}
