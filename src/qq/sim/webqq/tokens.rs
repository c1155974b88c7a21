//! The tokens a WebQQ server hands out, in their observed formats
//! (webqq.md §3): `ptwebqq` (64 lower-case hex), `skey` (`@` + 9
//! characters), `vfwebqq` (80 lower-case hex = 40 bytes) and `psessionid`,
//! the hex of an Erlang `term_to_binary` tuple {Pid, Uin, Skey, Vfwebqq}
//! (§3.4). Every token is random; none is ever logged.

use rand::distributions::Alphanumeric;
use rand::Rng;

/// `n` random bytes as lower-case hex.
pub fn random_hex(n: usize) -> String {
    hex(&random_bytes(n))
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut rng = rand::thread_rng();
    (0..n).map(|_| rng.gen()).collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A `ptwebqq` cookie value: 64 lower-case hex characters.
pub fn new_ptwebqq() -> String {
    random_hex(32)
}

/// An `skey` cookie value: `@` and 9 letters or digits.
pub fn new_skey() -> String {
    let tail: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(9)
        .map(char::from)
        .collect();
    format!("@{tail}")
}

/// The `g_login_sig` of the login page: 64 characters of `[A-Za-z0-9*-]`.
pub fn new_login_sig() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789*-";
    let mut rng = rand::thread_rng();
    (0..64)
        // ok: gen_range stays inside the alphabet.
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect()
}

/// A channel session's `vfwebqq` and `psessionid`.
pub struct ChannelTokens {
    pub vfwebqq: String,
    pub psessionid: String,
}

/// Makes the tokens of a new channel session for `uin` with `skey`.
pub fn new_channel_tokens(uin: u64, skey: &str) -> ChannelTokens {
    let vf = random_bytes(40);
    let mut rng = rand::thread_rng();
    let node = format!(
        "connserver_webqq@10.{}.{}.{}",
        rng.gen_range(0..=255u8),
        rng.gen_range(0..=255u8),
        rng.gen_range(1..=254u8)
    );
    let pid = ErlangPid {
        node: &node,
        id: rng.gen_range(0..0x8000),
        serial: rng.gen_range(0..0x2000),
        creation: rng.gen_range(1..=3),
    };
    ChannelTokens {
        vfwebqq: hex(&vf),
        psessionid: hex(&session_term(&pid, uin, skey.as_bytes(), &vf)),
    }
}

/// The connection server process a session belongs to.
struct ErlangPid<'a> {
    node: &'a str,
    id: u32,
    serial: u32,
    creation: u8,
}

/// `term_to_binary({Pid, Uin, <<Skey>>, <<Vf>>})` as an R13-era node wrote
/// it (external term format version 131).
fn session_term(pid: &ErlangPid<'_>, uin: u64, skey: &[u8], vf: &[u8]) -> Vec<u8> {
    let mut out = vec![131, 104, 4]; // version, SMALL_TUPLE_EXT, arity 4
    out.push(103); // PID_EXT
    out.push(100); // ATOM_EXT
    push_len16(&mut out, pid.node.len());
    out.extend_from_slice(pid.node.as_bytes());
    out.extend_from_slice(&pid.id.to_be_bytes());
    out.extend_from_slice(&pid.serial.to_be_bytes());
    out.push(pid.creation);
    push_integer(&mut out, uin);
    push_binary(&mut out, skey);
    push_binary(&mut out, vf);
    out
}

fn push_len16(out: &mut Vec<u8>, len: usize) {
    let len = u16::try_from(len).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
}

/// An integer the way those nodes encoded it: below 256 as
/// SMALL_INTEGER_EXT, below 2^27 as INTEGER_EXT, anything larger as a
/// little-endian SMALL_BIG_EXT (which is why the captured psessionids
/// carry `6e 04 00` + the uin; webqq.md §3.4).
fn push_integer(out: &mut Vec<u8>, value: u64) {
    if value < 256 {
        out.extend_from_slice(&[97, value as u8]); // ok: checked < 256
    } else if value < (1 << 27) {
        out.push(98);
        out.extend_from_slice(&(value as u32).to_be_bytes()); // ok: checked < 2^27
    } else {
        let bytes = value.to_le_bytes();
        let used = bytes.iter().rposition(|b| *b != 0).map_or(1, |i| i + 1);
        out.extend_from_slice(&[110, used as u8, 0]); // ok: used <= 8
        out.extend_from_slice(bytes.get(..used).unwrap_or_default());
    }
}

/// BINARY_EXT: tag, 4-byte big-endian length, bytes.
fn push_binary(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(109);
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The psessionid of webqq.md §2.8, rebuilt from its parts.
    #[test]
    fn psessionid_of_the_worked_example() {
        let vf = "2aabfe228f219e9cb0eb53f16947ccf25ec84d8dbc74254770f58904dba41ecccc3fc1626e53a130";
        let vf_bytes: Vec<u8> = (0..vf.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&vf[i..i + 2], 16).unwrap())
            .collect();
        let pid = ErlangPid {
            node: "connserver_webqq@10.0.0.7",
            id: 0x1234,
            serial: 0xabc,
            creation: 1,
        };
        let psid = hex(&session_term(&pid, 1_685_359_365, b"@kJiG8XnBE", &vf_bytes));
        assert_eq!(
            psid,
            "83680467640019636f6e6e7365727665725f77656271714031302e302e302e370000123400000abc016e0400058b74646d0000000a406b4a694738586e42456d000000282aabfe228f219e9cb0eb53f16947ccf25ec84d8dbc74254770f58904dba41ecccc3fc1626e53a130"
        );
        assert!(psid.ends_with(&format!("00000028{vf}")));
    }

    #[test]
    fn token_formats() {
        let pt = new_ptwebqq();
        assert_eq!(pt.len(), 64);
        assert!(pt
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        let skey = new_skey();
        assert!(skey.starts_with('@') && skey.len() == 10);
        let tokens = new_channel_tokens(10001, &skey);
        assert_eq!(tokens.vfwebqq.len(), 80);
        assert!(tokens
            .psessionid
            .ends_with(&format!("00000028{}", tokens.vfwebqq)));
        // 10001 fits INTEGER_EXT: 62 00 00 27 11.
        assert!(tokens.psessionid.contains("6200002711"));
        assert_eq!(new_login_sig().len(), 64);
    }
}
