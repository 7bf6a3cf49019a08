//! The files in `packaging/` stay true to the binary and to each other: the example workspace
//! config passes `braid server --check`; the systemd unit runs a subcommand with flags the
//! binary accepts; the unit, the `sysusers.d` and `tmpfiles.d` lines and the example's
//! `[server]` agree on the users, the group that may connect, the directories and their modes;
//! and, where systemd's tools are installed, they accept the files (as root, they also make
//! the users and directories in a scratch root and the result is what the server needs).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo(rel)).unwrap_or_else(|e| panic!("cannot read {rel}: {e}"))
}

const EXAMPLE: &str = "packaging/workspace.example.toml";
const UNIT: &str = "packaging/systemd/braid.service";
const SYSUSERS: &str = "packaging/sysusers.d/braid.conf";
const TMPFILES: &str = "packaging/tmpfiles.d/braid.conf";

fn braid(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_braid"))
        .args(args)
        .env_remove("BRAID_CONFIG")
        .env_remove("BRAID_DATA_DIR")
        .env_remove("BRAID_SOCKET")
        .env_remove("BRAID_REMOTE")
        .output()
        .expect("the braid binary runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A systemd unit file: section -> key -> every value given (keys may repeat), comments and
/// blank lines skipped. The unit uses no line continuations; one would be a mistake here.
fn parse_unit(body: &str) -> BTreeMap<String, BTreeMap<String, Vec<String>>> {
    let mut out: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    let mut section = String::new();
    for (n, line) in body.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        assert!(
            !line.ends_with('\\'),
            "{UNIT}:{}: no continuation lines",
            n + 1
        );
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_string();
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("{UNIT}:{}: not KEY=VALUE: {line}", n + 1));
        out.entry(section.clone())
            .or_default()
            .entry(k.trim().to_string())
            .or_default()
            .push(v.trim().to_string());
    }
    out
}

fn service() -> BTreeMap<String, Vec<String>> {
    parse_unit(&read(UNIT))
        .remove("Service")
        .expect("the unit has a [Service] section")
}

/// The one value of `key` in [Service].
fn one(svc: &BTreeMap<String, Vec<String>>, key: &str) -> String {
    let v = svc
        .get(key)
        .unwrap_or_else(|| panic!("{UNIT}: [Service] has no {key}="));
    assert_eq!(v.len(), 1, "{UNIT}: {key}= given {} times", v.len());
    v[0].clone()
}

/// The words of every value of `key` in [Service] (ReadWritePaths= a b, given once or more).
fn words(svc: &BTreeMap<String, Vec<String>>, key: &str) -> Vec<String> {
    svc.get(key)
        .into_iter()
        .flatten()
        .flat_map(|v| v.split_whitespace().map(str::to_string))
        .collect()
}

/// ExecStart's words, and the value of each `--flag VALUE`.
fn exec_start() -> (Vec<String>, BTreeMap<String, String>) {
    let line = one(&service(), "ExecStart");
    assert!(
        !line.contains(['"', '\'', '$', '%']),
        "ExecStart is plain words (no quoting, variables or specifiers) so this test reads it as systemd does: {line}"
    );
    let w: Vec<String> = line.split_whitespace().map(str::to_string).collect();
    let mut flags = BTreeMap::new();
    let mut i = 0;
    while i < w.len() {
        if w[i].starts_with("--") {
            let value = w
                .get(i + 1)
                .filter(|v| !v.starts_with("--"))
                .cloned()
                .unwrap_or_default();
            flags.insert(w[i].clone(), value);
        }
        i += 1;
    }
    (w, flags)
}

/// The non-comment lines of a sysusers.d / tmpfiles.d file, split in words (quoted words kept
/// whole).
fn conf_lines(rel: &str) -> Vec<Vec<String>> {
    read(rel)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let mut words = Vec::new();
            let mut cur = String::new();
            let mut quoted = false;
            for c in l.chars() {
                match c {
                    '"' => quoted = !quoted,
                    c if c.is_whitespace() && !quoted => {
                        if !cur.is_empty() {
                            words.push(std::mem::take(&mut cur));
                        }
                    }
                    c => cur.push(c),
                }
            }
            if !cur.is_empty() {
                words.push(cur);
            }
            words
        })
        .collect()
}

/// The example's `[server]` table.
fn example_server() -> toml::Table {
    let t: toml::Table = read(EXAMPLE).parse().expect("the example is TOML");
    t.get("server")
        .and_then(|s| s.as_table())
        .cloned()
        .expect("the example has [server]")
}

#[test]
fn the_example_workspace_config_passes_check() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().join("data");
    let out = braid(&[
        "server",
        "--check",
        "--config",
        repo(EXAMPLE).to_str().unwrap(),
        "--data-dir",
        dir.to_str().unwrap(),
    ]);
    let said = text(&out);
    assert!(
        out.status.success(),
        "braid server --check {EXAMPLE}:\n{said}"
    );
    for want in [
        ": ok",
        "socket /run/braid/braid.sock",
        "2 team(s) · 3 agent(s)",
        "1 SLA policy(ies) in 1 hours",
        "email billing",
        "email support",
        "telegram",
        "webchat on 127.0.0.1:8765",
    ] {
        assert!(said.contains(want), "`{want}` missing from:\n{said}");
    }
}

#[test]
fn check_names_a_bad_zone_interval_or_hours_name_with_its_line() {
    let example = read(EXAMPLE);
    let dir = tempfile::tempdir().unwrap();
    for (from, to, key) in [
        ("\"Europe/Berlin\"", "\"Europe/Atlantis\"", "hours.zone"),
        ("\"13:00-17:00\"", "\"13:00-12:00\"", "hours.weekdays"),
        ("hours = \"emea\"", "hours = \"apac\"", "teams.hours"),
    ] {
        assert!(example.contains(from), "{from}");
        let bad = example.replacen(from, to, 1);
        let line = bad[..bad.find(to).unwrap()].matches('\n').count() + 1;
        let path = dir.path().join("ws.toml");
        std::fs::write(&path, &bad).unwrap();
        let data = dir.path().join("data");
        let out = braid(&[
            "server",
            "--check",
            "--config",
            path.to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
        ]);
        let said = text(&out);
        assert!(!out.status.success(), "{said}");
        assert!(said.contains(&format!("`{key}`")), "{key}: {said}");
        assert!(
            said.contains(&format!("line {line}")),
            "{key} line {line}: {said}"
        );
    }
}

/// Every channel of the example is mapped to a team it defines (the server does not check that
/// a channel's `team` is one of `[[teams]]`: a typo would make a team nobody is in).
#[test]
fn every_channel_of_the_example_belongs_to_one_of_its_teams() {
    let ws: toml::Table = read(EXAMPLE).parse().unwrap();
    let teams: Vec<&str> = ws["teams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(teams, ["billing", "support"]);
    let mut mapped: Vec<(String, String)> = Vec::new();
    for account in ws["email"].as_array().unwrap() {
        mapped.push((
            format!("[[email]] {}", account["name"].as_str().unwrap()),
            account
                .get("team")
                .and_then(|t| t.as_str())
                .unwrap_or("")
                .into(),
        ));
    }
    for section in ["telegram", "webchat"] {
        mapped.push((
            format!("[{section}]"),
            ws[section]
                .get("team")
                .and_then(|t| t.as_str())
                .unwrap_or("")
                .into(),
        ));
    }
    for (channel, team) in &mapped {
        assert!(
            teams.contains(&team.as_str()),
            "{EXAMPLE}: {channel} has team `{team}`, not one of {teams:?}"
        );
    }
    for team in &teams {
        assert!(
            mapped.iter().any(|(_, t)| t == team),
            "{EXAMPLE}: no channel brings conversations to team `{team}`"
        );
    }
    // And the agents of the example are in teams it defines.
    for agent in ws["agents"].as_array().unwrap() {
        for t in agent
            .get("teams")
            .and_then(|t| t.as_array())
            .into_iter()
            .flatten()
        {
            assert!(teams.contains(&t.as_str().unwrap()), "agent team {t}");
        }
    }
}

#[test]
fn the_unit_runs_a_subcommand_and_flags_the_binary_accepts() {
    let (w, flags) = exec_start();
    assert_eq!(w[0], "/usr/bin/braid", "where README installs the binary");
    assert_eq!(w[1], "server", "the unit runs the workspace server");
    assert_eq!(
        flags.get("--config").map(String::as_str),
        Some("/etc/braid/workspace.toml"),
        "the workspace config README tells the admin to write"
    );
    assert_eq!(
        flags.get("--data-dir").map(String::as_str),
        Some("/var/lib/braid")
    );
    assert!(
        !flags.contains_key("--check"),
        "the unit must serve, not check"
    );

    let help = braid(&["server", "--help"]);
    assert!(help.status.success(), "{}", text(&help));
    let help = text(&help);
    for flag in flags.keys() {
        assert!(
            help.contains(&format!("{flag} ")),
            "`braid server --help` has no {flag}:\n{help}"
        );
    }

    // The exact command line, with the example for the config and a scratch data dir, and
    // --check: the binary parses it and the example passes.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut args: Vec<String> = Vec::new();
    let mut i = 1;
    while i < w.len() {
        args.push(w[i].clone());
        match w[i].as_str() {
            "--config" => {
                args.push(repo(EXAMPLE).display().to_string());
                i += 1;
            }
            "--data-dir" => {
                args.push(data.display().to_string());
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    args.push("--check".into());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = braid(&refs);
    assert!(out.status.success(), "braid {args:?}:\n{}", text(&out));
}

#[test]
fn the_unit_the_users_and_the_directories_agree() {
    let svc = service();
    let user = one(&svc, "User");
    let group = one(&svc, "Group");
    let server = example_server();
    let connect_group = server["group"].as_str().unwrap().to_string();
    let socket = PathBuf::from(server["socket"].as_str().unwrap());
    let socket_dir = socket.parent().unwrap().to_str().unwrap().to_string();
    assert_eq!(socket_dir, "/run/braid");

    // sysusers: the service user (with its own group), the connect group, braid a member of
    // it (the server chgrps its socket to that group, which needs membership).
    let users = conf_lines(SYSUSERS);
    let has = |want: &[&str]| {
        users
            .iter()
            .any(|l| l.len() >= want.len() && l.iter().zip(want).all(|(a, b)| a == b))
    };
    assert!(has(&["u", user.as_str()]), "{SYSUSERS}: no `u {user}` line");
    assert_eq!(group, user, "`u {user}` makes a group of the same name");
    assert!(
        has(&["g", connect_group.as_str()]),
        "{SYSUSERS}: no `g {connect_group}` ([server] group)"
    );
    assert!(
        has(&["m", user.as_str(), connect_group.as_str()]),
        "{SYSUSERS}: {user} is not made a member of {connect_group}"
    );
    assert_eq!(
        words(&svc, "SupplementaryGroups"),
        [connect_group.as_str()],
        "the unit puts the service in [server] group"
    );

    // tmpfiles: the socket's directory reachable by the group only, the data dir private, the
    // config readable by the service.
    let dirs: BTreeMap<String, Vec<String>> = conf_lines(TMPFILES)
        .into_iter()
        .map(|l| {
            assert_eq!(l[0], "d", "{TMPFILES}: {l:?}");
            (l[1].clone(), l[2..5].to_vec())
        })
        .collect();
    let (_, flags) = exec_start();
    let data_dir = flags
        .get("--data-dir")
        .expect("ExecStart names --data-dir")
        .clone();
    assert_eq!(
        dirs[&socket_dir],
        ["0750", user.as_str(), connect_group.as_str()]
    );
    assert_eq!(dirs[&data_dir], ["0700", user.as_str(), user.as_str()]);
    assert_eq!(dirs["/etc/braid"], ["0750", "root", user.as_str()]);

    // The sandbox lets the server write exactly there, and nothing hides the peers' uids.
    let rw = words(&svc, "ReadWritePaths");
    assert!(rw.contains(&data_dir), "ReadWritePaths lacks {data_dir}");
    assert!(
        rw.contains(&socket_dir),
        "ReadWritePaths lacks {socket_dir}"
    );
    assert_eq!(one(&svc, "ProtectSystem"), "strict");
    for key in ["PrivateUsers", "DynamicUser"] {
        assert!(
            !svc.contains_key(key),
            "{key}= would hide the agents' uids from SO_PEERCRED or the socket's group"
        );
    }
    let denied: Vec<&String> = svc
        .get("SystemCallFilter")
        .into_iter()
        .flatten()
        .filter(|v| v.starts_with('~'))
        .collect();
    for set in ["@privileged", "@chown", "@resources"] {
        assert!(
            !denied.iter().any(|v| v.contains(set)),
            "SystemCallFilter denies {set}: the server chgrps its socket (chown) and raises its \
             open-file limit for the web chat (setrlimit)"
        );
    }
    assert!(
        words(&svc, "RestrictAddressFamilies")
            .iter()
            .all(|f| f != "none"),
        "the server needs AF_UNIX, AF_INET, AF_INET6"
    );
    for fam in ["AF_UNIX", "AF_INET", "AF_INET6"] {
        assert!(words(&svc, "RestrictAddressFamilies").contains(&fam.to_string()));
    }
    assert_eq!(one(&svc, "UMask"), "0077");
    assert_eq!(one(&svc, "Restart"), "on-failure");
    assert_eq!(
        one(&svc, "ExecStartPre"),
        format!(
            "+/usr/bin/systemd-tmpfiles --create {}",
            Path::new(TMPFILES).file_name().unwrap().to_str().unwrap()
        )
    );
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn systemd_analyze_verifies_the_unit() {
    if !have("systemd-analyze") {
        eprintln!("skipped: no systemd-analyze on this machine");
        return;
    }
    // The unit as installed, but with this build's binary (verify checks it is executable).
    let dir = tempfile::tempdir().unwrap();
    let unit = dir.path().join("braid.service");
    std::fs::write(
        &unit,
        read(UNIT).replace(
            "/usr/bin/braid ",
            &format!("{} ", env!("CARGO_BIN_EXE_braid")),
        ),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .unwrap();
    let said = text(&out);
    let about_ours: Vec<&str> = said
        .lines()
        .filter(|l| l.contains("braid.service"))
        .collect();
    assert!(
        out.status.success() && about_ours.is_empty(),
        "systemd-analyze verify {UNIT}:\n{said}"
    );
}

/// As root with systemd's tools: make the users and the directories in a scratch root, as a
/// package install would, and look at what came out.
#[test]
fn sysusers_and_tmpfiles_make_what_the_server_needs() {
    if !nix::unistd::geteuid().is_root() || !have("systemd-sysusers") || !have("systemd-tmpfiles") {
        eprintln!("skipped: needs root, systemd-sysusers and systemd-tmpfiles");
        return;
    }
    let root = tempfile::tempdir().unwrap();
    for d in ["etc", "run", "var/lib"] {
        std::fs::create_dir_all(root.path().join(d)).unwrap();
    }
    let run = |tool: &str, args: &[&str], conf: &str| {
        let out = Command::new(tool)
            .arg(format!("--root={}", root.path().display()))
            .args(args)
            .arg("-")
            .stdin(std::fs::File::open(repo(conf)).unwrap())
            .output()
            .unwrap();
        assert!(out.status.success(), "{tool} {conf}:\n{}", text(&out));
    };
    run("systemd-sysusers", &[], SYSUSERS);
    run("systemd-tmpfiles", &["--create"], TMPFILES);

    let ids = |file: &str| -> BTreeMap<String, (u32, String)> {
        std::fs::read_to_string(root.path().join("etc").join(file))
            .unwrap()
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                let last = if file == "group" { f[3] } else { f[5] };
                (f[0].to_string(), (f[2].parse().unwrap(), last.to_string()))
            })
            .collect()
    };
    let passwd = ids("passwd");
    let group = ids("group");
    let braid_uid = passwd["braid"].0;
    assert_eq!(passwd["braid"].1, "/var/lib/braid", "braid's home");
    let agents = &group["braid-agents"];
    assert!(
        agents.1.split(',').any(|m| m == "braid"),
        "braid is not in braid-agents: {agents:?}"
    );
    let look = |p: &str| {
        let m = std::fs::metadata(root.path().join(p)).unwrap();
        (m.permissions().mode() & 0o7777, m.uid(), m.gid())
    };
    assert_eq!(look("run/braid"), (0o750, braid_uid, agents.0));
    assert_eq!(look("var/lib/braid"), (0o700, braid_uid, group["braid"].0));
    assert_eq!(look("etc/braid"), (0o750, 0, group["braid"].0));
}
