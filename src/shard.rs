//! `--shard K/N`: keeps one of N stable, disjoint parts of the targets, so one list can be
//! spread over many machines.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// FNV-1a's 64-bit offset basis.
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a's 64-bit prime.
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// One part of N, numbered from 0 as Kubernetes' `JOB_COMPLETION_INDEX` and most
/// schedulers number their workers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Shard {
    index: u64,
    count: u64,
}

impl Shard {
    /// Parses `K/N` with `0 <= K < N`.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let Some((index, count)) = text.trim().split_once('/') else {
            return Err(format!(
                "'{text}' is not K/N (e.g. 0/4: the first of four shards)"
            ));
        };
        let number = |part: &str| {
            part.trim()
                .parse::<u64>()
                .map_err(|_| format!("'{part}' in '{text}' is not a whole number"))
        };
        let (index, count) = (number(index)?, number(count)?);
        if count == 0 {
            return Err("N must be at least 1".to_owned());
        }
        if index >= count {
            let numbered = match count {
                1 => "so the one shard is 0/1".to_owned(),
                _ => format!("so {count} shards are 0/{count} to {}/{count}", count - 1),
            };
            return Err(format!(
                "K must be below N: shards are numbered from 0, {numbered}"
            ));
        }
        Ok(Shard { index, count })
    }

    /// Whether the target written `text` falls in this shard.
    pub(crate) fn owns(&self, text: &str) -> bool {
        fnv1a_64(&[text.as_bytes()]) % self.count == self.index
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// FNV-1a, 64 bits, of `parts` one after the other: tiny, and the same on every machine,
/// run, architecture and Rust version, which the standard library's hashers do not promise.
pub(crate) fn fnv1a_64(parts: &[&[u8]]) -> u64 {
    parts
        .iter()
        .flat_map(|part| part.iter())
        .fold(FNV_OFFSET, |hash, &byte| {
            (hash ^ u64::from(byte)).wrapping_mul(FNV_PRIME)
        })
}

/// Decides which entries of the input this run checks, and counts those left to other shards.
#[derive(Clone, Debug, Default)]
pub(crate) struct ShardFilter {
    shard: Option<Shard>,
    others: Arc<AtomicU64>,
}

impl ShardFilter {
    /// Keeps everything when `shard` is `None`.
    pub(crate) fn new(shard: Option<Shard>) -> Self {
        ShardFilter {
            shard,
            others: Arc::default(),
        }
    }

    /// Whether this run checks the entry written `text`; counts it when it does not.
    pub(crate) fn keeps(&self, text: &str) -> bool {
        let kept = self.shard.is_none_or(|shard| shard.owns(text));
        if !kept {
            self.others.fetch_add(1, Ordering::Relaxed);
        }
        kept
    }

    /// Entries left to other shards so far.
    pub(crate) fn others(&self) -> u64 {
        self.others.load(Ordering::Relaxed)
    }

    /// The shard kept, if the run is sharded.
    pub(crate) fn shard(&self) -> Option<Shard> {
        self.shard
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shard_past_the_last_says_which_there_are() {
        assert!(Shard::parse("2/1")
            .unwrap_err()
            .ends_with("so the one shard is 0/1"));
        assert!(Shard::parse("3/3")
            .unwrap_err()
            .ends_with("so 3 shards are 0/3 to 2/3"));
    }

    #[test]
    fn fnv1a_matches_the_published_vectors() {
        // From the FNV reference test suite (Fowler, Noll, Vo).
        assert_eq!(fnv1a_64(&[b""]), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a_64(&[b"a"]), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a_64(&[b"foo", b"bar"]), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn assignments_never_change() {
        // Pinned: a shard's targets must stay the same across releases, or a fleet
        // upgraded machine by machine would check some targets twice and others never.
        let shard_of = |text: &str| fnv1a_64(&[text.as_bytes()]) % 4;
        assert_eq!(shard_of("https://example.com/health"), 2);
        assert_eq!(shard_of("tcp://db.internal:5432"), 1);
    }

    #[test]
    fn every_target_is_in_exactly_one_shard() {
        for count in 1..=7 {
            for n in 0..200 {
                let text = format!("http://host{n}.test/");
                let owners = (0..count)
                    .filter(|&index| Shard { index, count }.owns(&text))
                    .count();
                assert_eq!(owners, 1, "{text} in {count} shards");
            }
        }
    }

    #[test]
    fn shards_are_zero_based_and_checked() {
        assert_eq!(Shard::parse("0/4"), Ok(Shard { index: 0, count: 4 }));
        assert_eq!(Shard::parse(" 3 / 4 "), Ok(Shard { index: 3, count: 4 }));
        assert_eq!(Shard::parse("0/1").map(|s| s.to_string()), Ok("0/1".into()));
        assert!(Shard::parse("4/4").unwrap_err().contains("0/4 to 3/4"));
        assert!(Shard::parse("0/0").unwrap_err().contains("at least 1"));
        assert!(Shard::parse("2").unwrap_err().contains("not K/N"));
        assert!(Shard::parse("a/4").unwrap_err().contains("'a'"));
        assert!(Shard::parse("-1/4").unwrap_err().contains("'-1'"));
    }

    #[test]
    fn the_filter_counts_what_it_leaves_out() {
        let filter = ShardFilter::new(Some(Shard { index: 0, count: 2 }));
        let kept = (0..100)
            .filter(|n| filter.keeps(&format!("http://host{n}.test/")))
            .count() as u64;
        assert!(kept > 0 && filter.others() > 0);
        assert_eq!(kept + filter.others(), 100);
        let everything = ShardFilter::new(None);
        assert!(everything.keeps("anything") && everything.others() == 0);
    }
}
