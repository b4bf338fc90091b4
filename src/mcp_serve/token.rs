//! The bearer token of `keel mcp serve --http`: a 0600 file, created with a random token on
//! first use. A file others can read is refused rather than trusted.

use std::io::Write as _;
use std::path::Path;

use anyhow::{Context as _, bail};
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};

use crate::core::workspace::open_private;

/// Reads the token at `path`, creating it first when it does not exist.
pub fn load_or_create(path: &Path) -> anyhow::Result<String> {
    if !path.exists() {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let token = hex::encode(bytes);
        let mut file = open_private(path)?;
        writeln!(file, "{token}").with_context(|| format!("cannot write {}", path.display()))?;
        file.sync_all()
            .with_context(|| format!("cannot write {}", path.display()))?;
        return Ok(token);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .permissions()
            .mode()
            & 0o777;
        if mode & 0o077 != 0 {
            bail!(
                "{}: the token file is mode {mode:04o}; others could read it. Make it 0600 (chmod 600) and restart",
                path.display()
            );
        }
    }
    let token = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .trim()
        .to_string();
    if token.len() < 16 {
        bail!(
            "{}: the token is shorter than 16 characters; put a long random token in it (or delete the file and keel makes one)",
            path.display()
        );
    }
    Ok(token)
}

/// Whether an `Authorization` header value carries `token`. Both sides are hashed first, so
/// the comparison takes the same time wherever they differ.
#[must_use]
pub fn authorizes(header: Option<&str>, token: &str) -> bool {
    let Some(given) = header.and_then(|h| h.strip_prefix("Bearer ")) else {
        return false;
    };
    Sha256::digest(given.trim().as_bytes()) == Sha256::digest(token.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_created_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/token");
        let token = load_or_create(&path).unwrap();
        assert_eq!(token.len(), 64);
        assert_eq!(load_or_create(&path).unwrap(), token);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        assert!(authorizes(Some(&format!("Bearer {token}")), &token));
        assert!(!authorizes(Some("Bearer nope"), &token));
        assert!(!authorizes(Some(&token), &token));
        assert!(!authorizes(None, &token));
    }

    #[cfg(unix)]
    #[test]
    fn a_token_file_others_can_read_is_refused_naming_it() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "0123456789abcdef0123456789abcdef\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = load_or_create(&path).unwrap_err().to_string();
        assert!(err.contains("token") && err.contains("0644"), "{err}");
    }
}
