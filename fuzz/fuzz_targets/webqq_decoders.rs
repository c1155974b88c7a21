//! WebQQ, what the client decodes: the ptlogin2 callbacks (`ptui_checkVC`,
//! `ptuiCB`, the login page's `g_login_sig`), `poll2` and every JSON reply,
//! and message content arrays (received, and sent as the simulator reads
//! them). Nothing may panic; the callbacks and content survive
//! format → parse.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qqbridge::qq::webqq::content::{decode_content, decode_send_content, received_text};
use qqbridge::qq::webqq::json::{
    parse_envelope, parse_poll, parse_result, AllowAndAddResult, C2cSigResult, FriendInfo,
    FriendUinResult, FriendsResult, GroupInfoResult, GroupListResult, Login2Result, LongNickResult,
    PollEvent, PollReply,
};
use qqbridge::qq::webqq::ptlogin::{
    format_check_vc, format_login_page, format_ptui_cb, parse_check_vc, parse_login_sig,
    parse_ptui_cb,
};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let text = text.as_ref();

    // ptlogin2 callbacks: whatever parses formats back to the same thing.
    if let Some(check) = parse_check_vc(text) {
        if let Some(uin8) = check.uin8 {
            let again = format_check_vc(check.need_captcha, &check.code, &uin8);
            assert_eq!(parse_check_vc(&again), Some(check), "{again:?}");
        }
    }
    if let Some(cb) = parse_ptui_cb(text) {
        let _ = cb.login_status();
        let again = format_ptui_cb(&cb);
        assert_eq!(parse_ptui_cb(&again), Some(cb), "{again:?}");
    }
    if let Some(sig) = parse_login_sig(text) {
        assert!(sig.len() <= 512);
        let page = format_login_page(&sig);
        let _ = parse_login_sig(&page);
    }

    // poll2 and the JSON replies.
    if let Ok(PollReply::Events(events)) = parse_poll(text) {
        for event in events {
            let _ = event.poll_type();
        }
    }
    let _ = parse_envelope(text);
    let _ = parse_result::<Login2Result>(text, "login2");
    let _ = parse_result::<FriendsResult>(text, "friends");
    let _ = parse_result::<GroupListResult>(text, "groups");
    let _ = parse_result::<GroupInfoResult>(text, "group_info");
    let _ = parse_result::<FriendUinResult>(text, "friend_uin");
    let _ = parse_result::<FriendInfo>(text, "friend_info");
    let _ = parse_result::<LongNickResult>(text, "long_nick");
    let _ = parse_result::<C2cSigResult>(text, "c2c_sig");
    let _ = parse_result::<AllowAndAddResult>(text, "allow_and_add");

    // Content arrays: as received inside a poll event, and as sent.
    if let Ok(value) = serde_json::from_str::<Value>(text) {
        if let Value::Array(elements) = &value {
            let _ = received_text(elements);
            let rich = decode_content(elements);
            let _ = rich.is_empty();
        }
        let _ = PollEvent::from_value(value);
    }
    let _ = decode_send_content(text);
});
