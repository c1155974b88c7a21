//! Turning GetInfo and Finger replies into the core's [`Profile`]: the
//! enumerations (blood type, constellation, zodiac, gender) become readable
//! labels, empty fields are left out.
//!
//! Finger's reply format was never documented (http11.md §6.12), so besides
//! the codec's strict decoding there is a tolerant reading that takes
//! whatever parallel lists are present and skips what it cannot use.

use super::codec::{
    decode_reply_value, CodecError, Command, FingerEntry, Gender, InfoExtras, InfoReply, RawBody,
    ReplyBody, UserInfo, MAX_REPLY_BODY,
};
use super::link::Answer;
use super::wire::{CallError, RawAnswer, Wire};
use crate::core::model::{Profile, Uin};

/// The profile of a GetInfo reply at any level.
pub(crate) fn profile_from_info(info: InfoReply) -> Profile {
    match info {
        InfoReply::Brief { uin, nick, .. } => Profile {
            uin: Some(Uin(uin)),
            nick,
            ..Profile::default()
        },
        InfoReply::Normal { info, .. } => normal_profile(info),
        InfoReply::Detailed { info, extras, .. } => {
            let mut profile = normal_profile(info);
            add_extras(&mut profile, extras);
            profile
        }
    }
}

fn normal_profile(info: UserInfo) -> Profile {
    let mut details = Vec::new();
    details.push(("Gender".to_owned(), info.gender.to_string()));
    let texts = [
        ("Real name", info.real_name),
        ("Occupation", info.occupation),
        ("School", info.school),
        ("Address", info.address),
        ("Postcode", info.postcode),
        ("Phone", info.phone),
        ("E-mail", info.email),
        ("Homepage", info.homepage),
        ("About", info.intro),
    ];
    push_texts(&mut details, texts);
    Profile {
        uin: Some(Uin(info.uin)),
        nick: info.nick,
        face: Some(info.face),
        gender: Some(info.gender.to_string()),
        age: (info.age > 0).then_some(info.age),
        province: non_empty(info.province),
        details,
    }
}

fn add_extras(profile: &mut Profile, extras: InfoExtras) {
    let details = &mut profile.details;
    if extras.blood_type.code() != 0 {
        details.push(("Blood type".to_owned(), extras.blood_type.to_string()));
    }
    if extras.constellation.code() != 0 {
        details.push(("Constellation".to_owned(), extras.constellation.to_string()));
    }
    if extras.zodiac.code() != 0 {
        details.push(("Chinese zodiac".to_owned(), extras.zodiac.to_string()));
    }
    let texts = [
        ("City", extras.city),
        ("Country", extras.country),
        ("Mobile", extras.mobile),
    ];
    push_texts(details, texts);
}

fn push_texts<const N: usize>(details: &mut Vec<(String, String)>, texts: [(&str, String); N]) {
    for (label, value) in texts {
        if let Some(value) = non_empty(value) {
            details.push((label.to_owned(), value));
        }
    }
}

fn non_empty(text: String) -> Option<String> {
    let trimmed = text.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

/// One search result.
pub(crate) fn profile_from_finger(entry: FingerEntry) -> Profile {
    Profile {
        uin: Some(Uin(entry.uin)),
        nick: entry.nick,
        face: Some(entry.face),
        gender: Some(entry.gender.to_string()),
        age: (entry.age > 0).then_some(entry.age),
        province: non_empty(entry.province),
        details: Vec::new(),
    }
}

/// Reads a Finger answer: the codec's typed reply when it decodes, else the
/// tolerant reading of a `RES=0` reply.
pub(crate) fn read_finger(
    wire: &Wire,
    answer: &RawAnswer,
) -> Result<Answer<Vec<Profile>>, CallError> {
    match wire.decode(answer) {
        Ok(ReplyBody::Finger(entries)) => Ok(Answer::Value(
            entries.into_iter().map(profile_from_finger).collect(),
        )),
        Ok(ReplyBody::NotLoggedIn) => Ok(Answer::NotLoggedIn),
        Ok(other) => Err(CallError::Malformed(format!(
            "unexpected Finger answer RES={}",
            other.result_code()
        ))),
        Err(strict) => match tolerant_finger(wire, &answer.body) {
            Ok(profiles) => {
                tracing::debug!("Finger reply read tolerantly");
                Ok(Answer::Value(profiles))
            }
            Err(_) => Err(strict),
        },
    }
}

/// Whatever a `RES=0` Finger reply says about each `UN` entry.
fn tolerant_finger(wire: &Wire, body: &[u8]) -> Result<Vec<Profile>, CodecError> {
    let raw = RawBody::parse(body, MAX_REPLY_BODY)?;
    let text = |key: &'static str| -> Option<String> {
        raw.raw(key)
            .and_then(|v| String::from_utf8(decode_reply_value(v)).ok())
    };
    let echoed = text("CMD").and_then(|c| Command::parse(&c));
    let uin = text("UIN").and_then(|u| u.trim().parse::<u64>().ok());
    match (echoed, uin) {
        (Some(cmd), Some(uin)) => wire
            .check_envelope(Command::Finger, cmd, uin)
            .map_err(|_| CodecError::BadValue { key: "CMD" })?,
        _ => return Err(CodecError::MissingKey { key: "CMD" }),
    }
    if text("RES").as_deref().map(str::trim) != Some("0") {
        return Err(CodecError::BadValue { key: "RES" });
    }
    let list = |key: &'static str| -> Vec<String> {
        raw.raw(key)
            .map(|v| {
                v.split(|b| *b == b',')
                    .map(|item| String::from_utf8_lossy(&decode_reply_value(item)).into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let (uins, nicks, ages) = (list("UN"), list("NK"), list("AG"));
    let (faces, provinces, genders) = (list("FC"), list("PV"), list("SX"));
    let number = |items: &[String], index: usize| -> Option<u32> {
        items.get(index).and_then(|v| v.trim().parse().ok())
    };
    let mut profiles = Vec::new();
    for (index, uin) in uins.iter().enumerate() {
        let Ok(uin) = uin.trim().parse::<u64>() else {
            continue;
        };
        profiles.push(Profile {
            uin: Some(Uin(uin)),
            nick: nicks.get(index).cloned().unwrap_or_default(),
            face: number(&faces, index),
            gender: number(&genders, index)
                .and_then(Gender::from_code)
                .map(|g| g.to_string()),
            age: number(&ages, index).filter(|age| *age > 0),
            province: provinces.get(index).cloned().and_then(non_empty),
            details: Vec::new(),
        });
    }
    Ok(profiles)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::qq::http11::codec::{BloodType, Constellation, Zodiac};

    #[test]
    fn detailed_profile_decodes_the_enumerations() {
        let info = UserInfo {
            uin: 106814,
            nick: "Hackfan 好".into(),
            age: 19,
            province: "江苏".into(),
            ..UserInfo::default()
        };
        let extras = InfoExtras {
            blood_type: BloodType::B,
            constellation: Constellation::Pisces,
            zodiac: Zodiac::Tiger,
            city: "苏州".into(),
            ..InfoExtras::default()
        };
        let profile = profile_from_info(InfoReply::Detailed {
            level: 3,
            info,
            extras,
        });
        assert_eq!(profile.age, Some(19));
        assert_eq!(profile.gender.as_deref(), Some("male (男)"));
        let detail = |label: &str| {
            profile
                .details
                .iter()
                .find(|(l, _)| l == label)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(detail("Blood type").as_deref(), Some("B (B型)"));
        assert_eq!(detail("Constellation").as_deref(), Some("Pisces (双鱼座)"));
        assert_eq!(detail("Chinese zodiac").as_deref(), Some("Tiger (虎)"));
        assert_eq!(detail("Gender").as_deref(), Some("male (男)"));
        assert_eq!(detail("City").as_deref(), Some("苏州"));
        assert_eq!(detail("School"), None);
    }

    fn wire() -> Wire {
        let transport = super::super::transport::Transport::from_url(
            "http://127.0.0.1:1",
            std::time::Duration::from_secs(1),
            std::time::Duration::from_secs(1),
        );
        match transport {
            Ok(transport) => Wire::new(transport, Uin(10001)),
            Err(e) => panic!("{e}"),
        }
    }

    fn answer(body: &str) -> RawAnswer {
        RawAnswer {
            cmd: Command::Finger,
            body: body.as_bytes().to_vec(),
            span: tracing::Span::none(),
        }
    }

    #[test]
    fn finger_reply_is_read_strictly_or_tolerantly() {
        let wire = wire();
        let strict = "VER=1.1&CMD=FINGER&SEQ=1&UIN=10001&RES=0&FN=1&SN=1&AG=19,&FC=270,\
                      &PV=江苏,&SX=1,&UN=10003,&NK=小企鹅,";
        let Ok(Answer::Value(found)) = read_finger(&wire, &answer(strict)) else {
            panic!("strict reply not read");
        };
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].gender.as_deref(), Some("female (女)"));
        // Lists of different lengths, no SN, an unknown gender code.
        let loose =
            "VER=1.1&CMD=Finger&SEQ=1&UIN=10001&RES=0&UN=10003,10004,abc,&NK=a%252cb,&SX=7,&";
        let Ok(Answer::Value(found)) = read_finger(&wire, &answer(loose)) else {
            panic!("tolerant reply not read");
        };
        let uins: Vec<_> = found.iter().map(|p| p.uin).collect();
        assert_eq!(uins, vec![Some(Uin(10003)), Some(Uin(10004))]);
        assert_eq!(found[0].nick, "a,b");
        assert_eq!(found[0].gender, None);
        assert_eq!(found[1].nick, "");
        // Another account's reply is never accepted, strict or not.
        let foreign = "VER=1.1&CMD=Finger&SEQ=1&UIN=99999&RES=0&UN=10003,";
        assert!(read_finger(&wire, &answer(foreign)).is_err());
        let not_logged_in = "VER=1.1&CMD=FINGER&SEQ=1&UIN=10001&RES=20";
        assert!(matches!(
            read_finger(&wire, &answer(not_logged_in)),
            Ok(Answer::NotLoggedIn)
        ));
    }
}
