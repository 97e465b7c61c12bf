//! Zone keys: which programs may use one, and for what (API.md "PIN
//! verification", v1.1).
//!
//! A zone key has one usage: `verify` (PIN blocks come in: verification, PIN
//! change, import) or `export` (PIN blocks go out). It is usable only by the
//! programs it is granted to; a key imported before grants existed is usable
//! by every program until the operator first grants it to one.

/// What a zone key is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    Verify,
    Export,
}

impl Usage {
    pub const ALL: [Usage; 2] = [Usage::Verify, Usage::Export];

    pub fn as_str(self) -> &'static str {
        match self {
            Usage::Verify => "verify",
            Usage::Export => "export",
        }
    }

    pub fn parse(text: &str) -> Option<Usage> {
        Usage::ALL.into_iter().find(|u| u.as_str() == text)
    }
}

/// Which programs may use a zone key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grants {
    /// Imported before v1.1 and never granted since: every program.
    All,
    /// These programs only (sorted, no repeats; empty: none).
    Programs(Vec<String>),
}

/// Why a program may not use a zone key for what it asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not granted to the program: answered exactly as a key that does not exist.
    NotFound,
    /// Granted, but of the other usage.
    WrongUsage,
}

/// Why a grant cannot be revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevokeError {
    /// The key is usable by every program (imported before grants): grant it
    /// to the programs that use it first.
    GrantedToAll,
    /// The program holds no grant of this key.
    NotGranted,
}

impl Grants {
    /// The grants of a key imported for these programs.
    pub fn to(programs: impl IntoIterator<Item = String>) -> Grants {
        let mut list: Vec<String> = programs.into_iter().collect();
        list.sort();
        list.dedup();
        Grants::Programs(list)
    }

    pub fn permits(&self, program: &str) -> bool {
        match self {
            Grants::All => true,
            Grants::Programs(list) => list.binary_search_by(|p| p.as_str().cmp(program)).is_ok(),
        }
    }

    /// After granting the key to `program`. The first grant of a key usable
    /// by every program narrows it to that program.
    pub fn grant(&self, program: &str) -> Grants {
        match self {
            Grants::All => Grants::to([program.to_owned()]),
            Grants::Programs(list) => Grants::to(list.iter().cloned().chain([program.to_owned()])),
        }
    }

    /// After revoking `program`'s grant. Revoking the last grant leaves a key
    /// no program may use (never every program again).
    pub fn revoke(&self, program: &str) -> Result<Grants, RevokeError> {
        match self {
            Grants::All => Err(RevokeError::GrantedToAll),
            Grants::Programs(_) if !self.permits(program) => Err(RevokeError::NotGranted),
            Grants::Programs(list) => Ok(Grants::Programs(
                list.iter().filter(|p| *p != program).cloned().collect(),
            )),
        }
    }
}

/// Whether `program` may use a key of `usage` and `grants` for `wanted`. A key
/// the program holds no grant of is refused as not found before its usage is
/// looked at, so another program's key tells nothing about itself.
pub fn check_use(
    grants: &Grants,
    usage: Usage,
    program: &str,
    wanted: Usage,
) -> Result<(), Refusal> {
    if !grants.permits(program) {
        return Err(Refusal::NotFound);
    }
    if usage != wanted {
        return Err(Refusal::WrongUsage);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn programs(g: &Grants) -> Vec<String> {
        match g {
            Grants::All => panic!("expected a list"),
            Grants::Programs(l) => l.clone(),
        }
    }

    #[test]
    fn a_key_from_before_grants_serves_everyone_until_granted() {
        let all = Grants::All;
        assert!(all.permits("prg_a") && all.permits("prg_b"));
        let g = all.grant("prg_a");
        assert!(g.permits("prg_a") && !g.permits("prg_b"));
        assert_eq!(all.revoke("prg_a"), Err(RevokeError::GrantedToAll));
    }

    #[test]
    fn revoking_the_last_grant_leaves_no_one() {
        let g = Grants::to(["prg_a".to_owned()]);
        let none = g.revoke("prg_a").unwrap();
        assert_eq!(none, Grants::Programs(vec![]));
        assert!(!none.permits("prg_a"));
        assert_eq!(none.revoke("prg_a"), Err(RevokeError::NotGranted));
    }

    #[test]
    fn another_programs_key_is_not_found_whatever_its_usage() {
        let g = Grants::to(["prg_live".to_owned()]);
        for usage in Usage::ALL {
            for wanted in Usage::ALL {
                assert_eq!(
                    check_use(&g, usage, "prg_test", wanted),
                    Err(Refusal::NotFound)
                );
            }
        }
        assert_eq!(
            check_use(&g, Usage::Export, "prg_live", Usage::Verify),
            Err(Refusal::WrongUsage)
        );
        assert_eq!(
            check_use(&g, Usage::Verify, "prg_live", Usage::Verify),
            Ok(())
        );
        assert_eq!(
            check_use(&Grants::All, Usage::Export, "x", Usage::Export),
            Ok(())
        );
    }

    #[test]
    fn usages_parse_back() {
        for u in Usage::ALL {
            assert_eq!(Usage::parse(u.as_str()), Some(u));
        }
        assert_eq!(Usage::parse("all"), None);
    }

    proptest! {
        /// Grants behave as a set: a grant admits exactly that program more,
        /// a revoke exactly that program less, in any order.
        #[test]
        fn grants_are_a_set(ops in proptest::collection::vec((any::<bool>(), 0u8..6), 0..40)) {
            let mut g = Grants::to(std::iter::empty());
            let mut model = std::collections::BTreeSet::new();
            for (grant, n) in ops {
                let p = format!("prg_{n}");
                if grant {
                    g = g.grant(&p);
                    model.insert(p);
                } else {
                    match g.revoke(&p) {
                        Ok(next) => { prop_assert!(model.remove(&p)); g = next; }
                        Err(e) => { prop_assert_eq!(e, RevokeError::NotGranted); prop_assert!(!model.contains(&p)); }
                    }
                }
                prop_assert_eq!(programs(&g), model.iter().cloned().collect::<Vec<_>>());
                for n in 0u8..6 {
                    let q = format!("prg_{n}");
                    prop_assert_eq!(g.permits(&q), model.contains(&q));
                }
            }
        }
    }
}
