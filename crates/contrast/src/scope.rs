//! Which ranks share one contrast matrix, and how it is computed.

use crate::error::{ContrastError, Result};
use rpo_comm::{Collective, SingleProcess};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The ranks whose micro-batches form one contrast matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum ContrastScope {
    /// Each rank alone, as in the paper's code.
    Local,
    /// Consecutive groups of K ranks: ranks `g·K .. (g+1)·K`.
    Group(usize),
    /// Every rank.
    Global,
}

impl ContrastScope {
    /// Ranks per matrix at world size `world`; refuses a group size that does not divide it.
    pub fn size(self, world: usize) -> Result<usize> {
        Ok(match self {
            ContrastScope::Local => 1,
            ContrastScope::Global => world,
            ContrastScope::Group(k) => {
                if !(k >= 1 && world % k == 0) {
                    return Err(ContrastError::Scope(format!(
                        "contrast scope group:{k} needs a world size divisible by {k}, got {world} ranks"
                    )));
                }
                k
            }
        })
    }

    /// The communicator of this rank's scope. Every rank of `world` must call it.
    pub fn communicator(self, world: &dyn Collective) -> Result<Box<dyn Collective>> {
        let size = self.size(world.world_size())?;
        if size == 1 {
            return Ok(Box::new(SingleProcess::new(world.device())));
        }
        Ok(world.split(world.rank() / size)?)
    }
}

impl FromStr for ContrastScope {
    type Err = ContrastError;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "local" => ContrastScope::Local,
            "global" => ContrastScope::Global,
            _ => match s.strip_prefix("group:").map(str::parse::<usize>) {
                Some(Ok(k)) if k >= 1 => ContrastScope::Group(k),
                _ => {
                    return Err(ContrastError::Scope(format!(
                        "unknown contrast scope {s:?}: expected \"local\", \"global\" or \"group:K\" with K ≥ 1"
                    )))
                }
            },
        })
    }
}

impl fmt::Display for ContrastScope {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            ContrastScope::Local => write!(f, "local"),
            ContrastScope::Global => write!(f, "global"),
            ContrastScope::Group(k) => write!(f, "group:{k}"),
        }
    }
}

impl TryFrom<String> for ContrastScope {
    type Error = ContrastError;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<ContrastScope> for String {
    fn from(s: ContrastScope) -> String {
        s.to_string()
    }
}

/// How the scope's matrix is computed; both give the same loss and gradients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ContrastForm {
    /// Own rows against all columns; column gradients by one reduce-scatter.
    #[default]
    RowPartitioned,
    /// The whole matrix on every rank (the test oracle; O((W·B)²) per rank).
    Replicated,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_and_print_back() {
        for s in ["local", "global", "group:2", "group:8"] {
            assert_eq!(s.parse::<ContrastScope>().unwrap().to_string(), s);
        }
        for bad in ["group:0", "group:", "group:x", "Global", ""] {
            let err = bad.parse::<ContrastScope>().unwrap_err().to_string();
            assert!(err.contains("group:K"), "{bad}: {err}");
        }
    }

    #[test]
    fn group_size_must_divide_world() {
        assert_eq!(ContrastScope::Group(2).size(4).unwrap(), 2);
        assert_eq!(ContrastScope::Global.size(4).unwrap(), 4);
        assert_eq!(ContrastScope::Local.size(4).unwrap(), 1);
        let err = ContrastScope::Group(3).size(4).unwrap_err().to_string();
        assert!(err.contains("divisible by 3"), "{err}");
    }
}
