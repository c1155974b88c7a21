//! A user's buddy list as the core keeps it: sorted by QQ number in one
//! exactly sized allocation. Every logged-in user has one, so its size is
//! multiplied by the number of users; a hash table keeps spare slots and
//! each key beside its contact, this keeps only the contacts (README,
//! Performance: 10,000 sessions).

use super::model::{Contact, Uin};

#[derive(Debug, Default)]
pub struct BuddyList(Box<[Contact]>);

impl BuddyList {
    /// Builds the list; when a number appears twice the first entry wins.
    pub fn new(mut contacts: Vec<Contact>) -> BuddyList {
        contacts.sort_by_key(|c| c.uin);
        contacts.dedup_by_key(|c| c.uin);
        BuddyList(contacts.into_boxed_slice())
    }

    pub fn get(&self, uin: Uin) -> Option<&Contact> {
        let at = self.0.binary_search_by_key(&uin, |c| c.uin).ok()?;
        self.0.get(at)
    }

    pub fn get_mut(&mut self, uin: Uin) -> Option<&mut Contact> {
        let at = self.0.binary_search_by_key(&uin, |c| c.uin).ok()?;
        self.0.get_mut(at)
    }

    /// In QQ-number order.
    pub fn to_vec(&self) -> Vec<Contact> {
        self.0.to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::model::Presence;
    use proptest::prelude::*;

    fn contact(uin: u64, nick: &str) -> Contact {
        Contact {
            uin: Uin(uin),
            nick: nick.to_owned(),
            mark_name: None,
            presence: Presence::Offline,
            face: 0,
            category: None,
        }
    }

    #[test]
    fn finds_updates_and_lists_in_number_order() {
        let mut list = BuddyList::new(vec![
            contact(30, "c"),
            contact(10, "a"),
            contact(20, "b"),
            contact(10, "again"),
        ]);
        assert_eq!(list.get(Uin(20)).map(|c| c.nick.as_str()), Some("b"));
        assert_eq!(list.get(Uin(10)).map(|c| c.nick.as_str()), Some("a"));
        assert!(list.get(Uin(25)).is_none());
        if let Some(c) = list.get_mut(Uin(30)) {
            c.presence = Presence::Online;
        }
        let all = list.to_vec();
        let uins: Vec<u64> = all.iter().map(|c| c.uin.0).collect();
        assert_eq!(uins, vec![10, 20, 30]);
        assert_eq!(all[2].presence, Presence::Online);
    }

    proptest! {
        #[test]
        fn every_number_given_is_found(uins in proptest::collection::vec(0u64..1000, 0..60)) {
            let list = BuddyList::new(uins.iter().map(|&u| contact(u, "x")).collect());
            for &u in &uins {
                prop_assert_eq!(list.get(Uin(u)).map(|c| c.uin), Some(Uin(u)));
            }
            let mut distinct = uins.clone();
            distinct.sort_unstable();
            distinct.dedup();
            prop_assert_eq!(list.to_vec().len(), distinct.len());
            prop_assert!(list.get(Uin(5000)).is_none());
        }
    }
}
