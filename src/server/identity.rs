//! Who is on the other end of a socket: the kernel says which Unix user (`SO_PEERCRED`), the
//! workspace config says which agent that user is. Nothing the client sends is consulted.

use super::workspace::Workspace;
use crate::api::Role;

/// An identified agent, for the life of one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub uid: u32,
    /// The Unix user name the uid maps to.
    pub user: String,
    /// The agent name (author of replies, assignee).
    pub agent: String,
    pub display: String,
    pub role: Role,
    pub teams: Vec<String>,
}

impl Identity {
    /// What this agent may see: admins everything; everyone else their teams' conversations,
    /// the unteamed ones and those assigned to them.
    pub fn scope(&self) -> crate::store::Scope {
        match self.role {
            Role::Admin => crate::store::Scope::all(self.agent.clone()),
            _ => crate::store::Scope::teams(self.agent.clone(), self.teams.iter().cloned()),
        }
    }

    /// An admin named `agent` as this process's user: a server's own user, the TUI test
    /// harness and the benchmarks, which answer requests in-process.
    pub fn local_admin(agent: &str) -> Identity {
        let uid = my_uid();
        Identity {
            uid,
            user: user_name(uid),
            agent: agent.to_string(),
            display: agent.to_string(),
            role: Role::Admin,
            teams: Vec::new(),
        }
    }
}

/// The Unix user name of a uid (`uid 1234` when the system does not know it).
pub fn user_name(uid: u32) -> String {
    match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
        Ok(Some(u)) => u.name,
        _ => format!("uid {uid}"),
    }
}

/// The effective uid of this process.
pub fn my_uid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// Map a uid to an agent. The server's own Unix user is an admin (it can read the store file
/// anyway) named `owner_agent` unless `[[agents]]` lists it; any other user must be listed.
pub fn identify(
    uid: u32,
    workspace: &Workspace,
    owner_uid: u32,
    owner_agent: &str,
    config_path: &str,
) -> Result<Identity, String> {
    let user = user_name(uid);
    if let Some(a) = workspace.agent_for_user(&user) {
        return Ok(Identity {
            uid,
            user,
            agent: a.name.clone(),
            display: a.display.clone().unwrap_or_else(|| a.name.clone()),
            role: a.role,
            teams: a.teams.clone(),
        });
    }
    if uid == owner_uid {
        return Ok(Identity {
            uid,
            user,
            agent: owner_agent.to_string(),
            display: owner_agent.to_string(),
            role: Role::Admin,
            teams: Vec::new(),
        });
    }
    Err(format!(
        "Unix user '{user}' (uid {uid}) is not an agent of this workspace; an admin can add it in {config_path}: [[agents]] user = \"{user}\" (with role and teams)"
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::server::workspace::AgentDef;

    /// What `id` says about this process: the kernel's uid and name, without our code.
    fn id(flag: &str) -> String {
        let out = std::process::Command::new("id").arg(flag).output().unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    #[test]
    fn uids_and_names_are_the_systems() {
        assert_eq!(my_uid().to_string(), id("-u"));
        assert_eq!(user_name(my_uid()), id("-un"));
        assert_eq!(user_name(0), "root");
        // A uid nobody has: named by its number, never mistaken for someone.
        assert_eq!(user_name(4_000_000_123), "uid 4000000123");
    }

    #[test]
    fn admins_see_every_team_and_everyone_else_their_own() {
        let mut who = Identity::local_admin("ann");
        who.teams = vec!["billing".into()];
        assert!(who.scope().is_all());
        for role in [Role::Supervisor, Role::Agent, Role::Viewer] {
            who.role = role;
            assert_eq!(
                who.scope(),
                crate::store::Scope::teams("ann", ["billing"]),
                "{role}"
            );
        }
    }

    #[test]
    fn the_kernel_user_decides() {
        let me = my_uid();
        let my_name = user_name(me);
        let ws = Workspace {
            agents: vec![AgentDef {
                user: my_name.clone(),
                name: "ann".into(),
                display: Some("Ann Lee".into()),
                role: Role::Viewer,
                teams: vec!["billing".into()],
            }],
            ..Default::default()
        };
        // Listed: the config's agent, even for the server's own user.
        let id = identify(me, &ws, me, "owner", "/etc/braid/workspace.toml").unwrap();
        assert_eq!(
            (id.agent.as_str(), id.role, id.display.as_str()),
            ("ann", Role::Viewer, "Ann Lee")
        );
        // Not listed, but the server's own user: admin under the owner's agent name.
        let id = identify(me, &Workspace::default(), me, "owner", "cfg").unwrap();
        assert_eq!((id.agent.as_str(), id.role), ("owner", Role::Admin));
        // Anyone else, unlisted: refused, naming the user and the key that would admit them.
        let other = if me == 0 { 65534 } else { 0 };
        let err = identify(other, &Workspace::default(), me, "owner", "/etc/w.toml").unwrap_err();
        assert!(err.contains(&format!("(uid {other})")), "{err}");
        assert!(err.contains("/etc/w.toml: [[agents]] user = "), "{err}");
    }
}
