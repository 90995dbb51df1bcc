//! Values that many connections have in common — the real server they go
//! to, the FULLNAT local address, the link replies leave by — kept once per
//! table and named in each connection by a small number. A million
//! connections to ten real servers then hold ten copies of an address, not
//! a million, which is most of what keeps a tracked connection small.

use ahash::RandomState;
use std::collections::HashMap;
use std::hash::Hash;

/// Numbered values with a count of the connections that name each, so a
/// value nobody names any more gives its number back. Number 0 is never
/// handed out: connections use it for "none".
pub(crate) struct Shared<T> {
    values: Vec<Option<(T, u32)>>,
    numbers: HashMap<T, u32, RandomState>,
    free: Vec<u32>,
    limit: u32,
}

impl<T: Copy + Eq + Hash> Shared<T> {
    /// At most `limit` distinct values at a time (the width of the field
    /// that stores their numbers).
    pub fn with_limit(limit: u32) -> Shared<T> {
        Shared { values: Vec::new(), numbers: HashMap::default(), free: Vec::new(), limit }
    }

    /// The number for `value`, with one more user; None when `limit`
    /// distinct values are already named.
    pub fn acquire(&mut self, value: T) -> Option<u32> {
        if let Some(&n) = self.numbers.get(&value) {
            self.values[n as usize - 1].as_mut().expect("numbered value is live").1 += 1;
            return Some(n);
        }
        let n = match self.free.pop() {
            Some(n) => n,
            None if (self.values.len() as u32) < self.limit => {
                self.values.push(None);
                self.values.len() as u32
            }
            None => return None,
        };
        self.values[n as usize - 1] = Some((value, 1));
        self.numbers.insert(value, n);
        Some(n)
    }

    /// The number `value` has, if a connection names it.
    pub fn find(&self, value: &T) -> Option<u32> {
        self.numbers.get(value).copied()
    }

    pub fn get(&self, number: u32) -> Option<T> {
        let slot = self.values.get((number as usize).checked_sub(1)?)?;
        slot.as_ref().map(|&(v, _)| v)
    }

    /// One user fewer for `number` (0 is ignored).
    pub fn release(&mut self, number: u32) {
        let Some(slot) = (number as usize).checked_sub(1).and_then(|i| self.values.get_mut(i)) else { return };
        let Some((value, users)) = slot else { return };
        *users -= 1;
        if *users == 0 {
            self.numbers.remove(value);
            *slot = None;
            self.free.push(number);
        }
    }

    #[cfg(test)]
    pub fn distinct(&self) -> usize {
        self.numbers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_keeps_its_number_while_named_and_frees_it_after() {
        let mut s = Shared::with_limit(2);
        let a = s.acquire("a").unwrap();
        assert_eq!(s.acquire("a"), Some(a));
        assert_eq!(s.find(&"a"), Some(a));
        assert_eq!(s.find(&"z"), None);
        let b = s.acquire("b").unwrap();
        assert_ne!(a, b);
        assert_ne!(a, 0);
        assert_eq!(s.acquire("c"), None, "the field's width bounds the distinct values");
        s.release(a);
        assert_eq!(s.get(a), Some("a"), "one connection still names it");
        s.release(a);
        assert_eq!(s.get(a), None);
        assert_eq!(s.acquire("c"), Some(a), "a freed number is reused");
        assert_eq!(s.distinct(), 2);
        s.release(0);
        assert_eq!(s.get(0), None);
    }
}
