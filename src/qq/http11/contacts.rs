//! The buddy list of one session: built from List (`TN=160`, every
//! friend), Query_Stat (`TN=50`, online friends with nick, face and status)
//! and GetInfo `LV=2` for the nick and face of each offline friend not yet
//! known (the brief `LV=1` has no face, and costs the same request).
//!
//! The book is cached: `contacts()` right after login costs nothing, and
//! the poller keeps presences current from `MT=99` messages. Anything that
//! changes membership (a request accepted, a buddy added or removed) marks
//! it stale so the next read asks the server again.

use std::collections::HashMap;
use std::sync::Mutex;

use futures::stream::{self, StreamExt, TryStreamExt};

use super::codec::{InfoReply, ListReply, OnlineFriend, Params, QueryStatReply, ReplyBody};
use super::link::{presence_for, unexpected, SessionLink};
use crate::core::model::{Contact, Presence, Uin};
use crate::qq::QqError;

/// GetInfo requests in flight at once while reading the buddy list.
const PARALLEL_GETINFO: usize = 4;

/// What the server told about someone's name and avatar.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Identity {
    nick: String,
    face: u32,
}

#[derive(Debug, Default)]
struct Book {
    /// In the server's List order (the order friends were added).
    contacts: Vec<Contact>,
    /// Nicks and faces learned of people not in `contacts` (strangers, and
    /// buddies no longer listed); the listed ones are only kept there, as
    /// every session holds this book (README, Performance).
    known: HashMap<Uin, Identity>,
    own_nick: Option<String>,
    stale: bool,
}

impl Book {
    /// What is known of `uin`'s name and avatar. A listed buddy whose nick
    /// could not be read (the number stands in) counts as unknown, so the
    /// next refresh asks again.
    fn identity(&self, uin: Uin) -> Option<Identity> {
        match self.contacts.iter().find(|c| c.uin == uin) {
            Some(c) if c.nick != uin.to_string() => Some(Identity {
                nick: c.nick.clone(),
                face: c.face,
            }),
            _ => self.known.get(&uin).cloned(),
        }
    }

    /// Replaces the list; people who left it stay known by name.
    fn replace_contacts(&mut self, contacts: Vec<Contact>) {
        let old = std::mem::replace(&mut self.contacts, contacts);
        for c in old {
            if !self.contacts.iter().any(|n| n.uin == c.uin) && c.nick != c.uin.to_string() {
                self.known.entry(c.uin).or_insert(Identity {
                    nick: c.nick,
                    face: c.face,
                });
            }
        }
        for c in &self.contacts {
            self.known.remove(&c.uin);
        }
        self.known.shrink_to_fit();
    }
}

/// The cached buddy list of one session.
#[derive(Debug)]
pub(crate) struct ContactBook {
    book: Mutex<Book>,
}

impl ContactBook {
    pub fn new() -> Self {
        ContactBook {
            book: Mutex::new(Book {
                stale: true,
                ..Book::default()
            }),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut Book) -> R) -> R {
        match self.book.lock() {
            Ok(mut book) => f(&mut book),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    pub fn own_nick(&self) -> Option<String> {
        self.with(|b| b.own_nick.clone())
    }

    pub fn nick_of(&self, uin: Uin) -> Option<String> {
        self.with(|b| b.identity(uin).map(|k| k.nick))
    }

    pub fn mark_stale(&self) {
        self.with(|b| b.stale = true);
    }

    /// Records a presence change pushed by the server.
    pub fn set_presence(&self, uin: Uin, presence: Presence) {
        self.with(|b| {
            if let Some(contact) = b.contacts.iter_mut().find(|c| c.uin == uin) {
                contact.presence = presence;
            }
        });
    }

    /// The buddy list, from the cache unless it is stale.
    pub async fn contacts(&self, link: &SessionLink) -> Result<Vec<Contact>, QqError> {
        if let Some(fresh) = self.with(|b| (!b.stale).then(|| b.contacts.clone())) {
            return Ok(fresh);
        }
        self.refresh(link).await
    }

    /// Reads the buddy list from the server.
    pub async fn refresh(&self, link: &SessionLink) -> Result<Vec<Contact>, QqError> {
        let friends = match link
            .request(Params::List {
                tn: Some(160),
                un: Some(0),
            })
            .await?
        {
            ReplyBody::List(ListReply::Friends(uins)) => uins,
            ReplyBody::List(ListReply::Count(_)) => {
                return Err(QqError::Protocol(
                    "List answered a count, not a list".into(),
                ))
            }
            other => return Err(unexpected("List", &other)),
        };
        let online = match link
            .request(Params::QueryStat {
                tn: Some(50),
                un: Some(0),
            })
            .await?
        {
            ReplyBody::QueryStat(QueryStatReply::Online(online)) => online,
            ReplyBody::QueryStat(QueryStatReply::Count(_)) => Vec::new(),
            other => return Err(unexpected("Query_Stat", &other)),
        };
        let own = link.uin();
        let online_by_uin: HashMap<Uin, &OnlineFriend> =
            online.iter().map(|o| (Uin(o.uin), o)).collect();
        let friends: Vec<Uin> = friends.into_iter().map(Uin).collect();
        // Offline friends need one GetInfo each: a few at a time, so a
        // first login with hundreds of friends does not take minutes.
        let identities: Vec<Identity> = stream::iter(friends.iter().copied().map(|uin| {
            let listed = online_by_uin.get(&uin).map(|entry| Identity {
                nick: entry.nick.clone(),
                face: entry.face,
            });
            async move {
                match listed {
                    Some(identity) => Ok(identity),
                    None => self.identity_or_fetch(link, uin).await,
                }
            }
        }))
        .buffered(PARALLEL_GETINFO)
        .try_collect()
        .await?;
        let contacts: Vec<Contact> = friends
            .iter()
            .zip(identities)
            .map(|(uin, identity)| Contact {
                uin: *uin,
                nick: identity.nick,
                mark_name: None,
                presence: online_by_uin
                    .get(uin)
                    .map_or(Presence::Offline, |e| presence_for(e.status)),
                face: identity.face,
                category: None,
            })
            .collect();
        self.with(|b| {
            for entry in &online {
                let identity = Identity {
                    nick: entry.nick.clone(),
                    face: entry.face,
                };
                b.known.insert(Uin(entry.uin), identity);
            }
            if let Some(me) = online.iter().find(|o| Uin(o.uin) == own) {
                b.own_nick = Some(me.nick.clone());
            }
            b.replace_contacts(contacts.clone());
            b.stale = false;
        });
        if self.own_nick().is_none() {
            if let Ok(me) = self.fetch_identity(link, own).await {
                self.with(|b| b.own_nick = Some(me.nick));
            }
        }
        Ok(contacts)
    }

    async fn identity_or_fetch(&self, link: &SessionLink, uin: Uin) -> Result<Identity, QqError> {
        if let Some(known) = self.with(|b| b.identity(uin)) {
            return Ok(known);
        }
        match self.fetch_identity(link, uin).await {
            Ok(identity) => {
                self.with(|b| b.known.insert(uin, identity.clone()));
                Ok(identity)
            }
            // The list is still worth having with a number for a name.
            Err(e @ (QqError::Protocol(_) | QqError::Refused(_))) => {
                tracing::warn!(%uin, error = %e, "cannot read a buddy's nick");
                Ok(Identity {
                    nick: uin.to_string(),
                    face: 0,
                })
            }
            Err(e) => Err(e),
        }
    }

    /// GetInfo `LV=2`: the normal profile, which carries nick and face.
    async fn fetch_identity(&self, link: &SessionLink, uin: Uin) -> Result<Identity, QqError> {
        let params = Params::GetInfo {
            level: 2,
            target: uin.0,
        };
        match link.request(params).await? {
            ReplyBody::GetInfo(info) => Ok(match *info {
                InfoReply::Brief { nick, .. } => Identity { nick, face: 0 },
                InfoReply::Normal { info, .. } | InfoReply::Detailed { info, .. } => Identity {
                    nick: info.nick,
                    face: info.face,
                },
            }),
            ReplyBody::Refused => Err(QqError::Refused("GetInfo".into())),
            other => Err(unexpected("GetInfo", &other)),
        }
    }
}
