//! The GetInfo reply (http11.md §6.4): brief, normal and detailed profiles,
//! with keys in exactly the documented order (alphabetical, `NK` last).

use super::body::{BodyWriter, ReplyFields};
use super::coded::{BloodType, Constellation, Gender, Zodiac};
use super::error::CodecError;

/// The 15 fields of a normal profile (the 16 keys minus the `LV` echo).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserInfo {
    /// `UN`
    pub uin: u64,
    /// `NK`
    pub nick: String,
    /// `AD`: contact address.
    pub address: String,
    /// `AG`
    pub age: u32,
    /// `EM`
    pub email: String,
    /// `FC`: avatar id.
    pub face: u32,
    /// `HP`
    pub homepage: String,
    /// `JB`: occupation.
    pub occupation: String,
    /// `PC`: postcode.
    pub postcode: String,
    /// `PH`: telephone.
    pub phone: String,
    /// `PR`: personal introduction (free text).
    pub intro: String,
    /// `PV`: province.
    pub province: String,
    /// `RN`: real name.
    pub real_name: String,
    /// `SC`: school graduated from.
    pub school: String,
    /// `SX`
    pub gender: Gender,
}

/// The 10 further fields of a detailed profile.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InfoExtras {
    /// `BT`
    pub blood_type: BloodType,
    /// `CO`
    pub constellation: Constellation,
    /// `CT`: city.
    pub city: String,
    /// `CV`: meaning unknown (`%01` in the sample).
    pub cv: String,
    /// `CY`: country.
    pub country: String,
    /// `ID`: meaning unknown (`-` in the sample).
    pub id: String,
    /// `MO`: mobile phone.
    pub mobile: String,
    /// `MT`: meaning unknown (`0` in the sample); not GetMsgEx's MT.
    pub mt: String,
    /// `MV`: meaning unknown (empty in the sample).
    pub mv: String,
    /// `SH`: Chinese zodiac animal.
    pub zodiac: Zodiac,
}

/// A GetInfo reply. `level` is the echo of the requested `LV`; which
/// variant it is follows from the keys present, so odd levels survive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InfoReply {
    /// `LV=0|1`: `LV, UN, NK`.
    Brief { level: u32, uin: u64, nick: String },
    /// `LV=2`: 16 keys.
    Normal { level: u32, info: UserInfo },
    /// `LV>=3`: 26 keys.
    Detailed {
        level: u32,
        info: UserInfo,
        extras: InfoExtras,
    },
}

enum Value<'a> {
    Text(&'a str),
    Number(u32),
}

/// The keys of a normal or detailed profile in wire order.
fn profile_fields<'a>(
    level: u32,
    info: &'a UserInfo,
    extras: Option<&'a InfoExtras>,
) -> Vec<(&'static str, Value<'a>)> {
    use Value::{Number, Text};
    let mut fields = vec![("AD", Text(&info.address)), ("AG", Number(info.age))];
    if let Some(x) = extras {
        fields.extend([
            ("BT", Number(x.blood_type.code())),
            ("CO", Number(x.constellation.code())),
            ("CT", Text(&x.city)),
            ("CV", Text(&x.cv)),
            ("CY", Text(&x.country)),
        ]);
    }
    fields.extend([
        ("EM", Text(&info.email)),
        ("FC", Number(info.face)),
        ("HP", Text(&info.homepage)),
    ]);
    if let Some(x) = extras {
        fields.push(("ID", Text(&x.id)));
    }
    fields.extend([("JB", Text(&info.occupation)), ("LV", Number(level))]);
    if let Some(x) = extras {
        fields.extend([
            ("MO", Text(&x.mobile)),
            ("MT", Text(&x.mt)),
            ("MV", Text(&x.mv)),
        ]);
    }
    fields.extend([
        ("PC", Text(&info.postcode)),
        ("PH", Text(&info.phone)),
        ("PR", Text(&info.intro)),
        ("PV", Text(&info.province)),
        ("RN", Text(&info.real_name)),
        ("SC", Text(&info.school)),
    ]);
    if let Some(x) = extras {
        fields.push(("SH", Number(x.zodiac.code())));
    }
    fields.push(("SX", Number(info.gender.code())));
    fields
}

impl InfoReply {
    pub fn level(&self) -> u32 {
        match self {
            InfoReply::Brief { level, .. }
            | InfoReply::Normal { level, .. }
            | InfoReply::Detailed { level, .. } => *level,
        }
    }

    pub(crate) fn encode(&self, body: &mut BodyWriter) {
        let (level, info, extras) = match self {
            InfoReply::Brief { level, uin, nick } => {
                body.number("LV", level)
                    .number("UN", uin)
                    .reply_text("NK", nick);
                return;
            }
            InfoReply::Normal { level, info } => (*level, info, None),
            InfoReply::Detailed {
                level,
                info,
                extras,
            } => (*level, info, Some(extras)),
        };
        for (key, value) in profile_fields(level, info, extras) {
            match value {
                Value::Text(text) => body.reply_text(key, text),
                Value::Number(number) => body.number(key, number),
            };
        }
        body.number("UN", info.uin).reply_text("NK", &info.nick);
    }

    pub(crate) fn decode(fields: &ReplyFields<'_>) -> Result<InfoReply, CodecError> {
        let level = fields.required_number("LV")?;
        if !fields.0.has("AD") {
            return Ok(InfoReply::Brief {
                level,
                uin: fields.required_number("UN")?,
                nick: fields.required_text("NK")?,
            });
        }
        let info = decode_user_info(fields)?;
        if !fields.0.has("BT") {
            return Ok(InfoReply::Normal { level, info });
        }
        let extras = InfoExtras {
            blood_type: coded(fields, "BT", BloodType::from_code)?,
            constellation: coded(fields, "CO", Constellation::from_code)?,
            city: fields.required_text("CT")?,
            cv: fields.required_text("CV")?,
            country: fields.required_text("CY")?,
            id: fields.required_text("ID")?,
            mobile: fields.required_text("MO")?,
            mt: fields.required_text("MT")?,
            mv: fields.required_text("MV")?,
            zodiac: coded(fields, "SH", Zodiac::from_code)?,
        };
        Ok(InfoReply::Detailed {
            level,
            info,
            extras,
        })
    }
}

fn decode_user_info(fields: &ReplyFields<'_>) -> Result<UserInfo, CodecError> {
    Ok(UserInfo {
        uin: fields.required_number("UN")?,
        nick: fields.required_text("NK")?,
        address: fields.required_text("AD")?,
        age: fields.required_number("AG")?,
        email: fields.required_text("EM")?,
        face: fields.required_number("FC")?,
        homepage: fields.required_text("HP")?,
        occupation: fields.required_text("JB")?,
        postcode: fields.required_text("PC")?,
        phone: fields.required_text("PH")?,
        intro: fields.required_text("PR")?,
        province: fields.required_text("PV")?,
        real_name: fields.required_text("RN")?,
        school: fields.required_text("SC")?,
        gender: coded(fields, "SX", Gender::from_code)?,
    })
}

/// A numeric field that must be one of an enumeration's codes.
pub(crate) fn coded<T>(
    fields: &ReplyFields<'_>,
    key: &'static str,
    from_code: fn(u32) -> Option<T>,
) -> Result<T, CodecError> {
    from_code(fields.required_number(key)?).ok_or(CodecError::BadValue { key })
}
