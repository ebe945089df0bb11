//! The table of guest domains: ids and names. Ids start at 1 (0 is dom0)
//! and are not reused until they wrap, so a stale id names no domain rather
//! than the wrong one; names are unique among live domains.

use alloc::string::String;
use alloc::vec::Vec;

use dom0_abi::Status;

/// Longest name, in bytes (the ABI's name field holds it with a NUL).
pub const MAX_NAME: usize = 63;

/// Largest domain id handed out (ids are `u32`, but keep them small and
/// positive as `i32` too).
const MAX_ID: u32 = 0x7FF0;

/// Checks a domain name: 1 to [`MAX_NAME`] bytes of printable ASCII other
/// than space, and not a number (`xl` takes a number as an id).
pub fn check_name(name: &str) -> Result<(), Status> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name.bytes().all(|b| b.is_ascii_graphic())
        && !name.bytes().all(|b| b.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(Status::InvalidArgument)
    }
}

/// Domains of type `T`, by id.
#[derive(Debug)]
pub struct Registry<T> {
    entries: Vec<(u32, String, T)>,
    next: u32,
}

impl<T> Default for Registry<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Registry<T> {
    /// An empty table.
    pub const fn new() -> Self {
        Self {
            entries: Vec::new(),
            next: 1,
        }
    }

    /// Adds a domain named `name` made by `make(id)`; returns its id.
    /// [`Status::Exists`] if the name is taken, [`Status::InvalidArgument`]
    /// if it is not a valid name, whatever `make` fails with otherwise.
    pub fn insert(
        &mut self,
        name: &str,
        make: impl FnOnce(u32) -> Result<T, Status>,
    ) -> Result<u32, Status> {
        check_name(name)?;
        if self.entries.iter().any(|(_, n, _)| n == name) {
            return Err(Status::Exists);
        }
        let id = self.free_id().ok_or(Status::Busy)?;
        let value = make(id)?;
        self.entries.push((id, String::from(name), value));
        self.entries.sort_by_key(|(id, _, _)| *id);
        self.next = if id >= MAX_ID { 1 } else { id + 1 };
        Ok(id)
    }

    fn free_id(&self) -> Option<u32> {
        let mut id = self.next;
        for _ in 0..MAX_ID {
            if !self.entries.iter().any(|(i, _, _)| *i == id) {
                return Some(id);
            }
            id = if id >= MAX_ID { 1 } else { id + 1 };
        }
        None
    }

    /// The domain with id `id`.
    pub fn get(&self, id: u32) -> Option<&T> {
        self.entries
            .iter()
            .find(|(i, _, _)| *i == id)
            .map(|(_, _, t)| t)
    }

    /// The domain with id `id`, to change it.
    pub fn get_mut(&mut self, id: u32) -> Option<&mut T> {
        self.entries
            .iter_mut()
            .find(|(i, _, _)| *i == id)
            .map(|(_, _, t)| t)
    }

    /// Its name.
    pub fn name(&self, id: u32) -> Option<&str> {
        self.entries
            .iter()
            .find(|(i, _, _)| *i == id)
            .map(|(_, n, _)| n.as_str())
    }

    /// Removes and returns the domain with id `id`.
    pub fn remove(&mut self, id: u32) -> Option<T> {
        let at = self.entries.iter().position(|(i, _, _)| *i == id)?;
        Some(self.entries.remove(at).2)
    }

    /// Every domain, by increasing id.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &str, &T)> {
        self.entries.iter().map(|(i, n, t)| (*i, n.as_str(), t))
    }

    /// Number of domains.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_names_and_removal() {
        let mut r: Registry<u8> = Registry::new();
        assert_eq!(r.insert("guest", |_| Ok(7)), Ok(1));
        assert_eq!(r.insert("guest", |_| Ok(8)), Err(Status::Exists));
        assert_eq!(r.insert("other", |id| Ok(id as u8)), Ok(2));
        assert_eq!(r.get(2), Some(&2));
        assert_eq!(r.name(1), Some("guest"));
        assert_eq!(r.remove(1), Some(7));
        assert_eq!(r.get(1), None);
        // Not reused at once; the name is free again.
        assert_eq!(r.insert("guest", |_| Ok(9)), Ok(3));
        let ids: Vec<u32> = r.iter().map(|(i, _, _)| i).collect();
        assert_eq!(ids, [2, 3]);
        assert_eq!(r.len(), 2);
    }

    #[test]
    fn a_failed_make_adds_nothing() {
        let mut r: Registry<u8> = Registry::new();
        assert_eq!(
            r.insert("a", |_| Err(Status::NoMemory)),
            Err(Status::NoMemory)
        );
        assert!(r.is_empty());
        assert_eq!(r.insert("a", |_| Ok(1)), Ok(1));
    }

    #[test]
    fn names_are_checked() {
        for bad in ["", "has space", "42", "x".repeat(64).as_str(), "tab\t"] {
            assert_eq!(check_name(bad), Err(Status::InvalidArgument), "{bad:?}");
        }
        for good in ["guest", "web-01", "a", "x".repeat(63).as_str(), "0x1"] {
            assert_eq!(check_name(good), Ok(()), "{good:?}");
        }
    }

    #[test]
    fn ids_wrap_and_skip_live_ones() {
        let mut r: Registry<()> = Registry {
            entries: Vec::new(),
            next: MAX_ID,
        };
        assert_eq!(r.insert("a", |_| Ok(())), Ok(MAX_ID));
        assert_eq!(r.insert("b", |_| Ok(())), Ok(1));
        r.remove(MAX_ID);
        r.next = 1;
        assert_eq!(r.insert("c", |_| Ok(())), Ok(2));
    }
}
