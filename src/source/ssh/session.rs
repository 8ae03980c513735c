//! A long-lived program on one SSH channel: started once per connection (the login shell runs
//! once, for the exec), then asked over its stdin and answered on its stdout, each answer closed
//! by an end line. A poll then costs the host no channel, no login shell and no rc file.
//!
//! Nothing here knows what the program is; that is `source::remote`.

use memchr::memmem;
use russh::client::Msg;
use russh::{Channel, ChannelMsg};

use super::SshError;
use super::connection::{Connection, bytesize_text};

/// At most this much of the program's stderr is kept, for messages.
const MAX_STDERR: usize = 16 << 10;

/// The program started by [`Connection::start_program`].
pub struct RemoteProgram {
    channel: Channel<Msg>,
    /// What arrived on stdout and was not yet handed out.
    buf: Vec<u8>,
    stderr: Vec<u8>,
    /// Why the program is no longer there, once it is not.
    ended: Option<String>,
    /// Its exit status, once it exited.
    exit_status: Option<u32>,
}

impl std::fmt::Debug for RemoteProgram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteProgram")
            .field("buffered", &self.buf.len())
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Runs `command` on a new channel and writes `program` to its stdin, leaving stdin open for
    /// the requests that follow.
    pub(crate) async fn start_program(
        &self,
        command: &str,
        program: &[u8],
    ) -> Result<RemoteProgram, SshError> {
        let channel = self.open_exec(command, program).await?;
        Ok(RemoteProgram {
            channel,
            buf: Vec::new(),
            stderr: Vec::new(),
            ended: None,
            exit_status: None,
        })
    }
}

impl RemoteProgram {
    /// Writes `request` to the program's stdin.
    pub async fn send(&mut self, request: &[u8]) -> Result<(), SshError> {
        if let Some(why) = &self.ended {
            return Err(SshError::Reply(why.clone()));
        }
        self.channel
            .data(request)
            .await
            .map_err(|_| SshError::Reply(self.end_message("its input was closed")))
    }

    /// Reads until a line equal to `end` (without its newline) and returns what came before it;
    /// more than `limit` bytes before it is an error. The caller bounds the time.
    pub(crate) async fn read_until(
        &mut self,
        end: &[u8],
        limit: usize,
    ) -> Result<Vec<u8>, SshError> {
        let mut scanned = 0;
        loop {
            if let Some(at) = find_line(&self.buf, end, scanned) {
                let mut reply: Vec<u8> = self.buf.drain(..at + end.len() + 1).collect();
                reply.truncate(at);
                return Ok(reply);
            }
            if self.buf.len() > limit {
                return Err(SshError::Reply(format!(
                    "reply larger than {} — not what lbtop asked for",
                    bytesize_text(limit)
                )));
            }
            // A line seen whole cannot become the end line; only the last, partial one can.
            scanned = self.buf.len().saturating_sub(end.len() + 1);
            self.more().await?;
        }
    }

    /// Reads exactly `n` bytes (for binary frames; the caller bounds `n` and the time).
    pub(crate) async fn read_exact(&mut self, n: usize) -> Result<Vec<u8>, SshError> {
        while self.buf.len() < n {
            self.more().await?;
        }
        Ok(self.buf.drain(..n).collect())
    }

    /// Waits for the next message on the channel: stdout is buffered, stderr kept (bounded),
    /// the end noted. An error once the program is gone.
    async fn more(&mut self) -> Result<(), SshError> {
        match self.channel.wait().await {
            Some(ChannelMsg::Data { data }) => self.buf.extend_from_slice(&data),
            Some(ChannelMsg::ExtendedData { data, .. }) => {
                let room = MAX_STDERR.saturating_sub(self.stderr.len());
                self.stderr.extend_from_slice(&data[..data.len().min(room)]);
            }
            Some(ChannelMsg::ExitStatus { exit_status }) => {
                self.exit_status = Some(exit_status);
                self.ended = Some(self.end_message(&format!("exit status {exit_status}")));
            }
            Some(ChannelMsg::ExitSignal { signal_name, .. }) => {
                self.ended = Some(self.end_message(&format!("killed by {signal_name:?}")));
            }
            Some(ChannelMsg::Failure) => {
                self.ended = Some("the host refused to run lbtop's program".into());
            }
            Some(ChannelMsg::Eof) => {
                // The exit status and the rest of stderr usually follow the end of output: wait a
                // moment for them, so the message can say why the program ended.
                let _ =
                    tokio::time::timeout(std::time::Duration::from_secs(1), self.drain_end()).await;
                return Err(SshError::Reply(self.gone()));
            }
            Some(ChannelMsg::Close) | None => return Err(SshError::Reply(self.gone())),
            Some(_) => {}
        }
        Ok(())
    }

    /// After the end of output: takes in stderr and the exit status until the channel closes.
    async fn drain_end(&mut self) {
        loop {
            match self.channel.wait().await {
                Some(ChannelMsg::ExtendedData { data, .. }) => {
                    let room = MAX_STDERR.saturating_sub(self.stderr.len());
                    self.stderr.extend_from_slice(&data[..data.len().min(room)]);
                }
                Some(ChannelMsg::ExitStatus { exit_status }) => {
                    self.exit_status = Some(exit_status);
                    self.ended = Some(self.end_message(&format!("exit status {exit_status}")));
                }
                Some(ChannelMsg::Close) | None => return,
                Some(_) => {}
            }
        }
    }

    /// Why the program is gone, as said so far.
    fn gone(&mut self) -> String {
        self.ended
            .get_or_insert_with(|| "lbtop's program on the host stopped".into())
            .clone()
    }

    /// Why the program is gone, with the first line of its stderr.
    fn end_message(&self, what: &str) -> String {
        let stderr = String::from_utf8_lossy(&self.stderr);
        let line = stderr
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(|l| crate::model::text::printable(l, 160));
        match line {
            Some(l) => format!("lbtop's program on the host stopped: {what} ({l:?})"),
            None => format!("lbtop's program on the host stopped: {what}"),
        }
    }

    /// What arrived on stdout and was not handed out: the start of a reply cut short.
    pub fn pending(&self) -> &[u8] {
        &self.buf
    }

    /// The program's exit status, once it exited.
    pub fn exit_status(&self) -> Option<u32> {
        self.exit_status
    }

    /// Why the program ended, once it has.
    pub fn ended(&self) -> Option<&str> {
        self.ended.as_deref()
    }

    /// The first line of what the program wrote on stderr so far.
    pub fn stderr_line(&self) -> Option<String> {
        String::from_utf8_lossy(&self.stderr)
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(|l| crate::model::text::printable(l, 200))
    }

    /// Ends the program: end of file on its stdin (it exits at its next read), then the channel
    /// is closed, so nothing is left running on the host.
    pub async fn close(self) {
        let _ = tokio::time::timeout(std::time::Duration::from_millis(200), async {
            let _ = self.channel.eof().await;
            let _ = self.channel.close().await;
        })
        .await;
    }
}

/// Where the first line equal to `line` starts in `buf`, looking at the line that holds `from`
/// and those after it.
fn find_line(buf: &[u8], line: &[u8], from: usize) -> Option<usize> {
    let start = buf[..from.min(buf.len())]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let rest = &buf[start..];
    if rest.starts_with(line) && rest.get(line.len()) == Some(&b'\n') {
        return Some(start);
    }
    let needle = [b"\n", line, b"\n"].concat();
    memmem::find(rest, &needle).map(|i| start + i + 1)
}

#[cfg(test)]
mod tests {
    use super::find_line;

    #[test]
    fn the_end_line_is_found_whole_and_only_whole() {
        assert_eq!(find_line(b"a\n@@end 1\n", b"@@end 1", 0), Some(2));
        assert_eq!(find_line(b"@@end 1\nb", b"@@end 1", 0), Some(0));
        assert_eq!(find_line(b"a\n@@end 12\n", b"@@end 1", 0), None);
        assert_eq!(find_line(b"a\n@@end 1", b"@@end 1", 0), None);
        assert_eq!(find_line(b"x@@end 1\n", b"@@end 1", 0), None);
        // Scanning from inside the last line backs up to its start.
        assert_eq!(find_line(b"aaaa\n@@end 1\n", b"@@end 1", 8), Some(5));
    }
}
