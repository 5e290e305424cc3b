//! Parsing the same bytes once. A recording repeats itself: an agent's
//! events and decisions are a handful of distinct lines (a status flapping
//! on and off, the alarm it raises and clears), each written thousands of
//! times. A replay that parses each line as it comes spends most of its time
//! parsing the same bytes again; [`ParseMemo`] keeps what the last distinct
//! ones parsed to, so a line met before is looked up, not parsed.
//!
//! Bytes equal to ones that parsed are the same well-formed message: a
//! memoized line is checked as surely as a parsed one. Memory is bounded:
//! at most [`ParseMemo::new`]'s number of entries, each of bytes no longer
//! than its limit (longer ones are parsed every time); when full, the memo
//! starts over (a recording with more distinct lines than that gains
//! nothing, and loses a hash per line).

use rustc_hash::FxHashMap;

/// A bounded map from bytes to what they parsed to.
#[derive(Debug)]
pub struct ParseMemo<T> {
    parsed: FxHashMap<Box<[u8]>, T>,
    entries: usize,
    longest: usize,
}

impl<T: Clone> ParseMemo<T> {
    /// A memo of at most `entries` distinct byte strings of at most `longest` bytes each.
    pub fn new(entries: usize, longest: usize) -> Self {
        ParseMemo {
            parsed: FxHashMap::default(),
            entries,
            longest,
        }
    }

    /// What `bytes` parse to: remembered, else `parse(bytes)` (remembered
    /// if it succeeds). An error is never remembered.
    pub fn get_or_parse<E>(
        &mut self,
        bytes: &[u8],
        parse: impl FnOnce(&[u8]) -> Result<T, E>,
    ) -> Result<T, E> {
        if let Some(known) = self.parsed.get(bytes) {
            return Ok(known.clone());
        }
        let parsed = parse(bytes)?;
        if bytes.len() <= self.longest && self.entries > 0 {
            if self.parsed.len() >= self.entries {
                self.parsed.clear();
            }
            self.parsed.insert(bytes.into(), parsed.clone());
        }
        Ok(parsed)
    }

    /// How many byte strings are remembered.
    pub fn len(&self) -> usize {
        self.parsed.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.parsed.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_bytes_are_parsed_once_and_errors_are_not_kept() {
        let mut memo = ParseMemo::<u64>::new(2, 8);
        let mut calls = 0;
        let mut parse = |b: &[u8]| {
            memo.get_or_parse(b, |b| {
                calls += 1;
                std::str::from_utf8(b)
                    .map_err(|_| ())
                    .and_then(|s| s.parse::<u64>().map_err(|_| ()))
            })
        };
        assert_eq!(parse(b"12"), Ok(12));
        assert_eq!(parse(b"12"), Ok(12));
        assert_eq!(parse(b"x"), Err(()));
        assert_eq!(parse(b"x"), Err(()));
        // Longer than the limit: parsed each time.
        assert_eq!(parse(b"123456789"), Ok(123_456_789));
        assert_eq!(parse(b"123456789"), Ok(123_456_789));
        assert_eq!(calls, 5);
    }

    #[test]
    fn a_full_memo_starts_over() {
        let mut memo = ParseMemo::<usize>::new(2, 8);
        for b in [&b"a"[..], b"bb", b"ccc"] {
            memo.get_or_parse(b, |b| Ok::<_, ()>(b.len())).unwrap();
        }
        assert_eq!(memo.len(), 1);
        assert!(!memo.is_empty());
    }
}
