//! What an account keeps about its friends besides the list itself: the
//! friend categories (分组) with each friend's category, the private
//! marknames (备注), and the account's own personal signature ("long
//! nick"). Only WebQQ shows these (webqq.md §5.1, §5.11, §5.12); category
//! 0, the default "我的好友", always exists and is never stored.

use std::collections::HashMap;

use super::state::clip_text;
use super::World;

/// Most categories an account may define.
pub const MAX_CATEGORIES: usize = 64;
/// Longest signature kept, in bytes; longer ones are cut.
pub const MAX_LONG_NICK_BYTES: usize = 512;

/// A friend category other than the default one (index 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Category {
    pub index: u32,
    pub name: String,
}

/// One account's categories, friend filing and marknames.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactBook {
    /// In display order.
    pub categories: Vec<Category>,
    /// Friends not listed here are in category 0.
    pub category_of: HashMap<u64, u32>,
    pub marknames: HashMap<u64, String>,
}

impl ContactBook {
    /// The category a friend is filed in (0 if none, or if it vanished).
    pub fn category(&self, friend: u64) -> u32 {
        self.category_of
            .get(&friend)
            .copied()
            .filter(|index| self.categories.iter().any(|c| c.index == *index))
            .unwrap_or(0)
    }
}

impl World {
    /// The account's contact book (empty for unknown accounts).
    pub fn contact_book(&self, uin: u64) -> ContactBook {
        self.lock()
            .contact_books
            .get(&uin)
            .cloned()
            .unwrap_or_default()
    }

    pub fn set_contact_book(&self, uin: u64, mut book: ContactBook) {
        book.categories.retain(|c| c.index != 0);
        book.categories.truncate(MAX_CATEGORIES);
        self.lock().contact_books.insert(uin, book);
    }

    /// Files `friend` under `category` (0 or an existing index, else 0) and
    /// sets its markname (an empty one removes it).
    pub fn file_friend(&self, owner: u64, friend: u64, category: u32, markname: &str) {
        let mut state = self.lock();
        let book = state.contact_books.entry(owner).or_default();
        if category != 0 && book.categories.iter().any(|c| c.index == category) {
            book.category_of.insert(friend, category);
        } else {
            book.category_of.remove(&friend);
        }
        let markname = clip_text(markname.trim());
        if markname.is_empty() {
            book.marknames.remove(&friend);
        } else {
            book.marknames.insert(friend, markname);
        }
    }

    /// The account's personal signature ("" if none).
    pub fn long_nick(&self, uin: u64) -> String {
        self.lock()
            .long_nicks
            .get(&uin)
            .cloned()
            .unwrap_or_default()
    }

    /// Sets the signature; false for an unknown account.
    pub fn set_long_nick(&self, uin: u64, text: &str) -> bool {
        let mut state = self.lock();
        if !state.accounts.contains_key(&uin) {
            return false;
        }
        let mut end = text.len().min(MAX_LONG_NICK_BYTES);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let text = text.get(..end).unwrap_or_default().to_owned();
        state.long_nicks.insert(uin, text);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_that_vanish_file_friends_under_the_default() {
        let book = ContactBook {
            categories: vec![Category {
                index: 1,
                name: "同学".into(),
            }],
            category_of: HashMap::from([(2, 1), (3, 7)]),
            marknames: HashMap::new(),
        };
        assert_eq!(book.category(2), 1);
        assert_eq!(book.category(3), 0);
        assert_eq!(book.category(4), 0);
        let world = World::new(Vec::new(), &[], std::time::Duration::from_secs(1));
        world.set_contact_book(1, book);
        world.file_friend(1, 5, 1, " 老五 ");
        world.file_friend(1, 2, 9, "");
        let book = world.contact_book(1);
        assert_eq!((book.category(5), book.category(2)), (1, 0));
        assert_eq!(book.marknames.get(&5).map(String::as_str), Some("老五"));
        assert!(!world.set_long_nick(1, "x"));
    }
}
