//! Replies about other accounts: List (§6.2), Query_Stat (§6.3), AddToList
//! (§6.5) and the invented Finger format (§6.12), plus the check that
//! parallel comma lists and their counts agree.

use super::body::{BodyWriter, ReplyFields};
use super::coded::{AddToListCode, Gender, Status};
use super::error::CodecError;
use super::info::coded;

/// A List reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListReply {
    /// `TN` absent or 0: `FN=<friend count>` only.
    Count(u32),
    /// `TN` non-zero: `FN=1&SN=<n>&UN=a,b,c,`, in the order friends were added.
    Friends(Vec<u64>),
}

/// One online friend of a Query_Stat reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnlineFriend {
    pub face: u32,
    /// As others see it: 10, 20 (offline or invisible) or 30.
    pub status: Status,
    pub uin: u64,
    pub nick: String,
}

/// A Query_Stat reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryStatReply {
    /// First half of the TN=0 double reply: `FN=<online count>`.
    Count(u32),
    /// `FC=…,&FN=1&SN=<n>&ST=…,&UN=…,&NK=…,`. Empty for the second half of
    /// the double reply.
    Online(Vec<OnlineFriend>),
}

/// An AddToList reply: the target's policy and the target echoed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddToListReply {
    pub code: AddToListCode,
    pub target: u64,
}

/// One account found by Finger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FingerEntry {
    pub age: u32,
    pub face: u32,
    pub province: String,
    pub gender: Gender,
    pub uin: u64,
    pub nick: String,
}

/// Checks that every list has as many items as the first one, and that the
/// count key agrees with them. Returns that length.
pub(crate) fn check_parallel(
    count_key: &'static str,
    count: usize,
    lists: &[(&'static str, usize)],
) -> Result<usize, CodecError> {
    let Some(&(first_key, len)) = lists.first() else {
        return Ok(count);
    };
    for &(key, found) in lists {
        if found != len {
            return Err(CodecError::ListLengthMismatch {
                key,
                found,
                expected_from: first_key,
                expected: len,
            });
        }
    }
    if count != len {
        return Err(CodecError::CountMismatch {
            count_key,
            count,
            list_key: first_key,
            items: len,
        });
    }
    Ok(len)
}

impl ListReply {
    pub(crate) fn encode(&self, body: &mut BodyWriter) {
        match self {
            ListReply::Count(count) => {
                body.number("FN", count);
            }
            ListReply::Friends(uins) => {
                body.number("FN", 1)
                    .number("SN", uins.len())
                    .number_list("UN", uins);
            }
        }
    }

    pub(crate) fn decode(fields: &ReplyFields<'_>) -> Result<ListReply, CodecError> {
        if !fields.0.has("SN") {
            return Ok(ListReply::Count(fields.required_number("FN")?));
        }
        let count: usize = fields.required_number("SN")?;
        let uins: Vec<u64> = fields.number_list("UN")?;
        check_parallel("SN", count, &[("UN", uins.len())])?;
        Ok(ListReply::Friends(uins))
    }
}

impl QueryStatReply {
    pub(crate) fn encode(&self, body: &mut BodyWriter) {
        match self {
            QueryStatReply::Count(count) => {
                body.number("FN", count);
            }
            QueryStatReply::Online(friends) => {
                body.number_list("FC", friends.iter().map(|f| f.face))
                    .number("FN", 1)
                    .number("SN", friends.len())
                    .number_list("ST", friends.iter().map(|f| f.status.code()))
                    .number_list("UN", friends.iter().map(|f| f.uin))
                    .text_list("NK", friends.iter().map(|f| f.nick.as_str()));
            }
        }
    }

    pub(crate) fn decode(fields: &ReplyFields<'_>) -> Result<QueryStatReply, CodecError> {
        if !fields.0.has("SN") {
            return Ok(QueryStatReply::Count(fields.required_number("FN")?));
        }
        let count: usize = fields.required_number("SN")?;
        let uins: Vec<u64> = fields.number_list("UN")?;
        let faces: Vec<u32> = fields.number_list("FC")?;
        let statuses: Vec<u32> = fields.number_list("ST")?;
        let nicks = fields.text_list("NK")?;
        check_parallel(
            "SN",
            count,
            &[
                ("UN", uins.len()),
                ("FC", faces.len()),
                ("ST", statuses.len()),
                ("NK", nicks.len()),
            ],
        )?;
        let friends = uins
            .into_iter()
            .zip(faces)
            .zip(statuses)
            .zip(nicks)
            .map(|(((uin, face), status), nick)| {
                let status = Status::from_code(status).ok_or(CodecError::BadValue { key: "ST" })?;
                Ok(OnlineFriend {
                    face,
                    status,
                    uin,
                    nick,
                })
            })
            .collect::<Result<_, CodecError>>()?;
        Ok(QueryStatReply::Online(friends))
    }
}

impl AddToListReply {
    pub(crate) fn encode(&self, body: &mut BodyWriter) {
        body.number("CD", self.code.code())
            .number("UN", self.target);
    }

    pub(crate) fn decode(fields: &ReplyFields<'_>) -> Result<AddToListReply, CodecError> {
        Ok(AddToListReply {
            code: coded(fields, "CD", AddToListCode::from_code)?,
            target: fields.required_number("UN")?,
        })
    }
}

/// Encodes the invented Finger reply: `FN=1&SN=<n>&AG=…,&FC=…,&PV=…,&SX=…,&UN=…,&NK=…,`.
pub(crate) fn encode_finger(entries: &[FingerEntry], body: &mut BodyWriter) {
    body.number("FN", 1)
        .number("SN", entries.len())
        .number_list("AG", entries.iter().map(|e| e.age))
        .number_list("FC", entries.iter().map(|e| e.face))
        .text_list("PV", entries.iter().map(|e| e.province.as_str()))
        .number_list("SX", entries.iter().map(|e| e.gender.code()))
        .number_list("UN", entries.iter().map(|e| e.uin))
        .text_list("NK", entries.iter().map(|e| e.nick.as_str()));
}

pub(crate) fn decode_finger(fields: &ReplyFields<'_>) -> Result<Vec<FingerEntry>, CodecError> {
    let count: usize = fields.required_number("SN")?;
    let uins: Vec<u64> = fields.number_list("UN")?;
    let ages: Vec<u32> = fields.number_list("AG")?;
    let faces: Vec<u32> = fields.number_list("FC")?;
    let provinces = fields.text_list("PV")?;
    let genders: Vec<u32> = fields.number_list("SX")?;
    let nicks = fields.text_list("NK")?;
    check_parallel(
        "SN",
        count,
        &[
            ("UN", uins.len()),
            ("AG", ages.len()),
            ("FC", faces.len()),
            ("PV", provinces.len()),
            ("SX", genders.len()),
            ("NK", nicks.len()),
        ],
    )?;
    let mut entries = Vec::with_capacity(uins.len());
    for (index, uin) in uins.into_iter().enumerate() {
        let gender = genders.get(index).copied().and_then(Gender::from_code);
        entries.push(FingerEntry {
            age: ages.get(index).copied().unwrap_or_default(),
            face: faces.get(index).copied().unwrap_or_default(),
            province: provinces.get(index).cloned().unwrap_or_default(),
            gender: gender.ok_or(CodecError::BadValue { key: "SX" })?,
            uin,
            nick: nicks.get(index).cloned().unwrap_or_default(),
        });
    }
    Ok(entries)
}
