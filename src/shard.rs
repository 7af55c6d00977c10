//! Splitting one input tree across machines: `--shard K/N` and `--shard auto`.
//!
//! Every machine walks the whole tree and keeps only the sources whose relative path hashes into
//! its shard, so shards need no coordination, are disjoint and together cover every source. The
//! walker asks [`Shard::contains`] for each image it finds; `Config` builds the [`Shard`] once.
//!
//! On the command line K counts from 1 (`--shard 1/4` … `--shard 4/4`), as humans and GNU
//! parallel count; inside, [`Shard::index`] counts from 0, as Kubernetes does. `--shard auto`
//! reads the index from the scheduler's environment (see [`Shard::from_env`]).

use std::fmt;
use std::path::{Component, Path};
use std::str::FromStr;

/// One of `count` disjoint parts of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// Which part, counting from 0; always below `count`.
    pub index: u32,
    /// How many parts; at least 1.
    pub count: u32,
}

/// Why a shard could not be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    /// The text is not `K/N`.
    #[error("'{0}' is not a shard: expected K/N with 1 <= K <= N, e.g. --shard 2/8")]
    Syntax(String),
    /// N is 0.
    #[error("'{0}': the shard count N must be at least 1")]
    ZeroCount(String),
    /// K is 0 or above N.
    #[error("'{0}': K must be between 1 and N (shards are numbered from 1 on the command line)")]
    OutOfRange(String),
    /// `--shard auto` found no scheduler variable.
    #[error(
        "--shard auto found no scheduler index: set one of JOB_COMPLETION_INDEX (Kubernetes \
         Indexed Job), SLURM_ARRAY_TASK_ID (Slurm job array) or PARALLEL_SEQ (GNU parallel), \
         or pass --shard K/N"
    )]
    NoScheduler,
    /// `--shard auto` found the variables of more than one scheduler.
    #[error("--shard auto found both {0} and {1}, so the index is ambiguous: pass --shard K/N")]
    Ambiguous(&'static str, &'static str),
    /// The scheduler gives the index but not the count.
    #[error("{0} gives this machine's index but not the number of shards: add --shard-count N")]
    NeedCount(&'static str),
    /// A variable is not a valid index or count.
    #[error("{name}='{value}' is not a valid shard index or count")]
    BadValue {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
    },
    /// The scheduler's index is not below the count.
    #[error(
        "{source_name} gives index {index} (counting from 0) but there are only {count} shards"
    )]
    IndexTooLarge {
        /// Where the index came from, e.g. "PARALLEL_SEQ".
        source_name: &'static str,
        /// The 0-based index.
        index: u64,
        /// The count.
        count: u32,
    },
    /// `--shard-count` disagrees with the scheduler's own count.
    #[error("--shard-count {flag} disagrees with {name}={env}")]
    CountMismatch {
        /// The variable.
        name: &'static str,
        /// Its value.
        env: u32,
        /// The flag's value.
        flag: u32,
    },
    /// A Slurm array whose task ids are not an evenly stepped range, e.g. `--array=1,2,7`.
    #[error(
        "the Slurm array ids are not an evenly stepped range ({0}): \
         use --array=0-(N-1) or pass --shard K/N"
    )]
    SlurmGaps(String),
    /// A Slurm array of one task whose id is not 0: one task of an array submitted again.
    #[error(
        "SLURM_ARRAY_TASK_ID={0} is the only task of its array, as when one task of an array is \
         submitted again (sbatch --array={0}): Slurm then no longer says how many shards the \
         build has. Requeue the task in its own array (scontrol requeue JOBID_{0}), submit the \
         whole array again (finished shards write nothing), or pass --shard K/N"
    )]
    SlurmLoneTask(u64),
}

impl Shard {
    /// The whole input: one shard.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// Returns true if and only if the source at `rel_path` (relative to its input root) belongs
    /// to this shard.
    ///
    /// The decision is `path_hash(rel_path) % count == index`; see [`path_hash`] for why it is the
    /// same on every machine and every presize version.
    pub fn contains(&self, rel_path: &Path) -> bool {
        self.count <= 1 || path_hash(rel_path) % u64::from(self.count) == u64::from(self.index)
    }

    /// The shard for `--shard auto`, from the scheduler's environment.
    ///
    /// `env` looks a variable up (`|k| std::env::var(k).ok()` in the binary, a fake in tests);
    /// `count_override` is `--shard-count`. Recognised, and refused when more than one is set:
    ///
    /// * Kubernetes Indexed Job: `JOB_COMPLETION_INDEX` (from 0). Kubernetes does not export
    ///   `.spec.completions`, so pass the same number as `--shard-count`.
    /// * Slurm job array: `SLURM_ARRAY_TASK_ID`, made 0-based with `SLURM_ARRAY_TASK_MIN` and
    ///   `SLURM_ARRAY_TASK_STEP` (so `--array=1-8` and `--array=0-14:2` both work); the count is
    ///   `SLURM_ARRAY_TASK_COUNT`, and `--shard-count`, if given, must agree with it. Arrays with
    ///   gaps (`--array=1,2,7`) are refused, and so is an array of one task whose id is not 0:
    ///   that is one task of an array submitted again (`sbatch --array=3`), which Slurm
    ///   describes as an array of its own, so it would otherwise become shard 1 of 1.
    /// * GNU parallel: `PARALLEL_SEQ` (from 1; `--resume-failed` and `--retries` keep a job's
    ///   number); the count must come from `--shard-count`, e.g.
    ///   `parallel presize --shard auto --shard-count 8 … ::: $(seq 8)`. parallel exports no
    ///   count of jobs, and `PARALLEL_JOBSLOT` is no index: it is a slot, 1 … `-j`, that later
    ///   jobs reuse.
    pub fn from_env(
        count_override: Option<u32>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Shard, ShardError> {
        const K8S: &str = "JOB_COMPLETION_INDEX";
        const SLURM: &str = "SLURM_ARRAY_TASK_ID";
        const PARALLEL: &str = "PARALLEL_SEQ";
        let present: Vec<&'static str> = [K8S, SLURM, PARALLEL]
            .into_iter()
            .filter(|name| env(name).is_some_and(|v| !v.trim().is_empty()))
            .collect();
        let found = match present.as_slice() {
            [] => return Err(ShardError::NoScheduler),
            [one] => *one,
            [a, b, ..] => return Err(ShardError::Ambiguous(a, b)),
        };
        let number = |name: &'static str| -> Result<Option<u64>, ShardError> {
            match env(name) {
                None => Ok(None),
                Some(v) => v
                    .trim()
                    .parse::<u64>()
                    .map(Some)
                    .map_err(|_| ShardError::BadValue { name, value: v }),
            }
        };
        let require = |name: &'static str| -> Result<u64, ShardError> {
            number(name)?.ok_or(ShardError::NeedCount(name))
        };
        let (index, count) = match found {
            K8S => (
                require(K8S)?,
                count_override.ok_or(ShardError::NeedCount(K8S))?,
            ),
            PARALLEL => {
                let seq = require(PARALLEL)?;
                let index = seq.checked_sub(1).ok_or(ShardError::BadValue {
                    name: PARALLEL,
                    value: seq.to_string(),
                })?;
                (
                    index,
                    count_override.ok_or(ShardError::NeedCount(PARALLEL))?,
                )
            }
            _ => slurm_index(count_override, &number)?,
        };
        if index >= u64::from(count) {
            return Err(ShardError::IndexTooLarge {
                source_name: found,
                index,
                count,
            });
        }
        Ok(Shard {
            index: u32::try_from(index).unwrap_or(u32::MAX),
            count,
        })
    }
}

/// The 0-based index and the count of a Slurm array task.
fn slurm_index(
    count_override: Option<u32>,
    number: &dyn Fn(&'static str) -> Result<Option<u64>, ShardError>,
) -> Result<(u64, u32), ShardError> {
    const ID: &str = "SLURM_ARRAY_TASK_ID";
    const COUNT: &str = "SLURM_ARRAY_TASK_COUNT";
    let id = number(ID)?.ok_or(ShardError::NoScheduler)?;
    // Without MIN the ids cannot be made 0-based safely; a missing MIN is a very old Slurm.
    let min =
        number("SLURM_ARRAY_TASK_MIN")?.ok_or(ShardError::NeedCount("SLURM_ARRAY_TASK_MIN"))?;
    let step = number("SLURM_ARRAY_TASK_STEP")?.unwrap_or(1).max(1);
    let max = number("SLURM_ARRAY_TASK_MAX")?;
    let env_count = number(COUNT)?;
    let gaps = || {
        ShardError::SlurmGaps(format!(
            "id {id}, min {min}, step {step}, max {}, count {}",
            max.map_or("unset".into(), |m| m.to_string()),
            env_count.map_or("unset".into(), |c| c.to_string())
        ))
    };
    let offset = id.checked_sub(min).ok_or_else(gaps)?;
    if offset % step != 0 {
        return Err(gaps());
    }
    if let (Some(max), Some(count)) = (max, env_count) {
        if max < min || (max - min) / step + 1 != count {
            return Err(gaps());
        }
    }
    // Taken at its word, such an array would be shard 1 of 1: the whole tree, silently.
    if env_count == Some(1) && min > 0 {
        return Err(ShardError::SlurmLoneTask(id));
    }
    let env_count = env_count
        .map(|c| u32::try_from(c).map_err(|_| gaps()))
        .transpose()?;
    let count = match (env_count, count_override) {
        (Some(env), Some(flag)) if env != flag => {
            return Err(ShardError::CountMismatch {
                name: COUNT,
                env,
                flag,
            })
        }
        (Some(c), _) | (None, Some(c)) => c,
        (None, None) => return Err(ShardError::NeedCount(ID)),
    };
    Ok((offset / step, count))
}

impl FromStr for Shard {
    type Err = ShardError;

    /// Parses the command-line form `K/N`, K counting from 1.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let syntax = || ShardError::Syntax(s.to_owned());
        let (k, n) = s.trim().split_once('/').ok_or_else(syntax)?;
        let k: u32 = k.trim().parse().map_err(|_| syntax())?;
        let n: u32 = n.trim().parse().map_err(|_| syntax())?;
        if n == 0 {
            return Err(ShardError::ZeroCount(s.to_owned()));
        }
        if k == 0 || k > n {
            return Err(ShardError::OutOfRange(s.to_owned()));
        }
        Ok(Shard {
            index: k - 1,
            count: n,
        })
    }
}

impl fmt::Display for Shard {
    /// The command-line form `K/N`, K counting from 1.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", u64::from(self.index) + 1, self.count)
    }
}

/// The path a source is sharded by: its relative path without the extension, so that sources
/// whose outputs could share a name (`a.jpg` and `a.png` → `a.webp`) always land in the same
/// shard, where the walker's conflict check sees both.
pub(crate) fn key(rel: &Path) -> std::path::PathBuf {
    rel.with_extension("")
}

/// The stable hash that assigns a relative path to a shard.
///
/// Frozen forever, because machines running different presize versions must agree: the bytes
/// of the path's normal components (raw bytes on Unix, UTF-8 elsewhere), joined by `/`, with
/// `.` components and any root dropped, go through FNV-1a 64 (offset basis
/// `0xcbf29ce484222325`, prime `0x100000001b3`), then through the MurmurHash3 `fmix64` finaliser
/// so that the low bits used by `% count` depend on every input byte. `a/b.jpg`, `./a/b.jpg`
/// and (on Windows) `a\b.jpg` hash the same. Names are not Unicode-normalised, so a tree copied
/// from macOS (NFD) to Linux (NFC) may shard differently.
pub(crate) fn path_hash(rel_path: &Path) -> u64 {
    let mut hash = Fnv1a64::new();
    let mut first = true;
    for c in rel_path.components() {
        let bytes = match c {
            Component::Normal(name) => name.as_encoded_bytes(),
            Component::ParentDir => b"..".as_slice(),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => continue,
        };
        if !first {
            hash.write(b"/");
        }
        hash.write(bytes);
        first = false;
    }
    fmix64(hash.0)
}

/// FNV-1a, 64 bits.
struct Fnv1a64(u64);

impl Fnv1a64 {
    fn new() -> Fnv1a64 {
        Fnv1a64(0xcbf2_9ce4_8422_2325)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// MurmurHash3's 64-bit finaliser: every input bit affects every output bit.
fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    h
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::PathBuf;

    use super::*;

    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn parses_the_one_based_command_line_form() {
        assert_eq!("1/4".parse(), Ok(Shard { index: 0, count: 4 }));
        assert_eq!(" 4 / 4 ".parse(), Ok(Shard { index: 3, count: 4 }));
        assert_eq!("1/1".parse(), Ok(Shard::ALL));
        assert_eq!(Shard { index: 2, count: 8 }.to_string(), "3/8");
        for (text, want) in [
            ("0/4", ShardError::OutOfRange("0/4".into())),
            ("5/4", ShardError::OutOfRange("5/4".into())),
            ("1/0", ShardError::ZeroCount("1/0".into())),
            ("2", ShardError::Syntax("2".into())),
            ("a/4", ShardError::Syntax("a/4".into())),
            ("-1/4", ShardError::Syntax("-1/4".into())),
            ("1/4/2", ShardError::Syntax("1/4/2".into())),
            ("", ShardError::Syntax(String::new())),
        ] {
            assert_eq!(text.parse::<Shard>(), Err(want), "{text}");
        }
        let message = "0/4".parse::<Shard>().unwrap_err().to_string();
        assert!(message.contains("numbered from 1"), "{message}");
    }

    /// These values are part of presize's contract: changing them would make machines running
    /// different versions process overlapping shards. The values were checked against an
    /// independent Python implementation of the same steps.
    #[test]
    fn path_hash_values_are_pinned() {
        assert_eq!(fmix64(0xcbf2_9ce4_8422_2325), path_hash(Path::new("")));
        let pinned = [
            ("a.jpg", 0x57e4_5b66_c4c4_01a7_u64),
            ("2024/05/IMG_0001.JPG", 0x94c7_ef67_2344_b221),
            ("café/été.png", 0xe40b_d2c9_fb06_72e1),
        ];
        for (path, want) in pinned {
            assert_eq!(
                path_hash(Path::new(path)),
                want,
                "{path}: {:#x}",
                path_hash(Path::new(path))
            );
        }
    }

    #[test]
    fn path_hash_ignores_spelling_of_the_same_relative_path() {
        let h = path_hash(Path::new("a/b/c.jpg"));
        assert_eq!(path_hash(Path::new("./a/b/c.jpg")), h);
        assert_eq!(path_hash(Path::new("a//b/./c.jpg")), h);
        assert_eq!(path_hash(Path::new("/a/b/c.jpg")), h);
        assert_ne!(path_hash(Path::new("a/bc.jpg")), h);
        assert_ne!(
            path_hash(Path::new("ab/c.jpg")),
            path_hash(Path::new("a/bc.jpg"))
        );
    }

    #[test]
    fn shards_partition_the_paths_evenly() {
        let paths: Vec<PathBuf> = (0..1000)
            .map(|i| PathBuf::from(format!("shoot-{}/IMG_{i:04}.JPG", i % 13)))
            .collect();
        for count in [3_u32, 7] {
            let mut sizes = vec![0_usize; count as usize];
            for path in &paths {
                let owners: Vec<u32> = (0..count)
                    .filter(|&index| Shard { index, count }.contains(path))
                    .collect();
                assert_eq!(owners.len(), 1, "{} in shards {owners:?}", path.display());
                sizes[owners[0] as usize] += 1;
            }
            let fair = 1000 / count as usize;
            for &size in &sizes {
                assert!(
                    size * 4 > fair * 3 && size * 4 < fair * 5,
                    "N={count}: sizes {sizes:?}"
                );
            }
        }
        assert!(paths.iter().all(|p| Shard::ALL.contains(p)));
    }

    #[test]
    fn kubernetes_needs_the_count_from_the_flag() {
        let env = env_of(&[("JOB_COMPLETION_INDEX", "3")]);
        assert_eq!(
            Shard::from_env(Some(8), &env),
            Ok(Shard { index: 3, count: 8 })
        );
        assert_eq!(
            Shard::from_env(None, &env),
            Err(ShardError::NeedCount("JOB_COMPLETION_INDEX"))
        );
        assert_eq!(
            Shard::from_env(Some(3), &env),
            Err(ShardError::IndexTooLarge {
                source_name: "JOB_COMPLETION_INDEX",
                index: 3,
                count: 3
            })
        );
    }

    #[test]
    fn gnu_parallel_counts_from_one() {
        let env = env_of(&[("PARALLEL_SEQ", "1")]);
        assert_eq!(
            Shard::from_env(Some(4), &env),
            Ok(Shard { index: 0, count: 4 })
        );
        let env = env_of(&[("PARALLEL_SEQ", "4")]);
        assert_eq!(
            Shard::from_env(Some(4), &env),
            Ok(Shard { index: 3, count: 4 })
        );
        let env = env_of(&[("PARALLEL_SEQ", "5")]);
        assert!(matches!(
            Shard::from_env(Some(4), &env),
            Err(ShardError::IndexTooLarge { index: 4, .. })
        ));
        // PARALLEL_JOBSLOT is a slot of -j, reused: the third job of `-j 2` runs in slot 1.
        let env = env_of(&[("PARALLEL_SEQ", "3"), ("PARALLEL_JOBSLOT", "1")]);
        assert_eq!(
            Shard::from_env(Some(3), &env),
            Ok(Shard { index: 2, count: 3 })
        );
        assert_eq!(
            Shard::from_env(None, &env),
            Err(ShardError::NeedCount("PARALLEL_SEQ"))
        );
        let env = env_of(&[("PARALLEL_SEQ", "0")]);
        assert!(Shard::from_env(Some(4), &env).is_err());
        let env = env_of(&[("PARALLEL_SEQ", "x")]);
        assert_eq!(
            Shard::from_env(Some(4), &env),
            Err(ShardError::BadValue {
                name: "PARALLEL_SEQ",
                value: "x".into()
            })
        );
    }

    #[test]
    fn slurm_arrays_are_made_zero_based() {
        let one_based = env_of(&[
            ("SLURM_ARRAY_TASK_ID", "5"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_MAX", "8"),
            ("SLURM_ARRAY_TASK_COUNT", "8"),
        ]);
        assert_eq!(
            Shard::from_env(None, &one_based),
            Ok(Shard { index: 4, count: 8 })
        );
        assert_eq!(
            Shard::from_env(Some(8), &one_based),
            Ok(Shard { index: 4, count: 8 })
        );
        assert_eq!(
            Shard::from_env(Some(4), &one_based),
            Err(ShardError::CountMismatch {
                name: "SLURM_ARRAY_TASK_COUNT",
                env: 8,
                flag: 4
            })
        );
        let stepped = env_of(&[
            ("SLURM_ARRAY_TASK_ID", "6"),
            ("SLURM_ARRAY_TASK_MIN", "0"),
            ("SLURM_ARRAY_TASK_MAX", "14"),
            ("SLURM_ARRAY_TASK_STEP", "2"),
            ("SLURM_ARRAY_TASK_COUNT", "8"),
        ]);
        assert_eq!(
            Shard::from_env(None, &stepped),
            Ok(Shard { index: 3, count: 8 })
        );
        let no_count = env_of(&[("SLURM_ARRAY_TASK_ID", "2"), ("SLURM_ARRAY_TASK_MIN", "0")]);
        assert_eq!(
            Shard::from_env(Some(3), &no_count),
            Ok(Shard { index: 2, count: 3 })
        );
        assert_eq!(
            Shard::from_env(None, &no_count),
            Err(ShardError::NeedCount("SLURM_ARRAY_TASK_ID"))
        );
    }

    #[test]
    fn slurm_arrays_with_gaps_are_refused() {
        let listed = env_of(&[
            ("SLURM_ARRAY_TASK_ID", "7"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_MAX", "7"),
            ("SLURM_ARRAY_TASK_COUNT", "3"),
        ]);
        assert!(matches!(
            Shard::from_env(None, &listed),
            Err(ShardError::SlurmGaps(_))
        ));
        let off_step = env_of(&[
            ("SLURM_ARRAY_TASK_ID", "3"),
            ("SLURM_ARRAY_TASK_MIN", "0"),
            ("SLURM_ARRAY_TASK_STEP", "2"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ]);
        assert!(matches!(
            Shard::from_env(None, &off_step),
            Err(ShardError::SlurmGaps(_))
        ));
        let no_min = env_of(&[
            ("SLURM_ARRAY_TASK_ID", "3"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ]);
        assert_eq!(
            Shard::from_env(None, &no_min),
            Err(ShardError::NeedCount("SLURM_ARRAY_TASK_MIN"))
        );
    }

    /// `sbatch --array=3 deploy/slurm-array.sh`, to rerun task 3 of an array of 8, gives the
    /// task an array of its own (COUNT 1, MIN 3); it must not become shard 1 of 1.
    #[test]
    fn one_slurm_task_submitted_again_is_refused() {
        let alone = env_of(&[
            ("SLURM_ARRAY_TASK_ID", "3"),
            ("SLURM_ARRAY_TASK_MIN", "3"),
            ("SLURM_ARRAY_TASK_MAX", "3"),
            ("SLURM_ARRAY_TASK_COUNT", "1"),
        ]);
        for flag in [None, Some(1), Some(8)] {
            assert_eq!(
                Shard::from_env(flag, &alone),
                Err(ShardError::SlurmLoneTask(3)),
                "--shard-count {flag:?}"
            );
        }
        let message = ShardError::SlurmLoneTask(3).to_string();
        assert!(message.contains("scontrol requeue JOBID_3"), "{message}");
        // An array of one task numbered 0 is a real one-shard build.
        let single = env_of(&[
            ("SLURM_ARRAY_TASK_ID", "0"),
            ("SLURM_ARRAY_TASK_MIN", "0"),
            ("SLURM_ARRAY_TASK_MAX", "0"),
            ("SLURM_ARRAY_TASK_COUNT", "1"),
        ]);
        assert_eq!(Shard::from_env(None, &single), Ok(Shard::ALL));
    }

    #[test]
    fn auto_needs_exactly_one_scheduler() {
        assert_eq!(
            Shard::from_env(Some(4), env_of(&[])),
            Err(ShardError::NoScheduler)
        );
        assert_eq!(
            Shard::from_env(Some(4), env_of(&[("PARALLEL_SEQ", "  ")])),
            Err(ShardError::NoScheduler)
        );
        let both = env_of(&[
            ("SLURM_ARRAY_TASK_ID", "1"),
            ("SLURM_ARRAY_TASK_MIN", "0"),
            ("PARALLEL_SEQ", "2"),
        ]);
        assert_eq!(
            Shard::from_env(Some(4), both),
            Err(ShardError::Ambiguous("SLURM_ARRAY_TASK_ID", "PARALLEL_SEQ"))
        );
        let message = ShardError::NoScheduler.to_string();
        assert!(message.contains("JOB_COMPLETION_INDEX"), "{message}");
    }
}
