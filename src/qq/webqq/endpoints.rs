//! Every URL path the WebQQ client requests, and the `Referer`/`Origin`
//! values it sends (webqq.md §1.3, §2, §5). Paths are the path part of the
//! real URLs; the host is replaced by the one base URL, so the simulator
//! routes on these constants.

/// `ui.ptlogin2.qq.com/cgi-bin/login`: the login page with `g_login_sig`.
pub const LOGIN_PAGE: &str = "/cgi-bin/login";
/// `ssl.ptlogin2.qq.com/check`: is a captcha needed?
pub const CHECK: &str = "/check";
/// `ssl.captcha.qq.com/getimage`: the captcha image.
pub const CAPTCHA_IMAGE: &str = "/getimage";
/// `ssl.ptlogin2.qq.com/login`: the password check.
pub const LOGIN: &str = "/login";
/// `ptlogin4.web2.qq.com/check_sig`: the usual path of the URL `ptuiCB`
/// returns (the client follows whatever path the server gives).
pub const CHECK_SIG: &str = "/check_sig";
/// `d.web2.qq.com/channel/login2` (also the relink call).
pub const LOGIN2: &str = "/channel/login2";
/// `d.web2.qq.com/channel/poll2`.
pub const POLL2: &str = "/channel/poll2";
/// `d.web2.qq.com/channel/send_buddy_msg2`.
pub const SEND_BUDDY_MSG2: &str = "/channel/send_buddy_msg2";
/// `d.web2.qq.com/channel/send_qun_msg2`.
pub const SEND_QUN_MSG2: &str = "/channel/send_qun_msg2";
/// `d.web2.qq.com/channel/send_sess_msg2`.
pub const SEND_SESS_MSG2: &str = "/channel/send_sess_msg2";
/// `d.web2.qq.com/channel/get_c2cmsg_sig2`.
pub const GET_C2CMSG_SIG2: &str = "/channel/get_c2cmsg_sig2";
/// `d.web2.qq.com/channel/change_status2`.
pub const CHANGE_STATUS2: &str = "/channel/change_status2";
/// `d.web2.qq.com/channel/logout2`.
pub const LOGOUT2: &str = "/channel/logout2";
/// `s.web2.qq.com/api/get_user_friends2`.
pub const GET_USER_FRIENDS2: &str = "/api/get_user_friends2";
/// `s.web2.qq.com/api/get_group_name_list_mask2`.
pub const GET_GROUP_NAME_LIST_MASK2: &str = "/api/get_group_name_list_mask2";
/// `s.web2.qq.com/api/get_group_info_ext2`.
pub const GET_GROUP_INFO_EXT2: &str = "/api/get_group_info_ext2";
/// `s.web2.qq.com/api/get_friend_uin2`.
pub const GET_FRIEND_UIN2: &str = "/api/get_friend_uin2";
/// `s.web2.qq.com/api/set_long_nick2`.
pub const SET_LONG_NICK2: &str = "/api/set_long_nick2";
/// `s.web2.qq.com/api/allow_and_add2`.
pub const ALLOW_AND_ADD2: &str = "/api/allow_and_add2";
/// `s.web2.qq.com/api/deny_added_request2`.
pub const DENY_ADDED_REQUEST2: &str = "/api/deny_added_request2";
/// `web2.qq.com/web2/get_msg_tip`: the heartbeat.
pub const GET_MSG_TIP: &str = "/web2/get_msg_tip";

/// The WebQQ application id.
pub const APPID: &str = "1003903";
/// `js_ver` of the 2013 login scripts (twqq).
pub const JS_VER: &str = "10040";
/// `u1` of `check`.
pub const CHECK_U1: &str = "http://web2.qq.com/loginproxy.html";
/// `u1` of `login`.
pub const LOGIN_U1: &str = "http://web2.qq.com/loginproxy.html?login2qq=1&webqq_type=10";

/// Referer of `check`, of `check_sig` and of the captcha image.
pub const REFERER_CHECK: &str = "https://ui.ptlogin2.qq.com/cgi-bin/login?daid=164&target=self&style=5&mibao_css=m_webqq&appid=1003903&enable_qlogin=0&no_verifyimg=1&s_url=http%3A%2F%2Fweb2.qq.com%2Floginproxy.html&f_url=loginerroralert&strong_login=1&login_state=10&t=20130723001";
/// Referer of `login` without a captcha.
pub const REFERER_LOGIN: &str = "https://ui.ptlogin2.qq.com/cgi-bin/login?target=self&style=5&mibao_css=mwebqq&appid=1003903&enable_qlogin=0&no_verifyimg=1&s_url=http%3A%2F%2Fweb.qq.com%2Floginproxy.html&f_url=loginerroralert&strong_login=1&login_state=10&t=20130221001";
/// Referer of `login` after a captcha.
pub const REFERER_LOGIN_AFTER_CAPTCHA: &str = "https://ui.ptlogin2.qq.com/cgi-bin/login?daid=164&target=self&style=5&mibao_css=m_webqq&appid=1003903&enable_qlogin=0&no_verifyimg=1&s_url=http%3A%2F%2Fweb2.qq.com%2Floginproxy.html&f_url=loginerroralert&strong_login=1&login_state=10&t=20130903001";
/// Referer of `login2`, `poll2`, `send_qun_msg2`, `change_status2`,
/// `logout2`.
pub const REFERER_D_PROXY_2: &str = "http://d.web2.qq.com/proxy.html?v=20110331002&callback=1&id=2";
/// Referer of `get_c2cmsg_sig2`.
pub const REFERER_D_PROXY_3: &str = "http://d.web2.qq.com/proxy.html?v=20110331002&callback=1&id=3";
/// Referer of the `s.web2` calls, and of `send_buddy_msg2`/`send_sess_msg2`.
pub const REFERER_S_PROXY_3: &str = "http://s.web2.qq.com/proxy.html?v=20110412001&callback=1&id=3";
/// Referer of `set_long_nick2`.
pub const REFERER_S_PROXY_1: &str = "http://s.web2.qq.com/proxy.html?v=20110412001&callback=1&id=1";
/// Referer of the `get_msg_tip` heartbeat (lwqq).
pub const REFERER_WEB2: &str = "http://web2.qq.com/";
/// Origin of the `d.web2` POSTs.
pub const ORIGIN_D: &str = "http://d.web2.qq.com";
/// Origin of `get_group_name_list_mask2`, `allow_and_add2`, `set_long_nick2`.
pub const ORIGIN_S: &str = "http://s.web2.qq.com";
