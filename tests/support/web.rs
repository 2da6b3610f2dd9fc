//! `fleet serve` for the tests: started on a free port (killed on drop), spoken to over
//! plain HTTP/1.0 from a TCP socket, so every byte the server sends is what is checked.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct WebServer {
    child: Child,
    pub port: u16,
    /// The server's stderr (its log: sign-ins, fetch and webhook problems).
    log: tempfile::NamedTempFile,
}

/// One response: status code, head (status line and headers), body.
#[derive(Debug)]
pub struct Reply {
    pub code: u16,
    pub head: String,
    pub body: String,
}

impl WebServer {
    /// `fleet serve ARGS` in `dir` with `env`, on `127.0.0.1:0` unless ARGS say
    /// `--listen`; its first line names the address.
    pub fn start(dir: &Path, args: &[&str], env: &[(&str, String)]) -> WebServer {
        let log = tempfile::NamedTempFile::new().unwrap();
        let mut cmd = Command::new(super::fleet_bin());
        cmd.arg("serve");
        if !args.contains(&"--listen") {
            cmd.args(["--listen", "127.0.0.1:0"]);
        }
        let mut child = cmd
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(log.reopen().unwrap())
            .spawn()
            .expect("fleet serve starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .and_then(|addr| addr.rsplit(':').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "no port in {line:?}; log:\n{}",
                    std::fs::read_to_string(log.path()).unwrap_or_default()
                )
            });
        WebServer { child, port, log }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// Sends `text` as it is (a whole request) and reads the answer to its end.
    pub fn raw(&self, text: &[u8]) -> Reply {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        // A server may answer (413) before reading all of a large body.
        let _ = s.write_all(text);
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw);
        let raw = String::from_utf8_lossy(&raw);
        let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
        let code = head
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        Reply {
            code,
            head: head.to_string(),
            body: body.to_string(),
        }
    }

    /// One request; a POST's `body` is sent as an urlencoded form.
    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
        let mut req = format!("{method} {path} HTTP/1.0\r\nHost: localhost\r\n");
        for (name, value) in headers {
            req.push_str(&format!("{name}: {value}\r\n"));
        }
        if method == "POST" {
            req.push_str(&format!(
                "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        req.push_str("\r\n");
        req.push_str(body);
        self.raw(req.as_bytes())
    }

    pub fn get(&self, path: &str) -> Reply {
        self.request("GET", path, &[], "")
    }
}

impl Drop for WebServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Reply {
    /// The value of header `name` (the first).
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }

    pub fn location(&self) -> String {
        self.header("location")
            .unwrap_or_else(|| panic!("no location in {}", self.head))
    }

    /// The whole Set-Cookie line of cookie `name`.
    pub fn set_cookie(&self, name: &str) -> String {
        self.head
            .lines()
            .filter_map(|l| l.split_once(':'))
            .filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie"))
            .map(|(_, v)| v.trim().to_string())
            .find(|v| v.starts_with(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no Set-Cookie {name}: {self:?}"))
    }

    /// The value of cookie `name` set by this reply.
    pub fn header_cookie(&self, name: &str) -> String {
        let line = self.set_cookie(name);
        line[name.len() + 1..]
            .split(';')
            .next()
            .unwrap()
            .to_string()
    }
}
