//! A minimal local SMTP sink for the sandbox and tests: accepts mail, keeps it in memory, sends nothing on.
//!
//! Speaks just enough RFC 5321 for a real client (`lettre`): EHLO/HELO, MAIL, RCPT, DATA (with
//! dot-unstuffing), RSET, NOOP, QUIT. No TLS and no AUTH, so the daemon's config uses
//! `starttls = "none"` with it. A test can make the next RCPT answers fail ([`SmtpSink::reject_rcpt`]) to
//! exercise the sender's 4xx/5xx classification.

use std::net::SocketAddr;
use std::sync::Arc;

use parking_lot::Mutex;
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// One received mail.
#[derive(Debug, Clone, Serialize)]
pub struct ReceivedMail {
    pub from: String,
    pub to: Vec<String>,
    /// The message as sent (headers and body), dot-unstuffed, CRLF line ends.
    pub data: String,
}

impl ReceivedMail {
    /// The value of the first header `name` (case-insensitive), unfolded.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next()?;
        let mut value: Option<String> = None;
        for line in head.split("\r\n") {
            if let Some(v) = value.as_mut() {
                if line.starts_with([' ', '\t']) {
                    v.push_str(line);
                    continue;
                }
                break;
            }
            if let Some((key, rest)) = line.split_once(':')
                && key.eq_ignore_ascii_case(name)
            {
                value = Some(rest.trim().to_owned());
            }
        }
        value
    }

    /// The body (after the blank line).
    pub fn body(&self) -> &str {
        self.data.split_once("\r\n\r\n").map_or("", |(_, b)| b)
    }
}

/// A running sink. Cheap to clone; stops when the token given to [`spawn_smtp_sink`] is cancelled.
#[derive(Clone)]
pub struct SmtpSink {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    mails: Vec<ReceivedMail>,
    /// Reply to the next RCPT commands instead of 250: `(code, text, remaining uses)`.
    rcpt_reply: Option<(u16, String, usize)>,
}

impl SmtpSink {
    /// Every mail received so far.
    pub fn mails(&self) -> Vec<ReceivedMail> {
        self.state.lock().mails.clone()
    }

    /// Answers the next `times` RCPT commands with `code` (e.g. 450 or 550).
    pub fn reject_rcpt(&self, code: u16, times: usize) {
        let text = if code >= 500 {
            "5.1.1 mailbox unavailable"
        } else {
            "4.2.1 try again later"
        };
        self.state.lock().rcpt_reply = Some((code, text.to_owned(), times));
    }
}

/// Binds `listen` and serves until `shutdown`.
pub async fn spawn_smtp_sink(
    listen: SocketAddr,
    shutdown: CancellationToken,
) -> std::io::Result<SmtpSink> {
    let listener = TcpListener::bind(listen).await?;
    let sink = SmtpSink {
        addr: listener.local_addr()?,
        state: Arc::default(),
    };
    let state = sink.state.clone();
    tokio::spawn(async move {
        loop {
            let stream = tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(_) => continue,
                },
            };
            let state = state.clone();
            tokio::spawn(async move {
                if let Err(e) = session(stream, state).await {
                    tracing::debug!(error = %e, "smtp sink session ended with an error");
                }
            });
        }
    });
    Ok(sink)
}

/// Longest line or message accepted, so a confused client cannot fill memory.
const MAX_LINE: usize = 4096;
const MAX_DATA: usize = 1 << 20;

async fn session(stream: TcpStream, state: Arc<Mutex<State>>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write
        .write_all(b"220 creditlink-smtp-sink ready\r\n")
        .await?;
    let mut from: Option<String> = None;
    let mut to: Vec<String> = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 || line.len() > MAX_LINE {
            return Ok(());
        }
        let command = line.trim_end_matches(['\r', '\n']);
        let verb = command
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let reply: String = match verb.as_str() {
            "EHLO" => "250-creditlink-smtp-sink\r\n250-8BITMIME\r\n250 SMTPUTF8".into(),
            "HELO" => "250 creditlink-smtp-sink".into(),
            "MAIL" => {
                from = Some(address(command));
                to.clear();
                "250 2.1.0 ok".into()
            }
            "RCPT" if from.is_none() => "503 5.5.1 MAIL first".into(),
            "RCPT" => {
                let mut guard = state.lock();
                match guard.rcpt_reply.take() {
                    Some((code, text, times)) => {
                        if times > 1 {
                            guard.rcpt_reply = Some((code, text.clone(), times - 1));
                        }
                        format!("{code} {text}")
                    }
                    None => {
                        to.push(address(command));
                        "250 2.1.5 ok".into()
                    }
                }
            }
            "DATA" if to.is_empty() => "554 5.5.1 no valid recipients".into(),
            "DATA" => {
                write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
                let Some(data) = read_data(&mut lines).await? else {
                    return Ok(());
                };
                state.lock().mails.push(ReceivedMail {
                    from: from.take().unwrap_or_default(),
                    to: std::mem::take(&mut to),
                    data,
                });
                "250 2.0.0 queued".into()
            }
            "RSET" => {
                from = None;
                to.clear();
                "250 2.0.0 ok".into()
            }
            "NOOP" => "250 2.0.0 ok".into(),
            "QUIT" => {
                write.write_all(b"221 2.0.0 bye\r\n").await?;
                return Ok(());
            }
            _ => "502 5.5.2 command not implemented".into(),
        };
        write.write_all(reply.as_bytes()).await?;
        write.write_all(b"\r\n").await?;
    }
}

/// The message up to the lone `.` line, dot-unstuffed; `None` if the client hung up first.
async fn read_data(
    lines: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
) -> std::io::Result<Option<String>> {
    let mut data = String::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(None);
        }
        let content = line.trim_end_matches(['\r', '\n']);
        if content == "." {
            return Ok(Some(data));
        }
        if data.len() < MAX_DATA {
            data.push_str(content.strip_prefix('.').unwrap_or(content));
            data.push_str("\r\n");
        }
    }
}

/// The address inside `MAIL FROM:<a@b>` / `RCPT TO:<a@b>`.
fn address(command: &str) -> String {
    let start = command.find('<').map_or(0, |i| i + 1);
    let end = command[start..]
        .find('>')
        .map_or(command.len(), |i| start + i);
    command[start..end].to_owned()
}
