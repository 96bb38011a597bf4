//! Policy, profiles: the named rule sets a run judges under (`--profile`, `profile = "…"`).
//! Names and lookup only; the per-profile tables live in `tables.rs`, never in the rules' code.

/// The policy profile findings are judged under.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Profile {
    /// TLS ≥ 1.2, AEAD suites with forward secrecy, certificate hygiene, no PHI in clear.
    #[default]
    Hipaa,
    /// NIST SP 800-52 Rev. 2: its TLS 1.2 and 1.3 suite lists, TLS 1.3 support expected.
    #[value(name = "nist-800-52r2")]
    Nist80052r2,
    /// Mozilla server-side TLS 6.0, "modern": TLS 1.3 only.
    MozillaModern,
    /// Mozilla server-side TLS 6.0, "intermediate": TLS 1.2 with ECDHE/DHE AEAD suites, TLS 1.3.
    MozillaIntermediate,
    /// FIPS 140-3 approved suites, groups and signature algorithms only.
    Fips,
}

impl Profile {
    /// Every profile, in the order `KNOWN_PROFILES` lists their names.
    pub const ALL: [Profile; 5] =
        [Profile::Hipaa, Profile::Nist80052r2, Profile::MozillaModern, Profile::MozillaIntermediate, Profile::Fips];

    /// The name on the command line, in the config file, the report and each rule's prefix.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Hipaa => "hipaa",
            Profile::Nist80052r2 => "nist-800-52r2",
            Profile::MozillaModern => "mozilla-modern",
            Profile::MozillaIntermediate => "mozilla-intermediate",
            Profile::Fips => "fips",
        }
    }

    pub fn from_name(s: &str) -> Option<Profile> {
        Profile::ALL.into_iter().find(|p| p.name() == s)
    }
}

/// The names `profile = "…"` and `--profile` accept.
pub const KNOWN_PROFILES: &[&str] = &["hipaa", "nist-800-52r2", "mozilla-modern", "mozilla-intermediate", "fips"];

impl<'de> serde::Deserialize<'de> for Profile {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Profile::from_name(&s).ok_or_else(|| {
            serde::de::Error::custom(format!("unknown profile `{s}`, known profiles: {}", KNOWN_PROFILES.join(", ")))
        })
    }
}

/// The rule name `profile/rule` as a static string, e.g. `rule!(p, "min-version")`.
macro_rules! rule {
    ($profile:expr, $rule:literal) => {
        match $profile {
            $crate::policy::Profile::Hipaa => concat!("hipaa/", $rule),
            $crate::policy::Profile::Nist80052r2 => concat!("nist-800-52r2/", $rule),
            $crate::policy::Profile::MozillaModern => concat!("mozilla-modern/", $rule),
            $crate::policy::Profile::MozillaIntermediate => concat!("mozilla-intermediate/", $rule),
            $crate::policy::Profile::Fips => concat!("fips/", $rule),
        }
    };
}
pub(crate) use rule;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_the_cli() {
        use clap::ValueEnum;
        for (p, n) in Profile::ALL.into_iter().zip(KNOWN_PROFILES) {
            assert_eq!(p.name(), *n);
            assert_eq!(Profile::from_name(n), Some(p));
            assert_eq!(p.to_possible_value().map(|v| v.get_name().to_string()).as_deref(), Some(*n));
            assert!(rule!(p, "min-version").starts_with(n));
        }
        assert_eq!(Profile::from_name("pci"), None);
        assert_eq!(rule!(Profile::Nist80052r2, "min-version"), "nist-800-52r2/min-version");
    }
}
