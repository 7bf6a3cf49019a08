//! Canned replies and `:suggest` through a real `braid server` process on a real socket: the
//! welcome lists the workspace's `templates/` folder, a render fills a conversation's
//! variables, a new file is picked up without a restart, and a slow suggest command does not
//! hold up the client's other requests.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use braid::api::{ClientFrame, Hello, Request, Response, ServerFrame, codec};
use braid::identity::Claim;
use braid::ingest::{Inbound, Settings, ingest};
use braid::model::{Channel, Direction, IdentityKind};
use braid::store::Store;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(config: &PathBuf, data: &PathBuf, socket: &PathBuf) -> Server {
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
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let s = Server(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::os::unix::net::UnixStream::connect(socket).is_err() {
        assert!(Instant::now() < deadline, "the server never listened");
        std::thread::sleep(Duration::from_millis(20));
    }
    s
}

#[test]
fn the_server_lists_renders_reloads_templates_and_suggests_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let data = root.join("data");
    let mut store = Store::open_dir(&data).unwrap();
    let r = ingest(
        &mut store,
        &Inbound {
            channel: Channel::Email,
            account: String::new(),
            external_id: "<m1@x.org>".into(),
            direction: Direction::In,
            customer: Claim::new(IdentityKind::Email, "ann@x.org"),
            linked: vec![],
            customer_name: Some("Ann Lee".into()),
            author: None,
            subject: Some("Refund".into()),
            body: "Where is my refund?".into(),
            sent_at: braid::model::now_millis(),
            meta: None,
            cursor: None,
        },
        &Settings::default(),
    )
    .unwrap();
    let conversation = match r {
        braid::ingest::Ingested::Stored { conversation, .. } => conversation,
        other => panic!("{other:?}"),
    };
    drop(store);
    let templates = root.join("templates");
    std::fs::create_dir(&templates).unwrap();
    std::fs::write(
        templates.join("refund.md"),
        "---\ndescription: Refund sent\n---\nHi {{contact.first_name}}, done.\n",
    )
    .unwrap();
    std::fs::write(
        templates.join("refund.email.md"),
        "Dear {{contact.name}},\n\nDone. #{{conversation.id}}\n",
    )
    .unwrap();
    let config = root.join("workspace.toml");
    std::fs::write(
        &config,
        "suggest_command = \"sleep 2; echo 'Hello from the bot'\"\n\
         [macros]\nrefund-ok = [\"tag refund\", \"template refund\", \"resolve\"]\n",
    )
    .unwrap();
    let socket = root.join("braid.sock");
    let _server = start(&config, &data, &socket);

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut s = tokio::net::UnixStream::connect(&socket).await.unwrap();
        codec::write(&mut s, &ClientFrame::Hello(Hello::new("test", None)))
            .await
            .unwrap();
        let w = loop {
            let f: ServerFrame = tokio::time::timeout(Duration::from_secs(15), codec::read(&mut s))
                .await
                .unwrap()
                .unwrap();
            match f {
                ServerFrame::Welcome(w) => break w,
                ServerFrame::Status { .. } | ServerFrame::Events { .. } => {}
                other => panic!("no welcome: {other:?}"),
            }
        };
        assert_eq!(w.canned.len(), 1);
        assert_eq!(w.canned[0].name, "refund");
        assert_eq!(w.canned[0].description.as_deref(), Some("Refund sent"));
        assert!(w.suggest);
        assert_eq!(w.macros[0].name, "refund-ok");

        let send = |id: u64, request: Request| ClientFrame::Request { id, request };
        let render = |name: &str| Request::RenderCanned {
            conversation,
            name: name.into(),
            channel: None,
            resolved: None,
        };
        // The slow suggestion first, then a render: the render is answered first.
        codec::write(
            &mut s,
            &send(
                1,
                Request::Suggest {
                    conversation,
                    command: None,
                    timeout_ms: 0,
                },
            ),
        )
        .await
        .unwrap();
        codec::write(&mut s, &send(2, render("refund"))).await.unwrap();
        let mut order = Vec::new();
        while order.len() < 2 {
            let f: ServerFrame = tokio::time::timeout(Duration::from_secs(15), codec::read(&mut s))
                .await
                .unwrap()
                .unwrap();
            match f {
                ServerFrame::Response { id: 2, response } => {
                    match response {
                        Response::Canned { text, missing, channel, .. } => {
                            assert_eq!(channel, Some(Channel::Email));
                            assert_eq!(text, format!("Dear Ann Lee,\n\nDone. #{conversation}"));
                            assert!(missing.is_empty());
                        }
                        other => panic!("{other:?}"),
                    }
                    order.push(2);
                }
                ServerFrame::Response { id: 1, response } => {
                    assert_eq!(
                        response,
                        Response::Suggestion {
                            conversation,
                            text: "Hello from the bot".into()
                        }
                    );
                    order.push(1);
                }
                _ => {}
            }
        }
        assert_eq!(order, vec![2, 1], "the suggestion did not block the render");

        // A template added while the server runs is there at once.
        std::fs::write(templates.join("thanks.txt"), "Thanks, {{agent.name}}!").unwrap();
        codec::write(&mut s, &send(3, render("thanks"))).await.unwrap();
        loop {
            let f: ServerFrame = codec::read(&mut s).await.unwrap();
            if let ServerFrame::Response { id: 3, response } = f {
                assert!(
                    matches!(&response, Response::Canned { text, .. } if text.starts_with("Thanks, ")),
                    "{response:?}"
                );
                break;
            }
        }
    });
}
