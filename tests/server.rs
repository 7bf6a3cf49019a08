//! The workspace server as a real process on a real Unix socket: the handshake (versions, an
//! unknown request), one server per data dir, a stale socket, `kill -9` in the middle of a burst
//! of replies, a reconnecting client resuming from the last event it saw, and pushes reaching
//! another connection.
//!
//! Tests needing several Unix users (identity from the kernel, teams, the socket's group) are
//! in `tests/server_users.rs`, run as root by `.ci/run`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use braid::api::paths::connect_socket;
use braid::api::{ClientFrame, Hello, Incoming, Request, Response, ServerFrame, Write, codec};
use braid::identity::Claim;
use braid::ingest::{Inbound, Settings, ingest};
use braid::model::{Channel, ContactId, ConversationId, Direction, IdentityKind};
use braid::store::Store;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Server {
    child: Child,
    socket: PathBuf,
}

impl Server {
    /// `braid server` on `data` with `config`, listening on `socket`; waits until it answers.
    fn start(config: &Path, data: &Path, socket: &Path) -> Server {
        let child = Command::new(env!("CARGO_BIN_EXE_braid"))
            .args(["server", "--config"])
            .arg(config)
            .arg("--data-dir")
            .arg(data)
            .arg("--socket")
            .arg(socket)
            .env_remove("BRAID_DATA_DIR")
            .env_remove("BRAID_SOCKET")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut s = Server {
            child,
            socket: socket.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::os::unix::net::UnixStream::connect(&s.socket).is_err() {
            if let Ok(Some(status)) = s.child.try_wait() {
                let mut err = String::new();
                std::io::Read::read_to_string(s.child.stderr.as_mut().unwrap(), &mut err).unwrap();
                panic!("the server exited with {status}: {err}");
            }
            assert!(Instant::now() < deadline, "the server never listened");
            std::thread::sleep(Duration::from_millis(20));
        }
        s
    }

    fn kill9(&mut self) {
        let _ = Command::new("kill")
            .args(["-9", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    data: PathBuf,
    config: PathBuf,
    socket: PathBuf,
    conversation: ConversationId,
    contact: ContactId,
}

/// A customer's email.
fn inbound(id: &str, email: &str, name: &str, body: &str) -> Inbound {
    Inbound {
        channel: Channel::Email,
        account: String::new(),
        external_id: id.into(),
        direction: Direction::In,
        customer: Claim::new(IdentityKind::Email, email),
        linked: vec![],
        customer_name: Some(name.into()),
        author: None,
        subject: Some(body.into()),
        body: body.into(),
        sent_at: braid::model::now_millis(),
        meta: None,
        cursor: None,
    }
}

/// A store with one customer conversation (email), and an empty workspace config.
fn fixture(config_text: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let data = root.join("data");
    let mut store = Store::open_dir(&data).unwrap();
    let r = ingest(
        &mut store,
        &inbound("<m1@x.org>", "ann@x.org", "Ann Lee", "Where is my refund?"),
        &Settings::default(),
    )
    .unwrap();
    let (conversation, contact) = match r {
        braid::ingest::Ingested::Stored {
            conversation,
            contact,
            ..
        } => (conversation, contact),
        other => panic!("{other:?}"),
    };
    drop(store);
    let config = root.join("workspace.toml");
    std::fs::write(&config, config_text).unwrap();
    let socket = root.join("braid.sock");
    Fixture {
        _dir: dir,
        root,
        data,
        config,
        socket,
        conversation,
        contact,
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Send raw JSON frames and read raw answers (what an old or new client would send).
async fn raw_exchange(
    socket: &Path,
    frames: &[serde_json::Value],
    answers: usize,
) -> Vec<serde_json::Value> {
    let mut s = tokio::net::UnixStream::connect(socket).await.unwrap();
    for f in frames {
        codec::write(&mut s, f).await.unwrap();
    }
    let mut out = Vec::new();
    while out.len() < answers {
        match tokio::time::timeout(
            Duration::from_secs(10),
            codec::read::<_, serde_json::Value>(&mut s),
        )
        .await
        {
            // The server's status line may come at any time; it is not an answer.
            Ok(Ok(v)) if v["type"] == "status" => continue,
            Ok(Ok(v)) => out.push(v),
            _ => break,
        }
    }
    out
}

#[test]
fn a_client_of_another_version_gets_one_clear_line() {
    let f = fixture("");
    let _server = Server::start(&f.config, &f.data, &f.socket);
    rt().block_on(async {
        let hello = serde_json::json!({
            "type": "hello", "min_version": 7, "max_version": 9, "client": "braid 9.0.0 tui",
            "some_future_field": true
        });
        let got = raw_exchange(&f.socket, &[hello], 2).await;
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0]["type"], "refused");
        let reason = got[0]["reason"].as_str().unwrap();
        assert!(reason.contains("speaks protocol 1-2"), "{reason}");
        assert!(reason.contains("braid 9.0.0 tui speaks 7-9"), "{reason}");
        assert!(reason.contains("use the same braid version"), "{reason}");

        // Through the client library: the error is that line.
        let mut h = Hello::new("test", None);
        h.min_version = 7;
        h.max_version = 9;
        let err = connect_socket(&f.socket, h).await.unwrap_err().to_string();
        assert!(err.contains("speaks protocol 1-2"), "{err}");

        // Not a braid client at all.
        let got = raw_exchange(&f.socket, &[serde_json::json!({"GET": "/"})], 1).await;
        assert_eq!(got[0]["type"], "refused");
    });
}

#[test]
fn an_unknown_request_is_answered_and_the_connection_stays() {
    let f = fixture("");
    let _server = Server::start(&f.config, &f.data, &f.socket);
    rt().block_on(async {
        let hello = serde_json::to_value(ClientFrame::Hello(Hello::new("test", None))).unwrap();
        let teleport = serde_json::json!({"type": "request", "id": 7, "request": {"op": "teleport", "args": {"to": "mars"}}});
        let counts = serde_json::to_value(ClientFrame::Request { id: 8, request: Request::Counts }).unwrap();
        let got = raw_exchange(&f.socket, &[hello, teleport, counts], 3).await;
        let frames: Vec<ServerFrame> = got
            .into_iter()
            .filter_map(|v| serde_json::from_value(v).ok())
            .filter(|f| !matches!(f, ServerFrame::Status { .. }))
            .collect();
        assert!(matches!(frames[0], ServerFrame::Welcome(_)), "{frames:?}");
        match &frames[1] {
            ServerFrame::Response { id: 7, response: Response::Error(e) } => {
                assert!(e.contains("cannot read a 'teleport' request"), "{e}")
            }
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(frames.get(2), Some(ServerFrame::Response { id: 8, response: Response::Counts { .. } })),
            "{frames:?}"
        );
    });
}

#[test]
fn a_second_server_on_the_same_data_dir_refuses() {
    let f = fixture("");
    let first = Server::start(&f.config, &f.data, &f.socket);
    let out = Command::new(env!("CARGO_BIN_EXE_braid"))
        .args(["server", "--config"])
        .arg(&f.config)
        .arg("--data-dir")
        .arg(&f.data)
        .arg("--socket")
        .arg(f.root.join("other.sock"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!(
            "another braid server (pid {}) owns",
            first.child.id()
        )),
        "{err}"
    );
    // And the first one still serves.
    assert!(std::os::unix::net::UnixStream::connect(&f.socket).is_ok());
}

#[test]
fn a_stale_socket_file_is_replaced_and_a_live_one_is_not() {
    let f = fixture("");
    // A socket file nobody listens on (a killed server leaves one behind).
    drop(std::os::unix::net::UnixListener::bind(&f.socket).unwrap());
    assert!(f.socket.exists());
    let _server = Server::start(&f.config, &f.data, &f.socket);
    // A second data dir's server asked to listen on the same, live, socket.
    let other = f.root.join("data2");
    let out = Command::new(env!("CARGO_BIN_EXE_braid"))
        .args(["server", "--config"])
        .arg(&f.config)
        .arg("--data-dir")
        .arg(&other)
        .arg("--socket")
        .arg(&f.socket)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already listens on"), "{err}");
}

#[test]
fn kill_9_during_a_burst_of_replies_loses_nothing_acknowledged() {
    let f = fixture("");
    let mut server = Server::start(&f.config, &f.data, &f.socket);
    let acked: Vec<String> = rt().block_on(async {
        let (conn, _rx) = connect_socket(&f.socket, Hello::new("burst", None))
            .await
            .unwrap();
        let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let a = acked.clone();
        let c = conn.clone();
        let conversation = f.conversation;
        let contact = f.contact;
        let burst = tokio::spawn(async move {
            for i in 0..100_000 {
                let body = format!("reply number {i}");
                let r = c
                    .call(Request::Write {
                        conversation,
                        contact,
                        write: Write::Reply {
                            channel: Channel::Email,
                            body: body.clone(),
                            then_pending: false,
                            seen: Default::default(),
                        },
                    })
                    .await;
                match r {
                    Ok(Response::Done(_)) => a.lock().unwrap().push(body),
                    Ok(other) => panic!("{other:?}"),
                    Err(_) => break, // the server is gone
                }
            }
        });
        // Let a few dozen go through, then kill the server mid-burst.
        let deadline = Instant::now() + Duration::from_secs(30);
        while acked.lock().unwrap().len() < 40 {
            assert!(Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        server.kill9();
        let _ = tokio::time::timeout(Duration::from_secs(10), burst).await;
        acked.lock().unwrap().clone()
    });
    assert!(acked.len() >= 40);
    // Restarted on the same data dir and socket: the stale socket and lock are taken over.
    let _server = Server::start(&f.config, &f.data, &f.socket);
    let store = Store::open(&f.data.join(braid::store::DB_FILE)).unwrap();
    let bodies: Vec<String> = store
        .timeline(f.contact, None, 1_000_000)
        .unwrap()
        .into_iter()
        .map(|m| m.body)
        .collect();
    for body in &acked {
        let n = bodies.iter().filter(|b| *b == body).count();
        assert_eq!(n, 1, "'{body}' is stored {n} times");
    }
    // Nothing stored twice, acknowledged or not.
    let mut sorted = bodies.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), bodies.len());
}

#[test]
fn a_reconnecting_client_gets_what_it_missed() {
    let f = fixture("");
    let mut server = Server::start(&f.config, &f.data, &f.socket);
    let rt = rt();
    let last = rt.block_on(async {
        let (conn, _rx) = connect_socket(&f.socket, Hello::new("a", None))
            .await
            .unwrap();
        conn.welcome().last_event
    });
    server.kill9();
    // While the client is away, another agent adds a note (through a new server).
    let _server = Server::start(&f.config, &f.data, &f.socket);
    rt.block_on(async {
        let (other, _rx) = connect_socket(&f.socket, Hello::new("b", None))
            .await
            .unwrap();
        let r = other
            .call(Request::Write {
                conversation: f.conversation,
                contact: f.contact,
                write: Write::Note {
                    body: "called the customer".into(),
                    seen: Default::default(),
                },
            })
            .await
            .unwrap();
        assert!(matches!(r, Response::Done(_)), "{r:?}");
        // The first client comes back, resuming after the last event it saw.
        let (conn, mut rx) = connect_socket(&f.socket, Hello::new("a", Some(last)))
            .await
            .unwrap();
        assert!(conn.welcome().last_event > last);
        let got = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match rx.recv().await {
                    Some(Incoming::Events { events, .. }) => break events,
                    Some(_) => continue,
                    None => panic!("closed"),
                }
            }
        })
        .await
        .unwrap();
        assert!(got.iter().all(|e| e.id > last));
        assert!(got.iter().any(|e| e.kind == "note"), "{got:?}");
    });
}

#[test]
fn a_change_is_pushed_to_the_other_connections() {
    let f = fixture("");
    let _server = Server::start(&f.config, &f.data, &f.socket);
    rt().block_on(async {
        let (writer, _wrx) = connect_socket(&f.socket, Hello::new("w", None))
            .await
            .unwrap();
        let (_reader, mut rx) = connect_socket(&f.socket, Hello::new("r", None))
            .await
            .unwrap();
        let r = writer
            .call(Request::Write {
                conversation: f.conversation,
                contact: f.contact,
                write: Write::Verb(braid::actions::Verb::Tag("refund".into())),
            })
            .await
            .unwrap();
        assert!(matches!(r, Response::Done(_)), "{r:?}");
        let events = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if let Some(Incoming::Events { events, .. }) = rx.recv().await {
                    break events;
                }
            }
        })
        .await
        .expect("no push within 10 s");
        assert!(
            events
                .iter()
                .any(|e| e.kind == "tag_added" && e.conversation_id == Some(f.conversation))
        );
    });
}

/// The current Unix user's name (the server maps it through `[[agents]]` like anyone's).
fn me() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn an_agent_gets_only_their_teams_changes_and_a_refusal_is_audited() {
    let config = format!(
        "[[teams]]\nname = \"billing\"\n[[teams]]\nname = \"support\"\n\
         [[agents]]\nuser = \"{}\"\nname = \"ann\"\nrole = \"agent\"\nteams = [\"billing\"]\n",
        me()
    );
    let f = fixture(&config);
    // A second conversation, of another team; the first is billing's.
    let mut store = Store::open_dir(&f.data).unwrap();
    let now = braid::model::now_millis();
    let other = match ingest(
        &mut store,
        &inbound(
            "<s1@x.org>",
            "pedro@x.org",
            "Pedro",
            "the tent pole snapped",
        ),
        &Settings::default(),
    )
    .unwrap()
    {
        braid::ingest::Ingested::Stored { conversation, .. } => conversation,
        x => panic!("{x:?}"),
    };
    store
        .set_conversation_team(f.conversation, Some("billing"), "setup", now)
        .unwrap();
    store
        .set_conversation_team(other, Some("support"), "setup", now)
        .unwrap();
    drop(store);
    let _server = Server::start(&f.config, &f.data, &f.socket);
    rt().block_on(async {
        let (conn, mut rx) = connect_socket(&f.socket, Hello::new("ann", None))
            .await
            .unwrap();
        assert_eq!(conn.welcome().agent, "ann");
        assert_eq!(conn.welcome().teams, vec!["billing".to_string()]);
        // The other team's conversation does not exist for her.
        let r = conn
            .call(Request::Conversation { id: other })
            .await
            .unwrap();
        assert!(matches!(r, Response::Error(_)), "{r:?}");
        let r = conn
            .call(Request::Write {
                conversation: other,
                contact: f.contact,
                write: Write::Note {
                    body: "sneaky".into(),
                    seen: Default::default(),
                },
            })
            .await
            .unwrap();
        assert!(
            matches!(r, Response::Error(_) | Response::Refused(_)),
            "{r:?}"
        );
        // Someone else (the worker, another agent) writes to both conversations.
        let mut store = Store::open(&f.data.join(braid::store::DB_FILE)).unwrap();
        let now = braid::model::now_millis();
        store.add_note(other, "zoe", "support only", now).unwrap();
        store
            .add_note(f.conversation, "zoe", "billing too", now)
            .unwrap();
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !seen.iter().any(|e: &braid::store::EventRow| {
            e.conversation_id == Some(f.conversation) && e.kind == "note"
        }) {
            assert!(Instant::now() < deadline, "no push: {seen:?}");
            if let Ok(Some(Incoming::Events { events, .. })) =
                tokio::time::timeout(Duration::from_millis(200), rx.recv()).await
            {
                seen.extend(events);
            }
        }
        assert!(
            seen.iter().all(|e| e.conversation_id != Some(other)),
            "the other team's change was pushed: {seen:?}"
        );
    });
    // A viewer's write is refused, changes nothing, and is in the audit log.
    drop(_server);
    let viewer = config.replace("role = \"agent\"", "role = \"viewer\"");
    std::fs::write(&f.config, viewer).unwrap();
    let _server = Server::start(&f.config, &f.data, &f.socket);
    rt().block_on(async {
        let (conn, _rx) = connect_socket(&f.socket, Hello::new("ann", None))
            .await
            .unwrap();
        let r = conn
            .call(Request::Write {
                conversation: f.conversation,
                contact: f.contact,
                write: Write::Verb(braid::actions::Verb::Assign(Some("ann".into()))),
            })
            .await
            .unwrap();
        match r {
            Response::Refused(line) => {
                assert!(line.contains("needs the agent role"), "{line}");
                assert!(line.contains("viewer"), "{line}");
            }
            other => panic!("{other:?}"),
        }
    });
    let store = Store::open(&f.data.join(braid::store::DB_FILE)).unwrap();
    assert_eq!(store.conversation(f.conversation).unwrap().assignee, None);
    let refusals: Vec<_> = store
        .events_since(braid::model::EventId(0), 10_000)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "refused" && e.actor == "ann")
        .collect();
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    assert_eq!(refusals[0].conversation_id, Some(f.conversation));
}

/// `--remote ssh://host` runs `ssh -T -- host braid attach --stdio` and speaks the protocol over
/// its pipes. Here `ssh` is a stand-in that runs the remote command locally (a real sshd would
/// run it as the login user, which the kernel then reports to the server): the bridge, the
/// stdio transport and the CLI over it are the real ones.
#[test]
fn the_ssh_bridge_carries_the_protocol() {
    use std::os::unix::fs::PermissionsExt;
    let f = fixture("");
    let _server = Server::start(&f.config, &f.data, &f.socket);
    let bin = f.root.join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_braid"), bin.join("braid")).unwrap();
    let ssh = bin.join("ssh");
    std::fs::write(
        &ssh,
        "#!/bin/sh\n# options up to --, then the host, then the remote command\nwhile [ \"$1\" != \"--\" ]; do shift; done\nshift\nprintf '%s\\n' \"$1\" > \"$(dirname \"$0\")/host\"\nshift\nexec sh -c \"$*\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&ssh, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new(env!("CARGO_BIN_EXE_braid"))
        .args(["--remote", "ssh://ann@box:2222", "status", "--json"])
        .env("PATH", &path)
        // What the far side's environment says about its server (as a login shell would).
        .env("BRAID_SOCKET", &f.socket)
        .env_remove("BRAID_DATA_DIR")
        .env("XDG_CONFIG_HOME", f.root.join("no-config"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["server"]["transport"], "ssh", "{v}");
    assert_eq!(
        std::fs::read_to_string(bin.join("host")).unwrap().trim(),
        "ann@box"
    );
    // A note through the bridge lands in the server's store.
    let out = Command::new(env!("CARGO_BIN_EXE_braid"))
        .args(["--remote", "ssh://ann@box:2222", "note"])
        .arg(f.conversation.0.to_string())
        .args(["--text", "through ssh"])
        .env("PATH", &path)
        .env("BRAID_SOCKET", &f.socket)
        .env_remove("BRAID_DATA_DIR")
        .env("XDG_CONFIG_HOME", f.root.join("no-config"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let store = Store::open(&f.data.join(braid::store::DB_FILE)).unwrap();
    assert!(
        store
            .timeline(f.contact, None, 100)
            .unwrap()
            .iter()
            .any(|m| m.body == "through ssh")
    );
}

/// `braid --socket S ARGS` against the fixture's server.
fn braid(f: &Fixture, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_braid"))
        .arg("--socket")
        .arg(&f.socket)
        .args(args)
        .env_remove("BRAID_DATA_DIR")
        .env_remove("BRAID_SOCKET")
        .env("BRAID_CONFIG", &f.config)
        .output()
        .unwrap()
}

/// The replies stored in the fixture's conversation.
fn replies(f: &Fixture) -> Vec<String> {
    let store = Store::open(&f.data.join(braid::store::DB_FILE)).unwrap();
    store
        .timeline(f.contact, None, 100)
        .unwrap()
        .into_iter()
        .filter(|m| m.direction == Direction::Out)
        .map(|m| m.body)
        .collect()
}

#[test]
fn a_stale_reply_is_refused_on_the_cli_with_exit_code_3_and_forced_once() {
    let f = fixture("");
    let _server = Server::start(&f.config, &f.data, &f.socket);
    let id = f.conversation.to_string();
    let shown = braid(&f, &["show", &id, "--json"]);
    assert!(shown.status.success(), "{shown:?}");
    let shown: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    let seen = shown["seen_event"].as_i64().unwrap().to_string();
    // Nothing new: a note after `braid show` goes through.
    let ok = braid(&f, &["note", &id, "--text", "checking the refund"]);
    assert!(ok.status.success(), "{ok:?}");
    // The customer writes again.
    {
        let mut store = Store::open(&f.data.join(braid::store::DB_FILE)).unwrap();
        ingest(
            &mut store,
            &inbound(
                "<m2@x.org>",
                "ann@x.org",
                "Ann Lee",
                "Actually it just arrived, thanks!",
            ),
            &Settings::default(),
        )
        .unwrap();
    }
    // A reply of someone who looked before that: stopped, nothing sent, code 3.
    for args in [
        vec!["reply", id.as_str(), "--text", "Your refund is on its way"],
        vec![
            "reply",
            id.as_str(),
            "--text",
            "Your refund is on its way",
            "--seen",
            seen.as_str(),
        ],
    ] {
        let out = braid(&f, &args);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("not sent: #"), "{err}");
        assert!(
            err.contains("Ann Lee wrote: “Actually it just arrived, thanks!”"),
            "{err}"
        );
        assert!(err.contains("--force"), "{err}");
    }
    assert!(replies(&f).is_empty(), "nothing went out");
    // --json: the refusal is a JSON error, same code.
    let out = braid(
        &f,
        &[
            "reply",
            &id,
            "--text",
            "Your refund is on its way",
            "--json",
        ],
    );
    assert_eq!(out.status.code(), Some(3));
    let err: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap();
    assert!(err["error"].as_str().unwrap().contains("not sent"), "{err}");
    // Forced: it goes out, once.
    let out = braid(
        &f,
        &[
            "reply",
            &id,
            "--text",
            "Your refund is on its way",
            "--force",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(replies(&f), vec!["Your refund is on its way".to_string()]);
    // Having looked again, a reply needs no force.
    assert!(braid(&f, &["show", &id]).status.success());
    let out = braid(&f, &["reply", &id, "--text", "Glad it arrived!"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(replies(&f).len(), 2);
    // The stopped sends are in the audit log as refusals by this agent.
    let store = Store::open(&f.data.join(braid::store::DB_FILE)).unwrap();
    let refused = store
        .conversation_events(f.conversation, 50)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "refused")
        .count();
    assert_eq!(refused, 3);
}

/// Write one frame the way the codec does (4-byte big-endian length, JSON).
fn write_frame(w: &mut impl std::io::Write, v: &serde_json::Value) {
    let bytes = serde_json::to_vec(v).unwrap();
    w.write_all(&(bytes.len() as u32).to_be_bytes()).unwrap();
    w.write_all(&bytes).unwrap();
    w.flush().unwrap();
}

/// Wait for a presence push that satisfies `ok`.
async fn presence_until(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<Incoming>,
    ok: impl Fn(&[braid::api::PresenceEntry]) -> bool,
) -> Vec<braid::api::PresenceEntry> {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match rx.recv().await {
                Some(Incoming::Presence(online)) if ok(&online) => break online,
                Some(_) => continue,
                None => panic!("connection closed"),
            }
        }
    })
    .await
    .expect("no such presence within 10 s")
}

#[test]
fn presence_appears_and_is_gone_at_once_when_the_client_is_killed() {
    let f = fixture("");
    let _server = Server::start(&f.config, &f.data, &f.socket);
    rt().block_on(async {
        let (watcher, mut rx) = connect_socket(&f.socket, Hello::new("watcher", None))
            .await
            .unwrap();
        let r = watcher
            .call(Request::Presence {
                conversation: None,
                activity: braid::api::Activity::Viewing,
            })
            .await
            .unwrap();
        assert_eq!(r, Response::Ack);
        let me = presence_until(&mut rx, |o| o.len() == 1).await;
        assert_eq!(me[0].conversation, None);

        // Another client, a real process (the SSH bridge's far end), typing a reply.
        let mut typist = Command::new(env!("CARGO_BIN_EXE_braid"))
            .arg("--socket")
            .arg(&f.socket)
            .args(["attach", "--stdio"])
            .env_remove("BRAID_DATA_DIR")
            .env_remove("BRAID_SOCKET")
            .env("BRAID_CONFIG", &f.config)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = typist.stdin.take().unwrap();
        write_frame(
            &mut stdin,
            &serde_json::to_value(ClientFrame::Hello(Hello::new("typist", None))).unwrap(),
        );
        write_frame(
            &mut stdin,
            &serde_json::to_value(ClientFrame::Request {
                id: 1,
                request: Request::Presence {
                    conversation: Some(f.conversation),
                    activity: braid::api::Activity::Reply,
                },
            })
            .unwrap(),
        );
        let both = presence_until(&mut rx, |o| o.len() == 2).await;
        let typing = both
            .iter()
            .find(|e| e.conversation == Some(f.conversation))
            .expect("the typist's entry");
        assert_eq!(typing.activity, braid::api::Activity::Reply);
        assert_eq!(typing.agent, me[0].agent);
        // `braid who` asks the same server.
        let out = braid(&f, &["who", "--json"]);
        assert!(out.status.success(), "{out:?}");
        let who: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(who["agents"], 1, "{who}");
        let online = who["online"].as_array().unwrap();
        assert_eq!(online.len(), 2, "{who}");
        assert!(
            online
                .iter()
                .any(|e| e["activity"] == "reply" && e["conversation_id"] == f.conversation.0),
            "{who}"
        );
        let text = String::from_utf8(braid(&f, &["who"]).stdout).unwrap();
        assert!(text.starts_with("1 online\n"), "{text}");
        assert!(
            text.contains(&format!("typing a reply #{}", f.conversation)),
            "{text}"
        );

        // kill -9: the socket closes with the process; the entry goes at once.
        let killed = Instant::now();
        Command::new("kill")
            .args(["-9", &typist.id().to_string()])
            .status()
            .unwrap();
        let _ = typist.wait();
        let left = presence_until(&mut rx, |o| o.len() == 1).await;
        assert_eq!(left[0].session, me[0].session);
        let took = killed.elapsed();
        assert!(
            took < Duration::from_secs(2),
            "gone after {took:?}, not within 2 s"
        );
        drop(stdin);
    });
}

/// Wait up to `secs` for this agent's next notification push.
async fn next_notification(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<Incoming>,
    secs: u64,
) -> Option<(Vec<braid::store::NotificationRow>, i64)> {
    tokio::time::timeout(Duration::from_secs(secs), async {
        loop {
            match rx.recv().await {
                Some(Incoming::Notification { rows, unread }) => break Some((rows, unread)),
                Some(_) => continue,
                None => break None,
            }
        }
    })
    .await
    .ok()
    .flatten()
}

/// A page of the caller's notifications and their unread count.
async fn notifications(conn: &braid::api::Connection) -> (Vec<braid::store::NotificationRow>, i64) {
    match conn
        .call(Request::Notifications {
            seq: 0,
            page: braid::api::NotificationPage::Newest,
            limit: 50,
            unread_only: false,
        })
        .await
        .unwrap()
    {
        Response::Notifications { rows, unread, .. } => (rows, unread),
        other => panic!("{other:?}"),
    }
}

/// Three agents on one server (the server `braid server` runs, on a real store file; the
/// agents connect in-process as themselves, see `connect_local_as`): a mention reaches the
/// mentioned agent's terminals and nobody else's, is kept per agent across a restart of the
/// server, and read state is each agent's own and follows them to their other terminal.
#[test]
fn a_mention_notifies_exactly_the_mentioned_agent_and_survives_a_restart() {
    let f = fixture(
        "[[agents]]\nuser = \"nobody-alice\"\nname = \"alice\"\nrole = \"agent\"\n\
         [[agents]]\nuser = \"nobody-bob\"\nname = \"bob\"\nrole = \"agent\"\n\
         [[agents]]\nuser = \"nobody-carol\"\nname = \"carol\"\nrole = \"agent\"\n",
    );
    let config = braid::config::Config::load(Some(&f.config), Some(&f.data)).unwrap();
    let start = || {
        let mut opts = braid::server::ServerOptions::new(config.clone());
        opts.run_worker = false;
        braid::server::start(opts)
    };
    let mention_id = rt().block_on(async {
        let server = start().await.unwrap();
        let (alice, mut alice_rx) = connect_as(&server, "alice").await;
        let (bob, mut bob_rx) = connect_as(&server, "bob").await;
        let (_bob2, mut bob2_rx) = connect_as(&server, "bob").await;
        let (carol, mut carol_rx) = connect_as(&server, "carol").await;
        let r = alice
            .call(Request::Post {
                conversation: f.conversation,
                post: braid::api::Post::Note {
                    body: "@bob can you take Ann's refund? (bob@x.org is not a mention)".into(),
                    seen: braid::api::Seen::Force,
                },
            })
            .await
            .unwrap();
        assert!(matches!(r, Response::Written(_)), "{r:?}");
        // Both of bob's terminals hear of it at once; nobody else does.
        for rx in [&mut bob_rx, &mut bob2_rx] {
            let (rows, unread) = next_notification(rx, 10).await.expect("no push to bob");
            assert_eq!(unread, 1);
            assert_eq!(rows.len(), 1);
            assert_eq!(rows[0].kind, braid::api::NotificationKind::Mention);
            assert_eq!(rows[0].actor, "alice");
            assert_eq!(rows[0].conversation_id, Some(f.conversation));
        }
        assert!(next_notification(&mut alice_rx, 1).await.is_none());
        assert!(next_notification(&mut carol_rx, 1).await.is_none());
        let (rows, unread) = notifications(&bob).await;
        assert_eq!((rows.len(), unread), (1, 1));
        assert_eq!(notifications(&alice).await, (Vec::new(), 0));
        assert_eq!(notifications(&carol).await, (Vec::new(), 0));

        // A second note mentions bob and carol. Bob reads his in one terminal: the other is
        // told; carol's stays unread.
        alice
            .call(Request::Post {
                conversation: f.conversation,
                post: braid::api::Post::Note {
                    body: "@carol @BOB both of you please".into(),
                    seen: braid::api::Seen::Force,
                },
            })
            .await
            .unwrap();
        assert_eq!(next_notification(&mut bob2_rx, 10).await.unwrap().1, 2);
        assert_eq!(next_notification(&mut carol_rx, 10).await.unwrap().1, 1);
        let (rows, _) = notifications(&bob).await;
        let newest = rows[0].id;
        // Carol cannot mark bob's.
        match carol
            .call(Request::MarkNotificationsRead {
                ids: vec![newest],
                all: false,
            })
            .await
            .unwrap()
        {
            Response::NotificationsRead { ids, unread } => {
                assert!(ids.is_empty());
                assert_eq!(unread, 1);
            }
            other => panic!("{other:?}"),
        }
        match bob
            .call(Request::MarkNotificationsRead {
                ids: vec![newest],
                all: false,
            })
            .await
            .unwrap()
        {
            Response::NotificationsRead { ids, unread } => {
                assert_eq!(ids, [newest]);
                assert_eq!(unread, 1);
            }
            other => panic!("{other:?}"),
        }
        // Bob's other terminal: the new count, no new rows.
        let (rows, unread) = next_notification(&mut bob2_rx, 10).await.unwrap();
        assert!(rows.is_empty());
        assert_eq!(unread, 1);
        assert_eq!(notifications(&carol).await.1, 1);
        server.shutdown().await;
        rows_id(&notifications_sync(&f.data, "bob"))
    });

    // While no server runs, alice mentions bob again (a script writing to the store): the
    // next server derives it from its cursor. And everything read stays read.
    let mut store = Store::open_dir(&f.data).unwrap();
    store
        .add_note(
            f.conversation,
            "alice",
            "@bob one more",
            braid::model::now_millis(),
        )
        .unwrap();
    drop(store);
    rt().block_on(async {
        let server = start().await.unwrap();
        let (bob, _rx) = connect_as(&server, "bob").await;
        let (carol, _crx) = connect_as(&server, "carol").await;
        let (rows, unread) = notifications(&bob).await;
        assert_eq!(rows.len(), 3, "{rows:#?}");
        assert_eq!(rows[0].excerpt, "@bob one more");
        assert_eq!(rows[1].id, mention_id[0]);
        assert!(rows[1].read_at.is_some(), "read state lost in the restart");
        assert_eq!(unread, 2);
        assert_eq!(notifications(&carol).await.1, 1);
        server.shutdown().await;
    });
}

async fn connect_as(
    server: &braid::server::ServerHandle,
    who: &str,
) -> (
    braid::api::Connection,
    tokio::sync::mpsc::UnboundedReceiver<Incoming>,
) {
    server
        .connect_local_as(Hello::new(who, None), Some(who))
        .await
        .unwrap()
}

/// An agent's notifications, newest first, read from the store file.
fn notifications_sync(data: &Path, agent: &str) -> Vec<braid::store::NotificationRow> {
    let store = Store::open_dir(data).unwrap();
    store
        .notifications_page(agent, braid::store::NotificationPage::Newest, 100, false)
        .unwrap()
        .0
}

fn rows_id(rows: &[braid::store::NotificationRow]) -> Vec<i64> {
    rows.iter().map(|r| r.id).collect()
}

/// A version-1 client (before notifications) is never sent the notification frame: it would
/// not read it and its connection would end. It keeps getting the events.
#[test]
fn a_version_1_client_gets_no_notification_frame() {
    let f = fixture(
        "[[agents]]\nuser = \"nobody-alice\"\nname = \"alice\"\nrole = \"agent\"\n\
         [[agents]]\nuser = \"nobody-bob\"\nname = \"bob\"\nrole = \"agent\"\n",
    );
    let config = braid::config::Config::load(Some(&f.config), Some(&f.data)).unwrap();
    rt().block_on(async {
        let mut opts = braid::server::ServerOptions::new(config.clone());
        opts.run_worker = false;
        let server = braid::server::start(opts).await.unwrap();
        let (alice, _arx) = connect_as(&server, "alice").await;
        let mut old = Hello::new("old bob", None);
        old.max_version = 1;
        let (bob_v1, mut v1_rx) = server.connect_local_as(old, Some("bob")).await.unwrap();
        assert_eq!(bob_v1.welcome().version, 1);
        let (_bob, mut bob_rx) = connect_as(&server, "bob").await;
        alice
            .call(Request::Post {
                conversation: f.conversation,
                post: braid::api::Post::Note {
                    body: "@bob look".into(),
                    seen: braid::api::Seen::Force,
                },
            })
            .await
            .unwrap();
        assert!(next_notification(&mut bob_rx, 10).await.is_some());
        // The old client: the note's event, and no notification frame.
        let mut events = 0;
        let until = Instant::now() + Duration::from_millis(1500);
        while let Ok(Some(m)) = tokio::time::timeout(
            until.saturating_duration_since(Instant::now()),
            v1_rx.recv(),
        )
        .await
        {
            assert!(!matches!(m, Incoming::Notification { .. }), "{m:?}");
            assert!(!matches!(m, Incoming::Closed(_)), "{m:?}");
            if matches!(m, Incoming::Events { .. }) {
                events += 1;
            }
        }
        assert!(events > 0, "the old client got no events");
        server.shutdown().await;
    });
}

/// `braid` as a client of the server on `f.socket` (no personal config, no data dir of its own).
fn cli(f: &Fixture, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_braid"))
        .arg("--socket")
        .arg(&f.socket)
        .args(args)
        .env_remove("BRAID_DATA_DIR")
        .env_remove("BRAID_SOCKET")
        .env_remove("BRAID_REMOTE")
        .env("XDG_CONFIG_HOME", f.root.join("no-config"))
        .env("XDG_DATA_HOME", f.root.join("no-data"))
        .output()
        .unwrap()
}

/// A refused action is in `braid audit` under the agent the server attested (the kernel's
/// Unix user mapped through `[[agents]]`), whatever name the client gave itself; a viewer may
/// read the log, and sees their own refusal.
#[test]
fn a_refused_action_shows_in_braid_audit_with_the_attested_identity() {
    let config = format!(
        "[[teams]]\nname = \"billing\"\n\
         [[agents]]\nuser = \"{}\"\nname = \"ann\"\nrole = \"viewer\"\nteams = [\"billing\"]\n",
        me()
    );
    let f = fixture(&config);
    let _server = Server::start(&f.config, &f.data, &f.socket);
    rt().block_on(async {
        // The client calls itself mallory: a label for the log, not an identity.
        let (conn, _rx) = connect_socket(&f.socket, Hello::new("mallory", None))
            .await
            .unwrap();
        let r = conn
            .call(Request::Write {
                conversation: f.conversation,
                contact: f.contact,
                write: Write::Verb(braid::actions::Verb::Tag("vip".into())),
            })
            .await
            .unwrap();
        assert!(matches!(r, Response::Refused(_)), "{r:?}");
    });
    let out = cli(&f, &["audit", "--kind", "refused", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let events = v["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{v}");
    let e = &events[0];
    assert_eq!(e["actor"], "ann", "{v}");
    assert_eq!(e["kind"], "refused");
    assert_eq!(e["conversation_id"], f.conversation.0);
    let summary = e["summary"].as_str().unwrap();
    assert!(summary.starts_with("REFUSED tag:"), "{summary}");
    assert!(summary.contains("needs the agent role"), "{summary}");
    assert!(e["at"].as_str().unwrap().ends_with('Z'), "{e}");
    // The text form: one line with who, which conversation and what.
    let out = cli(&f, &["audit", "--agent", "ann"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = text
        .lines()
        .find(|l| l.contains("REFUSED"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains(" ann "), "{line}");
    assert!(line.contains(&format!("#{}", f.conversation)), "{line}");
    assert!(!text.contains("mallory"), "{text}");
    // A bad kind says which exist.
    let out = cli(&f, &["audit", "--kind", "deleted"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown event kind 'deleted'"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Taking a conversation another agent owns: the TUI's request is answered with a question
/// naming the owner (nothing changes), the yes takes it; the CLI is refused with the owner's
/// name and `--force` takes it. A handoff writes the assignment and the note in one step,
/// both in the audit log; a team's name moves the conversation to the team.
#[test]
fn taking_someone_elses_conversation_asks_first_and_a_handoff_carries_a_note() {
    let config = format!(
        "[[teams]]\nname = \"billing\"\n\
         [[agents]]\nuser = \"{}\"\nname = \"ann\"\nrole = \"agent\"\nteams = [\"billing\"]\n\
         [[agents]]\nuser = \"nobody-bob\"\nname = \"bob\"\nrole = \"agent\"\n",
        me()
    );
    let f = fixture(&config);
    let mut store = Store::open_dir(&f.data).unwrap();
    store
        .assign(
            f.conversation,
            Some("bob"),
            "bob",
            braid::model::now_millis(),
        )
        .unwrap();
    drop(store);
    let _server = Server::start(&f.config, &f.data, &f.socket);
    rt().block_on(async {
        let (conn, _rx) = connect_socket(&f.socket, Hello::new("tui", None))
            .await
            .unwrap();
        assert_eq!(conn.welcome().workspace_teams, vec!["billing".to_string()]);
        let r = conn
            .call(Request::Write {
                conversation: f.conversation,
                contact: f.contact,
                write: Write::Verb(braid::actions::Verb::Assign(Some("ann".into()))),
            })
            .await
            .unwrap();
        let Response::Confirm { question, request } = r else {
            panic!("{r:?}")
        };
        assert!(question.contains("is assigned to bob"), "{question}");
        assert!(question.contains("take it from bob"), "{question}");
        let store = Store::open(&f.data.join(braid::store::DB_FILE)).unwrap();
        assert_eq!(
            store
                .conversation(f.conversation)
                .unwrap()
                .assignee
                .as_deref(),
            Some("bob")
        );
        drop(store);
        let r = conn.call(*request).await.unwrap();
        assert!(
            matches!(&r, Response::Done(d) if d.contains("assigned to ann")),
            "{r:?}"
        );
    });
    // bob's again; the CLI is refused with his name and --force takes it.
    let out = cli(&f, &["assign", &f.conversation.0.to_string(), "bob"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let store = Store::open(&f.data.join(braid::store::DB_FILE)).unwrap();
    assert_eq!(
        store
            .conversation(f.conversation)
            .unwrap()
            .assignee
            .as_deref(),
        Some("bob")
    );
    drop(store);
    let id = f.conversation.0.to_string();
    let out = cli(&f, &["assign", &id, "me"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is assigned to bob"), "{err}");
    assert!(err.contains("--force"), "{err}");
    let out = cli(&f, &["assign", &id, "me", "--force"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A handoff: assigned and noted, one step.
    let out = cli(
        &f,
        &[
            "handoff",
            &id,
            "bob",
            "-m",
            "refund approved, send the label",
            "--json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let store = Store::open(&f.data.join(braid::store::DB_FILE)).unwrap();
    assert_eq!(
        store
            .conversation(f.conversation)
            .unwrap()
            .assignee
            .as_deref(),
        Some("bob")
    );
    let timeline = store.timeline(f.contact, None, 100).unwrap();
    let note = timeline
        .iter()
        .find(|m| m.body == "refund approved, send the label")
        .expect("the handoff's note");
    assert_eq!(note.author, "ann");
    let events = store.conversation_events(f.conversation, 3).unwrap();
    assert_eq!(events[0].kind, "note");
    assert_eq!(events[1].kind, "assigned");
    assert_eq!(events[0].at, events[1].at, "one step");
    drop(store);
    // A team's name moves the conversation to the team (the assignee stays).
    let out = cli(&f, &["assign", &id, "billing"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("moved to team billing"));
    let store = Store::open(&f.data.join(braid::store::DB_FILE)).unwrap();
    let row = store.conversation(f.conversation).unwrap();
    assert_eq!(row.team.as_deref(), Some("billing"));
    assert_eq!(row.assignee.as_deref(), Some("bob"));
    drop(store);
    // All of it in the audit log, under the attested agent.
    let out = cli(&f, &["audit", "--conversation", &id, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let summaries: Vec<String> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["actor"].as_str().unwrap(),
                e["summary"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        summaries.contains(&"ann moved to team billing".to_string()),
        "{summaries:?}"
    );
    assert!(
        summaries.contains(&"ann assigned to bob (was ann)".to_string()),
        "{summaries:?}"
    );
    assert!(
        summaries.contains(&"ann added a note".to_string()),
        "{summaries:?}"
    );
}

/// A customer's message in a conversation assigned to the agent reaches each of their
/// sessions as a notification, from a real server process, whoever stored the message (here
/// another process writing the store file, as a channel would).
#[test]
fn a_customer_message_in_my_conversation_notifies_each_of_my_sessions() {
    let f = fixture("");
    let _server = Server::start(&f.config, &f.data, &f.socket);
    rt().block_on(async {
        let (a, mut rx_a) = connect_socket(&f.socket, Hello::new("a", None))
            .await
            .unwrap();
        let (_b, mut rx_b) = connect_socket(&f.socket, Hello::new("b", None))
            .await
            .unwrap();
        let me = a.welcome().agent.clone();
        let r = a
            .call(Request::Write {
                conversation: f.conversation,
                contact: f.contact,
                write: Write::Verb(braid::actions::Verb::Assign(Some(me.clone()))),
            })
            .await
            .unwrap();
        assert!(matches!(r, Response::Done(_)), "{r:?}");
        {
            let mut store = Store::open(&f.data.join(braid::store::DB_FILE)).unwrap();
            ingest(
                &mut store,
                &inbound(
                    "<m9@x.org>",
                    "ann@x.org",
                    "Ann Lee",
                    "any news on the refund?",
                ),
                &Settings::default(),
            )
            .unwrap();
        }
        for rx in [&mut rx_a, &mut rx_b] {
            let rows = tokio::time::timeout(Duration::from_secs(10), async {
                loop {
                    match rx.recv().await {
                        Some(Incoming::Notification { rows, .. }) if !rows.is_empty() => {
                            break rows;
                        }
                        Some(_) => continue,
                        None => panic!("closed"),
                    }
                }
            })
            .await
            .expect("no notification within 10 s");
            assert_eq!(rows[0].agent, me);
            assert_eq!(rows[0].conversation_id, Some(f.conversation));
            assert_eq!(rows[0].excerpt, "any news on the refund?");
        }
    });
}

/// Tasks on the server: a task that comes due notifies its assignee once (the due sweep), and
/// a call log for the contact, written by anyone into the store, closes its open call task
/// (the server follows the events feed), audited as closed by the event.
#[test]
fn a_due_task_notifies_its_assignee_and_a_call_log_closes_it() {
    let f = fixture("[[agents]]\nuser = \"nobody-alice\"\nname = \"alice\"\nrole = \"agent\"\n");
    let config = braid::config::Config::load(Some(&f.config), Some(&f.data)).unwrap();
    rt().block_on(async {
        let mut opts = braid::server::ServerOptions::new(config.clone());
        opts.run_worker = false;
        let server = braid::server::start(opts).await.unwrap();
        let (alice, _rx) = connect_as(&server, "alice").await;
        let due = braid::model::now_millis() + 1500;
        let task = match alice
            .call(Request::TaskCreate {
                task: braid::store::NewTask {
                    kind: "call".into(),
                    title: "call Ann back about the refund".into(),
                    due_at: Some(due),
                    conversation: Some(f.conversation),
                    ..Default::default()
                },
            })
            .await
            .unwrap()
        {
            Response::Task(t) => t,
            other => panic!("{other:?}"),
        };
        assert_eq!(task.assignee.as_deref(), Some("alice"));

        // Due: one task_due notification for alice (the sweep runs every 5 s).
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let rows = notifications_sync(&f.data, "alice");
            let due_rows: Vec<_> = rows
                .iter()
                .filter(|r| r.kind == braid::store::NotificationKind::TaskDue)
                .collect();
            if !due_rows.is_empty() {
                assert_eq!(due_rows.len(), 1);
                assert!(
                    due_rows[0].excerpt.contains("call Ann back"),
                    "{:?}",
                    due_rows[0]
                );
                assert!(braid::model::now_millis() >= due);
                break;
            }
            assert!(Instant::now() < deadline, "never notified: {rows:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        // A call log for Ann (the phone system's hook, here written straight to the store).
        let mut store = Store::open_dir(&f.data).unwrap();
        let call = Inbound {
            channel: Channel::Phone,
            account: "pbx".into(),
            external_id: "call-1".into(),
            direction: Direction::In,
            customer: Claim::new(IdentityKind::Phone, "+4915112345678"),
            linked: vec![Claim::new(IdentityKind::Email, "ann@x.org")],
            customer_name: Some("Ann Lee".into()),
            author: None,
            subject: Some("inbound call".into()),
            body: "inbound call, 3 min".into(),
            sent_at: braid::model::now_millis(),
            meta: None,
            cursor: None,
        };
        match ingest(&mut store, &call, &Settings::default()).unwrap() {
            braid::ingest::Ingested::Stored { contact, .. } => assert_eq!(contact, f.contact),
            other => panic!("{other:?}"),
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let t = store.task(task.id).unwrap().unwrap();
            if !t.is_open() {
                assert_eq!(
                    (t.state.as_str(), t.closed_by.as_deref()),
                    ("done", Some("event:call"))
                );
                break;
            }
            assert!(Instant::now() < deadline, "the call log never closed it");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        server.shutdown().await;
    });
}
