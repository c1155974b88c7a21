//! One bridge user: a minimal IRC client on the bridge's gateway that
//! registers, logs in to QQ through the `&qq` bot, answers PINGs, reports
//! the load's tagged messages to the ledger and sends lines it is given.
//! Raw lines instead of a full IRC library keep 10,000 of them cheap, so
//! the load generator stays small next to the bridge it measures.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::ledger::{message_id, Ledger};

/// What the bot answers to a successful `login`.
const LOGGED_IN: &str = "logged in to QQ as";

/// A logged-in user; lines sent on `lines` go to the gateway.
pub struct IrcUser {
    pub uin: u64,
    pub lines: mpsc::Sender<String>,
}

/// The IRC nick of the bridge user of account `uin`.
pub fn user_nick(uin: u64) -> String {
    format!("u{uin}")
}

/// The text after the ` :` of a PRIVMSG or NOTICE line, and its verb.
fn verb_and_text(line: &str) -> Option<(&str, &str)> {
    // Skip message tags and the prefix.
    let mut rest = line;
    if rest.starts_with('@') {
        rest = rest.split_once(' ')?.1;
    }
    if rest.starts_with(':') {
        rest = rest.split_once(' ')?.1;
    }
    let (verb, params) = rest.split_once(' ')?;
    let text = params.split_once(" :").map_or("", |(_, text)| text);
    Some((verb, text))
}

async fn write_line(writer: &mut OwnedWriteHalf, line: &str) -> std::io::Result<()> {
    writer.write_all(format!("{line}\r\n").as_bytes()).await
}

/// The answer to a PING line, if it is one.
fn pong(line: &str) -> Option<String> {
    let rest = line.strip_prefix("PING")?;
    Some(format!("PONG{rest}"))
}

/// Connects, registers and logs in to QQ as `uin`; then keeps the
/// connection in a task of its own.
pub async fn connect(
    gateway: SocketAddr,
    uin: u64,
    password: &str,
    ledger: Arc<Ledger>,
    timeout: Duration,
) -> anyhow::Result<IrcUser> {
    let stream = tokio::time::timeout(timeout, TcpStream::connect(gateway))
        .await
        .context("connect timed out")?
        .context("connect")?;
    let (reader, mut writer) = stream.into_split();
    // Small buffer: lines are short and there are thousands of clients.
    let mut reader = BufReader::with_capacity(1024, reader);
    let nick = user_nick(uin);
    write_line(&mut writer, &format!("NICK {nick}")).await?;
    write_line(&mut writer, &format!("USER {nick} 0 * :scale test")).await?;

    // The bot's last word, to explain a login that never completes.
    let mut last_bot_line = String::new();
    let login = async {
        let mut line = String::new();
        let mut registered = false;
        loop {
            line.clear();
            if reader.read_line(&mut line).await? == 0 {
                bail!("the gateway closed the connection");
            }
            let text = line.trim_end();
            if let Some(answer) = pong(text) {
                write_line(&mut writer, &answer).await?;
                continue;
            }
            let Some((verb, said)) = verb_and_text(text) else {
                continue;
            };
            match verb {
                "001" if !registered => {
                    registered = true;
                    write_line(&mut writer, &format!("PRIVMSG &qq :login {uin} {password}"))
                        .await?;
                }
                "PRIVMSG" if said.contains(LOGGED_IN) => return Ok(()),
                "PRIVMSG" if text.contains(" &qq :") => last_bot_line = said.to_owned(),
                "ERROR" | "433" | "465" => bail!("gateway: {text}"),
                _ => {}
            }
        }
    };
    let outcome = tokio::time::timeout(timeout, login).await;
    match outcome {
        Ok(result) => result?,
        Err(_) => bail!("login timed out; the bot last said: {last_bot_line:?}"),
    }

    let (tx, mut rx) = mpsc::channel::<String>(64);
    tokio::spawn(async move {
        let mut line = String::new();
        loop {
            line.clear();
            tokio::select! {
                read = reader.read_line(&mut line) => {
                    match read {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                    let text = line.trim_end();
                    if let Some(answer) = pong(text) {
                        if write_line(&mut writer, &answer).await.is_err() {
                            break;
                        }
                        continue;
                    }
                    match verb_and_text(text) {
                        Some(("PRIVMSG", said)) => {
                            if let Some(id) = message_id(said) {
                                ledger.received(id, uin);
                            }
                        }
                        Some(("NOTICE", said)) if said.contains("not delivered") => {
                            ledger.failure_notice();
                        }
                        _ => {}
                    }
                }
                out = rx.recv() => {
                    let Some(out) = out else { break };
                    if write_line(&mut writer, &out).await.is_err() {
                        break;
                    }
                }
            }
        }
    });
    Ok(IrcUser { uin, lines: tx })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lines() {
        assert_eq!(
            verb_and_text(":a!b@c PRIVMSG u1 :bs12 hi"),
            Some(("PRIVMSG", "bs12 hi"))
        );
        assert_eq!(
            verb_and_text("@time=x :a!b@c PRIVMSG u1 :x"),
            Some(("PRIVMSG", "x"))
        );
        assert_eq!(pong("PING :srv").as_deref(), Some("PONG :srv"));
    }
}
