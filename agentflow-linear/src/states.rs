//! The configured teams' workflow states, resolved once from Linear and mapped to
//! [`TaskStatus`].

use std::collections::HashMap;

use agentflow_core::{Error, TaskStatus};

use crate::config::LinearConfig;
use crate::model::Bootstrap;

/// One team and the ids of its states for each managed status.
#[derive(Debug, Clone)]
pub(crate) struct TeamStates {
    pub(crate) id: String,
    pub(crate) key: String,
    /// State ids indexed like [`TaskStatus::MANAGED`].
    pub(crate) mapped: [String; 5],
}

/// Everything resolved at start: our viewer and each team's state ids.
#[derive(Debug, Clone)]
pub(crate) struct StateMap {
    pub(crate) viewer_id: String,
    pub(crate) viewer_name: String,
    pub(crate) teams: Vec<TeamStates>,
    by_id: HashMap<String, TaskStatus>,
}

fn index(status: TaskStatus) -> Option<usize> {
    TaskStatus::MANAGED.iter().position(|s| *s == status)
}

impl StateMap {
    /// Maps the bootstrap answer through the configured names; a missing team or state is an
    /// error naming the config key and listing what Linear has.
    pub(crate) fn resolve(boot: Bootstrap, config: &LinearConfig) -> Result<StateMap, Error> {
        let mut teams = Vec::new();
        let mut by_id = HashMap::new();
        for key in &config.teams {
            let Some(team) = boot.teams.nodes.iter().find(|t| t.key.eq_ignore_ascii_case(key))
            else {
                let seen: Vec<&str> = boot.teams.nodes.iter().map(|t| t.key.as_str()).collect();
                return Err(Error::config(
                    "linear.teams",
                    format!(
                        "team `{key}` not found or not visible to this credential (teams found: {})",
                        if seen.is_empty() { "none".to_owned() } else { seen.join(", ") }
                    ),
                ));
            };
            let mut states: Vec<_> = team.states.nodes.iter().collect();
            states.sort_by(|a, b| a.position.total_cmp(&b.position));
            let mut mapped: [String; 5] = Default::default();
            for (i, status) in TaskStatus::MANAGED.iter().enumerate() {
                let (name, config_key) = config.states.name(*status).expect("managed status");
                let Some(state) = states.iter().find(|s| s.name.eq_ignore_ascii_case(name)) else {
                    let names: Vec<String> =
                        states.iter().map(|s| format!("\"{}\" ({})", s.name, s.kind)).collect();
                    return Err(Error::config(
                        config_key,
                        format!(
                            "team {} ({}) has no workflow state named \"{name}\"; its states are: {}",
                            team.key,
                            team.name,
                            names.join(", ")
                        ),
                    ));
                };
                mapped[i] = state.id.clone();
                by_id.insert(state.id.clone(), *status);
            }
            teams.push(TeamStates { id: team.id.clone(), key: team.key.clone(), mapped });
        }
        Ok(StateMap { viewer_id: boot.viewer.id, viewer_name: boot.viewer.name, teams, by_id })
    }

    /// The status a state id stands for ([`TaskStatus::Other`] for unmapped states).
    pub(crate) fn status_of(&self, state_id: &str) -> TaskStatus {
        self.by_id.get(state_id).copied().unwrap_or(TaskStatus::Other)
    }

    /// The state ids of `status` across all teams.
    pub(crate) fn ids(&self, status: TaskStatus) -> Vec<String> {
        match index(status) {
            Some(i) => self.teams.iter().map(|t| t.mapped[i].clone()).collect(),
            None => Vec::new(),
        }
    }

    /// The state id of `status` in the team with id or key `team`.
    pub(crate) fn id_in(&self, team: &str, status: TaskStatus) -> Option<String> {
        let i = index(status)?;
        self.teams.iter().find(|t| t.id == team || t.key == team).map(|t| t.mapped[i].clone())
    }

    /// Whether `team_id` is one of ours.
    pub(crate) fn has_team(&self, team_id: &str) -> bool {
        self.teams.iter().any(|t| t.id == team_id)
    }

    /// The team keys, as configured in Linear's spelling.
    pub(crate) fn team_keys(&self) -> Vec<String> {
        self.teams.iter().map(|t| t.key.clone()).collect()
    }
}
