//! The small numeric enumerations of HTTP QQ 1.1 (http11.md §6.4, §6.5,
//! §6.6, §7.1): statuses, GetInfo's blood type, constellation, zodiac and
//! gender, and the AddToList / Ack_AddToList `CD` codes.
//!
//! Each enumeration knows its wire code and, where a person reads it, an
//! English and a Chinese name; `Display` shows both (`Pisces (双鱼座)`).

use std::fmt;

use serde::{Deserialize, Serialize};

/// Declares a closed enumeration with wire codes, a serde name and the two
/// human-readable names.
macro_rules! coded_enum {
    (
        $(#[$meta:meta])*
        $name:ident, default = $default:ident {
            $($variant:ident = $code:literal, $serde:literal, $en:literal, $zh:literal;)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $serde)] $variant,)+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The number on the wire.
            pub fn code(self) -> u32 {
                match self { $($name::$variant => $code,)+ }
            }

            /// The variant for a wire number, if it is a documented one.
            pub fn from_code(code: u32) -> Option<Self> {
                match code { $($code => Some($name::$variant),)+ _ => None }
            }

            pub fn english(self) -> &'static str {
                match self { $($name::$variant => $en,)+ }
            }

            /// The Chinese name; empty for "not set", as in \[001\]'s tables.
            pub fn chinese(self) -> &'static str {
                match self { $($name::$variant => $zh,)+ }
            }
        }

        impl Default for $name {
            fn default() -> Self {
                $name::$default
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                if self.chinese().is_empty() {
                    f.write_str(self.english())
                } else {
                    write!(f, "{} ({})", self.english(), self.chinese())
                }
            }
        }
    };
}

coded_enum! {
    /// An online status code (`ST`, and `MG` of an `MT=99` message).
    /// Invisible (40) is only ever sent by a client; others see it as 20.
    Status, default = Online {
        Online = 10, "online", "online", "上线";
        Offline = 20, "offline", "offline", "离线";
        Busy = 30, "busy", "busy", "忙碌";
        Invisible = 40, "invisible", "invisible", "隐身";
    }
}

coded_enum! {
    /// GetInfo `SX`.
    Gender, default = Male {
        Male = 0, "male", "male", "男";
        Female = 1, "female", "female", "女";
    }
}

coded_enum! {
    /// GetInfo `BT`.
    BloodType, default = NotSet {
        NotSet = 0, "unset", "not set", "";
        A = 1, "A", "A", "A型";
        B = 2, "B", "B", "B型";
        O = 3, "O", "O", "O型";
        Ab = 4, "AB", "AB", "AB型";
        Other = 5, "other", "other", "其他";
    }
}

coded_enum! {
    /// GetInfo `CO` (Western zodiac sign).
    Constellation, default = NotSet {
        NotSet = 0, "unset", "not set", "";
        Aquarius = 1, "aquarius", "Aquarius", "水瓶座";
        Pisces = 2, "pisces", "Pisces", "双鱼座";
        Aries = 3, "aries", "Aries", "牡羊座";
        Taurus = 4, "taurus", "Taurus", "金牛座";
        Gemini = 5, "gemini", "Gemini", "双子座";
        Cancer = 6, "cancer", "Cancer", "巨蟹座";
        Leo = 7, "leo", "Leo", "狮子座";
        Virgo = 8, "virgo", "Virgo", "处女座";
        Libra = 9, "libra", "Libra", "天秤座";
        Scorpio = 10, "scorpio", "Scorpio", "天蝎座";
        Sagittarius = 11, "sagittarius", "Sagittarius", "射手座";
        Capricorn = 12, "capricorn", "Capricorn", "摩羯座";
    }
}

coded_enum! {
    /// GetInfo `SH` (Chinese zodiac animal).
    Zodiac, default = NotSet {
        NotSet = 0, "unset", "not set", "";
        Rat = 1, "rat", "Rat", "鼠";
        Ox = 2, "ox", "Ox", "牛";
        Tiger = 3, "tiger", "Tiger", "虎";
        Rabbit = 4, "rabbit", "Rabbit", "兔";
        Dragon = 5, "dragon", "Dragon", "龙";
        Snake = 6, "snake", "Snake", "蛇";
        Horse = 7, "horse", "Horse", "马";
        Goat = 8, "goat", "Goat", "羊";
        Monkey = 9, "monkey", "Monkey", "猴";
        Rooster = 10, "rooster", "Rooster", "鸡";
        Dog = 11, "dog", "Dog", "狗";
        Pig = 12, "pig", "Pig", "猪";
    }
}

/// The avatar bitmap number of a face id: `FC / 3 + 1` (FC=270 → 91.bmp).
pub fn avatar_file_number(face: u32) -> u32 {
    face / 3 + 1
}

/// How an AddToList reply spells "refuses everybody": 2 in \[001\], 3 in
/// \[003\] and Hackfan's own class (http11.md §6.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub enum DenyCode {
    Two,
    #[default]
    Three,
}

impl DenyCode {
    pub fn code(self) -> u32 {
        match self {
            DenyCode::Two => 2,
            DenyCode::Three => 3,
        }
    }
}

impl TryFrom<u8> for DenyCode {
    type Error = String;
    fn try_from(code: u8) -> Result<Self, Self::Error> {
        match code {
            2 => Ok(DenyCode::Two),
            3 => Ok(DenyCode::Three),
            other => Err(format!("the AddToList deny code is 2 or 3, not {other}")),
        }
    }
}

impl From<DenyCode> for u8 {
    fn from(code: DenyCode) -> u8 {
        match code {
            DenyCode::Two => 2,
            DenyCode::Three => 3,
        }
    }
}

/// `CD` of an AddToList reply: the target's authentication policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddToListCode {
    /// 0: the target is now your friend.
    Added,
    /// 1: follow up with Ack_AddToList `CD=2`.
    NeedsVerification,
    /// 2 or 3: the target accepts nobody.
    Refused(DenyCode),
}

impl AddToListCode {
    pub fn code(self) -> u32 {
        match self {
            AddToListCode::Added => 0,
            AddToListCode::NeedsVerification => 1,
            AddToListCode::Refused(deny) => deny.code(),
        }
    }

    pub fn from_code(code: u32) -> Option<Self> {
        match code {
            0 => Some(AddToListCode::Added),
            1 => Some(AddToListCode::NeedsVerification),
            2 => Some(AddToListCode::Refused(DenyCode::Two)),
            3 => Some(AddToListCode::Refused(DenyCode::Three)),
            _ => None,
        }
    }
}

/// `CD` of an Ack_AddToList request. Codes of 3 and above are valid numbers
/// that the server answers with a delayed `RES=3`, so they are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AckCode {
    /// 0: accept the other party's request (they get `MT=3`).
    Accept,
    /// 1: refuse it, `RS` is the reason (they get `MT=4`).
    Reject,
    /// 2: ask the other party to accept you, `RS` is the message (`MT=2`).
    Request,
    /// 3 and above: invalid.
    Other(u32),
}

impl AckCode {
    pub fn code(self) -> u32 {
        match self {
            AckCode::Accept => 0,
            AckCode::Reject => 1,
            AckCode::Request => 2,
            AckCode::Other(code) => code,
        }
    }

    pub fn from_code(code: u32) -> Self {
        match code {
            0 => AckCode::Accept,
            1 => AckCode::Reject,
            2 => AckCode::Request,
            other => AckCode::Other(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_display_both_languages() {
        for c in Constellation::ALL {
            assert_eq!(Constellation::from_code(c.code()), Some(*c));
        }
        assert_eq!(
            Constellation::from_code(2)
                .map(|c| c.to_string())
                .as_deref(),
            Some("Pisces (双鱼座)")
        );
        assert_eq!(
            Zodiac::from_code(3).map(|z| z.to_string()).as_deref(),
            Some("Tiger (虎)")
        );
        assert_eq!(
            BloodType::from_code(2).map(|b| b.to_string()).as_deref(),
            Some("B (B型)")
        );
        assert_eq!(BloodType::NotSet.to_string(), "not set");
        assert_eq!(Gender::Female.to_string(), "female (女)");
        assert_eq!(Status::from_code(40), Some(Status::Invisible));
        assert_eq!(Status::from_code(50), None);
        assert_eq!(Zodiac::from_code(13), None);
    }

    #[test]
    fn avatar_file_follows_the_formula() {
        assert_eq!(avatar_file_number(270), 91);
        assert_eq!(avatar_file_number(0), 1);
    }

    #[test]
    fn cd_codes_map_both_ways() {
        for code in 0..4 {
            assert_eq!(
                AddToListCode::from_code(code).map(AddToListCode::code),
                Some(code)
            );
        }
        assert_eq!(AddToListCode::from_code(4), None);
        assert_eq!(AckCode::from_code(7), AckCode::Other(7));
        assert_eq!(AckCode::from_code(2).code(), 2);
    }
}
